#!/usr/bin/env bash
# tests/data_cli/data_cli_test.sh — end-to-end tests of `fedmpi data
# import-idx | fashion-mnist | info` and of real-data bad input, through
# mpiexec like a user would run them.
#   usage: data_cli_test.sh SCENARIO FEDMPI MPIEXEC [MPIEXEC PREFLAGS...]
# Each scenario runs in the current (per-test) directory and exits non-zero
# with a message on the first failed expectation. Scenarios that need h5py
# (TFF-shaped fixtures) or the dataset-fashion-mnist package say so and pass
# when those are missing.
set -u
# shellcheck disable=SC2034 # used by common.sh
scenario=$1 fedmpi=$2 mpiexec=$3
shift 3
preflags=("$@")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
FMNIST=/usr/share/datasets/fashion-mnist

# write_idx PREFIX N ROWS COLS LABELS_N CLASSES [gz]: PREFIX-images / PREFIX-labels
# (pixel (i, r, c) = (37 i + 5 r + 3 c) % 256, label i % CLASSES), gzipped with "gz"
write_idx() {
  python3 - "$@" <<'PY' || fail "cannot write IDX files"
import gzip, struct, sys
prefix, n, rows, cols, nl, classes = sys.argv[1], *map(int, sys.argv[2:7])
gz = len(sys.argv) > 7 and sys.argv[7] == "gz"
op = (lambda p: gzip.open(p + ".gz", "wb")) if gz else (lambda p: open(p, "wb"))
with op(prefix + "-images") as f:
    f.write(struct.pack(">IIII", 0x803, n, rows, cols))
    f.write(bytes((37 * i + 5 * r + 3 * c) % 256 for i in range(n) for r in range(rows) for c in range(cols)))
with op(prefix + "-labels") as f:
    f.write(struct.pack(">II", 0x801, nl))
    f.write(bytes(i % classes for i in range(nl)))
PY
}


# info_has FILE LINE_REGEX: `data info FILE` prints a line matching LINE_REGEX
info_has() {
  expect_ok 1 data info "$1"
  grep -Eq -- "$2" out.txt || { cat out.txt >&2; fail "data info $1: no line matching '$2'"; }
}

attr() { h5dump -a "/$2" "$1" 2>/dev/null | grep -A1 'DATA {' | tail -1 | sed 's/^ *(0): *//; s/"//g'; }

case $scenario in
import_idx)
  write_idx a 600 4 5 600 10 gz
  expect_ok 1 data import-idx --images a-images.gz --labels a-labels.gz --out iid.h5 --clients 12 --seed 3
  grep -q "^wrote iid.h5 (12 clients, partition iid)" out.txt || fail "import-idx output"
  info_has iid.h5 "^clients     12$"
  info_has iid.h5 "^examples    600$"
  info_has iid.h5 "^classes     10$"
  info_has iid.h5 "^  pixels +float32 +\(4, 5\)$"
  info_has iid.h5 "^  label +int32 +\(\)$"
  info_has iid.h5 "^client size min 50  p10 50  p50 50  p90 50  max 50"
  h5dump -H iid.h5 | grep -q 'GROUP "f_00011"' || fail "client ids f_00000 .. f_00011"
  [ "$(attr iid.h5 partition)" = iid ] || fail "partition attribute"
  [ "$(attr iid.h5 source_images)" = a-images.gz ] || fail "source_images attribute"
  # same options, same bytes; also from 2 ranks
  expect_ok 2 data import-idx --images a-images.gz --labels a-labels.gz --out iid2.h5 --clients 12 --seed 3
  cmp -s iid.h5 iid2.h5 || fail "import-idx is not reproducible"
  # every partitioner; skew shows in data info
  expect_ok 1 data import-idx --images a-images.gz --labels a-labels.gz --out dir.h5 --clients 12 \
    --partition dirichlet --alpha 0.1 --seed 1
  info_has dir.h5 "^client size min 50 .* max 50 "
  info_has dir.h5 "^label skew  majority-class fraction 0\.[5-9]"
  [ "$(attr dir.h5 alpha)" = 0.1 ] || fail "alpha attribute: $(attr dir.h5 alpha)"
  expect_ok 1 data import-idx --images a-images.gz --labels a-labels.gz --out het.h5 --clients 12 \
    --partition hetero-dir --alpha 0.05 --min-size 30 --max-attempts 3 --seed 1
  grep -q "attempts, [0-9]* examples moved to reach min-size 30" out.txt || { cat out.txt; fail "hetero-dir report"; }
  info_has het.h5 "^client size min (3[0-9]|[4-9][0-9])"
  [ "$(attr het.h5 min_size)" = 30 ] || fail "min_size attribute"
  expect_ok 1 data import-idx --images a-images.gz --labels a-labels.gz --out sh.h5 --clients 20 \
    --partition shards --classes-per-client 2
  info_has sh.h5 "^labels per client min [12]  .* max 2 "
  [ "$(attr sh.h5 classes_per_client)" = 2 ] || fail "classes_per_client attribute"
  expect_ok 1 data import-idx --images a-images.gz --labels a-labels.gz --out q.h5 --clients 12 \
    --partition quantity --sigma 1.5 --min-size 5
  info_has q.h5 "^client size min ([5-9]|[1-4][0-9]) "
  # preprocessing: raw, inverted, flattened; plain (not gzipped) files
  write_idx b 30 2 3 30 3
  expect_ok 1 data import-idx --images b-images --labels b-labels --out raw.h5 --clients 3 --no-scale --invert --flatten
  info_has raw.h5 "^  pixels +uint8 +\(6\)$"
  [ "$(attr raw.h5 scale)" = none ] || fail "scale attribute"
  [ "$(attr raw.h5 invert)" = 1 ] || fail "invert attribute"
  # and it trains
  expect_ok 2 train --data iid.h5 --rounds 2 --clients-per-round 4 --out run --quiet
  ;;
bad_idx)
  write_idx a 10 2 2 10 3
  write_idx m 10 2 2 9 3
  expect_error 1 "a-labels: wrong magic 0x00000801 (expected 0x00000803" \
    data import-idx --images a-labels --labels a-labels --out o.h5 --clients 2
  head -c 40 a-images >trunc-images
  expect_error 2 "trunc-images: truncated: the header promises 10 x 2 x 2 = 40 bytes of data, the file holds 24" \
    data import-idx --images trunc-images --labels a-labels --out o.h5 --clients 2
  gzip -c a-images | head -c 30 >cut-images.gz
  expect_error 1 "cut-images.gz: " data import-idx --images cut-images.gz --labels a-labels --out o.h5 --clients 2
  expect_error 1 "'m-images' has 10 images but 'm-labels' has 9 labels" \
    data import-idx --images m-images --labels m-labels --out o.h5 --clients 2
  [ ! -e o.h5 ] && [ ! -e o.h5.tmp ] || fail "a failed import left a file behind"
  expect_error 1 "cannot open 'nope.gz'" data import-idx --images nope.gz --labels a-labels --out o.h5
  expect_error 1 "11 clients but only 10 examples" data import-idx --images a-images --labels a-labels --out o.h5 \
    --clients 11
  expect_error 2 "--labels is required" data import-idx --images a-images --out o.h5
  expect_error 2 "--alpha must be > 0 for --partition dirichlet" data import-idx --images a-images --labels a-labels \
    --out o.h5 --partition dirichlet --alpha 0
  expect_error 2 "invalid value 'lda' for --partition" data import-idx --images a-images --labels a-labels \
    --out o.h5 --partition lda
  expect_error 2 "Fashion-MNIST not found: cannot read 'nowhere/train-images-idx3-ubyte.gz'; install" \
    data fashion-mnist --dataset-dir nowhere --out-dir fm
  grep -q "install dataset-fashion-mnist (scripts/install-deps)" err.txt || fail "no install hint"
  expect_ok 1 data import-idx --help
  for o in --images --labels --out --partition --clients --alpha --classes-per-client --sigma --min-size --seed \
    --invert --flatten --no-scale; do
    grep -q -- "$o" out.txt || fail "import-idx --help lacks $o"
  done
  ;;
info)
  py=$(h5py_python)
  [ -n "$py" ] || { echo "note: no python3 with h5py; TFF-shaped fixtures skipped"; echo "PASS [$scenario]"; exit 0; }
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  info_has fx/shakespeare.h5 "^  snippets +string +\(\)$"
  info_has fx/shakespeare.h5 "^clients     5$"
  info_has fx/shakespeare.h5 "^empty       1$"
  info_has fx/shakespeare.h5 "^input       none"
  grep -q "^label skew" out.txt && fail "shakespeare has no labels"
  info_has fx/fed_cifar100.h5 "^  image +uint8 +\(32, 32, 3\)$"
  info_has fx/fed_cifar100.h5 "^  coarse_label +int64 +\(\)$"
  info_has fx/fed_cifar100.h5 "^features of client '0':$"
  info_has fx/fed_cifar100.h5 "^labels per client min 1 "
  info_has fx/fed_emnist_digitsonly.h5 "^  pixels +float32 +\(28, 28\)$"
  info_has fx/fed_emnist_digitsonly.h5 "^classes     10$"
  # TFF's EMNIST structure, written by h5py, trains as it is: the CNN on the
  # (28, 28) pixels and the 2NN on them flattened, no conversion step
  expect_ok 2 train --data fx/fed_emnist_digitsonly.h5 --model cnn:4,8,16 --clients-per-round 2 --rounds 2 \
    --batch-size 5 --quiet --out emnist-cnn
  expect_ok 2 train --data fx/fed_emnist_digitsonly.h5 --test-data fx/fed_emnist_digitsonly.h5 --model 2nn \
    --clients-per-round 2 --rounds 2 --quiet --out emnist-2nn
  [ "$(wc -l <emnist-cnn/metrics.jsonl)" -eq 2 ] || fail "EMNIST CNN run incomplete"
  grep -q "^final test accuracy" out.txt || fail "EMNIST 2NN run printed no test accuracy"
  # TFF's EMNIST baseline with dropout: its parameter count, and its dropout
  # masks the same whichever rank or thread trains a client
  expect_ok 1 train --data fx/fed_emnist_digitsonly.h5 --model emnist_cnn_dropout --clients-per-round 2 --rounds 2 \
    --batch-size 5 --out emnist-drop1
  grep -q "model emnist_cnn_dropout (1199882 parameters)" out.txt || fail "emnist_cnn_dropout: not 1,199,882 parameters"
  expect_ok 2 train --data fx/fed_emnist_digitsonly.h5 --model emnist_cnn_dropout --clients-per-round 2 --rounds 2 \
    --batch-size 5 --quiet --threads 1 --out emnist-drop2
  h5diff -q emnist-drop1/weights.h5 emnist-drop2/weights.h5 >/dev/null || fail "emnist_cnn_dropout differs at 2 ranks"
  # CIFAR-100's uint8 images [N, 32, 32, 3] with int64 labels train too
  expect_ok 1 train --data fx/fed_cifar100.h5 --model cnn:4,8,16 --clients-per-round 1 --rounds 1 --quiet --out cifar
  info_has fx/float_labels.h5 "^label       none \('y' is float32"
  info_has fx/odd_ids.h5 "^clients     17$"
  expect_error 1 "fx/neg_label.h5: client 'c0': feature 'y' has negative label -2 at example 1" data info fx/neg_label.h5
  expect_error 1 "fx/no_examples.h5: no group '/examples'" data info fx/no_examples.h5
  expect_error 1 "fx/feature_rows.h5: client 'c0': feature 'w' has 4 rows but 'y' has 3" data info fx/feature_rows.h5
  expect_error 1 "no feature 'nope'" data info --y-feature nope fx/fed_cifar100.h5
  expect_ok 2 data info --y-feature coarse_label fx/fed_cifar100.h5
  grep -q "^classes     20$" out.txt || fail "coarse labels: 20 classes"
  head -c 3000 fx/emnist.h5 >trunc.h5
  expect_error 1 "trunc.h5" data info trunc.h5
  ;;
tokens)
  # TFF's token rows of the h5py Shakespeare fixture (docs/data.md section 13); the ids
  # themselves are cross-checked against python in text.crosscheck
  py=$(h5py_python)
  [ -n "$py" ] || { echo "note: no python3 with h5py; TFF-shaped fixtures skipped"; echo "PASS [$scenario]"; exit 0; }
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  # 5268 bytes of which 15 are outside CHAR_VOCAB (each byte of a non-ASCII character, and '+', '~' ...)
  info_has fx/shakespeare.h5 "^token rows  70 \(5268 bytes, 0.28% OOV; "
  info_has fx/shakespeare.h5 "^tokens      snippets as TFF's Shakespeare task: 90 ids"
  expect_ok 2 data tokens --client ROMEO_AND_JULIET_ROMEO fx/shakespeare.h5
  grep -q "^# task shakespeare feature snippets entries 86 ids 90 pad 0 oov 87 bos 88 eos 89 seq_len 80$" out.txt ||
    fail "tokens header"
  # 48 and 38 bytes (a row each), then 'x' * 5000: ceil(5002 / 81) = 62 rows
  [ "$(grep -c "^4 " out.txt)" -eq 64 ] || { cat out.txt >&2; fail "ROMEO: expected 64 rows"; }
  grep -q "^4 0: 88 49 69 5 17 14 25 24 43 5 79 " out.txt || fail "ROMEO row 0 is not [BOS] 'But, soft! ...'"
  grep -q "^4 63: 6 6 6 " out.txt || fail "ROMEO's last row"
  expect_error 1 "cannot open vocabulary file 'missing.txt'" data tokens --task stackoverflow --vocab missing.txt \
    fx/shakespeare.h5
  printf 'the 5\nto\n' >bad_counts.txt
  expect_error 1 "bad_counts.txt:2: expected 'word count', found one field" data tokens --task stackoverflow \
    --vocab bad_counts.txt fx/shakespeare.h5
  expect_error 1 "fx/shakespeare.h5: client 'ALLS_WELL_THAT_ENDS_WELL_HELENA': no feature 'tokens'" \
    data tokens --task stackoverflow fx/shakespeare.h5
  expect_error 1 "feature 'label' has int64 dtype, not string" data tokens --feature label fx/fed_cifar100.h5
  expect_error 1 "no client 'NOBODY'" data tokens --client NOBODY fx/shakespeare.h5
  expect_error 1 "--vocab is for --task stackoverflow" data tokens --vocab bad_counts.txt fx/shakespeare.h5
  [ $status -eq 2 ] || fail "--vocab with shakespeare: usage error (2), got $status"
  ;;
nan_train)
  py=$(h5py_python)
  [ -n "$py" ] || { echo "note: no python3 with h5py; skipped"; echo "PASS [$scenario]"; exit 0; }
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  cp fx/nan.h5 nan.h5
  expect_error 2 "nan.h5: client 'c1': feature 'pixels' has a non-finite value at example 3" \
    train --data nan.h5 --clients-per-round 2 --rounds 1 --out o
  expect_error 1 "nan.h5: client 'c1': feature 'pixels' has a non-finite value at example 3" \
    train --data nan.h5 --clients-per-round 2 --rounds 1 --out o
  cp fx/inf64.h5 inf64.h5
  expect_error 2 "inf64.h5: client 'a': feature 'x' has a non-finite value at example 1" \
    train --data inf64.h5 --clients-per-round 1 --rounds 1 --num-classes 2 --out o
  # snippets open as text (80 labels per example), which a one-label model cannot take
  expect_error 2 "shakespeare.h5: text data has 80 labels per example" train --data fx/shakespeare.h5 --out o_text
  [ ! -e o_text ] || fail "a refused text run created its --out"
  ;;
text)
  # text options of train and eval (docs/data.md "Text data"): every refusal before anything is written
  py=$(h5py_python)
  [ -n "$py" ] || { echo "note: no python3 with h5py; skipped"; echo "PASS [$scenario]"; exit 0; }
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  expect_error 2 "cannot open vocabulary file 'missing.txt'" train --data fx/stackoverflow.h5 --vocab missing.txt \
    --out o
  [ ! -e o ] || fail "--vocab missing.txt: --out created"
  : >empty.txt
  expect_error 2 "empty.txt: empty vocabulary file" train --data fx/stackoverflow.h5 --vocab empty.txt --out o
  [ ! -e o ] || fail "--vocab empty.txt: --out created"
  printf '[train]\nvocab = missing.txt\n' >text.ini
  expect_error 2 "cannot open vocabulary file 'missing.txt'" train --config text.ini --data fx/stackoverflow.h5 \
    --out o
  [ ! -e o ] || fail "vocab = missing.txt in a config file: --out created"
  expect_error 2 "cannot open vocabulary file 'missing.txt'" eval --weights none.h5 --data fx/stackoverflow.h5 \
    --vocab missing.txt
  # the tokenizer reaches the data: --seq-len, --vocab, the training file's own words
  expect_error 2 "fx/shakespeare.h5: text data has 10 labels per example (the next token at each step of 'snippets')" \
    train --data fx/shakespeare.h5 --seq-len 10 --out o
  expect_error 2 "fx/stackoverflow.h5: text data has 20 labels per example (the next token at each step of 'tokens')" \
    train --data fx/stackoverflow.h5 --vocab fx/stackoverflow_counts.txt --out o
  expect_error 2 "text data has 5 labels per example" train --data fx/stackoverflow.h5 --vocab-size 3 --seq-len 5 \
    --test-data fx/stackoverflow.h5 --out o
  expect_error 2 "fx/shakespeare.h5 holds text ('snippets' tokenised into rows of 80 ids), which model 'cnn' cannot take" \
    train --data fx/shakespeare.h5 --model cnn --out o
  expect_error 2 "but model 'softmax' is a classifier with one label per example" train --data fx/shakespeare.h5 \
    --model softmax --out o
  expect_error 2 "needs token ids, a flat (T) input per example, but gets (28, 28, 1) (image data?" train \
    --data fx/emnist.h5 --model 'stack:embedding(8,mask_zero),lstm(16,sequences),dense' --out o
  expect_error 2 "has one label per example, but model 'stack:embedding(8,mask_zero),lstm(4,sequences),dense' predicts a label at each of 60 time steps" \
    train --model 'stack:embedding(8,mask_zero),lstm(4,sequences),dense' --out o
  expect_error 2 "shakespeare_lstm: input must be rows of character ids" train --data fx/emnist.h5 \
    --model shakespeare_lstm --out o
  expect_error 2 "text data has 80 labels per example, but model 'stack:dense(8),sigmoid,dense(80),mse' reconstructs" \
    train --data fx/shakespeare.h5 --model 'stack:dense(8),sigmoid,dense(80),mse' --out o
  expect_error 2 "text data has 80 labels per example" eval --weights none.h5 --data fx/shakespeare.h5
  [ ! -e o ] || fail "a refused text run created its --out"
  # a string feature named where numbers are expected: file, client, feature
  expect_error 1 "fx/emnist.h5: client 'f0000_14': no feature 'snippets'" train --data fx/emnist.h5 \
    --x-feature snippets --out o2
  expect_error 1 "fx/string_x.h5: client 'c0': feature 'x' has string dtype" train --data fx/string_x.h5 --out o3
  # data info reads the file as it is
  info_has fx/stackoverflow.h5 "^  tokens +string +\(\)$"
  info_has fx/shakespeare.h5 "^tokens      snippets as TFF's Shakespeare task: 90 ids"
  ;;
text_train)
  # TFF's text and autoencoder baselines train end to end through mpiexec on
  # h5py-written files of TFF's layouts, and report their tasks' metrics
  py=$(h5py_python)
  [ -n "$py" ] || fail "no python3 with h5py and numpy (scripts/install-deps installs python3-h5py)"
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  expect_ok 2 train --data fx/plays_train.h5 --test-data fx/plays_test.h5 --model shakespeare_lstm --rounds 6 \
    --clients-per-round 6 --batch-size 4 --client-lr 1 --eval-every 6 --out shk --seed 3
  grep -q "model shakespeare_lstm (820522 parameters), 12 clients" out.txt || { cat out.txt; fail "shakespeare_lstm header"; }
  "$py" - shk/metrics.csv <<'PY' || fail "shakespeare_lstm: the loss did not fall, or a metric is missing"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
loss = [float(r["client_work/train/loss"]) for r in rows]
print("losses", loss)
assert len(rows) == 6 and loss[-1] < loss[0] - 0.5, loss
assert float(rows[0]["client_work/train/loss"]) > 3.0  # from about ln(90) = 4.5
for r in rows:  # tokens are counted, pads excluded; accuracy over them
    assert int(r["client_work/train/num_tokens"]) > 10 * int(r["client_work/train/num_examples"]), r
    assert 0 <= float(r["client_work/train/accuracy"]) <= 1
ev = rows[-1]
acc = float(ev["evaluation/client_work/eval/current_round_metrics/accuracy"])
assert acc > 0.05, acc  # above chance (about 1/40) after 6 short rounds
assert float(ev["evaluation/client_work/eval/current_round_metrics/loss"]) < loss[0] - 0.5
PY
  # fedmpi eval of the weights gives the run's final evaluation
  expect_ok 2 eval --weights shk/weights.h5 --data fx/plays_test.h5 --model shakespeare_lstm
  want=$("$py" -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1])))[-1]; print("%.6f" % float(r["evaluation/client_work/eval/current_round_metrics/accuracy"]))' shk/metrics.csv)
  grep -q "accuracy $want" out.txt || { cat out.txt; fail "eval accuracy is not the run's final $want"; }
  grep -q "num_tokens " out.txt || fail "eval: no num_tokens"
  # Stack Overflow with TFF's word-count file: 7 words, so 11 ids and 2,122,099 parameters, and its task's metrics
  expect_ok 2 train --data fx/stackoverflow.h5 --vocab fx/stackoverflow_counts.txt --model stackoverflow_nwp \
    --rounds 2 --clients-per-round 2 --out so
  grep -q "model stackoverflow_nwp (2122099 parameters)" out.txt || { cat out.txt; fail "stackoverflow_nwp header"; }
  for m in num_tokens accuracy accuracy_without_out_of_vocab accuracy_without_out_of_vocab_or_end_of_sentence; do
    head -1 so/metrics.csv | tr ',' '\n' | grep -qx "client_work/train/$m" || fail "stackoverflow_nwp: no $m"
  done
  # the EMNIST autoencoder: MSE against the pixels, its labels unread
  expect_ok 2 train --data fx/emnist.h5 --model emnist_autoencoder --rounds 3 --clients-per-round 2 --out ae
  grep -q "model emnist_autoencoder (2837314 parameters)" out.txt || { cat out.txt; fail "emnist_autoencoder header"; }
  "$py" - ae/metrics.csv <<'PY' || fail "emnist_autoencoder metrics"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    mse, mae = float(r["client_work/train/mean_squared_error"]), float(r["client_work/train/mean_absolute_error"])
    loss = float(r["client_work/train/loss"])
    assert 0 < mse and 0 < mae and mae * mae <= mse * (1 + 1e-6), r  # Jensen: mean |e| squared <= mean e^2
    assert abs(mse - loss) <= 1e-6 * loss, r  # the metric is Keras's MSE, the loss is the same mean
    assert "client_work/train/accuracy" not in r
PY
  ;;
text_layouts)
  # shakespeare_lstm and emnist_cnn_dropout: 1-4 ranks x 1-2 threads, both
  # assignments, bit-identical weights and metrics (exact sums; dropout masks
  # keyed by seed, round, client and step)
  py=$(h5py_python)
  [ -n "$py" ] || fail "no python3 with h5py and numpy (scripts/install-deps installs python3-h5py)"
  "$py" "$here/../data/make_h5_fixtures.py" fx >/dev/null || fail "fixture script"
  for model in shakespeare_lstm emnist_cnn_dropout; do
    if [ $model = shakespeare_lstm ]; then
      args=(--data fx/plays_train.h5 --test-data fx/plays_test.h5 --rounds 3 --clients-per-round 5 --batch-size 4)
    else
      args=(--data fx/fed_emnist_digitsonly.h5 --rounds 2 --clients-per-round 3 --batch-size 8)
    fi
    ref=""
    for layout in "1 1" "2 1" "3 1" "4 1" "1 2" "2 2"; do
      read -r np nt <<<"$layout"
      for assign in shard balanced; do
        out=$model-$np-$nt-$assign
        expect_ok "$np" train --model $model "${args[@]}" --threads "$nt" --assignment $assign --seed 5 \
          --eval-every 1 --out "$out" --quiet
        if [ -z "$ref" ]; then
          ref=$out
        else
          same_weights "$ref/weights.h5" "$out/weights.h5"
          same_metrics "$ref/metrics.csv" "$out/metrics.csv"
        fi
      done
    done
  done
  ;;
fashion_mnist)
  if [ ! -r $FMNIST/train-images-idx3-ubyte.gz ]; then
    echo "note: $FMNIST absent (dataset-fashion-mnist not installed); skipped"
    echo "PASS [$scenario]"
    exit 0
  fi
  expect_ok 2 data fashion-mnist --out-dir fm --partition dirichlet --clients 100 --alpha 0.5 --seed 0
  grep -q "^wrote fm/fashion_mnist_train.h5 (100 clients, partition dirichlet)" out.txt || fail "train file"
  grep -q "^wrote fm/fashion_mnist_test.h5 (100 clients, partition iid)" out.txt || fail "test file"
  info_has fm/fashion_mnist_train.h5 "^examples    60000$"
  info_has fm/fashion_mnist_train.h5 "^classes     10$"
  info_has fm/fashion_mnist_train.h5 "^client size min 600 "
  info_has fm/fashion_mnist_test.h5 "^examples    10000$"
  info_has fm/fashion_mnist_test.h5 "^labels per client min ([5-9]|10) "
  [ "$(attr fm/fashion_mnist_train.h5 source_images)" = $FMNIST/train-images-idx3-ubyte.gz ] || fail "source"
  expect_ok 2 train --data fm/fashion_mnist_train.h5 --test-data fm/fashion_mnist_test.h5 --rounds 3 \
    --clients-per-round 10 --out run --quiet
  grep -q "final test accuracy" out.txt || fail "no final accuracy"
  expect_ok 1 data fashion-mnist --out-dir fm2 --partition shards --classes-per-client 2 --test-partition shards \
    --test-clients 50 --seed 0
  info_has fm2/fashion_mnist_train.h5 "^labels per client min [12]  .* max 2 "
  info_has fm2/fashion_mnist_test.h5 "^clients     50$"
  ;;
*)
  fail "unknown scenario"
  ;;
esac
echo "PASS [$scenario]"
