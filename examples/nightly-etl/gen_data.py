#!/usr/bin/env python3
"""Make the nightly ETL's input: one folder of JSON-lines partitions per date.

    gen_data.py --out DIR [--records N] [--parts K] [--seed S] [--bad DATE ...] DATE ...

writes DIR/DATE/part-0001.jsonl .. part-000K.jsonl for each DATE (YYYY-MM-DD): about N
city-lot records per date (GeoJSON Features with the properties MAPBLKLOT, BLKLOT,
BLOCK_NUM, LOT_NUM, FROM_ST, TO_ST, STREET, ST_TYPE, ODD_EVEN and a polygon), the same
shape as San Francisco's city-lots file. The output is a function of (seed, date, N, K):
re-running gives the same bytes. For each --bad DATE, one more file part-bad.jsonl holds
valid records mixed with broken ones (malformed JSON, a missing field, a wrong ODD_EVEN),
which the extract-transform worker counts and reports without failing the night.

Files are written to a temporary name and renamed, so a worker never sees half a file.
"""
import argparse
import datetime
import os
import random
import sys

STREETS = ["MISSION", "VALENCIA", "GEARY", "OCEAN", "TARAVAL", "NORIEGA", "JUDAH",
           "LINCOLN WAY", "SLOAT", "PORTOLA", "CASTRO", "NOE", "DOLORES", "GUERRERO",
           "POTRERO", "3RD", "24TH", "19TH", "BAY", "POST", "SUTTER", "BUSH", "PINE",
           "CALIFORNIA", "SACRAMENTO", "PACIFIC", "BROADWAY", "VALLEJO", "GREEN", "UNION",
           "FILBERT", "LOMBARD", "FULTON", "MASON", "HYDE", "CHESTNUT", "WASHINGTON",
           "HARRISON", "MADISON", "CLAYTON", "JACKSON", "IRVING", "SANTIAGO", "CRANLEIGH"]
# A few streets are much longer than the rest, as in the real file.
WEIGHTS = [1] * len(STREETS)
for name, w in (("WASHINGTON", 6), ("HARRISON", 5), ("MISSION", 5), ("IRVING", 3),
                ("FULTON", 3), ("MASON", 3)):
    WEIGHTS[STREETS.index(name)] = w
ST_TYPES = ["ST"] * 12 + ["AVE", "BLVD", "CT", "DR", "WAY", "TER", "PL", "LN"]


def ring(r):
    n = r.randint(5, 12)
    lon0, lat0 = r.uniform(-122.51, -122.36), r.uniform(37.70, 37.81)
    pts = [[round(lon0 + r.uniform(-3e-4, 3e-4), 7), round(lat0 + r.uniform(-3e-4, 3e-4), 7)]
           for _ in range(n - 1)]
    pts.append(pts[0])
    return "[ " + ", ".join("[ %r, %r, 0.0 ]" % (p[0], p[1]) for p in pts) + " ]"


def record(r, omit=None, odd_even=None):
    blk, lot = "%04d" % r.randint(1, 7500), "%03d" % r.randint(1, 300)
    frm = r.randint(1, 4999)
    props = [("MAPBLKLOT", blk + lot), ("BLKLOT", blk + lot), ("BLOCK_NUM", blk),
             ("LOT_NUM", lot), ("FROM_ST", str(frm)), ("TO_ST", str(frm + r.randint(0, 40))),
             ("STREET", r.choices(STREETS, WEIGHTS)[0]), ("ST_TYPE", r.choice(ST_TYPES)),
             ("ODD_EVEN", odd_even or r.choice("OE"))]
    body = ", ".join('"%s": "%s"' % kv for kv in props if kv[0] != omit)
    return ('{ "type": "Feature", "properties": { %s }, "geometry": { "type": "Polygon", '
            '"coordinates": [ %s ] } }\n' % (body, ring(r)))


def write_atomic(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, path)


def make_date(out, date, n, parts, seed, bad):
    r = random.Random("%d/%s" % (seed, date))
    d = os.path.join(out, date)
    os.makedirs(d, exist_ok=True)
    # Partition sizes vary a little around n / parts, as real drops do.
    sizes = [max(1, int(n / parts * r.uniform(0.8, 1.2))) for _ in range(parts)]
    for i, size in enumerate(sizes, 1):
        write_atomic(os.path.join(d, "part-%04d.jsonl" % i), [record(r) for _ in range(size)])
    total, broken = sum(sizes), 0
    if bad:
        lines = []
        for i in range(40):
            kind = i % 8
            if kind == 3:
                lines.append('{ "type": "Feature", "properties": { "MAPBLKLOT": "12\n')
            elif kind == 5:
                lines.append(record(r, omit="STREET"))
            elif kind == 7:
                lines.append(record(r, odd_even="X"))
            else:
                lines.append(record(r))
                continue
            broken += 1
        lines.append("not json at all\n")
        broken += 1
        write_atomic(os.path.join(d, "part-bad.jsonl"), lines)
        total += len(lines)
    return total, broken


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--parts", type=int, default=6)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bad", action="append", default=[], metavar="DATE")
    ap.add_argument("dates", nargs="+", metavar="DATE")
    a = ap.parse_args()
    if a.records < 1 or not 1 <= a.parts <= 9999:
        ap.error("--records must be >= 1 and --parts 1..9999")
    for date in a.dates + a.bad:
        try:
            datetime.date.fromisoformat(date)
        except ValueError:
            ap.error("not a date (YYYY-MM-DD): %r" % date)
    for date in a.dates:
        total, broken = make_date(a.out, date, a.records, a.parts, a.seed, date in a.bad)
        print("%s: %d lines in %d files (%d broken)" % (
            date, total, a.parts + (date in a.bad), broken), file=sys.stderr)


if __name__ == "__main__":
    main()
