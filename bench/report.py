#!/usr/bin/env python3
"""Helpers of bench/run.sh.

    report.py count OUTDIR            rows of each of the seven tables (and of
                                      product_margins, where written) under OUTDIR, as JSON
    report.py summary RUNS.tsv        one markdown line per (size, format) of RUNS.tsv
    report.py scaling RUNS.tsv A B    exdep's median time on Parquet at size B over size A
    report.py products RUNS.tsv       exdep with product-margins = true against exdep without,
                                      and the lean DuckDB script with product_margins
                                      against it without

RUNS.tsv has one line per measured run: size, format, tool (exdep; lean: the lean DuckDB
script; duckdb: DuckDB with exdep's checks; polars: the lean Polars script; exdep-products
and lean-products: exdep and the lean DuckDB script with product margins), seconds, peak
RSS in MiB. A line reports the median time of each tool and its peak RSS (the largest over
its runs), and the ratios of the medians, exdep over each peer.
"""

import collections
import glob
import json
import os
import statistics
import sys

# The peers in the summary's column order.
PEERS = ["lean", "duckdb", "polars"]

TABLES = ["indices", "lq", "region_shares", "margins", "top_links", "destinations",
          "indices_change"]

# Written with product margins only: counted where its folder is.
PRODUCT_TABLE = "product_margins"


def count(outdir):
    import duckdb

    con = duckdb.connect()
    counts = {}
    tables = TABLES + ([PRODUCT_TABLE] if os.path.isdir(os.path.join(outdir, PRODUCT_TABLE)) else [])
    for table in tables:
        folder = os.path.join(outdir, table)
        if glob.glob(os.path.join(glob.escape(folder), "**", "*.parquet"), recursive=True):
            pattern = os.path.join(folder, "**", "*.parquet").replace("'", "''")
            counts[table] = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()[0]
        else:
            counts[table] = 0
    print(json.dumps(counts))


def load(path):
    runs = collections.defaultdict(lambda: collections.defaultdict(list))
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                size, fmt, tool, seconds, rss = line.split("\t")
                runs[(int(size), fmt)][tool].append((float(seconds), float(rss)))
    return runs


def size_label(size):
    for unit, name in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if size % unit == 0:
            return f"{size // unit}{name}"
    return str(size)


def cell(samples):
    if not samples:
        return None, "-"
    seconds = statistics.median(s for s, _ in samples)
    rss = max(r for _, r in samples)
    return seconds, f"{seconds:.1f} s, {rss:.0f} MiB"


def summary(path):
    for (size, fmt), tools in load(path).items():
        t_exdep, exdep = cell(tools.get("exdep", []))
        peers = [cell(tools.get(peer, [])) for peer in PEERS]
        ratios = [f"{t_exdep / t:.2f}x" if t_exdep and t else "-" for t, _ in peers]
        label = {"parquet": "Parquet", "csv": "CSV"}.get(fmt, fmt)
        print(f"| {size_label(size)} records, {label} | "
              + " | ".join([exdep] + [text for _, text in peers] + ratios) + " |")


def scaling(path, small, large):
    runs = load(path)
    a, _ = cell(runs.get((int(small), "parquet"), {}).get("exdep", []))
    b, _ = cell(runs.get((int(large), "parquet"), {}).get("exdep", []))
    if a and b:
        print(f"exdep on Parquet, time {size_label(int(large))} / {size_label(int(small))}: "
              f"{b / a:.2f}x ({b:.1f} s / {a:.1f} s; records x{int(large) / int(small):g})")


def products(path):
    """One line per data set measured with BENCH_PRODUCT_MARGINS=1: exdep with the product
    cube and `product_margins` (tool `exdep-products`) against the same run without, and the
    lean DuckDB script with `product_margins` (tool `lean-products`) against it without."""
    for (size, fmt), tools in load(path).items():
        columns = []
        for plain_tool, products_tool in (("exdep", "exdep-products"), ("lean", "lean-products")):
            t_plain, plain = cell(tools.get(plain_tool, []))
            t_products, with_products = cell(tools.get(products_tool, []))
            ratio = f"{t_products / t_plain:.2f}x" if t_plain and t_products else "-"
            columns += [plain, with_products, ratio]
        if columns[1] != "-":
            label = {"parquet": "Parquet", "csv": "CSV"}.get(fmt, fmt)
            print(f"| {size_label(size)} records, {label} | " + " | ".join(columns) + " |")


def main(argv):
    if len(argv) == 2 and argv[0] == "count":
        count(argv[1])
    elif len(argv) == 2 and argv[0] == "summary":
        summary(argv[1])
    elif len(argv) == 2 and argv[0] == "products":
        products(argv[1])
    elif len(argv) == 4 and argv[0] == "scaling":
        scaling(argv[1], argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
