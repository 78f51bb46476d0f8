#!/usr/bin/env bash
# tests/resume/resume_test.sh — checkpoints and resume, end to end through
# mpiexec: a resumed run (after a clean stop, a signal, or SIGKILL at random
# moments, even mid-checkpoint) must end bit-identical to an uninterrupted run,
# whatever ranks and threads either part used.
#   usage: resume_test.sh SCENARIO FEDMPI MPIEXEC [MPIEXEC PREFLAGS...]
set -u
# shellcheck disable=SC2034 # used by common.sh
scenario=$1 fedmpi=$2 mpiexec=$3
shift 3
preflags=("$@")
# shellcheck source=../common.sh
source "$(dirname "$0")/../common.sh"
here=$(cd "$(dirname "$0")" && pwd)

# The workload: an MLP on generated Synthetic(1,1), momentum on the server so
# the optimizer state matters, a checkpoint every other round.
common=(--model mlp:64,32 --epochs 2 --server-lr 0.8 --momentum 0.9 --checkpoint-every 2 --quiet --seed 11)
reference() { expect_ok 2 train --out ref --rounds "$1" "${common[@]}"; }
# the options a resume may change, as the refusal and --resume's help name them
resume_safe="rounds, assignment, cache-mb, preload, eval-every, eval-batch-size, eval-clients, test-data, threads, quiet, \
checkpoint-every, keep-checkpoints, out"

# start_bg NP ARGS...: fedmpi under mpiexec in its own process group (pid in $bg)
start_bg() {
  local np=$1; shift
  setsid "$mpiexec" -n "$np" "${preflags[@]}" "$fedmpi" "$@" >bg.out 2>bg.err &
  bg=$!
}
# SIGKILL the launcher and every rank at once (Open MPI puts each rank in its
# own process group, so kill the whole tree), as a node failure would.
kill_all() {
  local pids
  pids="$1 $(pgrep -P "$1" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null
  wait "$1" 2>/dev/null
}
no_leftovers() {
  local i
  for ((i = 0; i < 600; i++)); do # up to 60 s on a loaded machine
    pgrep -f "$fedmpi train --out $1" >/dev/null || return 0
    sleep 0.1
  done
  fail "processes left behind after the kill"
}
# snapshot DIR: every entry (type, path, size, mode, mtime) and every file's SHA-256
snapshot() {
  (cd "$1" && find . -printf '%y %p %s %m %T@\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
# newest_round DIR: the round of DIR's newest checkpoint
newest_round() { ls "$1/checkpoints" | sed -n 's/^ckpt_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1; }
# wait_rounds DIR N SECONDS: until DIR/metrics.csv records N rounds (rounds are
# far shorter than a poll: checkpoints come and go between two looks)
wait_rounds() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    [ "$(wc -l <"$1/metrics.csv" 2>/dev/null || echo 0)" -gt "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
wait_for() { # wait_for GLOB SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do compgen -G "$1" >/dev/null && return 0; sleep 0.05; done
  return 1
}

# stop_kill_resume ARGS...: 8 rounds of `train ARGS` (checkpoints every 2
# rounds) against the same run stopped after round 3 and resumed, and against
# it killed with SIGKILL after its round-4 checkpoint and resumed: the same
# weights and metrics bit for bit
stop_kill_resume() {
  rm -rf ref run
  expect_ok 2 train --out ref --rounds 8 "$@"
  expect_ok 1 train --out run --rounds 3 "$@"
  expect_ok 2 train --resume run --rounds 8
  same_weights ref/weights.h5 run/weights.h5
  same_train_metrics ref/metrics.csv run/metrics.csv
  rm -rf run
  FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS=150 start_bg 2 train --out run --rounds 8 "$@"
  wait_for "run/checkpoints/ckpt_00000004.h5" 120 || { cat bg.err; fail "$*: no checkpoint of round 4"; }
  kill_all "$bg"
  no_leftovers run
  [ ! -e run/weights.h5 ] || fail "$*: the run ended before the kill"
  expect_ok 2 train --resume run --rounds 8
  same_weights ref/weights.h5 run/weights.h5
  same_metrics ref/metrics.csv run/metrics.csv
}

case $scenario in
resume_identical)
  reference 12
  expect_ok 1 train --out run --rounds 5 "${common[@]}" # stops after round 5: checkpoints 0,2,4,5
  ls run/checkpoints/ckpt_00000005.h5 >/dev/null || fail "no final checkpoint"
  expect_ok 3 train --resume run --rounds 9          # another rank count
  expect_ok 1 train --resume run --rounds 12 --threads 2 # and threads
  grep -q "^rounds = 12$" run/config.ini || fail "config.ini not updated"
  same_weights ref/weights.h5 run/weights.h5
  same_train_metrics ref/metrics.csv run/metrics.csv
  # keep policy: the first plus the newest 5 (0 and 4..12 step 2 plus the finals)
  ls run/checkpoints >ckpts.txt
  grep -q ckpt_00000000.h5 ckpts.txt || fail "the first checkpoint was pruned"
  [ "$(wc -l <ckpts.txt)" -le 6 ] || { cat ckpts.txt; fail "more than first + 5 checkpoints kept"; }
  ;;
aggregator_state)
  # DP-FedAvg's aggregator keeps state (adaptive zeroing and clipping norms)
  # and draws noise on rank 0: a stopped, resumed and a killed, resumed run
  # must both end bit-identical to the uninterrupted one
  dp=(--aggregator "dp_aggregator(noise_multiplier=0.5, clients_per_round=10)" --weighting uniform)
  expect_ok 2 train --out ref --rounds 8 "${common[@]}" "${dp[@]}"
  h5dump -d /state/aggregator/state ref/checkpoints/ckpt_00000008.h5 >agg.txt || fail "no aggregator state saved"
  grep -q "DATASPACE  SIMPLE { ( 2 )" agg.txt || { cat agg.txt; fail "expected 2 aggregator state values"; }
  expect_ok 1 train --out run --rounds 3 "${common[@]}" "${dp[@]}"
  expect_ok 3 train --resume run --rounds 8
  same_weights ref/weights.h5 run/weights.h5
  same_train_metrics ref/metrics.csv run/metrics.csv # (the stop at round 3 also evaluated)
  grep -q "aggregator/zeroing/dp_query_metrics/clip" run/metrics.csv || fail "no DP clip in the metrics"
  rm -rf run
  FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS=150 start_bg 2 train --out run --rounds 8 "${common[@]}" "${dp[@]}"
  wait_for "run/checkpoints/ckpt_00000002.h5" 90 || { cat bg.err; fail "no checkpoint of round 2"; }
  kill_all "$bg"
  no_leftovers run
  expect_ok 2 train --resume run --rounds 8
  same_weights ref/weights.h5 run/weights.h5
  same_metrics ref/metrics.csv run/metrics.csv
  ;;
tree_state)
  # DP-FTRL's tree_adaptive keeps its noise tree on rank 0 only (the server
  # state of /state/aggregator/server_state) and restarts it after rounds 2,
  # 5 and 8: stopping at round 3 (inside a tree) or killing the run, then
  # resuming, must end bit-identical to the uninterrupted run
  tr=(--aggregator "tree_adaptive(noise_multiplier=0.3, clients_per_round=10, restart_warmup=2, restart_frequency=3)"
      --weighting uniform --dp-tree-participation once-per-tree)
  expect_ok 2 train --out ref --rounds 9 "${common[@]}" "${tr[@]}"
  h5dump -H -d /state/aggregator/server_state ref/checkpoints/ckpt_00000009.h5 >sv.txt || fail "no tree state saved"
  grep -q "DATASPACE  SIMPLE" sv.txt || { cat sv.txt; fail "no server state dataset"; }
  expect_ok 1 train --out run --rounds 3 "${common[@]}" "${tr[@]}"
  expect_ok 3 train --resume run --rounds 9
  same_weights ref/weights.h5 run/weights.h5
  same_train_metrics ref/metrics.csv run/metrics.csv
  grep -q "aggregator/dp_query_metrics/current_clip" run/metrics.csv || fail "no tree clip in the metrics"
  rm -rf run
  FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS=150 start_bg 2 train --out run --rounds 9 "${common[@]}" "${tr[@]}"
  wait_for "run/checkpoints/ckpt_00000004.h5" 90 || { cat bg.err; fail "no checkpoint of round 4"; }
  kill_all "$bg"
  no_leftovers run
  expect_ok 2 train --resume run --rounds 9
  same_weights ref/weights.h5 run/weights.h5
  same_metrics ref/metrics.csv run/metrics.csv
  ;;
dropout_state)
  # a stack with dropout: its masks are keyed by (seed, round, client, step),
  # nothing of them is state, so stopping at round 3, or kill -9, then
  # resuming ends bit-identical to the uninterrupted run
  stop_kill_resume --model "stack:dense(64),relu,dropout(0.4),dense(32),relu,dropout(0.2),dense" --epochs 2 \
    --server-lr 0.8 --momentum 0.9 --checkpoint-every 2 --quiet --seed 11
  ;;
baselines_state)
  # TFF's baselines shakespeare_lstm (an LSTM over h5py-written Shakespeare
  # text) and emnist_cnn_dropout: stopping at round 3, or kill -9 mid-run,
  # then resuming ends bit-identical to the uninterrupted run
  py=$(h5py_python)
  [ -n "$py" ] || fail "no python3 with h5py and numpy (scripts/install-deps installs python3-h5py)"
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  stop_kill_resume --model shakespeare_lstm --data fx/plays_train.h5 --clients-per-round 4 --batch-size 4 \
    --client-lr 1 --momentum 0.9 --checkpoint-every 2 --quiet --seed 11
  stop_kill_resume --model emnist_cnn_dropout --data fx/fed_emnist_digitsonly.h5 --clients-per-round 3 \
    --batch-size 8 --momentum 0.9 --checkpoint-every 2 --quiet --seed 11
  ;;
kill9)
  reference 14
  RANDOM=7 # the moments are random but the same each time the test runs
  for trial in 1 2 3 4; do
    rm -rf run
    # slow checkpoints widen the window in which a kill lands mid-write
    FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS=150 start_bg 2 train --out run --rounds 14 "${common[@]}"
    wait_for "run/checkpoints/ckpt_00000000.h5" 90 || { cat bg.err; fail "trial $trial: no first checkpoint"; }
    if [ "$trial" -eq 1 ]; then
      # kill exactly while a checkpoint is being written
      wait_for "run/checkpoints/*.tmp" 90 || fail "never saw a checkpoint being written"
    else
      sleep "0.$((RANDOM % 9 + 1))"
    fi
    kill_all "$bg"
    no_leftovers run
    if [ "$trial" -ge 3 ]; then
      # kill the resumed run too, at a random moment (possibly while it
      # filters the metrics files): the next resume must still be exact
      FEDMPI_DEBUG_CHECKPOINT_PAUSE_MS=150 start_bg 2 train --resume run --rounds 14
      sleep "0.$((RANDOM % 9 + 1))"
      kill_all "$bg"
      no_leftovers run
    fi
    # resume, possibly several times, until the run completes
    for attempt in 1 2 3; do
      run 3 train --resume run --rounds 14
      [ $status -eq 0 ] && break
      cat out.txt err.txt >&2
      fail "trial $trial: resume failed with status $status"
    done
    same_weights ref/weights.h5 run/weights.h5
    same_metrics ref/metrics.csv run/metrics.csv
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' run/metrics.jsonl ||
      fail "trial $trial: metrics.jsonl has an invalid line"
    # both files: rounds 1..14 exactly once, in order, every line whole
    python3 "$here/metrics_rounds.py" run 14 >/dev/null || fail "trial $trial: metrics not rounds 1..14 once each"
    echo "trial $trial: identical after kill -9 and resume"
  done
  ;;
metrics_corners)
  # The states a kill -9 (or an older fedmpi's failed write) leaves in the
  # metrics files, each followed by --resume: the files must end with rounds
  # 1..N exactly once, in order, equal to an uninterrupted run's.
  reference 9
  expect_ok 1 train --out run --rounds 5 "${common[@]}" # checkpoints 0 2 4 5, records 1..5
  # records after the checkpoint (5, about to be redone), the checkpoint
  # round's own record (4, kept), and a torn last line in each file
  rm run/checkpoints/ckpt_00000005.h5
  printf '{"round":6,"client_wo' >>run/metrics.jsonl
  printf '6,0.25' >>run/metrics.csv
  expect_ok 2 train --resume run --rounds 7
  python3 "$here/metrics_rounds.py" run 7 >/dev/null || fail "after a torn line and records past the checkpoint"
  expect_ok 1 train --resume run --rounds 9 # from checkpoint 7, another rank count
  python3 "$here/metrics_rounds.py" run 9 >/dev/null || fail "after a second resume"
  same_train_metrics ref/metrics.csv run/metrics.csv
  # a CSV with its header only, an empty metrics.jsonl, the first checkpoint only
  rm -rf run2 && mkdir run2 && cp run/config.ini run2/ && mkdir run2/checkpoints
  cp run/checkpoints/ckpt_00000000.h5 run2/checkpoints/
  head -n 1 run/metrics.csv >run2/metrics.csv && : >run2/metrics.jsonl
  expect_ok 2 train --resume run2 --out run2 --rounds 3
  python3 "$here/metrics_rounds.py" run2 3 >/dev/null || fail "after a header-only CSV"
  ;;
corrupted)
  reference 8
  expect_ok 2 train --out run --rounds 6 "${common[@]}" # checkpoints 0 2 4 6
  # flip bytes inside the newest checkpoint's weights: the checksum must catch it
  /usr/bin/python3 - run/checkpoints/ckpt_00000006.h5 <<'PY' || fail "could not corrupt the checkpoint"
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    off = f["state/weights"].id.get_chunk_info(0).byte_offset
with open(path, "r+b") as f:
    f.seek(off + 100)
    b = f.read(8)
    f.seek(off + 100)
    f.write(bytes(x ^ 0xFF for x in b))
PY
  # and truncate a second copy to make sure a torn file is skipped too
  cp run/checkpoints/ckpt_00000004.h5 run/checkpoints/ckpt_00000005.h5
  truncate -s 3000 run/checkpoints/ckpt_00000005.h5
  run 2 train --resume run --rounds 8
  [ $status -eq 0 ] || { cat err.txt; fail "resume past corrupted checkpoints failed"; }
  grep -q "warning: skipping checkpoint run/checkpoints/ckpt_00000006.h5" err.txt || { cat err.txt; fail "no warning for the corrupted checkpoint"; }
  grep -q "warning: skipping checkpoint run/checkpoints/ckpt_00000005.h5" err.txt || fail "no warning for the truncated checkpoint"
  grep -q "resuming from run/checkpoints/ckpt_00000004.h5" err.txt out.txt || true
  same_weights ref/weights.h5 run/weights.h5
  ;;
algorithm_state)
  # state beyond weights and the server optimizer: Mime Lite's base optimizer
  # state, SCAFFOLD's control variates (per client, held by the owning rank)
  for alg in mime_lite scaffold; do
    a=(--algorithm "$alg" --client-momentum "$([ "$alg" = mime_lite ] && echo 0.8 || echo 0)" --clients-per-round 6)
    expect_ok 2 train --out "ref-$alg" --rounds 9 "${common[@]}" "${a[@]}"
    expect_ok 1 train --out "run-$alg" --rounds 4 "${common[@]}" "${a[@]}"
    expect_ok 3 train --resume "run-$alg" --rounds 9
    same_weights "ref-$alg/weights.h5" "run-$alg/weights.h5"
  done
  h5ls -r run-scaffold/checkpoints/ckpt_00000009.h5 | grep -q "/state/clients/values" || fail "no per-client state saved"
  h5ls -r run-mime_lite/checkpoints/ckpt_00000009.h5 | grep -q "/state/client_work/base_slots" || fail "no base state saved"
  ;;
refused)
  expect_ok 1 train --out run --rounds 4 "${common[@]}"
  expect_error 2 "--client-lr 0.05 -> 0.1" train --resume run --client-lr 0.1 --rounds 6
  # the refusal names every option a resume may change (train.c's resume_safe)
  grep -qF -- "only $resume_safe may change" err.txt || { cat err.txt >&2; fail "the refusal does not list: $resume_safe"; }
  expect_error 2 "--model 'mlp:64,32' -> 'softmax'" train --resume run --model softmax
  expect_error 2 "past --rounds 3" train --resume run --rounds 3
  expect_error 2 "nothing/checkpoints" train --resume nothing
  # safe changes are accepted
  expect_ok 2 train --resume run --rounds 6 --eval-every 3 --threads 1
  expect_ok 2 train --resume run --rounds 7 --assignment shard --cache-mb 8 --preload --eval-clients 5 --keep-checkpoints 2
  ;;
signal)
  start_bg 2 train --out run --rounds 1000000 "${common[@]}" --checkpoint-every 0
  wait_for "run/metrics.csv" 30 || fail "run did not start"
  sleep 1
  ranks=$(pgrep -f "$fedmpi train --out run" | grep -v "^$bg$")
  # SLURM's --signal delivers to the tasks: send SIGTERM to the ranks themselves
  for p in $ranks; do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = fedmpi ] && kill -TERM "$p"; done
  wait "$bg"
  st=$?
  [ $st -eq 75 ] || { cat bg.out bg.err; fail "expected exit status 75 after SIGTERM, got $st"; }
  grep -q "continue with: fedmpi train --resume run" bg.out || fail "no resume hint"
  stopped=$(sed -n 's/^stopped by a signal after round \([0-9]*\);.*/\1/p' bg.out)
  [ -n "$stopped" ] && [ -f "run/checkpoints/ckpt_$(printf %08d "$stopped").h5" ] || fail "no checkpoint at the stop"
  expect_ok 2 train --resume run --rounds $((stopped + 3))
  reference $((stopped + 3))
  same_weights ref/weights.h5 run/weights.h5
  ;;
lock_live)
  # A live run holds its directory: a second run and a resume are refused on
  # every rank, naming the holder's pid, and change nothing in the directory.
  start_bg 3 train --out run --rounds 1000000 "${common[@]}" --checkpoint-every 1
  trap 'kill -CONT $(pgrep -P "$bg") 2>/dev/null; kill_all "$bg"' EXIT
  wait_rounds run 2 60 || { cat bg.err; fail "the run did not start"; }
  declare -A rank_pid=()
  while read -r r p; do rank_pid[$r]=$p; done < <(rank_pids "$bg")
  [ ${#rank_pid[@]} -eq 3 ] || fail "expected 3 ranks under mpiexec (pid $bg), found ${!rank_pid[*]}"
  holder="host $(hostname) pid ${rank_pid[0]}"
  [ "$(cat run/.fedmpi.lock)" = "$holder" ] || fail "lock file holds '$(cat run/.fedmpi.lock)', expected '$holder'"
  # freeze the holder: it keeps its lock but writes nothing while the directory is compared
  kill -STOP "${rank_pid[@]}"
  sleep 0.3
  snapshot run >before.txt
  t0=$SECONDS
  second=(train --out run --model softmax --rounds 3 --quiet)
  expect_error 2 "pid ${rank_pid[0]}" "${second[@]}"
  [ $status -eq 1 ] || fail "a second run exited $status, expected 1"
  grep -qF "in use by another fedmpi run ($holder;" err.txt || { cat err.txt; fail "the refusal does not name '$holder'"; }
  cat err.txt
  # every rank leaves by itself with status 1 (mpiexec told not to abort the others)
  rm -f status.*
  timeout 60 "$mpiexec" -n 2 "${preflags[@]}" --mca orte_abort_on_non_zero_status 0 \
    sh -c '"$0" "$@"; rc=$?; echo $rc >status.$OMPI_COMM_WORLD_RANK; exit $rc' "$fedmpi" "${second[@]}" \
    >out2.txt 2>err2.txt
  [ $? -ne 124 ] || fail "a rank hung after the refusal (timeout)"
  for r in 0 1; do
    [ "$(cat status.$r 2>/dev/null)" = 1 ] || { cat err2.txt; fail "rank $r of the refused run did not exit 1"; }
  done
  expect_error 2 "pid ${rank_pid[0]}" train --resume run --rounds 1000000
  [ $status -eq 1 ] || fail "a resume of the live run exited $status, expected 1"
  [ $((SECONDS - t0)) -lt 30 ] || fail "the refusals took $((SECONDS - t0)) s"
  snapshot run >after.txt
  cmp -s before.txt after.txt || { diff before.txt after.txt | head -20; fail "a refused run changed the directory"; }
  kill -CONT "${rank_pid[@]}"
  kill_all "$bg"
  no_leftovers run
  ;;
lock_kill9)
  # kill -9 of a run leaves its lock file but no lock: --resume goes ahead
  start_bg 2 train --out run --rounds 1000000 "${common[@]}" --checkpoint-every 1
  trap 'kill_all "$bg"' EXIT
  wait_rounds run 2 60 || { cat bg.err; fail "the run did not start"; }
  rank0=$(rank_pids "$bg" | sed -n 's/^0 //p')
  [ "$(cat run/.fedmpi.lock)" = "host $(hostname) pid $rank0" ] || fail "lock file does not name rank 0 (pid $rank0)"
  kill_all "$bg"
  no_leftovers run
  [ -f run/.fedmpi.lock ] || fail "the lock file is gone"
  last=$(newest_round run)
  expect_ok 2 train --resume run --rounds $((last + 2))
  grep -q "^$((last + 2))," run/metrics.csv || fail "the resumed run did not reach round $((last + 2))"
  ;;
lock_unsupported)
  # flock unsupported (Lustre -o noflock: ENOSYS; simulated by the test seam):
  # one warning from rank 0, and the run goes on
  FEDMPI_TEST_FLOCK_ERRNO=38 expect_ok 2 train --out run --rounds 2 "${common[@]}"
  [ "$(grep -c "warning: .*continuing without the output-directory lock" err.txt)" -eq 1 ] ||
    { cat err.txt; fail "expected one warning about the missing lock"; }
  grep -q "does not provide flock" err.txt || fail "the warning does not say why"
  [ -f run/weights.h5 ] || fail "the run did not finish"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
