#!/usr/bin/env python3
"""Write small HDF5 ClientData fixtures with h5py, for tests/unit/test_data.c.

Usage: make_h5_fixtures.py OUTDIR

Writes into OUTDIR (all in TFF's layout /examples/<client_id>/<feature>):
  emnist.h5        EMNIST-like: pixels float32 (N, 28, 28), label int32 (N),
                   ids "f0000_14" style, one empty client; root num_classes = 62
  odd_ids.h5       ids with spaces, dots, unicode, digits; libver="latest" and
                   more than 8 clients so the group uses dense link storage;
                   x float64 (N, 2), y int64 (N); one empty client
  odd_ids.txt      the ids in Python's sorted() order, one per line (UTF-8)
  dtypes.h5        x uint8 / int64 / float64 per client, y uint8 / int64 with
                   shape (N,) or (N, 1), an extra feature; features named x, y
  mismatch.h5      client 'bad_client': x has 12 rows, y has 10
  float_labels.h5  y is float32
  no_examples.h5   a /data group instead of /examples
  shape_mismatch.h5 client 'a' x (3, 4), client 'b' x (3, 5)
  no_x.h5          client features 'foo' and 'label' only
  bad_label.h5     root num_classes = 3 but client 'c0' has label 5 (example 1)

Files shaped exactly like TFF's real ones (tff-semantics.md section 4.1; no
root attributes, as in TFF's files):
  fed_emnist_digitsonly.h5  pixels float32 (N, 28, 28), 1.0 = background,
                   label int32 (N); ids "f0000_14" style, one empty client
  shakespeare.h5   snippets: variable-length UTF-8 str (N) only; ids are play
                   characters with quotes, commas, spaces; one empty client;
                   snippets with non-ASCII text, an empty string, a newline
  plays_train.h5, plays_test.h5  Shakespeare's layout to train on: 12 and 4
                   roles speaking famous lines (some joined past 81 chars)
  stackoverflow.h5 tokens: variable-length UTF-8 str (N), title str (N),
                   tags str (N) as TFF's file; client 'u2' empty, an empty
                   sentence and a double space in 'u1'
  stackoverflow_counts.txt  the word count file for it ('word count' lines,
                   most frequent first, as TFF's load_word_counts reads)
  fed_cifar100.h5  image uint8 (N, 32, 32, 3), label int64, coarse_label
                   int64; ids "0".."11" (sorted as strings: 0, 1, 10, 11, 2,
                   ...); client "3" empty

Bad input:
  nan.h5           num_classes 3; client 'c1' pixels float32 (6, 2, 2) has a
                   NaN at example 3; client 'c0' is fine
  inf64.h5         x float64; client 'a' has +inf at example 1
  big64.h5         x float64; client 'a' has 1e300 (beyond float32) at example 2
  neg_label.h5     client 'c0' y = [0, -2, 1]
  string_label.h5  label is a vlen str feature (pixels float32 fine)
  string_x.h5      x is a vlen str feature, y int32
  no_features.h5   client 'b' is an empty group
  feature_rows.h5  client 'c0': x (3, 2), y (3), w (4): w has 4 rows

Values are simple functions of (client, example, feature index) so the C test
can recompute them exactly (see the comments at each writer).
"""
import os
import sys

import h5py
import numpy as np


def emnist(path):
    # pixels[i].flat[j] = float32(k + i + j / 1000), label[i] = (k * 7 + i) % 62
    ids = ["f0000_14", "f0001_41", "f0002_00", "f0003_07"]
    counts = [3, 0, 5, 2]
    with h5py.File(path, "w") as f:
        f.attrs["num_classes"] = np.int64(62)
        ex = f.create_group("examples")
        for k, (cid, n) in enumerate(zip(ids, counts)):
            g = ex.create_group(cid)
            j = np.arange(28 * 28, dtype=np.float64).reshape(28, 28)
            px = np.stack([(k + i) + j / 1000.0 for i in range(n)]) if n else np.zeros((0, 28, 28))
            g.create_dataset("pixels", data=px.astype(np.float32))
            g.create_dataset("label", data=np.array([(k * 7 + i) % 62 for i in range(n)], dtype=np.int32))


ODD_IDS = ["a", "a b", "a.b", "A", "Z", "\u00e9t\u00e9", "\u00fc-client", "z", "0", "10", "9", "_",
           "~tilde", "\u65e5\u672c", " space", "a.b.c", "b"]


def odd_ids(path, txt):
    # client index k in ODD_IDS (write order, not sorted): n = k % 4 examples;
    # x[i] = [k, i + 0.5] (float64), y[i] = k + i (int64).
    with h5py.File(path, "w", libver="latest") as f:
        ex = f.create_group("examples")
        for k, cid in enumerate(ODD_IDS):
            n = k % 4
            g = ex.create_group(cid)
            x = np.array([[k, i + 0.5] for i in range(n)], dtype=np.float64).reshape(n, 2)
            g.create_dataset("x", data=x)
            g.create_dataset("y", data=np.array([k + i for i in range(n)], dtype=np.int64))
    with open(txt, "w", encoding="utf-8") as t:
        for cid in sorted(ODD_IDS):
            t.write("%s\t%d\n" % (cid, ODD_IDS.index(cid)))


def dtypes(path):
    # client "c_u8":  x uint8 (4, 3): rows i < 3 are 250 + i + j, row 3 is [0, 1, 2]; y uint8 (4,) = i
    # client "c_i64": x int64 (2, 3) = -(i * 3 + j) * 1000000, y int64 (2, 1) = 5 + i
    # client "c_f64": x float64 (3, 3) = i + j / 4, y int32 (3,) = 9 - i; an extra feature "id" (str)
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        g = ex.create_group("c_u8")
        g.create_dataset("x", data=np.array([[250 + i + j for j in range(3)] for i in range(3)] +
                                            [[0, 1, 2]], dtype=np.uint8))
        g.create_dataset("y", data=np.arange(4, dtype=np.uint8))
        g = ex.create_group("c_i64")
        g.create_dataset("x", data=np.array([[-(i * 3 + j) * 1000000 for j in range(3)] for i in range(2)],
                                            dtype=np.int64))
        g.create_dataset("y", data=np.array([[5], [6]], dtype=np.int64))
        g = ex.create_group("c_f64")
        g.create_dataset("x", data=np.array([[i + j / 4 for j in range(3)] for i in range(3)], dtype=np.float64))
        g.create_dataset("y", data=np.array([9, 8, 7], dtype=np.int32))
        g.create_dataset("id", data=np.array([b"p", b"q", b"r"]))


def mismatch(path):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        g = ex.create_group("a_good")
        g.create_dataset("x", data=np.zeros((2, 3), np.float32))
        g.create_dataset("y", data=np.zeros(2, np.int32))
        g = ex.create_group("bad_client")
        g.create_dataset("x", data=np.zeros((12, 3), np.float32))
        g.create_dataset("y", data=np.zeros(10, np.int32))


def float_labels(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("x", data=np.zeros((2, 3), np.float32))
        g.create_dataset("y", data=np.zeros(2, np.float32))


def no_examples(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("data").create_group("c0")
        g.create_dataset("x", data=np.zeros((2, 3), np.float32))


def shape_mismatch(path):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for cid, d in (("a", 4), ("b", 5)):
            g = ex.create_group(cid)
            g.create_dataset("x", data=np.zeros((3, d), np.float32))
            g.create_dataset("y", data=np.zeros(3, np.int32))


def no_x(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("foo", data=np.zeros((2, 3), np.float32))
        g.create_dataset("label", data=np.zeros(2, np.int32))


def bad_label(path):
    with h5py.File(path, "w") as f:
        f.attrs["num_classes"] = np.int32(3)
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("x", data=np.zeros((2, 3), np.float32))
        g.create_dataset("y", data=np.array([0, 5], np.int32))


def fed_emnist_digitsonly(path):
    # client k, example i: pixels 1.0 everywhere except ink 0.0 at
    # (r, (r + k + i) % 28) for every row r, and 0.5 at (0, 27);
    # label = (k * 3 + i) % 10
    ids = ["f0000_14", "f0001_41", "f0002_00", "f0003_07"]
    counts = [3, 4, 0, 2]
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for k, (cid, n) in enumerate(zip(ids, counts)):
            g = ex.create_group(cid)
            px = np.ones((n, 28, 28), dtype=np.float32)
            for i in range(n):
                for r in range(28):
                    px[i, r, (r + k + i) % 28] = 0.0
                px[i, 0, 27] = 0.5
            g.create_dataset("pixels", data=px)
            g.create_dataset("label", data=np.array([(k * 3 + i) % 10 for i in range(n)], dtype=np.int32))


SHAKESPEARE = {
    "ALLS_WELL_THAT_ENDS_WELL_HELENA": ["Our remedies oft in ourselves do lie,", "Which we ascribe to heaven."],
    "A_LOVER'S_COMPLAINT_MAID": ["O, that infected moisture of his eye,\nO, that false fire"],
    "PERICLES, PRINCE OF TYRE_GOWER": ["To sing a song that old was sung,", "", "Caf\u00e9 na\u00efve \u00fc \u2014 \u65e5\u672c"],
    "AS_YOU_LIKE_IT_NOBODY": [],
    "ROMEO_AND_JULIET_ROMEO": ["But, soft! what light through yonder window breaks?",
                               "It is the east, and Juliet is the sun.", "x" * 5000],
}


def shakespeare(path):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for cid, snips in SHAKESPEARE.items():
            g = ex.create_group(cid)
            g.create_dataset("snippets", data=np.array(snips, dtype=object), dtype=h5py.string_dtype("utf-8"),
                             shape=(len(snips),))


PLAY_LINES = [
    "To be, or not to be, that is the question:", "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,", "Or to take arms against a sea of troubles",
    "Now is the winter of our discontent", "Made glorious summer by this sun of York;",
    "All the world's a stage, and all the men and women merely players;", "Friends, Romans, countrymen, lend me your ears;",
    "I come to bury Caesar, not to praise him.", "If music be the food of love, play on;",
    "Shall I compare thee to a summer's day?", "Thou art more lovely and more temperate:",
    "What's in a name? That which we call a rose", "By any other word would smell as sweet;",
    "The quality of mercy is not strain'd,", "It droppeth as the gentle rain from heaven",
    "Once more unto the breach, dear friends, once more;", "Cry 'Havoc!', and let slip the dogs of war,",
]


def shakespeare_plays(path, clients, seed):
    """A Shakespeare-layout file to train on: each client ("role") speaks 2 to 9 lines of PLAY_LINES, some
    joined into one long snippet (several rows of 81), seeded, so the next character is learnable."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for k in range(clients):
            snips = []
            for _ in range(int(rng.integers(2, 10))):
                i = int(rng.integers(0, len(PLAY_LINES) - 1))
                snips.append(PLAY_LINES[i] + (" " + PLAY_LINES[i + 1] if rng.random() < 0.3 else ""))
            g = ex.create_group(f"PLAY_{k:02d}_ROLE")
            g.create_dataset("snippets", data=np.array(snips, dtype=object), dtype=h5py.string_dtype("utf-8"),
                             shape=(len(snips),))


STACKOVERFLOW = {
    "u0": ["how to sort a list in python", "the list is sorted"],
    "u1": ["", "what is  a pointer", "to be or not to be"],
    "u2": [],
}
STACKOVERFLOW_COUNTS = "a 5\nto 4\nlist 3\nthe 3\nis 2\nbe 2\npython 1\n"


def stackoverflow(path, counts_path):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for cid, sents in STACKOVERFLOW.items():
            g = ex.create_group(cid)
            st = h5py.string_dtype("utf-8")
            g.create_dataset("tokens", data=np.array(sents, dtype=object), dtype=st, shape=(len(sents),))
            g.create_dataset("title", data=np.array(["t"] * len(sents), dtype=object), dtype=st, shape=(len(sents),))
            g.create_dataset("tags", data=np.array(["python"] * len(sents), dtype=object), dtype=st,
                             shape=(len(sents),))
    with open(counts_path, "w") as f:
        f.write(STACKOVERFLOW_COUNTS)


def fed_cifar100(path):
    # client id str(k): n = 0 for k == 3 else 1 + k % 3;
    # image[i, r, c, ch] = (k * 7 + i * 3 + r + c + ch) % 256; label = (k * 11 + i) % 100;
    # coarse_label = label // 5
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        for k in range(12):
            n = 0 if k == 3 else 1 + k % 3
            g = ex.create_group(str(k))
            r = np.arange(32).reshape(1, 32, 1, 1)
            c = np.arange(32).reshape(1, 1, 32, 1)
            ch = np.arange(3).reshape(1, 1, 1, 3)
            i = np.arange(n).reshape(n, 1, 1, 1)
            img = ((k * 7 + i * 3 + r + c + ch) % 256).astype(np.uint8)
            g.create_dataset("image", data=img.reshape(n, 32, 32, 3))
            lab = np.array([(k * 11 + j) % 100 for j in range(n)], dtype=np.int64)
            g.create_dataset("label", data=lab)
            g.create_dataset("coarse_label", data=lab // 5)


def nan_file(path):
    with h5py.File(path, "w") as f:
        f.attrs["num_classes"] = np.int64(3)
        ex = f.create_group("examples")
        g = ex.create_group("c0")
        g.create_dataset("pixels", data=np.full((5, 2, 2), 0.25, np.float32))
        g.create_dataset("label", data=np.array([0, 1, 2, 0, 1], np.int32))
        g = ex.create_group("c1")
        px = np.full((6, 2, 2), 0.5, np.float32)
        px[3, 1, 0] = np.nan
        g.create_dataset("pixels", data=px)
        g.create_dataset("label", data=np.array([2, 1, 0, 2, 1, 0], np.int32))


def float64_file(path, bad):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("a")
        x = np.zeros((3, 2), np.float64)
        if bad == "inf":
            x[1, 1] = np.inf
        else:
            x[2, 0] = 1e300
        g.create_dataset("x", data=x)
        g.create_dataset("y", data=np.zeros(3, np.int32))


def neg_label(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("x", data=np.zeros((3, 2), np.float32))
        g.create_dataset("y", data=np.array([0, -2, 1], np.int32))


def string_label(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("pixels", data=np.zeros((2, 2), np.float32))
        g.create_dataset("label", data=np.array(["cat", "dog"], dtype=object), dtype=h5py.string_dtype())


def string_x(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("x", data=np.array(["a", "b"], dtype=object), dtype=h5py.string_dtype())
        g.create_dataset("y", data=np.zeros(2, np.int32))


def no_features(path):
    with h5py.File(path, "w") as f:
        ex = f.create_group("examples")
        g = ex.create_group("a")
        g.create_dataset("x", data=np.zeros((2, 2), np.float32))
        g.create_dataset("y", data=np.zeros(2, np.int32))
        ex.create_group("b")


def feature_rows(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("examples").create_group("c0")
        g.create_dataset("x", data=np.zeros((3, 2), np.float32))
        g.create_dataset("y", data=np.zeros(3, np.int32))
        g.create_dataset("w", data=np.zeros(4, np.float32))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    emnist(p("emnist.h5"))
    odd_ids(p("odd_ids.h5"), p("odd_ids.txt"))
    dtypes(p("dtypes.h5"))
    mismatch(p("mismatch.h5"))
    float_labels(p("float_labels.h5"))
    no_examples(p("no_examples.h5"))
    shape_mismatch(p("shape_mismatch.h5"))
    no_x(p("no_x.h5"))
    bad_label(p("bad_label.h5"))
    fed_emnist_digitsonly(p("fed_emnist_digitsonly.h5"))
    shakespeare(p("shakespeare.h5"))
    shakespeare_plays(p("plays_train.h5"), 12, 1)
    shakespeare_plays(p("plays_test.h5"), 4, 2)
    stackoverflow(p("stackoverflow.h5"), p("stackoverflow_counts.txt"))
    fed_cifar100(p("fed_cifar100.h5"))
    nan_file(p("nan.h5"))
    float64_file(p("inf64.h5"), "inf")
    float64_file(p("big64.h5"), "big")
    neg_label(p("neg_label.h5"))
    string_label(p("string_label.h5"))
    string_x(p("string_x.h5"))
    no_features(p("no_features.h5"))
    feature_rows(p("feature_rows.h5"))


if __name__ == "__main__":
    main()
