#!/usr/bin/env bash
# tests/cli/cli_test.sh — end-to-end tests of the fedmpi command, run through
# mpiexec like a user would.
#   usage: cli_test.sh SCENARIO FEDMPI MPIEXEC [MPIEXEC PREFLAGS...]
# Each scenario runs in the current (per-test) directory and exits non-zero
# with a message on the first failed expectation.
set -u
# shellcheck disable=SC2034 # used by common.sh
scenario=$1 fedmpi=$2 mpiexec=$3
shift 3
preflags=("$@")
# shellcheck source=../common.sh
source "$(dirname "$0")/../common.sh"

case $scenario in
blas_kernel)
  # A weaker kernel than the CPU supports is corrected before OpenBLAS and MPI
  # start (the test seam makes fedmpi see Prescott as OpenBLAS's own choice);
  # a user's OPENBLAS_CORETYPE is respected, with one warning.
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  better=0
  case " $flags " in *" ssse3 "*) better=1 ;; esac
  A=(train --rounds 2 --model mlp:16 --clients-per-round 4)
  unset OPENBLAS_CORETYPE
  FEDMPI_TEST_BLAS_AUTO=Prescott expect_ok 2 "${A[@]}" --out seam
  line=$(grep '^BLAS kernel ' out.txt) || fail "no BLAS line in the run header"
  if [ $better = 1 ]; then
    echo "$line" | grep -q "corrected: OpenBLAS chose Prescott" || fail "not corrected: $line"
    kernel=$(echo "$line" | awk '{print $3}')
    [ "$kernel" != Prescott ] || fail "still Prescott after the correction: $line"
    ! grep -q "warning: BLAS" err.txt || fail "a corrected kernel warned: $(cat err.txt)"
  else
    echo "$line" | grep -q "OpenBLAS chose Prescott" || fail "unexpected: $line"
  fi
  # the user's choice stands, with one warning (rank 0 only) saying what to set
  OPENBLAS_CORETYPE=Prescott expect_ok 2 "${A[@]}" --out user
  grep -q '^BLAS kernel Prescott (OPENBLAS_CORETYPE' out.txt || fail "user's kernel not respected: $(grep BLAS out.txt)"
  if [ $better = 1 ]; then
    [ "$(grep -c 'warning: BLAS: OPENBLAS_CORETYPE=Prescott' err.txt)" -eq 1 ] || fail "expected one warning: $(cat err.txt)"
    grep -q "unset OPENBLAS_CORETYPE or set it to" err.txt || fail "the warning does not say what to set"
  fi
  # correction off: the weaker kernel stays, and the warning says what to set
  FEDMPI_BLAS_CORRECT=0 FEDMPI_TEST_BLAS_AUTO=Prescott expect_ok 1 "${A[@]}" --out off
  if [ $better = 1 ]; then
    grep -q "warning: BLAS: OpenBLAS chose Prescott .*set OPENBLAS_CORETYPE=" err.txt || fail "no warning: $(cat err.txt)"
  fi
  # without the seam, whatever OpenBLAS chose is named
  expect_ok 1 "${A[@]}" --out plain --checkpoint-every 1
  grep -q '^BLAS kernel [A-Za-z0-9_]* (' out.txt || fail "no BLAS line: $(cat out.txt)"
  # checkpoints record the kernel; a resume under another one says so once
  h5dump -a /blas_kernel plain/checkpoints/ckpt_00000002.h5 >/dev/null || fail "no blas_kernel in the checkpoint"
  expect_ok 1 train --resume plain --rounds 3 --quiet
  ! grep -q "written with the BLAS kernel" err.txt || fail "same kernel warned: $(cat err.txt)"
  if [ $better = 1 ]; then
    OPENBLAS_CORETYPE=Prescott expect_ok 2 train --resume plain --rounds 4 --quiet
    [ "$(grep -c 'written with the BLAS kernel' err.txt)" -eq 1 ] || fail "expected one kernel warning: $(cat err.txt)"
  fi
  ;;
conv_backend)
  # conv2d runs through oneDNN when the build has it, and the run header says
  # so; the results are the same bits on 2 ranks and on 1 rank x 2 threads
  # (each oneDNN call is single-threaded); FEDMPI_CONV=im2col switches to
  # im2col + sgemm, named in the header, and trains as well.
  M='stack:reshape(6,10,1),conv2d(4,3),relu,maxpool,conv2d(6,3,valid),relu,flatten,dense'
  A=(train --rounds 3 --model "$M" --clients-per-round 6 --seed 5)
  expect_ok 2 "${A[@]}" --out r2
  line=$(grep '^convolutions ' out.txt) || fail "no convolutions line in the run header: $(cat out.txt)"
  if [ "${FM_TEST_HAVE_DNNL:-OFF}" = ON ]; then
    echo "$line" | grep -q '^convolutions oneDNN [0-9.]*, .* JIT kernels' || fail "not oneDNN: $line"
  else
    echo "$line" | grep -q 'built without oneDNN' || fail "unexpected: $line"
  fi
  expect_ok 1 "${A[@]}" --threads 2 --out r1
  same_weights r1/weights.h5 r2/weights.h5
  same_metrics r1/metrics.csv r2/metrics.csv
  FEDMPI_CONV=im2col expect_ok 2 "${A[@]}" --out i2
  grep -q '^convolutions im2col + sgemm (FEDMPI_CONV=im2col)' out.txt || fail "FEDMPI_CONV ignored: $(grep conv out.txt)"
  [ "$(json_rounds i2/metrics.jsonl)" -eq "$(json_rounds r2/metrics.jsonl)" ] || fail "im2col run incomplete"
  ;;
default_threads)
  # --threads 0 (the default): each rank takes its share of the CPUs it may
  # run on, so ranks x threads fill the node without oversubscribing it.
  unset OMP_NUM_THREADS
  cpus=$(nproc)
  A=(train --rounds 1 --model softmax --clients-per-round 4)
  expect_ok 1 "${A[@]}" --out one
  grep -q "1 rank(s) x $cpus thread(s)" out.txt || fail "1 rank on $cpus CPUs: $(grep 'rank(s)' out.txt)"
  expect_ok 2 "${A[@]}" --out two
  want=$((cpus / 2)); [ $want -ge 1 ] || want=1
  grep -q "2 rank(s) x $want thread(s)" out.txt || fail "2 ranks on $cpus CPUs: $(grep 'rank(s)' out.txt)"
  ! grep -q "warning: a node runs" err.txt || fail "the default oversubscribed: $(cat err.txt)"
  # OMP_NUM_THREADS, when set, is the user's choice
  OMP_NUM_THREADS=1 expect_ok 1 "${A[@]}" --out env
  grep -q "1 rank(s) x 1 thread(s)" out.txt || fail "OMP_NUM_THREADS=1 not respected"
  # asking for more than the node has: one warning, on rank 0
  expect_ok 2 "${A[@]}" --out over --threads $((cpus + 1))
  [ "$(grep -c 'warning: a node runs' err.txt)" -eq 1 ] || fail "expected one oversubscription warning: $(cat err.txt)"
  ;;
train_np2)
  expect_ok 2 train --out out --rounds 8 --epochs 3 --eval-every 1
  for f in config.ini metrics.jsonl metrics.csv weights.h5 synthetic_train.h5 synthetic_test.h5; do
    [ -s out/$f ] || fail "out/$f missing"
  done
  [ "$(grep -c '^round ' out.txt)" -eq 8 ] || fail "expected 8 progress lines"
  [ "$(json_rounds out/metrics.jsonl)" -eq 8 ] || fail "expected 8 metrics records"
  [ "$(wc -l <out/metrics.csv)" -eq 9 ] || fail "expected header + 8 CSV rows"
  python3 - out/metrics.jsonl <<'PY' || fail "metrics content"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for r in recs:
    t = r["client_work"]["train"]
    assert set(t) >= {"loss", "accuracy", "num_examples", "num_batches"}, t
    assert r["finalizer"]["update_non_finite"] == 0
    assert "distributor" in r and "aggregator" in r
    assert isinstance(t["num_examples"], int)
ev = [r["evaluation"]["client_work"]["eval"] for r in recs]
first, last = ev[0]["current_round_metrics"]["loss"], ev[-1]["current_round_metrics"]["loss"]
assert last < first, (first, last)
print("evaluation loss", first, "->", last)
# total_rounds_metrics sums every evaluation so far (SumThenFinalizeFactory)
n1 = ev[0]["current_round_metrics"]["num_examples"]
assert ev[-1]["total_rounds_metrics"]["num_examples"] == len(ev) * n1, ev[-1]
assert ev[0]["total_rounds_metrics"] == ev[0]["current_round_metrics"]
for r in recs:
    assert set(r["evaluation"]) >= {"distributor", "client_work", "aggregator", "finalizer"}, r["evaluation"]
PY
  grep -q "final test accuracy" out.txt || fail "no final accuracy line"
  ;;
layouts)
  expect_ok 1 train --out a --rounds 4 --model mlp:20 --epochs 2 --quiet
  expect_ok 3 train --out b --rounds 4 --model mlp:20 --epochs 2 --quiet
  run 2 train --out c --rounds 4 --model mlp:20 --epochs 2 --threads 2 --quiet
  [ $status -eq 0 ] || fail "2 ranks x 2 threads failed"
  same_weights a/weights.h5 b/weights.h5
  same_weights a/weights.h5 c/weights.h5
  cmp -s <(cut -d, -f1-6 a/metrics.csv) <(cut -d, -f1-6 c/metrics.csv) || fail "metrics differ across layouts"
  # the assignment (default auto = balanced) moves clients between ranks, never the result
  expect_ok 3 train --out d --rounds 4 --model mlp:20 --epochs 2 --quiet --assignment shard
  same_weights a/weights.h5 d/weights.h5
  same_metrics a/metrics.csv d/metrics.csv
  grep -q "time/idle_fraction" d/metrics.csv || fail "no timing split in metrics.csv"
  # nor does serving clients from a preloaded cache (borrowed, not copied)
  expect_ok 2 train --out e --rounds 4 --model mlp:20 --epochs 2 --threads 2 --cache-mb 64 --preload
  grep -q "^preloaded 30 clients" out.txt || fail "no preload line: $(cat out.txt)"
  same_weights a/weights.h5 e/weights.h5
  same_metrics a/metrics.csv e/metrics.csv
  expect_ok 2 train --out f --rounds 4 --model mlp:20 --epochs 2 --cache-mb 1 --preload
  grep -q "holds [0-9]* of 30 clients" err.txt || fail "no warning for a cache too small to preload"
  same_weights a/weights.h5 f/weights.h5
  ;;
algorithms)
  # every algorithm: loss stays finite, and the result is the same on any layout
  for alg in fedavg fedprox fedsgd mime_lite scaffold fednova; do
    extra=()
    case $alg in
      fedprox) extra=(--proximal-strength 0.1) ;;
      fedsgd) extra=(--server-lr 0.5) ;;
      mime_lite) extra=(--client-momentum 0.5) ;;
      fednova) extra=(--client-momentum 0.3) ;;
    esac
    args=(train --algorithm "$alg" --rounds 4 --model mlp:12 --clients-per-round 7 --epochs 2 --quiet "${extra[@]}")
    expect_ok 1 "${args[@]}" --out "$alg-1"
    expect_ok 3 "${args[@]}" --out "$alg-3"
    expect_ok 2 "${args[@]}" --out "$alg-2t2" --threads 2
    same_weights "$alg-1/weights.h5" "$alg-3/weights.h5"
    same_weights "$alg-1/weights.h5" "$alg-2t2/weights.h5"
    python3 -c '
import json, math, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert r["finalizer"]["update_non_finite"] == 0, r
    assert math.isfinite(r["client_work"]["train"]["loss"]), r' "$alg-1/metrics.jsonl" || fail "$alg: non-finite round"
    grep -q "^algorithm = $alg$" "$alg-1/config.ini" || fail "$alg: config.ini"
  done
  # per-round learning-rate schedules (client and server), identical on any layout
  sched=(train --rounds 4 --model mlp:12 --quiet --client-lr-schedule step:gamma=0.5,every=1
         --server-lr-schedule cosine:rounds=4,alpha=0.1)
  expect_ok 1 "${sched[@]}" --out sched-1
  expect_ok 3 "${sched[@]}" --out sched-3
  same_weights sched-1/weights.h5 sched-3/weights.h5
  expect_ok 1 train --rounds 4 --model mlp:12 --quiet --out const-1
  if h5diff -q sched-1/weights.h5 const-1/weights.h5 >/dev/null; then fail "the schedules changed nothing"; fi
  grep -q "^client-lr-schedule = step:gamma=0.5,every=1$" sched-1/config.ini || fail "schedule not in config.ini"
  expect_error 2 "unknown type 'bogus'" train --client-lr-schedule bogus:1 --out o
  # TFF's max_elements and a tf.data shuffle buffer
  expect_ok 2 train --rounds 2 --quiet --max-examples-per-client 7 --shuffle-buffer 3 --cache-mb 8 --out cap
  [ "$(cut -d, -f4 cap/metrics.csv | tail -1)" = 70 ] || { cat cap/metrics.csv; fail "the cap did not hold"; }
  expect_error 2 "proximal-strength must be >= 0" train --algorithm fedprox --proximal-strength -1 --out o
  expect_error 2 "--proximal-strength is for --algorithm fedprox" train --proximal-strength 0.5 --out o
  expect_error 2 "fedavg|fedprox|fedsgd|mime_lite|scaffold|fednova" train --algorithm fedbogus --out o
  expect_error 2 "unknown optimizer type 'adamx'" train --server-optimizer adamx --out o
  expect_error 2 "'beta_1' is not KEY=VALUE" train --server-opt beta_1 --out o
  expect_error 2 "sgdm has no hyperparameter 'beta_1'" train --server-opt beta_1=0.9 --out o
  expect_error 2 "scaffold needs an SGD client optimizer" train --algorithm scaffold --client-optimizer adagrad --out o
  expect_error 2 "--preload needs the client cache" train --preload --out o
  ;;
metrics)
  # user-visible extra metrics through mpirun, identical on any layout
  args=(train --rounds 3 --metrics top_k:3,recall --eval-every 1 --quiet)
  expect_ok 1 "${args[@]}" --out m1
  expect_ok 3 "${args[@]}" --out m3
  same_metrics m1/metrics.csv m3/metrics.csv
  python3 - m1/metrics.jsonl <<'PY' || fail "metric values"
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    for t in (r["client_work"]["train"], r["evaluation"]["client_work"]["eval"]["current_round_metrics"]):
        assert t["top_3_accuracy"] >= t["accuracy"], t
        assert len(t["recall"]) == 10 and all(0 <= v <= 1 for v in t["recall"].values()), t
PY
  expect_error 2 "unknown metric 'f1'" train --metrics f1 --out o
  expect_error 2 "top_k:11 needs 1 <= k <= 10" train --metrics top_k:11 --out o
  ;;
memory)
  # peak resident memory must not grow with the number of rounds (streaming
  # client data, per-round buffers freed): round 60 vs round 600
  expect_ok 2 train --rounds 600 --clients-per-round 10 --model mlp:32 --quiet --checkpoint-every 100 --out mem
  python3 - mem/metrics.csv <<'PY' || fail "peak RSS grew with rounds"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
early, late = float(rows[59]["resources/peak_rss_mb"]), float(rows[-1]["resources/peak_rss_mb"])
print("peak RSS (max over ranks): round 60 %.1f MB, round %d %.1f MB" % (early, len(rows), late))
assert late - early < 2.0, (early, late)
PY
  ;;
config_roundtrip)
  expect_ok 1 train --out a --rounds 3 --model mlp:8 --client-lr 0.1 --momentum 0.5 --seed 7 --quiet
  grep -q "^momentum = 0.5" a/config.ini || fail "config.ini lacks momentum"
  expect_ok 2 train --config a/config.ini --out b
  same_weights a/weights.h5 b/weights.h5
  printf '[train]\nrounds = 5\nclient_lr = 0.2\n' >c.ini
  expect_ok 1 train --config c.ini --rounds 2 --out c --quiet
  [ "$(json_rounds c/metrics.jsonl)" -eq 2 ] || fail "flag did not override the config file"
  grep -q "^client-lr = 0.2$" c/config.ini || fail "config value not applied"
  ;;
init_weights)
  expect_ok 1 train --out a --rounds 3 --model mlp:8 --quiet
  # lr 0: the model cannot move, so the loaded weights come back out unchanged
  expect_ok 2 train --out b --rounds 1 --model mlp:8 --client-lr 0 --init-weights a/weights.h5 \
    --data a/synthetic_train.h5 --test-data a/synthetic_test.h5 --quiet
  same_weights a/weights.h5 b/weights.h5
  expect_error 2 "dense_0/kernel" train --out c --rounds 1 --model mlp:9 --init-weights a/weights.h5 \
    --data a/synthetic_train.h5
  expect_ok 2 eval --weights a/weights.h5 --data a/synthetic_test.h5 --model mlp:8
  grep -q "^accuracy " out.txt || fail "eval printed no accuracy"
  ;;
aggregators)
  # every aggregator factory alone and composed, through mpiexec -n 2, with
  # its measurements under aggregator/ by TFF's names
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 30 --seed 3
  check_columns() { # DIR COLUMN...: metrics.csv has each column, with a value in round 3
    local dir=$1 col; shift
    for col in "$@"; do
      /usr/bin/python3 - "$dir/metrics.csv" "$col" <<'PY' || fail "$dir: no value for $col"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3 and rows[2].get(sys.argv[2], "") != "", (sys.argv[2], rows[2].keys())
PY
    done
  }
  u=(--weighting uniform --rounds 3 --clients-per-round 10 --data d.h5)
  expect_ok 2 train --out o1 "${u[@]}" --aggregator "clipping(mean, clipping_norm=0.2)"
  check_columns o1 aggregator/clipping_norm aggregator/clipped_count
  expect_ok 2 train --out o2 "${u[@]}" --aggregator "robust_aggregator()"
  check_columns o2 aggregator/zeroing_norm aggregator/zeroed_count aggregator/zeroing/clipping_norm \
    aggregator/zeroing/clipped_count
  # the adaptive norms move: round 1 uses TFF's initial 2 * 10 + 1 and 1.0, later rounds other values
  /usr/bin/python3 - o2/metrics.csv <<'PY' || fail "robust_aggregator's norms did not adapt"
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))
assert float(r[0]["aggregator/zeroing_norm"]) == 21.0 and float(r[0]["aggregator/zeroing/clipping_norm"]) == 1.0
assert float(r[2]["aggregator/zeroing_norm"]) != 21.0 and float(r[2]["aggregator/zeroing/clipping_norm"]) != 1.0
PY
  expect_ok 2 train --out o3 "${u[@]}" --aggregator "dp_aggregator(noise_multiplier=0.5, clients_per_round=10)"
  check_columns o3 aggregator/zeroing/dp_query_metrics/clip aggregator/zeroing/dp_query_metrics/noise_stddev
  expect_ok 2 train --out o4 "${u[@]}" --aggregator "gaussian_fixed(noise_multiplier=1, clients_per_round=10, clip=0.5)"
  check_columns o4 aggregator/dp_query_metrics/clip
  expect_ok 2 train --out o5 "${u[@]}" \
    --aggregator "zeroing(clipping(unweighted_mean, clipping_norm=no_noise(initial_estimate=1, target_quantile=0.5, learning_rate=0.2)), zeroing_norm=5, norm_order=1)"
  check_columns o5 aggregator/zeroing_norm aggregator/zeroing/clipping_norm
  # DP-FTRL's tree aggregation, fixed and adaptive, alone and inside zeroing
  expect_ok 2 train --out o9 "${u[@]}" \
    --aggregator "tree_aggregation(noise_multiplier=1, clients_per_round=10, l2_norm_clip=0.5, use_efficient=false)"
  check_columns o9 aggregator/dp_query_metrics/tree_agg_dpftrl_clip aggregator/dp_query_metrics/noise_stddev privacy/epsilon
  expect_ok 2 train --out o10 "${u[@]}" \
    --aggregator "zeroing(tree_adaptive(noise_multiplier=0.3, clients_per_round=10, restart_warmup=1, restart_frequency=2), zeroing_norm=50)"
  check_columns o10 aggregator/zeroing_norm aggregator/zeroing/dp_query_metrics/current_clip \
    aggregator/zeroing/dp_query_metrics/estimate_clip
  # secure summation: TFF's secure_aggregator() and a masked secure_mean
  expect_ok 2 train --out o7 "${u[@]}" --aggregator "secure_aggregator()"
  check_columns o7 aggregator/zeroing/clipping/mean_value/secure_upper_threshold \
    aggregator/zeroing/clipping/mean_value/secure_upper_clipped_count \
    aggregator/zeroing/clipping/mean_weight/secure_upper_clipped_count
  expect_ok 2 train --out o8 "${u[@]}" --aggregator "secure_mean(upper_bound_threshold=1, masks=true)"
  check_columns o8 aggregator/mean_value/secure_lower_threshold aggregator/mean_value/secure_lower_clipped_count \
    aggregator/mean_value/secagg_bits_per_client aggregator/mean_weight/secure_upper_threshold
  # the metrics through secure_sum_then_finalize: TFF's measurements per
  # (range, dtype) group, the training itself unchanged, the metrics equal to
  # the plain sum's to the quantisation step
  expect_ok 2 train --out o11 "${u[@]}" --aggregator "secure_aggregator()" --metrics-aggregator "secure_sum_then_finalize"
  check_columns o11 client_work/train/secure_sum_measurements/0.0/1048575.0/float32/secure_upper_clipped_count \
    client_work/train/secure_sum_measurements/0/1048575/int64/secure_lower_threshold
  same_weights o7/weights.h5 o11/weights.h5
  /usr/bin/python3 - o7/metrics.csv o11/metrics.csv <<'PY' || fail "secure_sum_then_finalize's metrics differ from the plain sum"
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:])
for ra, rb in zip(a, b):
    assert ra["client_work/train/num_examples"] == rb["client_work/train/num_examples"]
    n = float(ra["client_work/train/num_examples"])
    for k in ("client_work/train/loss", "client_work/train/accuracy"):
        assert abs(float(ra[k]) - float(rb[k])) <= 10 * 2.5e-4 / n + 1e-6, (k, ra[k], rb[k])
PY
  # a range that clips: the loss's [total, count] of every client clipped to 5
  expect_ok 2 train --out o12 "${u[@]}" --metrics-aggregator "secure_sum_then_finalize(loss=range(lower=0, upper=5))"
  /usr/bin/python3 - o12/metrics.csv <<'PY' || fail "the loss range did not clip"
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))[0]
assert int(r["client_work/train/secure_sum_measurements/0.0/5.0/float32/secure_upper_clipped_count"]) == 10, r
PY
  printf '[train]\ndata = d.h5\nweighting = uniform\nrounds = 2\nmetrics_aggregator = secure_sum_then_finalize(upper=1e6)\nout = o13\n' >sm.ini
  expect_ok 2 train --config sm.ini
  check_columns_n() { /usr/bin/python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); assert r[-1][sys.argv[2]] != ""' "$1" "$2" || fail "$1: no $2"; }
  check_columns_n o13/metrics.csv client_work/train/secure_sum_measurements/0.0/1000000.0/float32/secure_upper_threshold
  grep -q "^metrics-aggregator = secure_sum_then_finalize(upper=1e6)$" o13/config.ini || fail "config.ini lacks the metrics aggregator"
  badm() {
    expect_error 2 "$1" train --out bad "${u[@]}" --metrics-aggregator "$2"
    [ ! -e bad ] || fail "output written for --metrics-aggregator $2"
  }
  badm "the range of metric 'loss' must be finite numbers with lower < upper" "secure_sum_then_finalize(loss=range(lower=3, upper=1))"
  badm "no metric 'lss'" "secure_sum_then_finalize(lss=range(lower=0, upper=1))"
  badm "not wide enough to quantize any integers" "secure_sum_then_finalize(lower=0.1, upper=0.9)"
  badm "unknown 'secure_sum'" "secure_sum"
  # the config file takes the same text, and the run it records resumes with it
  printf '[train]\ndata = d.h5\nweighting = uniform\nrounds = 3\naggregator = robust_aggregator(zeroing=false)\nout = o6\n' >agg.ini
  expect_ok 2 train --config agg.ini
  check_columns o6 aggregator/clipping_norm
  grep -q "^aggregator = robust_aggregator(zeroing=false)$" o6/config.ini || fail "config.ini lacks the aggregator"
  expect_ok 2 train --resume o6 --rounds 4
  # bad input: one message naming the problem, non-zero exit, nothing written
  bad() {
    expect_error 2 "$1" train --out bad "${u[@]}" --aggregator "$2"
    [ ! -e bad ] || fail "output written for --aggregator $2"
  }
  bad "clipping_norm must be a finite number > 0, got -1" "clipping(mean, clipping_norm=-1)"
  bad "noise_multiplier must be a finite number >= 0" "gaussian_fixed(noise_multiplier=-2, clients_per_round=10, clip=1)"
  bad "target_quantile must be in [0, 1]" "clipping(mean, clipping_norm=no_noise(initial_estimate=1, target_quantile=1.2, learning_rate=0.2))"
  bad "clients_per_round is 20 but the round has 10 clients" "gaussian_fixed(noise_multiplier=1, clients_per_round=20, clip=1)"
  bad "must be < 2 * clipped_count_stddev" "dp_aggregator(noise_multiplier=1, clients_per_round=10)"
  bad "tree_adaptive: noise_multiplier 1 must be < 2 * clipped_count_stddev" "tree_adaptive(noise_multiplier=1, clients_per_round=10)"
  bad "restart_warmup must be between 1 and restart_frequency - 1" \
    "tree_adaptive(noise_multiplier=0.1, clients_per_round=10, restart_warmup=4, restart_frequency=4)"
  bad "l2_norm_clip must be a finite number > 0" "tree_aggregation(noise_multiplier=1, clients_per_round=10, l2_norm_clip=-1)"
  bad "clients_per_round is 20 but the round has 10 clients" "tree_aggregation(noise_multiplier=1, clients_per_round=20, l2_norm_clip=1)"
  bad "unknown aggregator 'medain'" "medain"
  bad "expected ',' or ')'" "clipping(mean, clipping_norm=1"
  expect_error 2 "is unweighted" train --out bad --data d.h5 --aggregator "dp_aggregator(noise_multiplier=0.1, clients_per_round=10)"
  ;;
privacy_accounting)
  # epsilon in every round's metrics, against an independent computation
  # (tests/data/rdp_reference.py: numpy quadrature and exact binomials), and
  # the clean stop at --dp-target-epsilon
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 100 --seed 3
  dp=(--data d.h5 --weighting uniform --aggregator "dp_aggregator(noise_multiplier=0.9, clients_per_round=10)")
  expect_ok 2 train --out p1 --rounds 5 "${dp[@]}"
  grep -q "epsilon 3.598" out.txt || { cat out.txt; fail "the progress line does not show epsilon"; }
  ref="$(dirname "$0")/../data/rdp_reference.py"
  /usr/bin/python3 - p1/metrics.csv "$ref" <<'PY' || fail "privacy/epsilon differs from the independent computation"
import csv, subprocess, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 5
for r in rows:
    t = int(r["round"])
    assert float(r["privacy/delta"]) == 1e-5  # min(1e-5, 1/100)
    want = float(subprocess.check_output(["/usr/bin/python3", sys.argv[2], "epsilon", "0.1", "0.9", str(t), "1e-5"]).split()[0])
    got = float(r["privacy/epsilon"])
    assert abs(got - want) <= 1e-6 * want, (t, got, want)
PY
  # the target allows 3 of 5 rounds: training stops after round 3, checkpointed, status 0
  expect_ok 2 train --out p2 --rounds 5 "${dp[@]}" --dp-target-epsilon 3.3
  grep -q "allows 3 of the 5 rounds" out.txt || { cat out.txt; fail "no notice of the stop at the target"; }
  [ "$(tail -n +2 p2/metrics.csv | wc -l)" -eq 3 ] || fail "expected 3 rounds under the target"
  ls p2/checkpoints/ckpt_00000003.h5 >/dev/null || fail "no checkpoint at the last round within the target"
  expect_ok 2 train --out p3 --rounds 5 "${dp[@]}" --dp-delta 1e-6 --dp-q 0.05
  /usr/bin/python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); assert float(r[0]["privacy/delta"])==1e-6' p3/metrics.csv ||
    fail "--dp-delta not in the metrics"
  # bad values: one message naming the option, non-zero exit, nothing written
  expect_error 2 "--dp-target-epsilon 1 is already exceeded by round 1" train --out bad --rounds 5 "${dp[@]}" --dp-target-epsilon 1
  expect_error 2 "need a DP aggregator" train --out bad --rounds 5 --data d.h5 --dp-target-epsilon 5
  expect_error 2 "dp-delta" train --out bad --rounds 5 "${dp[@]}" --dp-delta 2
  expect_error 2 "dp-delta" train --out bad --rounds 5 "${dp[@]}" --dp-delta nan
  [ ! -e bad ] || fail "output written for a refused privacy option"
  # DP-FTRL: tree aggregation's epsilon (no sampling) against the reference's
  # call-by-call simulation of the trees, for both participation assumptions
  tr=(--data d.h5 --weighting uniform --rounds 6 --aggregator
      "tree_adaptive(noise_multiplier=0.4, clients_per_round=10, restart_warmup=2, restart_frequency=3)")
  expect_ok 2 train --out p4 "${tr[@]}"
  expect_ok 2 train --out p5 "${tr[@]}" --dp-tree-participation once-per-tree
  for pair in "p4 every-round" "p5 once-per-tree"; do
    set -- $pair
    /usr/bin/python3 - "$1/metrics.csv" "$ref" "$2" <<'PY' || fail "$2: tree epsilon differs from the reference"
import csv, subprocess, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6
for r in rows:
    t = int(r["round"])
    out = subprocess.check_output(["/usr/bin/python3", sys.argv[2], "tree", "0.4", str(t), "2", "3", sys.argv[3], "1e-5"])
    want, order = float(out.split()[0]), float(out.split()[1])
    got = float(r["privacy/epsilon"])
    assert abs(got - want) <= 1e-7 * want and float(r["privacy/order"]) == order, (t, got, want)  # the CSV keeps 9 digits
PY
  done
  expect_error 2 "takes no amplification by sampling" train --out bad "${tr[@]}" --dp-q 0.1
  expect_error 2 "dp-tree-participation is for tree_aggregation" train --out bad --rounds 5 "${dp[@]}" \
    --dp-tree-participation once-per-tree
  expect_error 2 "need a DP aggregator" train --out bad --rounds 5 --data d.h5 --dp-tree-participation once-per-tree
  [ ! -e bad ] || fail "output written for a refused tree privacy option"
  ;;
bad_input)
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 12 --seed 3
  expect_error 2 "unknown model type 'foo'" train --data d.h5 --model foo --out o
  expect_error 2 "client-lr must be >= 0" train --data d.h5 --client-lr -1 --out o
  expect_error 2 "invalid value 'abc' for --client-lr" train --data d.h5 --client-lr abc --out o
  expect_error 2 "more than the 12 clients" train --data d.h5 --clients-per-round 13 --out o
  expect_error 2 "nope.h5" train --data nope.h5 --out o
  echo "this is not HDF5" >bad.h5
  expect_error 2 "bad.h5" train --data bad.h5 --out o
  head -c 2000 d.h5 >trunc.h5
  expect_error 2 "trunc.h5" train --data trunc.h5 --out o
  expect_error 2 "unknown option '--frobnicate'" train --data d.h5 --frobnicate --out o
  expect_error 2 "needs a value" train --data d.h5 --out o --rounds
  expect_error 2 "rounds must be >= 1" train --data d.h5 --rounds 0 --out o
  expect_error 2 "momentum must be in" train --data d.h5 --momentum 2 --out o
  expect_error 2 "num_examples|uniform" train --data d.h5 --weighting median --out o
  printf '[train]\ncolour = red\n' >bad.ini
  expect_error 2 "unknown option 'colour'" train --config bad.ini --data d.h5
  expect_error 2 "cannot open config file" train --config missing.ini
  touch afile
  expect_error 2 "cannot create output directory" train --data d.h5 --out afile/sub
  expect_error 2 "unknown command" frobnicate
  expect_error 2 "outside [0, 3)" train --data d.h5 --num-classes 3 --out o
  expect_error 2 "nope.h5" eval --weights nope.h5 --data d.h5
  ;;
model_stack)
  # a model written as a layer stack (docs/models.md), in the config file and on the command line
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 12 --seed 3
  D=(--data d.h5 --test-data t.h5 --rounds 4 --clients-per-round 6 --quiet)
  expect_ok 1 train "${D[@]}" --model mlp:16 --out named
  printf '[train]\nmodel = stack: flatten, dense(16), relu, dense  ; mlp:16, layer by layer\n' >stack.ini
  expect_ok 1 train --config stack.ini "${D[@]}" --out cfg
  grep -q "^model = stack: flatten, dense(16), relu, dense$" cfg/config.ini || fail "config.ini lacks the stack"
  expect_ok 2 train --config stack.ini "${D[@]}" --out np2
  python3 -c '
import json, sys
losses = [json.loads(l)["client_work"]["train"]["loss"] for l in open(sys.argv[1])]
assert len(losses) == 4 and losses[-1] < losses[0], losses' cfg/metrics.jsonl || fail "the stack did not learn"
  # the stack is mlp:16: the same weights and metrics, at 1 and 2 ranks
  h5diff -q named/weights.h5 cfg/weights.h5 /weights /weights >/dev/null || fail "stack and mlp:16 weights differ"
  h5diff -q named/weights.h5 np2/weights.h5 /weights /weights >/dev/null || fail "stack at 2 ranks differs"
  same_metrics named/metrics.csv cfg/metrics.csv
  same_metrics named/metrics.csv np2/metrics.csv
  expect_ok 1 train --config cfg/config.ini --out again
  same_weights cfg/weights.h5 again/weights.h5
  # convolutions on the flat synthetic features through a reshape, 1 and 2 ranks alike
  conv='stack:reshape(6,10),conv2d(4,3),relu,maxpool,flatten,dense(8),relu,dense'
  expect_ok 1 train "${D[@]}" --model "$conv" --out conv1
  expect_ok 2 train "${D[@]}" --model "$conv" --out conv2 --threads 1
  same_weights conv1/weights.h5 conv2/weights.h5
  # 'valid' convolutions and dropout: the masks follow (seed, round, client,
  # step), so 1 rank and 2 ranks x 2 threads agree, and the loss still falls
  drop='stack:reshape(6,10),conv2d(4,3,valid),relu,dropout(0.25),flatten,dense(8),tanh,dropout(0.5),dense'
  expect_ok 1 train "${D[@]}" --model "$drop" --out drop1 --threads 1
  expect_ok 2 train "${D[@]}" --model "$drop" --out drop2 --threads 2
  same_weights drop1/weights.h5 drop2/weights.h5
  same_metrics drop1/metrics.csv drop2/metrics.csv
  python3 -c '
import json, sys
losses = [json.loads(l)["client_work"]["train"]["loss"] for l in open(sys.argv[1])]
assert losses[-1] < losses[0], losses' drop1/metrics.jsonl || fail "the dropout stack did not learn"
  # bad stacks: one message naming the problem, exit 2, nothing written (--out included)
  bad() {
    local needle=$1 spec=$2; shift 2
    rm -rf bad
    expect_error 2 "$needle" train "$@" --model "$spec" --out bad
    [ $status -eq 2 ] || fail "exit $status, expected 2, for --model $spec"
    [ ! -e bad ] || fail "--model $spec left bad/ behind"
  }
  bad "empty layer at character 15" 'stack:flatten,dense,' --data d.h5
  bad "never closed" 'stack:flatten,dense(4' --data d.h5
  bad "unbalanced ')'" 'stack:flatten,dense(4))' --data d.h5
  bad "bad units '0'" 'stack:flatten,dense(0),dense' --data d.h5
  bad "bad units '-2'" 'stack:flatten,dense(-2),dense' --data d.h5
  bad "layer 2: unknown layer 'gru'" 'stack:flatten,gru(8),dense' --data d.h5
  bad "layer 1 'conv2d(4,3)': needs an image input" 'stack:conv2d(4,3),relu,flatten,dense' --data d.h5
  bad "10 classes" 'stack:flatten,dense(7)' --data d.h5
  bad "bad rate '1.5'" 'stack:flatten,dropout(1.5),dense' --data d.h5
  bad "bad padding 'full'" 'stack:reshape(6,10),conv2d(4,3,full),flatten,dense' --data d.h5
  bad "layer 1 'conv2d(4,3)'" 'stack:conv2d(4,3),relu,flatten,dense' # generated data: no --data
  bad "unknown model type 'foo'" foo
  printf '[train]\nmodel = stack:flatten,dense(8),,dense\n' >bad.ini
  rm -rf bad
  expect_error 1 "empty layer at character 18" train --config bad.ini --data d.h5 --out bad
  [ ! -e bad ] || fail "a bad model in a config file left bad/ behind"
  ;;
privacy_epsilon)
  # TF Privacy's MNIST DP-SGD tutorial: z = 1.1, q = 256/60000, 60 epochs =
  # 14062 steps, delta = 1e-5 gives epsilon 3.01 with the classic conversion.
  A=(privacy --q 0.004266666666666667 --noise-multiplier 1.1 --rounds 14062 --delta 1e-5)
  expect_ok 1 "${A[@]}"
  grep -q '^epsilon 3\.0[01][0-9]* at order [0-9.]* with the classic RDP conversion$' out.txt ||
    fail "classic anchor not ~3.01: $(cat out.txt)"
  line=$(grep '^epsilon .*RDP accountant, Poisson subsampling)$' out.txt) || fail "no epsilon line: $(cat out.txt)"
  eps=$(echo "$line" | awk '{print $2}')
  awk -v e="$eps" 'BEGIN { exit !(e > 2 && e < 3.01) }' || fail "improved epsilon $eps not below the classic one"
  expect_ok 2 "${A[@]}" --json
  [ "$(wc -l <out.txt)" -eq 1 ] || fail "--json under 2 ranks printed $(wc -l <out.txt) lines"
  /usr/bin/python3 -c 'import json, sys
d = json.load(open("out.txt"))
assert d["accountant"] == "rdp" and d["sampling"] == "poisson", d
assert 2.95 < d["epsilon_classic"] < 3.05 and 0 < d["epsilon"] < d["epsilon_classic"], d
assert d["rounds"] == 14062 and d["noise_multiplier"] == 1.1 and d["delta"] == 1e-5, d' || fail "bad JSON: $(cat out.txt)"
  # --clients-per-round/--population: q = K/N and delta defaults to min(1e-5, 1/N), as train's
  expect_ok 1 privacy --clients-per-round 50 --population 5000 --noise-multiplier 1 --rounds 500 --json
  /usr/bin/python3 -c 'import json
d = json.load(open("out.txt"))
assert d["q"] == 0.01 and d["delta"] == 1e-5 and d["epsilon"] > 0, d' || fail "K/N: $(cat out.txt)"
  expect_ok 1 privacy --clients-per-round 5 --population 50 --noise-multiplier 1 --rounds 5 --json
  /usr/bin/python3 -c 'import json
d = json.load(open("out.txt"))
assert d["delta"] == 1e-5, d' || fail "small N: $(cat out.txt)"
  ;;
privacy_target)
  # the printed noise multiplier, fed back, reaches the target epsilon
  A=(privacy --clients-per-round 100 --population 10000 --rounds 2000 --delta 1e-6)
  expect_ok 1 "${A[@]}" --target-epsilon 2.5
  z=$(awk '/^noise-multiplier/ {print $2}' out.txt)
  [ -n "$z" ] || fail "no noise multiplier printed: $(cat out.txt)"
  expect_ok 1 "${A[@]}" --noise-multiplier "$z" --json
  /usr/bin/python3 -c 'import json
d = json.load(open("out.txt"))
assert d["epsilon"] <= 2.5, d' || fail "z=$z does not reach 2.5: $(cat out.txt)"
  lower=$(awk -v z="$z" 'BEGIN { printf "%.6g", z * 0.995 }')
  expect_ok 1 "${A[@]}" --noise-multiplier "$lower" --json
  /usr/bin/python3 -c 'import json
d = json.load(open("out.txt"))
assert d["epsilon"] > 2.5, d' || fail "z=$lower (0.995 z) also reaches 2.5: not the smallest"
  ;;
privacy_tree)
  # fedmpi privacy --tree against the reference's call-by-call tree simulation,
  # and the printed noise multiplier for a target fed back
  ref="$(dirname "$0")/../data/rdp_reference.py"
  for args in "1.0 100 0 0 every-round" "20 50 3 8 once-per-tree" "300 40 4 16 every-round"; do
    set -- $args
    expect_ok 1 privacy --tree --noise-multiplier "$1" --rounds "$2" --restart-warmup "$3" --restart-frequency "$4" \
      --participation "$5" --delta 1e-5 --json
    /usr/bin/python3 - out.txt "$ref" $args <<'PY' || fail "fedmpi privacy --tree $args differs from the reference"
import json, subprocess, sys
d = json.load(open(sys.argv[1]))
out = subprocess.check_output(["/usr/bin/python3", sys.argv[2], "tree"] + sys.argv[3:] + ["1e-5"]).split()
assert d["accountant"] == "rdp_tree" and abs(d["epsilon"] - float(out[0])) <= 1e-9 * float(out[0]), (d, out)
assert d["order"] == float(out[1]), (d, out)
PY
  done
  A=(privacy --tree --rounds 200 --restart-warmup 8 --restart-frequency 64 --participation once-per-tree --population 5000)
  expect_ok 1 "${A[@]}" --target-epsilon 3
  z=$(awk '/^noise-multiplier/ {print $2}' out.txt)
  [ -n "$z" ] || fail "no noise multiplier printed: $(cat out.txt)"
  expect_ok 1 "${A[@]}" --noise-multiplier "$z" --json
  /usr/bin/python3 -c 'import json, sys
d = json.load(open("out.txt"))
assert d["epsilon"] <= 3 and d["delta"] == 1e-5, d' || fail "z=$z does not reach 3: $(cat out.txt)"
  check() { expect_error 1 "$1" "${@:2}"; [ "$status" -eq 2 ] || fail "exit $status (want 2) for: ${*:2}"; }
  check "no amplification by sampling" privacy --tree --q 0.1 --rounds 5 --noise-multiplier 1 --delta 1e-5
  check "--restart-warmup must be between 1 and --restart-frequency - 1" privacy --tree --rounds 5 \
    --noise-multiplier 1 --delta 1e-5 --restart-warmup 4 --restart-frequency 4
  check "need --tree" privacy --q 0.1 --rounds 5 --noise-multiplier 1 --delta 1e-5 --restart-frequency 8
  check "--tree needs --delta" privacy --tree --rounds 5 --noise-multiplier 1
  ;;
privacy_bad_input)
  # every bad value: exit status 2 and one message naming the option
  Q=(--q 0.01 --rounds 10 --delta 1e-5)
  check() { expect_error 1 "$1" "${@:2}"; [ "$status" -eq 2 ] || fail "exit $status (want 2) for: ${*:2}"; }
  check "--q" privacy --q 1.5 --noise-multiplier 1 --rounds 10 --delta 1e-5
  check "--q" privacy --q -0.1 --noise-multiplier 1 --rounds 10 --delta 1e-5
  check "--q" privacy --q abc --noise-multiplier 1 --rounds 10 --delta 1e-5
  check "--noise-multiplier" privacy "${Q[@]}" --noise-multiplier -1
  check "--noise-multiplier" privacy "${Q[@]}" --noise-multiplier inf
  check "--delta" privacy --q 0.01 --rounds 10 --noise-multiplier 1 --delta 0
  check "--delta" privacy --q 0.01 --rounds 10 --noise-multiplier 1 --delta 1
  check "--delta" privacy --q 0.01 --rounds 10 --noise-multiplier 1
  check "--rounds" privacy --q 0.01 --delta 1e-5 --noise-multiplier 1
  check "--rounds" privacy --q 0.01 --delta 1e-5 --noise-multiplier 1 --rounds -3
  check "--target-epsilon" privacy "${Q[@]}" --target-epsilon 0
  check "--target-epsilon" privacy "${Q[@]}" --target-epsilon -2
  check "--target-epsilon" privacy "${Q[@]}" --target-epsilon nan
  check "--noise-multiplier and --target-epsilon" privacy "${Q[@]}" --noise-multiplier 1 --target-epsilon 1
  check "--population" privacy --clients-per-round 10 --population 5 --rounds 10 --noise-multiplier 1
  check "--population" privacy --clients-per-round 10 --rounds 10 --noise-multiplier 1
  check "--q and --clients-per-round" privacy --q 0.1 --clients-per-round 10 --population 100 --rounds 10 --noise-multiplier 1
  check "--q, or --clients-per-round" privacy --rounds 10 --noise-multiplier 1 --delta 1e-5
  check "unknown option '--epsilon'" privacy "${Q[@]}" --epsilon 3
  ;;
help)
  expect_ok 1 train --help
  for o in --data --test-data --model --rounds --clients-per-round --epochs --batch-size --client-lr --server-lr \
    --momentum --weighting --seed --out --init-weights --config --threads; do
    grep -q -- "$o" out.txt || fail "train --help lacks $o"
  done
  # --resume names every option a resume may change (train.c's resume_safe)
  grep -qF -- "(flags may change only rounds, assignment, cache-mb, preload, eval-every, eval-batch-size, eval-clients, \
test-data, threads, quiet, checkpoint-every, keep-checkpoints, out)" out.txt || fail "train --help: --resume's list"
  expect_ok 1 --help
  grep -q "train" out.txt || fail "fedmpi --help lacks train"
  grep -q "privacy" out.txt || fail "fedmpi --help lacks privacy"
  expect_ok 1 version
  grep -q "^fedmpi [0-9]" out.txt || fail "version"
  for c in eval "data synth" "data info" privacy; do
    # shellcheck disable=SC2086
    expect_ok 1 $c --help
    grep -q "usage:" out.txt || fail "$c --help"
  done
  ;;
data_commands)
  expect_ok 1 data synth --out-train s.h5 --out-test s_test.h5 --clients 7 --alpha 0.5 --beta 0.5 --seed 2
  expect_ok 1 data info s.h5
  grep -q "^clients     7$" out.txt || { cat out.txt; fail "data info clients"; }
  grep -q "^classes     10$" out.txt || fail "data info classes"
  h5dump -H s.h5 | grep -q '"examples"' || fail "no /examples group"
  expect_ok 2 data synth --out-train s2.h5 --out-test "" --clients 7 --alpha 0.5 --beta 0.5 --seed 2
  expect_ok 1 data info s2.h5
  grep -q "^clients     7$" out.txt || fail "data info clients (2)"
  ;;
bench)
  # fedmpi bench end to end on 2 ranks: every configuration measured, the CSV
  # complete and sane, the tables printed; then bad options
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 12 --features 16 --seed 3
  expect_ok 2 bench --data d.h5 --test-data t.h5 --models softmax,mlp:8,4 --cohorts 2,4 --warmup 1 --rounds 2 \
    --sgemm-trials 1 --sgemm-seconds 0.01 --step-seconds 0.05 --csv b.csv
  for s in "SGEMM, single-threaded" "training step alone" "Throughput" "Time split"; do
    grep -q "$s" out.txt || { cat out.txt; fail "no '$s' table"; }
  done
  python3 - b.csv <<'PY' || fail "bench CSV"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [(r["model"], r["clients"]) for r in rows] == [
    ("softmax", "2"), ("softmax", "4"), ("mlp:8,4", "2"), ("mlp:8,4", "4")], [(r["model"], r["clients"]) for r in rows]
for r in rows:
    assert r["status"] == "ok" and r["ranks"] == "2" and r["rounds"] == "2", r
    for k in ("sec_per_round", "examples_per_sec", "gflops_round", "sgemm_1024_1core", "rss_max_mb", "client_map"):
        v = float(r[k]); assert math.isfinite(v) and v > 0, (k, v)
    assert 0 <= float(r["idle_fraction"]) < 1, r["idle_fraction"]
    assert float(r["sec_min"]) <= float(r["sec_per_round"]) <= float(r["sec_max"]), r
    assert 0 < float(r["eval_accuracy"]) <= 1 and float(r["eval_examples"]) > 0, r
    # training FLOPs per example from the layout: softmax 2*16*C, the MLP 3x forward minus the first layer
    assert float(r["flops_train_per_example"]) > float(r["flops_forward_per_example"]) > 0, r
assert float(rows[0]["step_ms"]) > 0 and float(rows[2]["step_ms"]) > 0
print("bench CSV:", len(rows), "rows")
PY
  # a layer stack among the models: ';' separates them, the stack keeps its commas, and a conv stack is counted
  expect_ok 1 bench --data d.h5 --models 'mlp:8,4;stack:reshape(4,4),conv2d(2,3),relu,maxpool,flatten,dense' \
    --cohorts 2 --warmup 0 --rounds 1 --no-sgemm --no-eval --step-seconds 0 --csv s.csv
  python3 - s.csv <<'PY' || fail "bench CSV with a stack"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["model"] for r in rows] == ["mlp:8,4", "stack:reshape(4,4),conv2d(2,3),relu,maxpool,flatten,dense"], rows
assert all(r["status"] == "ok" and float(r["flops_train_per_example"]) > 0 for r in rows), rows
PY
  expect_error 2 "nosuch" bench --data d.h5 --models softmax,nosuch --cohorts 2 --no-sgemm --step-seconds 0
  expect_error 2 "--cohorts" bench --data d.h5 --cohorts 2,0 --no-sgemm --step-seconds 0
  expect_error 2 "nothing was measured" bench --data d.h5 --models softmax --cohorts 40 --no-sgemm --step-seconds 0
  grep -q "more clients than the 12 in the data" out.txt || fail "the skipped row does not say why"
  [ $status -eq 1 ] || fail "exit $status when nothing was measured, expected 1"
  ;;
idle_fraction)
  # scripts/idle-fraction: both policies run, train the same model, and the CSV holds their idle fractions
  root=$(cd "$(dirname "$0")/../.." && pwd)
  bash "$root/scripts/idle-fraction" --bin "$fedmpi" --mpirun "$mpiexec" \
    --clients 60 --clients-per-round 8 --rounds 4 --repeats 1 --out if >out.txt 2>err.txt ||
    { cat out.txt err.txt; fail "idle-fraction failed"; }
  python3 - if/idle-fraction.csv <<'PY' || { cat out.txt; fail "idle-fraction CSV"; }
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
pol = sorted(r["policy"] for r in rows)
assert pol == ["balanced", "shard"], pol
for r in rows:
    vals = [float(v) for k, v in r.items() if k not in ("policy", "repeat")]
    assert all(v >= 0 for v in vals), r
print(rows)
PY
  grep -q "balanced vs shard" out.txt || fail "no summary line"
  ;;
compare_pytorch)
  # scripts/compare_pytorch.py compare on a tiny workload, when PyTorch is installed (scripts/compare-pytorch
  # installs it; the default suite does not): every run finishes and the table has both frameworks
  /usr/bin/python3 -c "import torch, h5py" 2>/dev/null || { echo "SKIP: python3-torch is not installed"; exit 77; }
  root=$(cd "$(dirname "$0")/../.." && pwd)
  expect_ok 1 data synth --out-train d.h5 --out-test t.h5 --clients 12 --features 784 --seed 3
  /usr/bin/python3 "$root/scripts/compare_pytorch.py" compare --fedmpi "$fedmpi" --mpirun "$mpiexec" --data d.h5 \
    --test-data t.h5 --work-dir cmp --models softmax --rounds softmax=2 --clients-per-round 4 --csv c.csv \
    >out.txt 2>err.txt || { cat out.txt err.txt; fail "compare failed"; }
  grep -q "^softmax" out.txt || { cat out.txt; fail "no softmax row"; }
  python3 -c '
import csv, sys
rows = list(csv.DictReader(open("c.csv")))
assert rows, "empty csv"
print(rows[0])' || fail "compare CSV"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
