#!/usr/bin/env bash
# tests/fuzz/make_corpus.sh FEDMPI [OUT] — (re)write the seed corpus of every
# fuzz target into OUT (default: tests/fuzz/corpus): a few small valid inputs
# each, plus some near-misses. Needs the built fedmpi (HDF5 ClientData files,
# checkpoints) and a python3 with h5py and numpy (the test fixtures of
# tests/data/make_h5_fixtures.py, IDX files). Deterministic inputs; the HDF5
# files carry no timestamps that matter to the readers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fedmpi=$(realpath "${1:?usage: make_corpus.sh path/to/fedmpi [out]}")
out=$(realpath -m "${2:-$here/corpus}")
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import h5py, numpy' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "make_corpus.sh: need python3 with h5py and numpy (apt-get install python3-h5py)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
for t in client_data idx checkpoint config cli_options model_spec data_spec aggregator_spec; do
  rm -rf "${out:?}/$t"
  mkdir -p "$out/$t"
done

# ---- client_data: fedmpi's synthetic files and h5py-written TFF layouts
"$fedmpi" data synth --out-train "$out/client_data/synth_train.h5" --out-test "$out/client_data/synth_test.h5" \
  --clients 3 --features 4 --classes 3 --max-examples 4 --seed 1 >/dev/null
"$py" "$here/../data/make_h5_fixtures.py" "$tmp/fx" >/dev/null
for f in emnist odd_ids dtypes shakespeare string_x no_x feature_rows mismatch float_labels; do
  cp "$tmp/fx/$f.h5" "$out/client_data/h5py_$f.h5"
done

# ---- checkpoint: one round of three algorithms (their state differs)
data=synthetic:clients=4,features=3,classes=2,max-examples=4,seed=2
for a in fedavg scaffold mime_lite; do
  extra=()
  [ "$a" = fedavg ] && extra=(--server-optimizer adam)
  "$fedmpi" train --data "$data" --model softmax --algorithm "$a" --rounds 1 --clients-per-round 2 \
    --checkpoint-every 1 --out "$tmp/run_$a" --quiet "${extra[@]}" >/dev/null
  cp "$(ls "$tmp/run_$a"/checkpoints/ckpt_*.h5 | tail -n1)" "$out/checkpoint/ckpt_$a.h5"
done

# ---- idx: mode byte 0 = one file; 1 = images length (2 bytes LE) + images + labels
"$py" - "$out/idx" <<'PY'
import gzip, struct, sys
out = sys.argv[1]
def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)
imgs = idx(0x803, (4, 3, 3), range(36))
labs = idx(0x801, (4,), [0, 1, 2, 1])
def w(name, b):
    open(f"{out}/{name}", "wb").write(b)
w("images", b"\0" + imgs)
w("labels", b"\0" + labs)
w("images_gz", b"\0" + gzip.compress(imgs, mtime=0))
w("matrix4d", b"\0" + idx(0x804, (1, 2, 2, 2), range(8)))
w("truncated", b"\0" + imgs[:-5])
w("pair", b"\1" + struct.pack("<H", len(imgs)) + imgs + labs)
gi = gzip.compress(imgs, mtime=0)
w("pair_gz", b"\1" + struct.pack("<H", len(gi)) + gi + gzip.compress(labs, mtime=0))
w("pair_mismatch", b"\1" + struct.pack("<H", len(imgs)) + imgs + idx(0x801, (3,), [0, 1, 2]))
PY

# ---- text targets
txt() { printf '%s' "$2" >"$1"; }
c=$out/config
txt "$c/basic.ini" $'[train]\nrounds = 5\nclient-lr = 0.1\nalgorithm = fedprox\nquiet = true\n'
txt "$c/sections.ini" $'; comment\n[fedmpi]\nseed = 42\n[other]\nx = 1\n[train]\nmodel = mlp:8,4\nclient_opt = beta_1=0.9\n'
txt "$c/bounds.ini" $'[train]\nthreads = 4096\nmomentum = 1\nepochs = 1000000\nweighting = uniform\n'
"$fedmpi" train --help >/dev/null 2>&1 || true
c=$out/cli_options
# first byte: option index (0..13, the table in fuzz_cli_table.h), 14 = K=V list, 15 = schedule
opt() { printf "\\x$(printf %02x "$2")%s" "$3" >"$c/$1"; }
opt rounds 4 "100"; opt rounds_big 4 "9200000000000000000"; opt epochs 5 "1e3"; opt seed 6 "-1"
opt lr 8 "0.05"; opt lr_inf 8 "inf"; opt momentum 9 "0.9"; opt algorithm 10 "scaffold"; opt quiet 12 "yes"
opt model 1 "cnn:32,64,512"
opt hparams 14 "beta_1=0.9,beta_2=0.999,epsilon=1e-7"; opt hparams_bad 14 "momentum=,=3"
opt sched_exp 15 "exp:gamma=0.99"; opt sched_step 15 "step:gamma=0.5,every=10"
opt sched_cos 15 "cosine:rounds=100,alpha=0.1,warmup=5"; opt sched_isqrt 15 "inverse_sqrt:timescale=10"
opt sched_const 15 "constant"
c=$out/model_spec
for s in softmax mlp:8,4 mlp 2nn cnn cnn:2,4,8 cnn:2,4,8,3 mlp:0 cnn:1,1; do txt "$c/${s//[:,]/_}" "$s"; done
# layer stacks (docs/models.md): the named models spelled out, every layer kind, and near-misses
stk() { txt "$c/stack_$1" "stack:$2"; }
stk softmax "flatten,dense"
stk 2nn "flatten,dense(200),relu,dense(200),relu,dense"
stk cnn "conv2d(32,5),relu,maxpool,conv2d(64,5),relu,maxpool,flatten,dense(512),relu,dense"
stk small_cnn "conv2d(2,3),relu,maxpool(2),flatten,dense(4),relu,dense"
stk reshape "reshape(5),dense(3),softmax"
stk reshape_img "reshape(4,7),conv2d(2,2),relu,maxpool,flatten,dense"
stk relu_first "relu,flatten,dense(4),relu,dense"
stk spaces " flatten , dense( 8 ) , relu , dense "
stk valid_drop "conv2d(2,3,valid),relu,dropout(0.25),flatten,dense(4),tanh,dropout(0.5),dense"
stk sigmoid "flatten,dense(6),sigmoid,dense"
stk bad_rate "flatten,dropout(1),dense"
stk bad_pad "conv2d(2,3,full),flatten,dense"
txt "$c/emnist_cnn_dropout" "emnist_cnn_dropout"
stk empty ""
stk trailing "flatten,dense,"
stk doubled "flatten,,dense"
stk unbalanced "flatten,dense(4"
stk extra_paren "flatten,dense(4))"
stk nested "dense((4))"
stk zero "flatten,dense(0),dense"
stk negative "flatten,dense(-1),dense"
stk empty_args "flatten,dense()"
stk unknown "lstm(8),dense"
stk conv_flat "conv2d(4,3),flatten,dense"
stk dense_image "conv2d(2,3),dense"
stk loss_first "softmax,dense"
c=$out/data_spec
txt "$c/defaults" "synthetic"
txt "$c/small" "synthetic:clients=3,features=4,classes=3,max-examples=5,seed=7"
txt "$c/test_split" "synthetic:clients=2,alpha=0.5,beta=0.5,max-examples=6,split=test,test-fraction=0.5"
txt "$c/iid" "synthetic:iid,clients=1e2,max-examples=3"
txt "$c/big" "synthetic:clients=1e6,alpha=1,beta=1,max-examples=20,seed=0"
txt "$c/dup" "synthetic:clients=3,clients=4"
c=$out/aggregator_spec
txt "$c/mean" "mean"
txt "$c/robust" "robust_aggregator(zeroing=true, clipping=true)"
txt "$c/dp" "dp_aggregator(noise_multiplier=1, clients_per_round=10)"
txt "$c/nested" "zeroing(clipping(mean, clipping_norm=no_noise(initial_estimate=1, target_quantile=0.8, learning_rate=0.2)), zeroing_norm=5, norm_order=1)"
txt "$c/tree" "tree_adaptive(noise_multiplier=0.3, clients_per_round=10, restart_warmup=2, restart_frequency=3)"
txt "$c/secure" "secure_mean(upper_bound_threshold=0.5, masks=true)"
txt "$c/metrics" "secure_sum_then_finalize"
txt "$c/metrics_ranges" "secure_sum_then_finalize(lower=-1, upper=1e6, loss=range(lower=0, upper=3), num_examples=range(lower=0, upper=2))"
txt "$c/metrics_bad" "secure_sum_then_finalize(num_examples=range(lower=0.1, upper=0.9))"
echo "make_corpus.sh: $(find "$out" -type f | wc -l) files, $(du -sh "$out" | cut -f1) in $out"
