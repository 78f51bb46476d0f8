#!/usr/bin/env python3
"""tests/resume/metrics_rounds.py DIR [N] — the metrics files of a run hold
each round exactly once, in order: every metrics.jsonl line is a whole JSON
object (the file ends with a newline), their rounds are 1..K, and
metrics.csv has a header and K complete rows whose round column is 1..K.
With N, K must be N. Prints K; exits 1 naming the problem otherwise."""
import csv
import json
import sys


def main():
    d = sys.argv[1]
    want = int(sys.argv[2]) if len(sys.argv) > 2 else None
    text = open(d + "/metrics.jsonl").read()
    if text and not text.endswith("\n"):
        sys.exit("metrics.jsonl: the last record is cut short (no newline)")
    rounds = []
    for i, line in enumerate(text.split("\n")[:-1], 1):
        try:
            rounds.append(json.loads(line)["round"])
        except (ValueError, KeyError, TypeError) as e:
            sys.exit("metrics.jsonl line %d does not parse: %s: %r" % (i, e, line[:80]))
    k = len(rounds)
    if rounds != list(range(1, k + 1)):
        sys.exit("metrics.jsonl rounds are not 1..%d once each in order: %s" % (k, rounds))
    raw = open(d + "/metrics.csv").read()
    if raw and not raw.endswith("\n"):
        sys.exit("metrics.csv: the last row is cut short (no newline)")
    rows = list(csv.reader(raw.splitlines()))
    if k and not rows:
        sys.exit("metrics.csv is empty but metrics.jsonl has %d records" % k)
    body = rows[1:]
    if rows and rows[0][0] != "round":
        sys.exit("metrics.csv: the first line is not the header: %r" % rows[0][:3])
    bad = [i for i, r in enumerate(body, 2) if len(r) != len(rows[0])]
    if bad:
        sys.exit("metrics.csv: rows %s do not have the header's %d fields" % (bad, len(rows[0])))
    csv_rounds = [int(r[0]) for r in body]
    if csv_rounds != rounds:
        sys.exit("metrics.csv rounds %s differ from metrics.jsonl's %s" % (csv_rounds, rounds))
    if want is not None and k != want:
        sys.exit("expected rounds 1..%d, the files hold 1..%d" % (want, k))
    print(k)


main()
