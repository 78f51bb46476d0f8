#!/usr/bin/env bash
# tests/slurm/slurm_test.sh — jobs/ and srun on a real single-node SLURM
# cluster brought up by scripts/slurm-local (label `slurm`).
#   usage: slurm_test.sh SCENARIO FEDMPI REPO_ROOT
# The cluster's directory and port come from FEDMPI_SLURM_DIR and
# FEDMPI_SLURM_PORT (set per build directory by CMakeLists.txt). Missing SLURM
# binaries are a failure, never a skip: CI installs them (scripts/install-deps).
set -u
scenario=$1 fedmpi=$2 root=$3
slurm_local=$root/scripts/slurm-local
fail() { echo "FAIL [$scenario]: $*" >&2; exit 1; }

for b in sbatch srun sinfo squeue scancel scontrol slurmctld slurmd munged; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
    fail "'$b' not found: install slurmctld slurmd slurm-client munge (bash scripts/install-deps)"
done

case $scenario in
start)
  timeout 60 bash "$slurm_local" start || fail "scripts/slurm-local start failed"
  timeout 10 bash "$slurm_local" status || fail "cluster not up after start"
  echo "PASS [$scenario]"; exit 0 ;;
stop)
  timeout 60 bash "$slurm_local" stop || fail "scripts/slurm-local stop failed"
  for f in slurmctld.pid slurmd.pid munge/munged.pid; do
    [ ! -e "$FEDMPI_SLURM_DIR/$f" ] || fail "$f left behind"
  done
  timeout 10 bash "$slurm_local" status >/dev/null && fail "status still reports the cluster up"
  echo "PASS [$scenario]"; exit 0 ;;
esac

# every other scenario runs in its own CTest work directory on the running cluster
case $PWD in */work/*) rm -rf ./* ;; *) fail "refusing to clean $PWD: not a test work directory" ;; esac
eval "$(bash "$slurm_local" env)"
timeout 10 sinfo -h -o %T | grep -qE '^(idle|mixed|allocated|completing)' ||
  fail "the test cluster is not up (sinfo: $(timeout 10 sinfo 2>&1 | tr '\n' ' ')); the slurm.start fixture should have started it"
# The jobs must work from a plain user environment: drop what CTest sets for mpirun.
unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_rmaps_base_oversubscribe OMP_NUM_THREADS

jobid="" sbatch_pid=""
cleanup() {
  [ -n "$jobid" ] && scancel "$jobid" 2>/dev/null
  [ -n "$sbatch_pid" ] && kill "$sbatch_pid" 2>/dev/null
}
trap cleanup EXIT
# submit EXPECTED_STATUS SBATCH_ARGS...: sbatch --wait, failing fast when the
# job cannot start (pending > 30 s, e.g. more CPUs than the node has) and
# after 180 s in all; sets jobid while the job is known
submit() {
  local expect=$1 status state="" start=$SECONDS pending_since=""
  shift
  rm -f sbatch.txt job.out
  sbatch --parsable --wait --time=00:05:00 --output=job.out "$@" >sbatch.txt 2>sbatch.err &
  sbatch_pid=$!
  while kill -0 "$sbatch_pid" 2>/dev/null; do
    [ -z "$jobid" ] && jobid=$(head -n1 sbatch.txt 2>/dev/null | cut -d';' -f1)
    if [ -n "$jobid" ]; then
      state=$(squeue -h -j "$jobid" -o "%T %r" 2>/dev/null)
      case $state in
        PENDING*) pending_since=${pending_since:-$SECONDS}
          [ $((SECONDS - pending_since)) -le 30 ] || fail "job $jobid cannot start: $state ($(sinfo -h -o '%T %c CPUs'))" ;;
        *) pending_since="" ;;
      esac
    fi
    [ $((SECONDS - start)) -le 180 ] || { cat job.out >&2; fail "job $jobid did not end within 180 s (state: $state)"; }
    sleep 0.2
  done
  wait "$sbatch_pid"
  status=$?
  sbatch_pid=""
  jobid=$(head -n1 sbatch.txt | cut -d';' -f1)
  [ -n "$jobid" ] || { cat sbatch.err >&2; fail "sbatch did not submit"; }
  if [ "$status" -ne "$expect" ]; then
    cat sbatch.err job.out >&2
    fail "job $jobid: sbatch --wait returned $status, expected $expect"
  fi
  jobid=""
}
# check_run DIR ROUNDS: metrics files complete and every loss finite
check_run() {
  local d=$1 n=$2
  for f in config.ini metrics.jsonl metrics.csv weights.h5; do [ -s "$d/$f" ] || fail "$d/$f missing"; done
  [ "$(wc -l <"$d/metrics.jsonl")" -eq "$n" ] || fail "$d/metrics.jsonl: expected $n records"
  [ "$(wc -l <"$d/metrics.csv")" -eq $((n + 1)) ] || fail "$d/metrics.csv: expected header + $n rows"
  python3 - "$d/metrics.jsonl" <<'PY' || fail "$d/metrics.jsonl: bad content"
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
def leaves(d, path=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from leaves(v, path + k + "/")
        else:
            yield path + k, v
for r in recs:
    loss = r["client_work"]["train"]["loss"]
    assert isinstance(loss, float) and math.isfinite(loss), ("train loss", r["round"], loss)
    # every loss in the record (train and evaluation, whatever their nesting) is finite
    for k, v in leaves(r):
        if k.endswith("loss"):
            assert isinstance(v, (int, float)) and math.isfinite(v), (r["round"], k, v)
    assert r["training_time_in_seconds"] > 0
print(len(recs), "records, final train loss", recs[-1]["client_work"]["train"]["loss"])
PY
}
train_job=$root/jobs/train.sbatch
scaling_job=$root/jobs/scaling-study.sbatch
export FEDMPI_BIN=$fedmpi FEDMPI_OUT=$PWD/out

case $scenario in
train_srun)
  # the job as a user submits it: 2 tasks x 1 CPU, srun --mpi=pmix
  submit 0 "$train_job" --rounds 4 --eval-every 2
  grep -q "via srun" job.out || fail "job did not launch with srun"
  grep -q "fedmpi exited with status 0" job.out || fail "no exit line in job.out"
  [ "$(grep -c '^round ' job.out)" -eq 4 ] || { cat job.out; fail "expected 4 progress lines"; }
  grep -q "2 rank(s) x 1 thread(s)" job.out || fail "fedmpi did not run 2 ranks x 1 thread"
  check_run out/train-* 4
  ;;
train_mpirun)
  # mpirun inside the allocation; as root the job itself must allow it
  FEDMPI_LAUNCHER=mpirun FEDMPI_RUN=mpirun submit 0 "$train_job" --rounds 4
  grep -q "via mpirun" job.out || fail "job did not launch with mpirun"
  grep -q "2 rank(s) x 1 thread(s)" job.out || fail "fedmpi did not run 2 ranks x 1 thread"
  check_run out/mpirun 4
  ;;
train_threads)
  # --cpus-per-task becomes the OpenMP threads per rank
  FEDMPI_ARGS="--rounds 3 --epochs 2" submit 0 --ntasks=1 --cpus-per-task=2 "$train_job"
  grep -q "1 rank(s) x 2 thread(s)" job.out || { cat job.out; fail "fedmpi did not run 1 rank x 2 threads"; }
  check_run out/train-* 3
  ;;
train_failure)
  # the job's exit status is fedmpi's: 2 for a bad option, through sbatch --wait
  submit 2 "$train_job" --rounds 0
  grep -q "error: .*rounds must be >= 1" job.out || { cat job.out; fail "no error message in job.out"; }
  grep -q "fedmpi exited with status 2" job.out || fail "job did not report status 2"
  ;;
scaling_study)
  FEDMPI_ARGS="--rounds 3 --clients-per-round 10 --epochs 2 --model mlp:16 --checkpoint-every 0 --quiet" \
    FEDMPI_SYNTH_ARGS="--clients 20" FEDMPI_RUN=study submit 0 "$scaling_job"
  csv=out/study/scaling.csv
  [ -s "$csv" ] || fail "$csv missing"
  cat "$csv"
  python3 - "$csv" <<'PY' || fail "$csv: bad content"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
got = sorted((int(r["ranks"]), int(r["threads"])) for r in rows)
# 2 tasks x 1 CPU each: every layout with ranks <= 2 and ranks*threads <= 2
assert got == [(1, 1), (1, 2), (2, 1)], got
for r in rows:
    assert r["status"] == "0", r
    assert int(r["rounds"]) == 3, r
    for k in ("first_round_seconds", "seconds_per_round", "wall_seconds"):
        v = float(r[k])
        assert math.isfinite(v) and v > 0, (k, r)
print("scaling.csv:", len(rows), "rows")
PY
  grep -q "skip 2 rank(s) x 2 thread(s)" job.out || fail "the 2x2 layout should have been skipped"
  # same data and seed at every layout: the weights are bit for bit the same
  for d in out/study/r1_t2_1 out/study/r2_t1_1; do
    h5diff -q out/study/r1_t1_1/weights.h5 "$d/weights.h5" >/dev/null || fail "$d/weights.h5 differs from r1_t1_1"
  done
  ;;
srun_direct)
  # fedmpi straight under srun, no batch script; -n 4 on fewer CPUs needs --overcommit
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  timeout 120 srun --mpi=pmix -n 2 --time=00:05:00 "$fedmpi" train --out a --rounds 4 --eval-every 1 >a.txt 2>&1 ||
    { cat a.txt; fail "srun -n 2 failed"; }
  grep -q "2 rank(s)" a.txt || fail "srun -n 2 did not give 2 ranks"
  check_run a 4
  timeout 120 srun --mpi=pmix -n 4 -O --time=00:05:00 "$fedmpi" train --out b --rounds 4 --eval-every 1 >b.txt 2>&1 ||
    { cat b.txt; fail "srun -n 4 -O failed"; }
  grep -q "4 rank(s)" b.txt || fail "srun -n 4 -O did not give 4 ranks"
  check_run b 4
  h5diff -q a/weights.h5 b/weights.h5 >/dev/null || fail "2 and 4 ranks gave different weights"
  ;;
srun_kill_rank)
  # a rank killed with SIGKILL under srun: srun (PMIx) cancels the step promptly,
  # reports the task, exits non-zero and leaves no fedmpi process behind
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  tag=$PWD/run
  srun --mpi=pmix -n 3 -O --time=00:05:00 "$fedmpi" train --out "$tag" --rounds 1000000 --model mlp:32 --epochs 2 \
    --checkpoint-every 0 >out.txt 2>err.txt &
  srun_pid=$!
  mine() { # pid=SLURM_PROCID of this run's fedmpi processes
    local p
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$(cat "/proc/$p/comm" 2>/dev/null)" = fedmpi ] || continue
      tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$tag" || continue
      echo "$p=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^SLURM_PROCID=//p')"
    done
  }
  trap 'kill $srun_pid 2>/dev/null' EXIT
  for _ in $(seq 1 300); do grep -q '^round ' out.txt && break; kill -0 $srun_pid 2>/dev/null || break; sleep 0.1; done
  grep -q '^round ' out.txt || { cat out.txt err.txt; fail "no progress line within 30 s"; }
  victim=$(mine | sed -n 's/=2$//p')
  [ -n "$victim" ] || { mine; fail "rank 2 not found"; }
  t0=$SECONDS
  kill -9 "$victim"
  for _ in $(seq 1 600); do kill -0 $srun_pid 2>/dev/null || break; sleep 0.1; done
  kill -0 $srun_pid 2>/dev/null && { cat err.txt; fail "srun still running 60 s after rank 2 was killed"; }
  wait $srun_pid
  status=$?
  echo "srun exited with status $status after $((SECONDS - t0)) s"
  cat err.txt
  [ $status -ne 0 ] || fail "srun exited 0 although rank 2 was killed"
  grep -q "task 2: Killed" err.txt || fail "srun does not name task 2"
  sleep 1
  left=$(mine)
  [ -z "$left" ] || fail "fedmpi processes left behind: $left"
  [ -z "$(squeue -h -o %i)" ] || { squeue; fail "jobs left in the queue"; }
  ;;
long_run)
  # jobs/long-run.sbatch: SIGTERM to the tasks (what --signal=TERM@N does
  # before the time limit) -> fedmpi checkpoints and exits 75 -> the job
  # requeues itself -> the next attempt resumes; the finished run must equal
  # an uninterrupted one bit for bit.
  opts=(--rounds 1500 --model mlp:32 --clients-per-round 5 --checkpoint-every 0 --quiet --seed 4)
  timeout 120 mpirun --allow-run-as-root --bind-to none -n 2 "$fedmpi" train --out ref "${opts[@]}" >ref.txt 2>&1 ||
    { cat ref.txt; fail "reference run failed"; }
  export FEDMPI_RUN=long
  jobid=$(sbatch --parsable --output=job.out "$root/jobs/long-run.sbatch" "${opts[@]}") || fail "sbatch failed"
  for ((i = 0; i < 600; i++)); do
    [ -f out/long/metrics.csv ] && [ "$(wc -l <out/long/metrics.csv)" -gt 20 ] && break
    sleep 0.1
  done
  [ -f out/long/metrics.csv ] || { cat job.out; fail "the job did not start training"; }
  scancel --signal=TERM "$jobid" || fail "scancel --signal=TERM failed"
  # requeued jobs wait for a BeginTime a few minutes ahead: release it now
  for ((i = 0; i < 300; i++)); do
    grep -q "requeued job $jobid" job.out 2>/dev/null && break
    sleep 0.2
  done
  grep -q "fedmpi exited with status 75" job.out || { cat job.out; fail "fedmpi did not exit 75 after SIGTERM"; }
  grep -q "requeued job $jobid" job.out || { cat job.out; fail "the job did not requeue itself"; }
  scontrol update JobId="$jobid" StartTime=now 2>/dev/null
  for ((i = 0; i < 900; i++)); do
    [ -z "$(squeue -h -j "$jobid" 2>/dev/null)" ] && break
    sleep 0.2
  done
  [ -z "$(squeue -h -j "$jobid" 2>/dev/null)" ] || { squeue; cat job.out; fail "the requeued job did not finish"; }
  jobid=""
  grep -q "attempt 2: resuming" job.out || { cat job.out; fail "the second attempt did not resume"; }
  grep -q "fedmpi exited with status 0" job.out || { cat job.out; fail "the resumed run did not finish"; }
  h5diff -q ref/weights.h5 out/long/weights.h5 >/dev/null || fail "requeued run differs from the uninterrupted one"
  echo "interrupted at round $(sed -n 's/^stopped by a signal after round \([0-9]*\);.*/\1/p' job.out), requeued, resumed: identical"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
