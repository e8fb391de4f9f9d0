#!/usr/bin/env python3
"""The job of `exdep run`, written as a DuckDB script: the benchmark's peer, with exdep's
acceptance checks written as filters, or without them (`--lean`: what a data team writes
first).

Reads canonical input files (typed, all at once, in one scan), keeps the valid records,
classifies them with the four code tables, builds the cube and writes the seven output
tables as Hive-partitioned Parquet, one folder per table:

    indices, lq, region_shares, margins, indices_change   partitioned by (year, province)
    top_links, destinations                               partitioned by (year)

(each table's earlier files under OUTPUT are replaced).

The table math is not written here: it is imported from the independent reference check
tests/reference/check_outputs.py (build_cells, build_units and the expected_* functions), so
this job computes exactly what the reference expects of exdep. Only the input path differs:
the reference reads every field as text to reproduce exdep's reject reasons one by one; this
job reads typed columns and applies the same acceptance rules as filters.

Usage:
    duckdb_job.py --configs DIR --output OUTDIR --years 2017,...,2022 [--base-year Y]
                  [--top-n N] [--threshold-cny T] [--destination-level country|region]
                  [--threads N] INPUT [INPUT ...]

INPUT: canonical .parquet or .csv files (year, month, province, partner, hs_code, value,
currency). Prints one summary line and exits 0; exits 2 when the job cannot run.
"""

import os
import sys
import time

# Importing the reference must not leave a bytecode cache in tests/.
sys.dont_write_bytecode = True
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

import duckdb  # noqa: E402
import check_outputs as ref  # noqa: E402

# The table folders written, in order, with their Hive partition columns (the reference's).
TABLES = {name: spec["partitions"] for name, spec in ref.OUTPUT_TABLES.items()}

# The largest value one record may have, in its currency (exdep's MAX_VALUE).
MAX_VALUE = "1e15"

# What exdep trims around a text field.
WHITESPACE = " \t\r\n"

# The canonical columns and the types they are read as.
COLUMN_TYPES = {
    "year": "INTEGER",
    "month": "INTEGER",
    "province": "VARCHAR",
    "partner": "VARCHAR",
    "hs_code": "VARCHAR",
    "value": "DOUBLE",
    "currency": "VARCHAR",
}


def sql_list(paths):
    return "[" + ", ".join(ref.sql_text(p) for p in paths) + "]"


def typed_sources(inputs):
    """One SELECT per file kind, each reading all its files at once, with the canonical
    columns typed, text trimmed, and the source file as `src`."""
    parquet = [p for p in inputs if p.lower().endswith(".parquet")]
    csv = [p for p in inputs if p.lower().endswith(".csv")]
    other = [p for p in inputs if p not in parquet and p not in csv]
    if other:
        raise ref.CheckError(f"inputs must end in .csv or .parquet: {other}")

    def columns(cast):
        return ", ".join(
            f"{cast}({c} AS {t}) AS {c}" if t != "VARCHAR"
            else f"trim(CAST({c} AS VARCHAR), {ref.sql_text(WHITESPACE)}) AS {c}"
            for c, t in COLUMN_TYPES.items()
        )

    selects = []
    if parquet:
        # Parquet is typed already: the casts are no-ops on exdep's canonical Parquet, and
        # TRY_CAST turns a foreign type's bad value into NULL (rejected below).
        selects.append(
            f"SELECT filename AS src, {columns('TRY_CAST')} "
            f"FROM read_parquet({sql_list(parquet)}, filename = true)"
        )
    if csv:
        # Typed CSV by header name. A row that does not parse (bad number, wrong field
        # count) is skipped, as exdep rejects it.
        types = ", ".join(f"{ref.sql_text(c)}: {ref.sql_text(t)}" for c, t in COLUMN_TYPES.items())
        selects.append(
            f"SELECT filename AS src, {columns('CAST')} "
            f"FROM read_csv({sql_list(csv)}, header = true, delim = ',', quote = '\"', "
            f"escape = '\"', types = {{{types}}}, ignore_errors = true, filename = true)"
        )
    return "\nUNION ALL\n".join(selects)


def build_cube_rows(con, inputs, years):
    """`accepted` and `cube_rows` as build_cube_rows makes them, but as views over one typed
    scan of the inputs: the only reader of `cube_rows` is the cube's aggregation, so the
    inputs are scanned once and no record is kept in memory."""
    year_list = ", ".join(str(y) for y in years)
    missing = con.execute(f"""
        SELECT y FROM unnest([{year_list}]) t(y)
        WHERE y NOT IN (SELECT year FROM rates WHERE isfinite(cny_per_usd) AND cny_per_usd > 0)
        ORDER BY y
    """).fetchall()
    if missing:
        raise ref.CheckError(f"cny_per_usd.csv: no positive rate for years {[m[0] for m in missing]}")
    # Every run year has a usable rate (checked above) and only run years are accepted, so
    # value_usd is never NULL: the reference's second rate check needs no second scan.
    # The reference's pattern checks of province and partner are left to the joins below:
    # every code of provinces.csv is two digits and every code of partner_regions.csv three
    # capitals, so a record that joins passes them. A data team would not pay for both.
    con.execute(f"""
        CREATE VIEW accepted AS
        SELECT src, year, province, upper(partner) AS partner, hs_code, value,
               upper(currency) AS currency
        FROM ({typed_sources(inputs)}) AS typed
        WHERE year IN ({year_list})
          AND (month IS NULL OR month BETWEEN 1 AND 12)
          AND regexp_full_match(hs_code, '([0-9]{{2}}){{1,5}}')
          AND isfinite(value)
          AND value >= 0
          AND value <= {MAX_VALUE}
          AND upper(currency) IN ('USD', 'CNY')
    """)
    con.execute(f"CREATE VIEW cube_rows AS {ref.CUBE_ROWS}")


def build_lean_cube_rows(con, inputs, years):
    """`cube_rows` as a data team writes it first, without exdep's checks: one scan sums the
    records by their raw keys (year, origin, partner, HS chapter, currency), and the code
    tables and rates are joined to those few sums, not to every record."""
    year_list = ", ".join(str(y) for y in years)
    parquet = [p for p in inputs if p.lower().endswith(".parquet")]
    csv = [p for p in inputs if p not in parquet]
    scans = []
    if parquet:
        scans.append(f"SELECT year, province, partner, hs_code, value, currency "
                     f"FROM read_parquet({sql_list(parquet)})")
    if csv:
        scans.append(f"SELECT year, province, partner, hs_code, value, currency "
                     f"FROM read_csv({sql_list(csv)}, header = true)")
    con.execute(f"""
        CREATE TABLE accepted AS
        SELECT '' AS src, year, province, partner, left(hs_code, 2) AS hs_code, currency,
               sum(value) AS value
        FROM ({" UNION ALL ".join(scans)}) AS records
        WHERE year IN ({year_list})
        GROUP BY ALL
    """)
    con.execute(f"CREATE VIEW cube_rows AS {ref.CUBE_ROWS}")


def write_tables(con, output):
    """Each expected_<table> as OUTPUT/<table>/, Hive-partitioned Parquet (zstd)."""
    os.makedirs(output, exist_ok=True)
    counts = {}
    for table, partitions in TABLES.items():
        folder = os.path.join(output, table)
        con.execute(f"""
            COPY (SELECT * FROM expected_{table}) TO {ref.sql_text(folder)}
            (FORMAT parquet, PARTITION_BY ({', '.join(partitions)}), COMPRESSION zstd,
             OVERWRITE)
        """)
        counts[table] = con.execute(f"SELECT count(*) FROM expected_{table}").fetchone()[0]
    return counts


def parse_args(argv):
    parser = ref.run_parser(__doc__.split("\n\n")[0], "output root (one folder per table)")
    parser.add_argument("--threads", type=int, default=None,
                        help="DuckDB worker threads (default: DuckDB's, one per core)")
    parser.add_argument("--lean", action="store_true",
                        help="the job without exdep's checks, summing by raw keys first")
    args = ref.check_run_args(parser, parser.parse_args(argv))
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    con = duckdb.connect()
    if args.threads is not None:
        con.execute(f"SET threads = {args.threads}")
    # Row order of the intermediate tables carries no meaning.
    con.execute("SET preserve_insertion_order = false")
    try:
        ref.define_macros(con)
        ref.load_config_tables(con, args.configs)
        if args.lean:
            build_lean_cube_rows(con, args.inputs, args.years)  # the one scan of the inputs
        else:
            build_cube_rows(con, args.inputs, args.years)
        ref.build_cells(con)  # the one scan of the inputs, unless --lean
        ref.build_units(con, args.destination_level)
        ref.expected_indices(con)
        ref.expected_lq(con)
        ref.expected_region_shares(con)
        ref.expected_margins(con, args.years)
        ref.expected_top_links(con, args.top_n)
        ref.expected_destinations(con, args.threshold_cny, args.base_year)
        ref.expected_indices_change(con, args.base_year)
        counts = write_tables(con, args.output)
    except (ref.CheckError, duckdb.Error) as e:
        print(f"duckdb_job: cannot run: {e}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print("duckdb_job: " + ", ".join(f"{t} {n} rows" for t, n in counts.items())
          + f" ({len(args.inputs)} input file(s), {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
