#!/usr/bin/env bash
# tests/faults/faults_test.sh — what a user sees when a run goes wrong on some
# ranks only (label `faults`), and the plot script's smoke test (label `plot`).
#   usage: faults_test.sh SCENARIO FEDMPI REPO_ROOT MPIEXEC [MPIEXEC PREFLAGS...]
# Scenarios:
#   kill_worker     a worker rank is killed with SIGKILL mid-run: the job ends
#                   within 60 s with a non-zero status, mpirun names the lost
#                   rank, no fedmpi process is left, metrics.jsonl/csv hold only
#                   whole records
#   one_rank_error  a client owned by the last rank has a label out of range:
#                   every rank exits 1 by itself, one error line names the rank,
#                   the file and the client
#   hung_rank       a worker rank is stopped (SIGSTOP) after round 2 under
#                   --round-timeout 3: the job ends within 30 s with a non-zero
#                   status and one error line naming the stopped rank, no
#                   process is left, and --resume continues from the newest
#                   checkpoint
#   plot            scripts/plot-metrics on two short runs writes a valid PNG
set -u
# shellcheck disable=SC2034 # used by common.sh
scenario=$1 fedmpi=$2 root=$3 mpiexec=$4
shift 4
preflags=("$@")
# shellcheck source=../common.sh
source "$root/tests/common.sh"
h5py_python=/usr/bin/python3 # Debian's python3-h5py (scripts/install-deps), not a python on PATH

# alive PID: exists and is not a zombie
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
# fedmpi_with TEXT: pids of live fedmpi processes whose command line contains TEXT
fedmpi_with() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = fedmpi ] || continue
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$1" && alive "$p" && echo "$p"
  done
}
# whole_records DIR: every metrics.jsonl line is a JSON object with consecutive
# rounds from 1, and metrics.csv has that many complete rows
whole_records() {
  python3 - "$1/metrics.jsonl" "$1/metrics.csv" <<'PY' || fail "metrics in $1 are damaged"
import csv, json, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "metrics.jsonl does not end with a newline: last record cut short"
recs = [json.loads(l) for l in lines[:-1]]
assert recs, "no records"
assert [r["round"] for r in recs] == list(range(1, len(recs) + 1)), "rounds not consecutive from 1"
rows = list(csv.reader(open(sys.argv[2])))
assert all(len(r) == len(rows[0]) for r in rows), "a metrics.csv row is incomplete"
assert len(rows) - 1 == len(recs), ("csv rows", len(rows) - 1, "jsonl records", len(recs))
print(len(recs), "whole records")
PY
}

# find_ranks N: rank_pid[r] = the pid of rank r, for the N ranks that are
# mpirun's ($mpirun_pid) children, told apart by OMPI_COMM_WORLD_RANK.
declare -A rank_pid=()
find_ranks() {
  local p r
  rank_pid=()
  while read -r r p; do rank_pid[$r]=$p; done < <(rank_pids "$mpirun_pid")
  [ ${#rank_pid[@]} -eq "$1" ] || fail "expected $1 ranks under mpirun (pid $mpirun_pid), found ${!rank_pid[*]}"
}

case $scenario in
kill_worker)
  tag=$PWD/run # unique to this test: every rank's command line holds it
  # far more rounds than can finish: the run is still going when a rank dies
  "$mpiexec" -n 3 "${preflags[@]}" "$fedmpi" train --out "$tag" --rounds 1000000 --model mlp:32 --epochs 2 \
    --checkpoint-every 0 >out.txt 2>err.txt &
  mpirun_pid=$!
  trap 'kill -9 $mpirun_pid $(fedmpi_with "$tag") 2>/dev/null' EXIT
  for _ in $(seq 1 600); do grep -q '^round ' out.txt && break; alive $mpirun_pid || break; sleep 0.1; done
  grep -q '^round ' out.txt || { cat out.txt err.txt; fail "no progress line within 60 s"; }
  find_ranks 3
  victim=2
  echo "ranks: 0=${rank_pid[0]} 1=${rank_pid[1]} 2=${rank_pid[2]}; kill -9 rank $victim"
  t0=$SECONDS
  kill -9 "${rank_pid[$victim]}"
  for _ in $(seq 1 600); do alive $mpirun_pid || break; sleep 0.1; done
  alive $mpirun_pid && { cat err.txt; fail "mpirun still running 60 s after rank $victim was killed"; }
  wait $mpirun_pid
  status=$?
  echo "mpirun exited with status $status after $((SECONDS - t0)) s"
  cat err.txt
  [ $status -ne 0 ] || fail "mpirun exited 0 although rank $victim was killed"
  grep -qE "rank $victim .*(signal 9|Killed)" err.txt || fail "mpirun's message does not name rank $victim and signal 9"
  sleep 1 # let mpirun's children be reaped
  for r in "${!rank_pid[@]}"; do alive "${rank_pid[$r]}" && fail "rank $r (pid ${rank_pid[$r]}) still running"; done
  left=$(fedmpi_with "$tag")
  [ -z "$left" ] || { ps -o pid,stat,cmd -p "$left"; fail "processes left behind: $left"; }
  whole_records "$tag"
  ;;
one_rank_error)
  expect_ok 1 data synth --out-train d.h5 --out-test "" --clients 12 --seed 5
  # one label out of range in the last client (sorted by id), which only the last rank loads
  "$h5py_python" - d.h5 <<'PY' >client.txt || fail "h5py edit failed"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    last = sorted(f["examples"].keys())[-1]
    y = f["examples"][last]["y"]
    a = y[...]
    a[len(a) // 2] = 10  # the file has 10 classes: labels are 0..9
    y[...] = a
    print(last)
PY
  client=$(cat client.txt)
  # --assignment shard: the client is trained by its shard owner, the last rank
  args=(train --data d.h5 --num-classes 10 --clients-per-round 12 --rounds 2 --assignment shard --out o)
  # 1. as a user runs it: one error line naming rank 2, the file and the client; exit 1
  expect_error 3 "rank 2" "${args[@]}"
  [ "$(grep -ci "error:" err.txt)" -eq 1 ] || { cat err.txt; fail "more than one error line on stderr"; }
  grep -q "error: .*d\.h5" err.txt || fail "the error does not name the file"
  grep -q "error: .*$client" err.txt || fail "the error does not name client $client"
  [ $status -eq 1 ] || fail "exit status $status, expected 1 (a failed run)"
  cat err.txt
  # 2. every rank leaves by itself with status 1: mpirun is told not to abort the
  #    others when the first one exits, and each rank records its own status
  rm -f status.*
  timeout 60 "$mpiexec" -n 3 "${preflags[@]}" --mca orte_abort_on_non_zero_status 0 \
    sh -c '"$0" "$@"; rc=$?; echo $rc >status.$OMPI_COMM_WORLD_RANK; exit $rc' "$fedmpi" "${args[@]}" \
    >out2.txt 2>err2.txt
  [ $? -ne 124 ] || fail "a rank hung after the error (timeout)"
  for r in 0 1 2; do
    [ -s status.$r ] || { cat err2.txt; fail "rank $r did not exit by itself"; }
    [ "$(cat status.$r)" = 1 ] || fail "rank $r exited with $(cat status.$r), expected 1"
  done
  echo "every rank exited with status 1"
  ;;
hung_rank)
  tag=$PWD/run
  "$mpiexec" -n 3 "${preflags[@]}" "$fedmpi" train --out "$tag" --rounds 1000000 --model mlp:32 --epochs 2 \
    --round-timeout 3 --checkpoint-every 1 >out.txt 2>err.txt &
  mpirun_pid=$!
  # whatever happens, nothing stays stopped or running
  trap 'p=$(fedmpi_with "$tag"); kill -CONT $p 2>/dev/null; kill -9 $mpirun_pid $p 2>/dev/null' EXIT
  for _ in $(seq 1 600); do grep -q '^round *2/' out.txt && break; alive $mpirun_pid || break; sleep 0.1; done
  grep -q '^round *2/' out.txt || { cat out.txt err.txt; fail "round 2 not reached within 60 s"; }
  find_ranks 3
  victim=2
  t0=$SECONDS
  kill -STOP "${rank_pid[$victim]}"
  for _ in $(seq 1 300); do alive $mpirun_pid || break; sleep 0.1; done
  alive $mpirun_pid && { cat err.txt; fail "the job is still running 30 s after rank $victim was stopped"; }
  wait $mpirun_pid
  status=$?
  echo "mpirun exited with status $status $((SECONDS - t0)) s after rank $victim was stopped"
  cat err.txt
  [ $status -ne 0 ] || fail "exit status 0 although rank $victim stopped answering"
  [ "$(grep -c "^fedmpi.*error:" err.txt)" -eq 1 ] || fail "expected exactly one fedmpi error line"
  grep -qE "^fedmpi train: error: round [0-9]+ did not complete within --round-timeout 3 s: rank $victim (did not arrive|arrived but stopped answering)" \
    err.txt || fail "the message does not name rank $victim"
  sleep 1 # let the launcher's children be reaped
  for r in "${!rank_pid[@]}"; do alive "${rank_pid[$r]}" && fail "rank $r (pid ${rank_pid[$r]}) still running"; done
  left=$(fedmpi_with "$tag")
  [ -z "$left" ] || { ps -o pid,stat,cmd -p "$left"; fail "processes left behind: $left"; }
  whole_records "$tag"
  # the newest checkpoint is whole: --resume takes it (no skipped file) and goes on
  last=$(ls "$tag/checkpoints" | sed -n 's/^ckpt_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
  [ -n "$last" ] && [ "$last" -ge 2 ] || fail "no checkpoint after round 2"
  expect_ok 3 train --resume "$tag" --rounds $((last + 2)) --round-timeout 30
  grep -q "warning: skipping checkpoint" err.txt && { cat err.txt; fail "a checkpoint was damaged"; }
  grep -q "resuming from $tag/checkpoints/ckpt_$(printf %08d "$last").h5" out.txt || { cat out.txt; fail "did not resume from round $last"; }
  ;;
plot)
  expect_ok 1 train --out runs/lr0.05 --rounds 6 --eval-every 2 --client-lr 0.05 --quiet
  expect_ok 2 train --out runs/lr0.2 --rounds 6 --eval-every 2 --client-lr 0.2 --quiet
  timeout 60 bash "$root/scripts/plot-metrics" -o curves.png runs/lr0.05/metrics.csv runs/lr0.2/metrics.jsonl \
    >plot.txt 2>&1 || { cat plot.txt; fail "plot-metrics failed"; }
  [ -s curves.png ] || fail "curves.png not written"
  python3 - curves.png <<'PY' || fail "curves.png is not a valid PNG of a plot"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
pos, chunks = 8, []
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    assert zlib.crc32(kind + body) == crc, "bad CRC in " + kind.decode()
    chunks.append(kind)
    pos += 12 + n
assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
w, h = struct.unpack(">II", data[16:24])
assert w >= 400 and h >= 300, (w, h)
assert len(data) > 10000, ("suspiciously small", len(data))
print("PNG", w, "x", h, len(data), "bytes")
PY
  # usage text, and a clear error for a file that is not metrics
  bash "$root/scripts/plot-metrics" --help | grep -q "usage:" || fail "plot-metrics --help has no usage"
  echo "not metrics" >bogus.csv
  bash "$root/scripts/plot-metrics" -o x.png bogus.csv 2>bogus.txt && fail "plot-metrics accepted bogus.csv"
  grep -q "bogus.csv" bogus.txt || { cat bogus.txt; fail "the error does not name bogus.csv"; }
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
