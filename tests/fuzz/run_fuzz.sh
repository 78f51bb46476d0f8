#!/usr/bin/env bash
# tests/fuzz/run_fuzz.sh FUZZER WORKDIR SECONDS SEED_CORPUS [hdf5] — one CTest
# fuzz run. Plain targets: libFuzzer stops at the first finding and the test
# fails. Targets that read HDF5 files ("hdf5"): libhdf5 1.10 itself crashes
# on some corrupted files within seconds (docs/data.md §12), so the run forks
# (-fork=1 -ignore_crashes=1 ...) and then replays every artifact: the test
# fails only for one whose stack reaches fedmpi's code before libhdf5's, or
# a UBSan report in fedmpi. The artifacts stay in WORKDIR.
set -uo pipefail
fuzzer=$1 wd=$2 secs=$3 seeds=$4 mode=${5:-}
mkdir -p "$wd/corpus"
rm -f "$wd"/crash-* "$wd"/leak-* "$wd"/timeout-* "$wd"/oom-* "$wd"/slow-unit-*
args=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
      -artifact_prefix="$wd/" "$wd/corpus" "$seeds")
if [ "$mode" != hdf5 ]; then
  exec "$fuzzer" -workers=1 -jobs=1 "${args[@]}"
fi
"$fuzzer" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 "${args[@]}" >"$wd/fuzz.log" 2>&1
tail -n 15 "$wd/fuzz.log"
ours=0 theirs=0
for a in "$wd"/crash-* "$wd"/leak-* "$wd"/timeout-*; do
  [ -e "$a" ] || continue
  log=$a.replay.log
  timeout 120 "$fuzzer" -timeout=20 "$a" >"$log" 2>&1
  # the first frame in fedmpi's sources or in libhdf5 says whose crash it is
  # (a property check failing in tests/fuzz/ is fedmpi's too)
  first=$(grep -oE "(/(src|tests/fuzz)/[a-z_/]+\.c:[0-9]+|libhdf5[a-z_]*\.so)" "$log" | head -n1)
  if grep -q "src/.*runtime error" "$log" || [[ $first == /src/* || $first == /tests/fuzz/* ]]; then
    echo "FEDMPI: $a (first frame $first; see $log)"
    ours=$((ours + 1))
  else
    theirs=$((theirs + 1))
  fi
done
echo "run_fuzz: $theirs findings inside libhdf5 (docs/data.md §12), $ours in fedmpi"
[ "$ours" -eq 0 ]
