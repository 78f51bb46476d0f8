# tests/common.sh — shared helpers for the end-to-end test scripts: run fedmpi
# under mpiexec with a hard time limit and check exits, messages and outputs.
# Source it after setting: scenario, fedmpi, mpiexec, preflags (array).
# shellcheck shell=bash disable=SC2154
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=1
# start from an empty per-test directory (CTest gives each test its own under .../work/)
case $PWD in */work/*) rm -rf ./* ;; *) echo "refusing to clean $PWD: not a test work directory" >&2; exit 1 ;; esac

fail() { echo "FAIL [$scenario]: $*" >&2; exit 1; }
# run NP ARGS...: fedmpi under mpiexec with a hard time limit; stdout/stderr kept in files
run() {
  local np=$1; shift
  timeout 120 "$mpiexec" -n "$np" "${preflags[@]}" "$fedmpi" "$@" >out.txt 2>err.txt
  status=$?
  [ $status -eq 124 ] && fail "timed out (a rank hung?): fedmpi $*"
  return 0
}
expect_ok() { run "$@"; [ $status -eq 0 ] || { cat out.txt err.txt >&2; fail "exit $status for: fedmpi ${*:2}"; }; }
# expect_error NP NEEDLE ARGS...: non-zero exit, exactly one error line, mentioning NEEDLE
expect_error() {
  local np=$1 needle=$2; shift 2
  run "$np" "$@"
  [ $status -ne 0 ] || fail "expected failure for: fedmpi $*"
  local n; n=$(grep -c "^fedmpi.*error:" err.txt)
  [ "$n" -eq 1 ] || { cat err.txt >&2; fail "expected exactly one error line, got $n for: fedmpi $*"; }
  grep -qF -- "$needle" err.txt || { cat err.txt >&2; fail "error message does not mention '$needle' for: fedmpi $*"; }
}
same_weights() { h5diff -q "$1" "$2" >/dev/null || fail "$1 and $2 differ"; }
json_rounds() { wc -l <"$1"; }

# the deterministic CSV columns (everything but wall-clock times and memory use)
# (det_metrics FILE [train]: with "train", the training columns only)
det_metrics() { python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
train_only = len(sys.argv) > 2
keep = [i for i, h in enumerate(rows[0]) if "time" not in h and not h.startswith("resources/")
        and not (train_only and h.startswith("evaluation"))]
for r in rows: print(",".join(r[i] for i in keep))' "$@"; }
same_metrics() { cmp -s <(det_metrics "$1") <(det_metrics "$2") || { diff <(det_metrics "$1") <(det_metrics "$2") | head >&2; fail "metrics $1 and $2 differ"; }; }
# a run split into several invocations also evaluates at the end of each: compare training only
same_train_metrics() { cmp -s <(det_metrics "$1" train) <(det_metrics "$2" train) || { diff <(det_metrics "$1" train) <(det_metrics "$2" train) | head >&2; fail "training metrics $1 and $2 differ"; }; }
# rank_pids LAUNCHER: "rank pid" of each fedmpi rank that is a child of that
# mpiexec, told apart by OMPI_COMM_WORLD_RANK
rank_pids() {
  local p r
  for p in $(pgrep -P "$1"); do
    r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
    [ -n "$r" ] && echo "$r $p"
  done
}

# a python3 that has h5py (FEDMPI_PYTHON, python3, /usr/bin/python3), or empty
h5py_python() {
  local p
  for p in "${FEDMPI_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$p" ] && "$p" -c "import h5py, numpy" >/dev/null 2>&1 && { echo "$p"; return; }
  done
}
