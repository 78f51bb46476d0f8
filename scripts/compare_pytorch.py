#!/usr/bin/python3
"""scripts/compare_pytorch.py — the FedAvg workload of `fedmpi train` run as a
PyTorch simulator, for scripts/compare-pytorch.

What it does: reads the same TFF-layout HDF5 ClientData fedmpi reads
(/examples/<client>/{pixels, label}) with h5py, preloads every client as
tensors, and runs FedAvg with the same hyperparameters: K clients sampled per
round, E local epochs of plain SGD (fresh optimizer per client, batch B,
shuffled each epoch), updates w0 - w averaged weighted by examples, server SGD
with learning rate 1. The models are fedmpi's: softmax regression, the 2NN
(784-200-200-10) and McMahan et al.'s CNN (conv 5x5x32, pool, conv 5x5x64,
pool, dense 512, dense C), Glorot-uniform kernels and zero biases; TFF's
emnist_cnn_dropout; and TFF's Shakespeare LSTM (nn.Embedding(90, 8), a
2-layer nn.LSTM of 256, nn.Linear(256, 90) at every step, the loss the mean
over positions whose input is not the pad 0, as Keras's mask_zero gives) on a
file of Shakespeare's layout (/examples/<client>/snippets strings),
tokenised here as TFF's char_prediction_preprocessing.py does. The
`make-text` subcommand writes such a file (generated text; the speed does
not depend on what the characters say).

It is written the way a careful simulator is: one long-lived model per worker,
clients one after another, tensors preloaded (no DataLoader), metrics kept as
tensors (no per-batch .item()). Two execution modes, so PyTorch gets the best
of 2 cores: --mode threads (one process, torch.set_num_threads(T)) and
--mode procs (P worker processes with 1 thread each, OpenBLAS's included, the
cohort split between them, the main process averaging).

It prints one JSON object: the seconds of every round, the median of the
measured ones (after --warmup), the last round's training accuracy and the
test accuracy after the last round.

The `compare` subcommand is the driver scripts/compare-pytorch calls: per
model it runs fedmpi (`mpirun -n 2 fedmpi train`, the same with the client
cache on, and `fedmpi train --threads 2`) and this simulator (both modes) one after another, interleaved, and prints
the median seconds per round of each, the speedup of fedmpi's best over
PyTorch's best against the targets, both test accuracies, and how many cores
other processes kept busy during each run (the machine may be shared).

The `step` subcommand times PyTorch's training step alone (one batch kept in
cache, forward, backward, SGD step) with --threads threads, OpenBLAS's
included, the counterpart of the step table of `fedmpi bench`. `compare --wait-idle S` waits before each run until the
machine is idle (up to S seconds), for shared machines.

What it deliberately does not do: reproduce fedmpi's random streams (cohorts,
shuffles and initial weights differ, so accuracies are comparable, not
equal), use a DataLoader, GPUs, or any federated framework.
"""
import argparse
import csv
import itertools
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


CHAR_VOCAB = list("dhlptx@DHLPTX $(,048cgkoswCGKOSW[_#'/37;?bfjnrvzBFJNRVZ\"&*.26:\naeimquyAEIMQUY]!%)-159\r")
TEXT_MODELS = ("shakespeare_lstm",)


def tokenize_chars(snippets, seq_len=80):
    """TFF's Shakespeare preprocessing: bytes to ids (pad 0, chars 1..86, OOV 87, BOS 88, EOS 89), each
    snippet [BOS] bytes [EOS] padded to a multiple of seq_len + 1 and cut into rows; x = row[:-1], y = row[1:]."""
    table = {ord(c): i + 1 for i, c in enumerate(CHAR_VOCAB)}
    rows = []
    for s in snippets:
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        ids = [88] + [table.get(c, 87) for c in b] + [89]
        ids += [0] * (-len(ids) % (seq_len + 1))
        rows += [ids[k:k + seq_len + 1] for k in range(0, len(ids), seq_len + 1)]
    a = np.asarray(rows, dtype=np.int64).reshape(-1, seq_len + 1)
    return torch.from_numpy(np.ascontiguousarray(a[:, :-1])), torch.from_numpy(np.ascontiguousarray(a[:, 1:]))


def load_clients(path, flat):
    """Every client of a TFF-layout file as (x float32 tensor, y int64 tensor), in id order; a file of
    'snippets' strings as token rows (x, y int64 (R, 80))."""
    clients = []
    with h5py.File(path, "r") as f:
        ex = f["examples"]
        for cid in sorted(ex.keys()):
            g = ex[cid]
            if "snippets" in g:
                clients.append(tokenize_chars(g["snippets"].asstr()[()]))
                continue
            xname = next(n for n in ("x", "pixels", "image") if n in g)
            yname = next(n for n in ("y", "label") if n in g)
            x = np.asarray(g[xname], dtype=np.float32)
            y = np.asarray(g[yname], dtype=np.int64).reshape(-1)
            x = x.reshape(x.shape[0], -1) if flat else x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
            clients.append((torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)))
    return clients


IMAGE_MODELS = ("cnn", "emnist_cnn_dropout")  # the rest take flat inputs


def build_model(name, classes):
    if name == "softmax":
        m = nn.Sequential(nn.Linear(784, classes))
    elif name == "2nn":
        m = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(), nn.Linear(200, classes))
    elif name == "cnn":
        m = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(7 * 7 * 64, 512), nn.ReLU(), nn.Linear(512, classes))
    elif name == "emnist_cnn_dropout":  # TFF's EMNIST create_conv_dropout_model, as fedmpi's
        m = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Flatten(), nn.Linear(12 * 12 * 64, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, classes))
    elif name == "shakespeare_lstm":  # TFF's char_prediction_models.create_recurrent_model
        return CharLSTM(classes)
    else:
        raise SystemExit(f"compare_pytorch.py: unknown model {name!r} (softmax, 2nn, cnn, emnist_cnn_dropout, "
                         "shakespeare_lstm)")
    for mod in m.modules():  # Keras's defaults, as fedmpi: Glorot-uniform kernels, zero biases
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    return m


class CharLSTM(nn.Module):
    """Embedding(90, 8) -> LSTM(256) x 2 -> Dense(90) at every step: 820,522 parameters, as fedmpi's."""

    def __init__(self, classes):
        super().__init__()
        self.emb = nn.Embedding(classes, 8)
        self.lstm = nn.LSTM(8, 256, num_layers=2, batch_first=True)
        self.out = nn.Linear(256, classes)

    def forward(self, x):
        return self.out(self.lstm(self.emb(x))[0])


def loss_and_correct(name, out, xb, yb):
    """The batch's mean loss and its correct predictions (a tensor): per example, or for the LSTM per position,
    the loss over the positions whose input is not the pad, the accuracy over the labels that are not."""
    if name not in TEXT_MODELS:
        return F.cross_entropy(out, yb), (out.argmax(1) == yb).sum()
    c = out.shape[-1]
    per = F.cross_entropy(out.reshape(-1, c), yb.reshape(-1), reduction="none")
    valid = (xb.reshape(-1) != 0).to(per.dtype)
    loss = (per * valid).sum() / valid.sum().clamp(min=1)
    lab = yb.reshape(-1) != 0
    return loss, ((out.reshape(-1, c).argmax(1) == yb.reshape(-1)) & lab).sum()


def set_flat(params, w):
    """Copy the flat vector w into params (vector_to_parameters would alias w instead)."""
    with torch.no_grad():
        off = 0
        for q in params:
            q.copy_(w[off:off + q.numel()].view_as(q))
            off += q.numel()


class Worker:
    """One long-lived model that trains clients one after another."""

    def __init__(self, args, clients):
        self.args = args
        self.clients = clients
        self.model = build_model(args.model, args.classes)
        self.params = list(self.model.parameters())
        self.opt = torch.optim.SGD(self.params, lr=args.lr, momentum=args.momentum)

    def train(self, w0, cohort, rnd):
        """Sum over cohort of n_i * (w0 - w_i), sum of n_i, and metric sums."""
        a = self.args
        wsum = torch.zeros_like(w0)
        nsum = 0
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        counted = torch.zeros((), dtype=torch.int64)  # examples, or for the LSTM the labels that are not the pad
        gen = torch.Generator()
        for c in cohort:
            x, y = self.clients[c]
            n = x.shape[0]
            set_flat(self.params, w0)
            if a.momentum:
                self.opt.state.clear()  # a fresh client optimizer
            gen.manual_seed(a.seed * 1000003 + rnd * 1009 + c)
            seen = 0
            for _ in range(a.epochs):
                perm = torch.randperm(n, generator=gen)
                for i in range(0, n, a.batch_size):
                    idx = perm[i:i + a.batch_size]
                    xb, yb = x[idx], y[idx]
                    self.opt.zero_grad(set_to_none=True)
                    out = self.model(xb)
                    loss, corr = loss_and_correct(a.model, out, xb, yb)
                    loss.backward()
                    self.opt.step()
                    with torch.no_grad():
                        loss_sum += loss.detach().double() * len(idx)
                        correct += corr
                        counted += (yb != 0).sum() if a.model in TEXT_MODELS else len(idx)
                    seen += len(idx)
            with torch.no_grad():
                w = torch.nn.utils.parameters_to_vector(self.params)
                wsum.add_(w0 - w, alpha=float(seen))
            nsum += seen
        return wsum, nsum, float(loss_sum), int(correct), int(counted)


def evaluate(args, w, test):
    model = build_model(args.model, args.classes)
    set_flat(list(model.parameters()), w)
    model.eval()  # dropout off, as fedmpi's evaluation
    with torch.no_grad():
        correct = total = 0
        for x, y in test:
            for i in range(0, x.shape[0], 1000):
                out = model(x[i:i + 1000])
                correct += int(loss_and_correct(args.model, out, x[i:i + 1000], y[i:i + 1000])[1])
                total += int((y[i:i + 1000] != 0).sum()) if args.model in TEXT_MODELS else x[i:i + 1000].shape[0]
    return correct / total if total else float("nan")


def proc_main(args, conn):
    """A worker process: 1 thread, its own model, all clients preloaded."""
    torch.set_num_threads(1)
    worker = Worker(args, load_clients(args.data, args.model not in IMAGE_MODELS))
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            return
        rnd, w0, cohort = msg
        wsum, nsum, loss_sum, correct, counted = worker.train(torch.from_numpy(w0), cohort, rnd)
        conn.send((wsum.numpy(), nsum, loss_sum, correct, counted))


def add_run_args(p):
    p.add_argument("--data", required=True)
    p.add_argument("--test-data", default="")
    p.add_argument("--model", default="2nn")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--rounds", type=int, default=10, help="measured rounds")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    p.add_argument("--clients-per-round", type=int, default=10)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--server-lr", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("threads", "procs"), default="threads")
    p.add_argument("--threads", type=int, default=2, help="threads mode: torch.set_num_threads")
    p.add_argument("--procs", type=int, default=2, help="procs mode: worker processes (1 thread each)")


def run_main(args):
    conns, procs = [], []
    if args.mode == "procs":
        # 1 thread per worker means OpenBLAS too: torch.set_num_threads does not reach it, and
        # 2 workers x 2 BLAS threads would oversubscribe 2 cores. Read when a worker imports torch.
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.environ["OMP_NUM_THREADS"] = "1"
        ctx = mp.get_context("spawn")
        for _ in range(args.procs):
            a, b = ctx.Pipe()
            pr = ctx.Process(target=proc_main, args=(args, b), daemon=True)
            pr.start()
            conns.append(a)
            procs.append(pr)
        torch.set_num_threads(1)
    else:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t_load = time.perf_counter()
    flat = args.model not in IMAGE_MODELS
    worker = Worker(args, load_clients(args.data, flat)) if args.mode == "threads" else None
    for c in conns:
        if c.recv() != "ready":
            raise SystemExit("compare_pytorch.py: a worker failed to start")
    t_load = time.perf_counter() - t_load
    population = len(worker.clients) if worker else None
    if population is None:
        with h5py.File(args.data, "r") as f:
            population = len(f["examples"].keys())
    if args.clients_per_round > population:
        raise SystemExit(f"compare_pytorch.py: {args.clients_per_round} clients per round, population {population}")

    w = torch.nn.utils.parameters_to_vector(build_model(args.model, args.classes).parameters()).detach().clone()
    rng = np.random.default_rng(args.seed)
    secs, acc = [], float("nan")
    for rnd in range(args.warmup + args.rounds):
        t0 = time.perf_counter()
        cohort = sorted(rng.choice(population, args.clients_per_round, replace=False).tolist())
        if worker:
            wsum, nsum, loss_sum, correct, counted = worker.train(w, cohort, rnd)
        else:
            w_np = w.numpy()
            for i, c in enumerate(conns):
                c.send((rnd, w_np, cohort[i::len(conns)]))
            parts = [c.recv() for c in conns]
            wsum = torch.from_numpy(parts[0][0]).clone()
            for part in parts[1:]:
                wsum.add_(torch.from_numpy(part[0]))
            nsum = sum(part[1] for part in parts)
            loss_sum = sum(part[2] for part in parts)
            correct = sum(part[3] for part in parts)
            counted = sum(part[4] for part in parts)
        w = w - args.server_lr * (wsum / nsum)  # server SGD with the mean update as gradient
        secs.append(time.perf_counter() - t0)
        acc = correct / counted if counted else float("nan")
    for c in conns:
        c.send(None)
    for pr in procs:
        pr.join()
    test_acc = evaluate(args, w, load_clients(args.test_data, flat)) if args.test_data else float("nan")
    measured = secs[args.warmup:]
    print(json.dumps({
        "framework": "pytorch", "torch": torch.__version__, "mode": args.mode,
        "workers": args.threads if args.mode == "threads" else args.procs,
        "model": args.model, "clients_per_round": args.clients_per_round, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "rounds": len(measured), "warmup": args.warmup,
        "sec_per_round": statistics.median(measured), "round_secs": [round(s, 5) for s in secs],
        "train_accuracy": acc, "test_accuracy": test_acc, "load_secs": t_load,
        "total_rounds": args.warmup + args.rounds}))
    sys.stdout.flush()
    return 0


def step_main(a):
    """The training step alone, one batch of client 0 kept in cache (as fedmpi bench's step table)."""
    torch.set_num_threads(a.threads)
    print(f"{'model':8} {'threads':>7} {'forward ms':>10} {'backward ms':>11} {'zero+sgd ms':>11} {'step ms':>8}")
    loaded = {}
    for name in a.models.split(","):
        flat = name not in IMAGE_MODELS
        if flat not in loaded:
            loaded[flat] = load_clients(a.data, flat)[0]
        x, y = loaded[flat][0][:a.batch_size], loaded[flat][1][:a.batch_size]
        m = build_model(name, a.classes)
        opt = torch.optim.SGD(m.parameters(), lr=a.lr)
        tf = tb = ts = 0.0
        steps, start = 0, None
        while True:
            t0 = time.perf_counter()
            loss = loss_and_correct(name, m(x), x, y)[0]
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            if start is None:  # one untimed step
                start = t3
                continue
            tf, tb, ts, steps = tf + t1 - t0, tb + t2 - t1, ts + t3 - t2, steps + 1
            if steps >= 5 and t3 - start >= a.seconds:
                break
        print(f"{name:8} {a.threads:7d} {tf / steps * 1e3:10.4f} {tb / steps * 1e3:11.4f} {ts / steps * 1e3:11.4f} "
              f"{(tf + tb + ts) / steps * 1e3:8.4f}")
    return 0


# ---- the driver -------------------------------------------------------------------

TARGETS = {"softmax": 20.0, "2nn": 3.0, "cnn": 1.5, "emnist_cnn_dropout": 1.5, "shakespeare_lstm": 3.0}
# per-model settings where TFF's baseline differs from the command line's: Shakespeare's batch of 4 and
# client learning rate 1 (its task's defaults), and its own data file (--text-data)
MODEL_SETTINGS = {"shakespeare_lstm": {"batch_size": 4, "lr": 1.0}}


def cpu_busy():
    """Busy seconds of the whole machine (all CPUs, steal included), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def wait_idle(limit, threshold=0.15):
    """Wait (at most limit seconds) for a 2-second window in which the machine is idle but for us."""
    deadline = time.perf_counter() + limit
    while True:
        b0, t0 = cpu_busy(), time.perf_counter()
        time.sleep(2)
        load = (cpu_busy() - b0) / (time.perf_counter() - t0)
        if load < threshold or time.perf_counter() >= deadline:
            return load


def timed_run(cmd, env=None, idle=0.0):
    """Run cmd; its stdout, wall seconds and the cores other processes kept busy meanwhile."""
    if idle > 0:
        wait_idle(idle)
    b0, c0, t0 = cpu_busy(), os.times(), time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    b1, c1 = cpu_busy(), os.times()
    own = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    if res.returncode != 0:
        raise SystemExit(f"compare: command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}{res.stdout}")
    return res.stdout, wall, max(0.0, ((b1 - b0) - own) / wall) if wall > 0 else float("nan")


def settings(a, model):
    """(data, test data, batch size, learning rate, classes) of model's runs."""
    ms = MODEL_SETTINGS.get(model, {})
    if model in TEXT_MODELS:
        if not a.text_data:
            raise SystemExit(f"compare: {model} needs --text-data (a Shakespeare-layout file, see make-text)")
        return a.text_data, a.text_test_data, ms.get("batch_size", a.batch_size), ms.get("lr", a.lr), 90
    return a.data, a.test_data, a.batch_size, a.lr, 10


def run_fedmpi(a, model, rounds, layout):
    """layout: RANKSxTHREADS, with +cache for the client cache, preloaded (every client decoded once before
    round 1 and lent to the training loop, as the PyTorch simulator preloads its tensors)."""
    shape, _, cache = layout.partition("+")
    ranks, threads = (int(v) for v in shape.split("x"))
    out = os.path.join(a.work_dir, f"fedmpi-{model}-{layout}")
    data, test_data, batch, lr, _ = settings(a, model)
    train = [a.fedmpi, "train", "--quiet", "--data", data, "--model", model, "--rounds", str(a.warmup + rounds),
             "--clients-per-round", str(a.clients_per_round), "--epochs", str(a.epochs), "--batch-size",
             str(batch), "--client-lr", str(lr), "--server-lr", "1", "--checkpoint-every", "0",
             "--assignment", "balanced", "--out", out, "--seed", str(a.seed)]
    if threads:  # 0: fedmpi's default (the cores the rank may use, shared among the node's ranks)
        train += ["--threads", str(threads)]
    if test_data:
        train += ["--test-data", test_data]
    if cache:
        train += ["--cache-mb", str(a.cache_mb), "--preload"]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = [a.mpirun, "-n", str(ranks)] + (["--bind-to", "none"] if threads > 1 else []) + train if ranks > 1 else train
    stdout, _, other = timed_run(cmd, env, a.wait_idle)
    with open(os.path.join(out, "metrics.csv"), newline="") as f:
        recs = list(csv.DictReader(f))
    secs = [float(r["training_time_in_seconds"]) for r in recs]
    m = re.search(r"final test accuracy ([0-9.]+)", stdout)
    return {"sec": statistics.median(secs[a.warmup:]), "test_accuracy": float(m.group(1)) if m else float("nan"),
            "train_accuracy": float(recs[-1]["client_work/train/accuracy"]), "other": other,
            "cmd": " ".join(cmd)}


def run_torch(a, model, rounds, mode):
    """mode: threads or procs, with +passive for OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep instead of
    spinning, which rescues the threads mode when another process wants a core)."""
    mode, _, passive = mode.partition("+")
    data, test_data, batch, lr, classes = settings(a, model)
    cmd = [sys.executable, os.path.abspath(__file__), "run", "--data", data, "--model", model, "--rounds",
           str(rounds), "--warmup", str(a.warmup), "--clients-per-round", str(a.clients_per_round), "--epochs",
           str(a.epochs), "--batch-size", str(batch), "--lr", str(lr), "--mode", mode, "--seed", str(a.seed),
           "--classes", str(classes)]
    if test_data:
        cmd += ["--test-data", test_data]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if passive else None
    stdout, _, other = timed_run(cmd, env, a.wait_idle)
    r = json.loads(stdout.strip().splitlines()[-1])
    return {"sec": r["sec_per_round"], "test_accuracy": r["test_accuracy"], "train_accuracy": r["train_accuracy"],
            "other": other, "cmd": " ".join(cmd)}


def compare_main(a):
    rounds = {"softmax": 30, "2nn": 20, "cnn": 4, "emnist_cnn_dropout": 4, "shakespeare_lstm": 3}
    for item in filter(None, a.rounds.split(",")):
        k, _, v = item.partition("=")
        rounds[k] = int(v)
    os.makedirs(a.work_dir, exist_ok=True)
    fed = [("fedmpi", v) for v in a.fedmpi_layouts.split(",") if v]
    tor = [("torch", v) for v in a.torch_modes.split(",") if v]
    # interleaved, so that slow spells of a shared machine hit both frameworks
    order = [c for pair in itertools.zip_longest(fed, tor) for c in pair if c]
    rows = []
    for model in a.models.split(","):
        runs = {c: [] for c in order}
        for rep in range(a.repeats):
            for kind, what in order:
                label = f"{kind} {what}"
                print(f"  {model}: {label} (repeat {rep + 1}/{a.repeats}) ...", file=sys.stderr, flush=True)
                r = run_fedmpi(a, model, rounds[model], what) if kind == "fedmpi" else run_torch(a, model, rounds[model], what)
                runs[(kind, what)].append(r)
        med = {c: statistics.median(r["sec"] for r in rs) for c, rs in runs.items()}
        best_f = min((c for c in med if c[0] == "fedmpi"), key=med.get)
        best_t = min((c for c in med if c[0] == "torch"), key=med.get)
        speedup = med[best_t] / med[best_f]
        row = {"model": model, "rounds": rounds[model], "clients": a.clients_per_round, "epochs": a.epochs,
               "batch": a.batch_size}
        for c, rs in runs.items():
            key = f"{c[0]}_{c[1]}"
            row[f"{key}_sec"] = med[c]
            row[f"{key}_test_acc"] = rs[-1]["test_accuracy"]
            row[f"{key}_other"] = max(r["other"] for r in rs)
        row.update({"best_fedmpi": f"{best_f[0]} {best_f[1]}", "best_torch": f"{best_t[0]} {best_t[1]}",
                    "speedup": speedup, "target": TARGETS.get(model, float("nan")),
                    "acc_fedmpi": runs[best_f][-1]["test_accuracy"], "acc_torch": runs[best_t][-1]["test_accuracy"],
                    "fedmpi_cmd": runs[best_f][-1]["cmd"], "torch_cmd": runs[best_t][-1]["cmd"]})
        rows.append(row)
    print_table(rows, order, a)
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {a.csv}")
    return 0


def print_table(rows, order, a):
    heads = [f"{k} {w}" for k, w in order]
    print(f"\nFedAvg, {a.clients_per_round} clients/round, {a.epochs} epoch(s), batch {a.batch_size}, lr {a.lr}; "
          f"median seconds per round after {a.warmup} warm-up round(s), {a.repeats} repeat(s)")
    for r in rows:
        if r["model"] in MODEL_SETTINGS:
            ms = MODEL_SETTINGS[r["model"]]
            print(f"({r['model']}: batch {ms['batch_size']}, lr {ms['lr']}, as TFF's task)")
    print(f"{'model':8} {'rounds':>6} " + " ".join(f"{h:>14}" for h in heads) +
          f" {'speedup':>8} {'target':>7} {'met':>4} {'acc fedmpi':>10} {'acc torch':>9} {'other':>6}")
    for r in rows:
        cells = " ".join(f"{r[f'{k}_{w}_sec']:14.4f}" for k, w in order)
        other = max(r[f"{k}_{w}_other"] for k, w in order)
        met = "yes" if r["speedup"] >= r["target"] else "no"
        print(f"{r['model']:8} {r['rounds']:6d} {cells} {r['speedup']:7.1f}x {r['target']:6.1f}x {met:>4} "
              f"{r['acc_fedmpi']:10.4f} {r['acc_torch']:9.4f} {other:6.2f}")
    print("(speedup: PyTorch's best median / fedmpi's best; other: most cores other processes kept busy in one run)")
    sys.stdout.flush()


WORDS = ("thou thee thy art hath doth lord king queen love death night day sweet fair good noble heart blood "
         "sword crown grace honour heaven earth gentle speak hear come go stay fly fear hope mine eyes tongue "
         "friend foe madam sir my lady brother father son daughter time world life breath soul fortune").split()


def make_text_main(a):
    """A Shakespeare-layout file: --clients clients of --snippets snippets each (lengths as the real file's,
    a few words to a few hundred characters), words and punctuation from a fixed list, seeded."""
    rng = np.random.default_rng(a.seed)
    with h5py.File(a.out, "w") as f:
        ex = f.create_group("examples")
        for k in range(a.clients):
            snips = []
            for _ in range(int(rng.integers(max(1, a.snippets // 2), a.snippets * 3 // 2 + 1))):
                n = int(rng.geometric(1.0 / 14))
                words = [WORDS[int(i)] for i in rng.integers(0, len(WORDS), n)]
                text = " ".join(words).capitalize() + str(rng.choice([".", "!", "?", ",", ";"]))
                snips.append(text)
            ex.create_group(f"{k:04d}_ROLE").create_dataset("snippets", data=snips, dtype=h5py.string_dtype())
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    add_run_args(sub.add_parser("run", help="one PyTorch FedAvg simulation, JSON on stdout"))
    c = sub.add_parser("compare", help="fedmpi and PyTorch side by side")
    c.add_argument("--fedmpi", required=True, help="the fedmpi binary")
    c.add_argument("--mpirun", default="mpirun")
    c.add_argument("--data", required=True)
    c.add_argument("--test-data", default="")
    c.add_argument("--text-data", default="", help="Shakespeare-layout training file, for shakespeare_lstm")
    c.add_argument("--text-test-data", default="")
    c.add_argument("--work-dir", required=True)
    c.add_argument("--models", default="softmax,2nn,cnn")
    c.add_argument("--rounds", default="", help="measured rounds per model, e.g. softmax=30,2nn=20,cnn=4")
    c.add_argument("--warmup", type=int, default=1)
    c.add_argument("--clients-per-round", type=int, default=10)
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--lr", type=float, default=0.05)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--repeats", type=int, default=1, help="run everything this many times (medians)")
    c.add_argument("--fedmpi-layouts", default="2x1,1x2,2x1+cache,1x2+cache",
                   help="RANKSxTHREADS[+cache], comma separated (+cache: --cache-mb MB --preload, data kept in memory)")
    c.add_argument("--cache-mb", type=int, default=512, help="fedmpi's client cache per rank for +cache layouts")
    c.add_argument("--torch-modes", default="threads,procs",
                   help="threads, procs, threads+passive (OMP_WAIT_POLICY=PASSIVE), comma separated")
    c.add_argument("--csv", default="")
    c.add_argument("--wait-idle", type=float, default=0, metavar="S",
                   help="before each run, wait up to S seconds for the machine to be idle (shared machines)")
    st = sub.add_parser("step", help="time the training step alone (one batch in cache)")
    st.add_argument("--data", required=True)
    st.add_argument("--models", default="softmax,2nn,cnn")
    st.add_argument("--classes", type=int, default=10)
    st.add_argument("--batch-size", type=int, default=32)
    st.add_argument("--lr", type=float, default=0.05)
    st.add_argument("--threads", type=int, default=1)
    st.add_argument("--seconds", type=float, default=0.5)
    mt = sub.add_parser("make-text", help="write a Shakespeare-layout file of generated snippets")
    mt.add_argument("--out", required=True)
    mt.add_argument("--clients", type=int, default=100)
    mt.add_argument("--snippets", type=int, default=40, help="mean snippets per client")
    mt.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "step" and os.environ.get("OPENBLAS_NUM_THREADS") != str(a.threads):
        # OpenBLAS (PyTorch's Linear layers) reads its thread count when torch is imported, and
        # torch.set_num_threads does not change it: start again with the count in the environment.
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    return {"run": run_main, "compare": compare_main, "step": step_main, "make-text": make_text_main}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
