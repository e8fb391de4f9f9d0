#!/usr/bin/env python3
"""Reads exdep's published tables with other engines' readers, for the publication tests.

    read_published.py rows OUTPUT [VERSION]
                                      every table's rows, as JSON {table: [row, ...]}; with
                                      VERSION, each Delta table's rows at that version
    read_published.py history OUTPUT  the commits of every Delta table, newest first
    read_published.py files OUTPUT    the files of every Delta table's latest version
    read_published.py statistics OUTPUT
                                      every Delta table's file statistics, as delta-rs reads
                                      them, checked against the files' own values, and its
                                      latest commit's metrics checked against that commit

A Delta table (a folder with `_delta_log`) is read with the delta-rs Python reader
(`deltalake`) and with Polars, which must agree; a plain Parquet table with DuckDB's Hive
reader. Rows are sorted and their values written as text (a partition value may come back
as a number from one reader and as text from another), floats by `repr`, so that two
outputs compare equal exactly when their tables hold the same rows.
"""

import json
import os
import sys


def tables(output):
    for name in sorted(os.listdir(output)):
        path = os.path.join(output, name)
        if os.path.isdir(path) and not name.startswith(("_", ".")):
            yield name, path


def is_delta(path):
    return os.path.isdir(os.path.join(path, "_delta_log"))


def text(value):
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    return str(value)


def normalized(columns, rows):
    """Rows as dicts of text keyed by column name, sorted."""
    out = [{c: text(v) for c, v in zip(columns, row)} for row in rows]
    out.sort(key=lambda r: json.dumps(r, sort_keys=True))
    return out


def delta_rows(path, version=None):
    import deltalake
    import polars

    table = deltalake.DeltaTable(path, version=version).to_pyarrow_table()
    by_delta_rs = normalized(table.column_names, zip(*(c.to_pylist() for c in table.columns)))
    frame = polars.read_delta(path, version=version)
    by_polars = normalized(frame.columns, frame.rows())
    if by_delta_rs != by_polars:
        sys.exit(f"{path}: deltalake and polars read different rows")
    return by_delta_rs


def parquet_rows(path):
    import duckdb

    files = [
        os.path.join(folder, f)
        for folder, _, names in os.walk(path)
        for f in names
        if f.endswith(".parquet")
    ]
    if not files:
        return []
    relation = duckdb.sql(
        "SELECT * FROM read_parquet($files, hive_partitioning = true)",
        params={"files": files},
    )
    return normalized(relation.columns, relation.fetchall())


def scanned_files(plan):
    """The number of files the Parquet scan of a Polars plan opens, from `explain()`'s
    `Parquet SCAN [first, ... N other sources]` (or the list of every file)."""
    import re

    scan = next(line for line in plan.splitlines() if "SCAN [" in line)
    sources = scan[scan.index("[") + 1 : scan.rindex("]")]
    others = re.search(r"\.\.\. (\d+) other sources?$", sources)
    if others:
        return sources.count(".parquet") + int(others.group(1))
    return sources.count(".parquet")


def statistics(path):
    """What delta-rs reads of the table's per-file statistics and latest commit metrics, and
    where either disagrees with the data files or the commit itself."""
    import deltalake
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = deltalake.DeltaTable(path)
    adds = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    mismatches, bounded = [], None
    for add in adds:
        data = pq.read_table(os.path.join(path, add["path"]))
        if add["num_records"] != data.num_rows:
            mismatches.append(f"{add['path']}: numRecords {add['num_records']}, {data.num_rows} rows")
        with_bounds = set()
        for column in data.column_names:
            values = data.column(column)
            if add.get(f"null_count.{column}") != values.null_count:
                mismatches.append(f"{add['path']}: nullCount of {column}")
            low, high = add.get(f"min.{column}"), add.get(f"max.{column}")
            if low is None and high is None:
                continue
            with_bounds.add(column)
            extremes = pc.min_max(values).as_py()
            if (low, high) != (extremes["min"], extremes["max"]):
                mismatches.append(f"{add['path']}: bounds of {column} {low}..{high}, data {extremes}")
        if data.num_rows:
            bounded = with_bounds if bounded is None else bounded & with_bounds
    latest = table.history(1)[0]
    metrics = latest.get("operationMetrics", {})
    commit = os.path.join(path, "_delta_log", f"{latest['version']:020}.json")
    with open(commit) as log:
        actions = [json.loads(line) for line in log if line.strip()]
    added = [a["add"] for a in actions if "add" in a]
    removed = [a["remove"] for a in actions if "remove" in a]
    expected = {
        "num_added_files": len(added),
        "num_added_rows": sum(json.loads(a["stats"])["numRecords"] for a in added),
        "num_added_bytes": sum(a["size"] for a in added),
        "num_removed_files": len(removed),
        "num_removed_bytes": sum(a.get("size", 0) for a in removed),
    }
    for name, value in expected.items():
        if metrics.get(name) != value:
            mismatches.append(f"version {latest['version']}: {name} {metrics.get(name)}, commit {value}")
    # What readers skip for a filter on `category`: delta-rs' dataset turns each file's
    # statistics into a guarantee and leaves out the files whose bounds exclude the value;
    # Polars' plan lists the files its scan of the table will open.
    pruning = None
    if "category" in table.schema().to_arrow().names:
        import polars

        dataset = table.to_pyarrow_dataset()
        wanted = pc.field("category") == "technology"
        plan = polars.scan_delta(path).filter(polars.col("category") == "technology").explain()
        pruning = {
            "filter": "category = 'technology'",
            "delta_rs_files": len(list(dataset.get_fragments(filter=wanted))),
            "polars_files": scanned_files(plan),
            "of": len(adds),
        }
    return {
        "files": len(adds),
        "bounded": sorted(bounded or []),
        "pruning": pruning,
        "metrics": metrics,
        "mismatches": mismatches,
    }


def main():
    command, output = sys.argv[1], sys.argv[2]
    version = int(sys.argv[3]) if len(sys.argv) > 3 else None
    result = {}
    for name, path in tables(output):
        if command == "rows":
            result[name] = delta_rows(path, version) if is_delta(path) else parquet_rows(path)
        elif command == "history" and is_delta(path):
            import deltalake

            result[name] = [
                {"version": c.get("version"), "operation": c.get("operation")}
                for c in deltalake.DeltaTable(path).history()
            ]
        elif command == "statistics" and is_delta(path):
            result[name] = statistics(path)
        elif command == "files" and is_delta(path):
            import deltalake

            root = os.path.abspath(path)
            result[name] = sorted(
                os.path.relpath(uri.removeprefix("file://"), root)
                for uri in deltalake.DeltaTable(path).file_uris()
            )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
