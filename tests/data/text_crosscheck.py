#!/usr/bin/env python3
"""Cross-check fedmpi's text tokenizers against an independent Python
re-implementation of TFF's preprocessing.

Usage: text_crosscheck.py FEDMPI WORKDIR

Writes, with h5py, Shakespeare-layout and Stack Overflow-layout ClientData
files (/examples/<client>/snippets, /examples/<client>/tokens: vlen UTF-8
str) of seeded random text that hits the edge cases (non-ASCII characters,
characters outside CHAR_VOCAB, snippets of 0, 79, 80, 160, 161 and more
bytes; sentences of 0, 19, 20 and more words, double and trailing spaces,
OOV words), and a word count file with CRLF line ends and tabs. Then runs
`FEDMPI data tokens` on them and compares every row with what TFF's
algorithm gives, re-implemented here from its source
(baselines/shakespeare/char_prediction_preprocessing.py,
baselines/stackoverflow/word_prediction_preprocessing.py,
datasets/stackoverflow.py:load_word_counts); TensorFlow is not needed.

Exit status 0: identical; 1: a difference (the first is printed), or no
h5py/numpy (scripts/install-deps installs them: a missing one is a failure,
not a skip).
"""
import collections
import os
import random
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("h5py/numpy not available: run scripts/install-deps (python3-h5py, python3-numpy)")
    sys.exit(1)

# ---- TFF's algorithms, from their source ------------------------------------------------

CHAR_VOCAB = list(
    'dhlptx@DHLPTX'
    ' $(,048cgkoswCGKOSW[_#\'/37;?bfjnrvzBFJNRVZ"&*.26:\naeimquyAEIMQUY]!%)-159\r'
)


def shakespeare_rows(snippet, seq_len=80):
    """to_tokens_and_pad, unbatch, batch(seq_len + 1), split_target."""
    vocab_size = len(CHAR_VOCAB)
    oov, bos, eos = vocab_size + 1, vocab_size + 2, vocab_size + 3
    index = {c.encode("utf-8"): i for i, c in enumerate(CHAR_VOCAB)}
    # tf.strings.bytes_split: one key per byte; StaticVocabularyTable with one OOV bucket -> vocab_size; + 1
    chars = [bytes([b]) for b in snippet.encode("utf-8")]
    tokens = [index[c] + 1 if c in index else oov for c in chars]
    tokens = [bos] + tokens + [eos]
    split = seq_len + 1
    tokens += [0] * ((-len(tokens)) % split)
    rows = [tokens[k:k + split] for k in range(0, len(tokens), split)]
    return [(r[:-1], r[1:]) for r in rows]


def load_word_counts(path, vocab_size):
    """datasets/stackoverflow.py:load_word_counts, reading a local file."""
    word_counts = collections.OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, count = line.split()
            word_counts[word] = int(count)
            if vocab_size is not None and len(word_counts) >= vocab_size:
                break
    return list(word_counts.keys())


def vocab_from_clients(clients, vocab_size):
    """fedmpi's documented rule for a vocabulary without a word count file:
    clients holding the word (TFF's counts), most first, ties in byte order."""
    counts = collections.Counter()
    for sentences in clients.values():
        counts.update({w for s in sentences for w in s.split(" ") if w})
    ranked = sorted(counts, key=lambda w: (-counts[w], w.encode("utf-8")))
    return ranked[:vocab_size]


def stackoverflow_rows(sentence, vocab, seq_len=20):
    """build_to_ids_fn (one OOV bucket), padded_batch(seq_len + 1), split_input_target."""
    index = {w: i for i, w in enumerate(vocab)}
    V = len(vocab)
    oov, bos, eos = V + 1, V + 2, V + 3
    words = sentence.split(" ")[:seq_len]  # tf.strings.split(sep=' ') == str.split(' ')
    tokens = [index[w] + 1 if w in index else oov for w in words]
    if len(tokens) < seq_len:
        tokens = tokens + [eos]
    row = [bos] + tokens
    row += [0] * (seq_len + 1 - len(row))
    return [(row[:-1], row[1:])]


# ---- the files ---------------------------------------------------------------------------

def write_h5(path, feature, clients):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for cid, strings in clients.items():
            g = ex.create_group(cid)
            g.create_dataset(feature, data=np.array(strings, dtype=object), dtype=h5py.string_dtype("utf-8"),
                             shape=(len(strings),))


def shakespeare_clients(rng):
    pool = CHAR_VOCAB * 3 + list("+~<>=^`{|}\t") + ["é", "ü", "—", "’", "😀", "ß"]
    clients = {}
    fixed = [0, 79, 80, 160, 161, 1, 2]
    for k in range(12):
        cid = ["KING LEAR", "HAMLET'S \"GHOST\"", "THE_TEMPEST, ARIEL", "ÉDOUARD"][k % 4] + f" {k}"
        n = 0 if k == 5 else rng.randint(1, 6)
        snippets = []
        for j in range(n):
            length = fixed[(k + j) % len(fixed)] if j == 0 else rng.choice([rng.randint(0, 120), rng.randint(0, 400)])
            snippets.append("".join(rng.choice(pool) for _ in range(length)))
        clients[cid] = snippets
    return clients


WORDS = ["the", "to", "a", "of", "is", "in", "python", "c++", "null", "café", "naïve", "x", "foo_bar", "<code>",
         "zzz", "rare1", "rare2", "unseen", "日本"]


def stackoverflow_clients(rng):
    clients = {}
    for k in range(10):
        n = 0 if k == 3 else rng.randint(1, 8)
        sentences = []
        for j in range(n):
            nw = [0, 19, 20, 21, 40][j] if j < 5 and k % 2 == 0 else rng.randint(1, 30)
            words = [rng.choice(WORDS[: 6 + k]) for _ in range(nw)]
            s = " ".join(words)
            if rng.random() < 0.2:
                s = s.replace(" ", "  ", 1)
            if rng.random() < 0.1:
                s += " "
            sentences.append(s)
        clients[f"user {k:03d}"] = sentences
    return clients


def write_word_counts(path):
    lines = ["the\t1000", "to 900", "a 800", "of   700", "is 600", "in 500", "python 400", "café 300",
             "null 200", "x 100", "foo_bar 50", "never-in-data 10"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")


# ---- running fedmpi and comparing ---------------------------------------------------------

def fedmpi_rows(fedmpi, args):
    out = subprocess.run([fedmpi, "data", "tokens"] + args, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print(f"fedmpi data tokens {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
        sys.exit(1)
    header, rows = None, []
    for line in out.stdout.splitlines():
        if line.startswith("#"):
            header = line
            continue
        where, ids = line.split(":", 1)
        ci, r = map(int, where.split())
        x, y = ids.split("|")
        rows.append((ci, r, [int(v) for v in x.split()], [int(v) for v in y.split()]))
    return header, rows


def compare(name, got, clients, rows_of):
    want = []
    for ci, cid in enumerate(sorted(clients, key=lambda c: c.encode("utf-8"))):  # the file's sorted order
        r = 0
        for s in clients[cid]:
            for x, y in rows_of(s):
                want.append((ci, r, x, y))
                r += 1
    for k, (g, w) in enumerate(zip(got, want)):
        if g != w:
            print(f"{name}: row {k} (client {w[0]}, row {w[1]}) differs:\n  fedmpi {g}\n  python {w}")
            return 1
    if len(got) != len(want):
        print(f"{name}: fedmpi gives {len(got)} rows, the python reference {len(want)}")
        return 1
    print(f"{name}: {len(want)} rows identical")
    return 0


def main():
    fedmpi, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = random.Random(20261202)
    p = lambda name: os.path.join(work, name)
    bad = 0

    shake = shakespeare_clients(rng)
    write_h5(p("shakespeare.h5"), "snippets", shake)
    header, got = fedmpi_rows(fedmpi, ["--task", "shakespeare", p("shakespeare.h5")])
    if "entries 86 ids 90 pad 0 oov 87 bos 88 eos 89 seq_len 80" not in header:
        print(f"shakespeare: unexpected header {header}")
        bad = 1
    bad |= compare("shakespeare L=80", got, shake, shakespeare_rows)
    _, got = fedmpi_rows(fedmpi, ["--task", "shakespeare", "--seq-len", "7", p("shakespeare.h5")])
    bad |= compare("shakespeare L=7", got, shake, lambda s: shakespeare_rows(s, 7))

    so = stackoverflow_clients(rng)
    write_h5(p("stackoverflow.h5"), "tokens", so)
    write_word_counts(p("word_count.txt"))
    for V in (8, 10000):
        vocab = load_word_counts(p("word_count.txt"), V)
        header, got = fedmpi_rows(fedmpi, ["--task", "stackoverflow", "--vocab", p("word_count.txt"),
                                           "--vocab-size", str(V), p("stackoverflow.h5")])
        n = len(vocab)
        if f"entries {n} ids {n + 4} pad 0 oov {n + 1} bos {n + 2} eos {n + 3} seq_len 20" not in header:
            print(f"stackoverflow V={V}: unexpected header {header}")
            bad = 1
        bad |= compare(f"stackoverflow word counts V={V}", got, so, lambda s: stackoverflow_rows(s, vocab))
    for V, L in ((5, 20), (100, 20), (6, 9)):
        vocab = vocab_from_clients(so, V)
        _, got = fedmpi_rows(fedmpi, ["--task", "stackoverflow", "--vocab-size", str(V), "--seq-len", str(L),
                                      p("stackoverflow.h5")])
        bad |= compare(f"stackoverflow vocabulary from the file V={V} L={L}", got, so,
                       lambda s: stackoverflow_rows(s, vocab, L))
    return bad


if __name__ == "__main__":
    sys.exit(main())
