#!/usr/bin/env bash
# tests/diskfull/diskfull_test.sh — write failures (label `diskfull`): a full
# disk (a tiny tmpfs, ENOSPC) or a file-size limit (ulimit -f with SIGXFSZ
# ignored, EFBIG) hitting each thing fedmpi writes. Every failing run must:
#   - exit non-zero by itself: not by a signal (HDF5 1.10 used to crash in its
#     exit handler after a failed H5Fclose: status 139), within a time limit;
#   - print exactly one error line, naming the file;
#   - leave no file under a final name that does not load, and no *.tmp;
#   - keep the earlier checkpoints loadable and the metrics whole, so that
#     --resume continues once there is room again.
#   usage: diskfull_test.sh SCENARIO FEDMPI MPIEXEC [MPIEXEC PREFLAGS...]
# The tmpfs scenarios need root (mount); without it they exit 77 (skipped).
set -u
# shellcheck disable=SC2034 # used by common.sh
scenario=$1 fedmpi=$2 mpiexec=$3
shift 3
preflags=("$@")
here=$(cd "$(dirname "$0")" && pwd)
# a mount left by a killed earlier run would stop common.sh's cleaning
[ -d m ] && mountpoint -q m && umount -l m
# shellcheck source=../common.sh
source "$here/../common.sh"
rounds_check="$here/../resume/metrics_rounds.py"

# ---- helpers ---------------------------------------------------------------------

mounted=
cleanup() { [ -n "$mounted" ] && { umount m 2>/dev/null || umount -l m; }; }
trap cleanup EXIT
# mount_tmpfs SIZE: a tmpfs of SIZE on ./m (exit 77 if mounting is refused)
mount_tmpfs() {
  mkdir -p m
  if ! mount -t tmpfs -o "size=$1" tmpfs m 2>mount.err; then
    echo "SKIP [$scenario]: cannot mount a tmpfs (needs root): $(cat mount.err)"
    exit 77
  fi
  mounted=1
}
grow_tmpfs() { mount -o "remount,size=$1" m || fail "cannot grow the tmpfs"; }
# fill_leaving BYTES: a filler file takes all of m's free space but BYTES
fill_leaving() {
  local avail
  avail=$(stat -f -c '%a * %S' m)
  avail=$((avail))
  [ "$avail" -gt "$1" ] || fail "only $avail bytes free on the tmpfs"
  fallocate -l $((avail - $1)) m/filler || fail "cannot fill the tmpfs"
}
# run1 LIMIT_KB -- ARGS...: fedmpi on one rank under mpiexec with a time
# limit; with a LIMIT_KB (not ""), the rank alone (not mpiexec, whose PMIx
# segments would hit it) runs under ulimit -f LIMIT_KB with SIGXFSZ ignored,
# so a write past the limit fails with EFBIG instead of killing the process
run1() {
  local limit=$1; shift 2
  timeout 60 "$mpiexec" -n 1 "${preflags[@]}" bash -c \
    'limit=$1; shift; if [ -n "$limit" ]; then trap "" XFSZ; ulimit -f "$limit"; fi; exec "$@"' \
    _ "$limit" "$fedmpi" "$@" >out.txt 2>err.txt
  status=$?
  [ $status -eq 124 ] && fail "timed out: fedmpi $*"
  return 0
}
# failed NEEDLE: the last run failed cleanly with one error line naming NEEDLE
failed() {
  [ "$status" -ne 0 ] || fail "expected a failure"
  [ "$status" -lt 128 ] || { cat err.txt >&2; fail "exit status $status: killed by a signal"; }
  ! grep -Eq "Signal|Segmentation|core dumped" out.txt err.txt || { cat err.txt >&2; fail "a crash was reported"; }
  local n
  n=$(grep -c "error:" err.txt)
  [ "$n" -eq 1 ] || { cat err.txt >&2; fail "expected exactly one error line, got $n"; }
  grep -qF -- "$1" err.txt || { cat err.txt >&2; fail "the error does not name '$1'"; }
  echo "failed as expected: $(grep error: err.txt)"
}
ok() { [ "$status" -eq 0 ] || { cat out.txt err.txt >&2; fail "exit $status"; }; }
# intact DIR: no temporary file, every .h5 and .jsonl under a final name loads
intact() {
  local f
  [ -z "$(find "$1" -name '*.tmp')" ] || { find "$1" -name '*.tmp' >&2; fail "a temporary file was left"; }
  while IFS= read -r f; do
    h5dump -H "$f" >/dev/null 2>&1 || fail "$f does not load"
  done < <(find "$1" -name '*.h5')
}
no_file() { [ ! -e "$1" ] || fail "$1 exists after its write failed"; }
# rounds DIR [N]: metrics hold rounds 1..K (K = N if given) once each, in order
rounds() { python3 "$rounds_check" "$@" || fail "metrics in $1 are inconsistent"; }

mkdir -p data
"$fedmpi" data synth --out-train data/tr.h5 --out-test data/te.h5 >/dev/null 2>&1 || fail "cannot make the data"
train=(train --data data/tr.h5 --test-data data/te.h5 --quiet --seed 3)
deep=mlp:4,4,4,4,4,4,4,4 # its weights file (24 KB) is larger than its checkpoint (14 KB)

# ---- scenarios -------------------------------------------------------------------

case $scenario in
checkpoint_enospc) # 1 MiB holds checkpoints 0..3 of a 200x200 MLP (231 KB each) but not 4
  mount_tmpfs 1m
  run1 "" -- "${train[@]}" --out m/run --model mlp:200,200 --rounds 8 --checkpoint-every 1
  failed "m/run/checkpoints/ckpt_"
  bad=$(grep -o 'ckpt_[0-9]*\.h5' err.txt | head -1)
  no_file "m/run/checkpoints/$bad"
  intact m
  r=$((10#$(echo "$bad" | sed 's/ckpt_\([0-9]*\)\.h5/\1/')))
  [ "$(ls m/run/checkpoints | wc -l)" -eq "$r" ] || fail "not every earlier checkpoint is there"
  rounds m/run "$r" # round r's record was written before its checkpoint
  grow_tmpfs 8m
  run1 "" -- train --resume m/run --rounds 8
  ok
  rounds m/run 8
  intact m
  ;;
metrics_enospc) # one free page: the metrics files outgrow it after a few rounds
  mount_tmpfs 4m
  run1 "" -- "${train[@]}" --out m/run --model mlp:16 --rounds 3 --checkpoint-every 1
  ok
  fill_leaving 4096
  run1 "" -- train --resume m/run --rounds 60 --checkpoint-every 0
  failed "m/run/metrics."
  intact m
  k=$(rounds m/run)
  [ "$k" -gt 3 ] && [ "$k" -lt 60 ] || fail "the failure did not come from a round's metrics ($k rounds)"
  rm m/filler
  run1 "" -- train --resume m/run --rounds 12
  ok
  rounds m/run 12
  ;;
weights_enospc) # 800 KiB holds three 231 KB checkpoints, not the 230 KB weights after them
  mount_tmpfs 800k
  run1 "" -- "${train[@]}" --out m/run --model mlp:200,200 --rounds 2 --checkpoint-every 1
  failed "m/run/weights.h5"
  no_file m/run/weights.h5
  intact m
  rounds m/run 2
  grow_tmpfs 8m
  run1 "" -- train --resume m/run --rounds 3
  ok
  rounds m/run 3
  intact m
  ;;
config_enospc) # a full disk: the lock file is the first file a run writes, config.ini the next
  mount_tmpfs 1m
  fill_leaving 0
  run1 "" -- "${train[@]}" --out m/run --model mlp:16 --rounds 2
  failed "m/run/.fedmpi.lock"
  no_file m/run/config.ini
  # a lock file from an earlier run keeps its page: now config.ini is the one that fails
  rm m/filler
  printf 'host earlier pid 1\n' >m/run/.fedmpi.lock
  fill_leaving 0
  run1 "" -- "${train[@]}" --out m/run --model mlp:16 --rounds 2
  failed "m/run/config.ini"
  no_file m/run/config.ini
  intact m
  rm m/filler
  run1 "" -- "${train[@]}" --out m/run --model mlp:16 --rounds 2
  ok
  rounds m/run 2
  ;;
mpi_enospc) # the checkpoint case on 2 ranks: both exit 1 by themselves, none hangs
  mount_tmpfs 1m
  timeout 120 "$mpiexec" -n 2 "${preflags[@]}" bash -c \
    '"$@"; s=$?; echo "rank $OMPI_COMM_WORLD_RANK status $s" >>ranks.txt; exit $s' _ \
    "$fedmpi" "${train[@]}" --out m/run --model mlp:200,200 --rounds 8 --checkpoint-every 1 >out.txt 2>err.txt
  status=$?
  [ $status -ne 124 ] || fail "timed out: a rank hung"
  failed "m/run/checkpoints/ckpt_"
  cat ranks.txt
  [ "$(grep -c 'status 1$' ranks.txt)" -eq 2 ] || fail "not every rank exited with status 1"
  intact m
  grow_tmpfs 8m
  run 2 train --resume m/run --rounds 8
  ok
  rounds m/run 8
  ;;
checkpoint_efbig) # 12 KiB per file: the 14 KB checkpoint of round 3 cannot be written
  run1 "" -- "${train[@]}" --out run --model "$deep" --rounds 2 --checkpoint-every 1
  ok
  run1 12 -- train --resume run --rounds 4
  failed "run/checkpoints/ckpt_00000003.h5"
  no_file run/checkpoints/ckpt_00000003.h5
  intact run
  rounds run 3
  run1 "" -- train --resume run --rounds 4
  ok
  rounds run 4
  ;;
metrics_efbig) # 3 KiB per file: metrics.jsonl reaches it at round 5, mid-record
  run1 "" -- "${train[@]}" --out run --model "$deep" --rounds 2 --checkpoint-every 1
  ok
  run1 3 -- train --resume run --rounds 10 --checkpoint-every 0
  failed "run/metrics.jsonl"
  intact run
  k=$(rounds run)
  [ "$k" -gt 2 ] && [ "$k" -lt 10 ] || fail "the failure did not come from a round's metrics ($k rounds)"
  run1 "" -- train --resume run --rounds 10
  ok
  rounds run 10
  ;;
weights_efbig) # 18 KiB per file: the checkpoints (14 KB) fit, the weights (24 KB) do not
  run1 18 -- "${train[@]}" --out run --model "$deep" --rounds 2 --checkpoint-every 1
  failed "run/weights.h5"
  no_file run/weights.h5
  intact run
  rounds run 2
  run1 "" -- train --resume run --rounds 2
  ok
  intact run
  [ -f run/weights.h5 ] || fail "no weights after the resume"
  ;;
data_synth_enospc) # the 1.3 MB training file of the default Synthetic(1,1) on 1 MiB
  mount_tmpfs 1m
  run1 "" -- data synth --out-train m/tr.h5 --out-test m/te.h5
  failed "m/tr.h5"
  no_file m/tr.h5
  no_file m/te.h5
  intact m
  grow_tmpfs 4m
  run1 "" -- data synth --out-train m/tr.h5 --out-test m/te.h5
  ok
  intact m
  cmp -s m/tr.h5 data/tr.h5 || fail "the synthetic file differs from the one written to a roomy disk"
  ;;
data_import_efbig) # a 100 KiB limit and a 600 KB import
  python3 - <<'PY' || fail "cannot write the IDX files"
import struct
n = 200
with open("img.idx", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 28, 28)); f.write(bytes((i * 7) % 256 for i in range(n * 784)))
with open("lab.idx", "wb") as f:
    f.write(struct.pack(">II", 0x801, n)); f.write(bytes(i % 10 for i in range(n)))
PY
  run1 100 -- data import-idx --images img.idx --labels lab.idx --out out.h5 --clients 4
  failed "out.h5"
  no_file out.h5
  intact .
  run1 "" -- data import-idx --images img.idx --labels lab.idx --out out.h5 --clients 4
  ok
  intact .
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
