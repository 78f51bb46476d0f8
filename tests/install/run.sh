#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR SOURCE_DIR WORK_DIR
# Install the built tree into a scratch prefix, then build and run the
# custom-model example against it twice: with find_package(fedmpi) and with
# pkg-config. Also runs the installed CLI.
set -eu
build=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
test -f "$work/prefix/include/fedmpi/fedmpi.h"
test -x "$work/prefix/bin/fedmpi"
"$work/prefix/bin/fedmpi" version

cmake -S "$src/tests/install" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DFM_EXAMPLE="$src/examples/custom_model.c" >"$work/configure.log"
cmake --build "$work/consumer" >"$work/build.log"
"$work/consumer/custom_model"

libdir=$(dirname "$(find "$work/prefix" -name fedmpi.pc | head -n1)")
export PKG_CONFIG_PATH="$libdir"
# shellcheck disable=SC2046
cc -std=c11 "$src/examples/custom_model.c" $(pkg-config --cflags --libs fedmpi) -lm -o "$work/pc_example"
LD_LIBRARY_PATH="$(dirname "$libdir")" "$work/pc_example" >/dev/null
echo "install test passed"
