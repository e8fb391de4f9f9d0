#!/usr/bin/env python3
"""Independent reference check of exdep's output tables.

This script is an independent re-implementation of exdep's arithmetic, used by exdep's
tests. It shares no code with exdep: it reads the same raw inputs and code tables,
recomputes the `indices`, `lq` and `region_shares` tables with DuckDB SQL, and compares
them with the Parquet tables exdep wrote. It also checks the per-file record counts in
exdep's `_manifest.json`.

Usage:
    check_outputs.py --configs DIR --output OUTDIR --years 2017,2018 INPUT [INPUT ...]

    DIR     folder with hs_chapters.csv, partner_regions.csv, provinces.csv, cny_per_usd.csv
    OUTDIR  exdep's output root (indices/, lq/, region_shares/, _manifest.json)
    INPUT   canonical input files, each .csv or .parquet

Exit status: 0 when everything agrees (one summary line is printed), 1 when any difference
is found (each is printed, at most 20 per table), 2 when the check itself cannot run.
Needs Python 3 and the `duckdb` package only.
"""

import argparse
import csv
import glob
import json
import os
import sys
from urllib.parse import unquote, urlparse

import duckdb

CANONICAL_COLUMNS = ["year", "month", "province", "partner", "hs_code", "value", "currency"]

CONFIG_TABLES = {
    # file name: (required columns, key column that must be unique)
    "hs_chapters.csv": (["chapter", "category"], "chapter"),
    "partner_regions.csv": (["iso3", "name", "region"], "iso3"),
    "provinces.csv": (["code", "name", "name_zh", "macro_region"], "code"),
    "cny_per_usd.csv": (["year", "cny_per_usd"], "year"),
}

# Output tables: key columns, columns compared with a relative tolerance, columns compared exactly.
OUTPUT_TABLES = {
    "indices": (
        ["year", "province", "category"],
        ["exports_usd", "hhi", "hhi_norm", "entropy"],
        ["destinations"],
    ),
    "lq": (
        ["year", "province", "partner", "category"],
        ["exports_usd", "lq"],
        [],
    ),
    "region_shares": (
        ["year", "province", "region", "category"],
        ["exports_usd", "share"],
        [],
    ),
}

REL_TOL = 1e-9
ABS_TOL = 1e-12
MAX_REPORTED = 20

# A decimal floating-point literal: 12, 12.5, .5, 5., 1e3, -2.5E-3. DuckDB's own cast is more
# lenient than that (it accepts "1_000", for one), so TRY_CAST only runs on values of this shape.
FLOAT_SYNTAX = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
INTEGER_SYNTAX = r"[+-]?[0-9]+"
# What exdep trims around a field: spaces, tabs, carriage returns and line feeds.
WHITESPACE = r"[ \t\r\n]"


class CheckError(Exception):
    """The check cannot run (bad arguments, unreadable input, inconsistent code tables)."""


def sql_text(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def sql_name(s):
    """A quoted SQL identifier."""
    return '"' + s.replace('"', '""') + '"'


# --------------------------------------------------------------------------- set-up


def define_macros(con):
    con.execute(f"""
        -- Trims whitespace from both ends; the empty string becomes NULL.
        CREATE MACRO clean(x) AS
            nullif(regexp_replace(x, '^{WHITESPACE}+|{WHITESPACE}+$', '', 'g'), '');

        -- Whether two numbers agree: both NULL, or within the relative tolerance.
        CREATE MACRO agrees(e, a) AS
            CASE
                WHEN e IS NULL OR a IS NULL THEN e IS NULL AND a IS NULL
                WHEN e = a THEN true
                ELSE abs(e - a) <= {REL_TOL} * greatest(abs(e), abs(a)) + {ABS_TOL}
            END;
    """)


def load_config_tables(con, configs_dir):
    """Loads the four code tables as all-VARCHAR tables named after their files. Blank lines
    and lines starting with '#' are skipped; fields are trimmed."""
    for file_name, (columns, key) in CONFIG_TABLES.items():
        path = os.path.join(configs_dir, file_name)
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                lines = [line for line in f if line.strip() and not line.startswith("#")]
        except OSError as e:
            raise CheckError(f"cannot read code table {path}: {e}")
        reader = csv.DictReader(lines)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise CheckError(f"{path}: missing columns {missing}")
        rows = [[(row[c] or "").strip() for c in columns] for row in reader]

        table = file_name.removesuffix(".csv")
        con.execute(f"CREATE TABLE {table} ({', '.join(c + ' VARCHAR' for c in columns)})")
        if rows:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})", rows)

        dups = con.execute(
            f"SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1 ORDER BY {key}"
        ).fetchall()
        if dups:
            raise CheckError(f"{path}: duplicate {key} values {[d[0] for d in dups]}")

    con.execute("""
        CREATE TABLE rates AS
        SELECT TRY_CAST(year AS INTEGER) AS year, TRY_CAST(cny_per_usd AS DOUBLE) AS cny_per_usd
        FROM cny_per_usd
    """)


def load_inputs(con, inputs):
    """Loads every input file into one table `raw`: the source file, then the seven canonical
    columns as trimmed VARCHAR (empty = NULL)."""
    selects = []
    for path in inputs:
        lower = path.lower()
        if lower.endswith(".csv"):
            # null_padding: a short row gets NULLs for its missing fields (and is then rejected).
            source = (f"read_csv({sql_text(path)}, all_varchar=true, header=true, "
                      f"delim=',', quote='\"', null_padding=true)")
        elif lower.endswith(".parquet"):
            source = f"read_parquet({sql_text(path)})"
        else:
            raise CheckError(f"{path}: input must end in .csv or .parquet")
        try:
            names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        except duckdb.Error as e:
            raise CheckError(f"cannot read {path}: {e}")

        columns = []
        for canonical in CANONICAL_COLUMNS:
            matches = [n for n in names if n.strip().lower() == canonical]
            if len(matches) != 1:
                raise CheckError(f"{path}: expected one column named {canonical!r} (any case), "
                                 f"found {matches or 'none'} among {names}")
            columns.append(f"clean(CAST({sql_name(matches[0])} AS VARCHAR)) AS {canonical}")
        selects.append(f"SELECT {sql_text(path)} AS src, {', '.join(columns)} FROM {source}")

    con.execute("CREATE TABLE raw AS\n" + "\nUNION ALL\n".join(selects))


# --------------------------------------------------------------------------- the cube


def build_cube_rows(con, years):
    """Steps 1-3: the records that enter the cube, with their value in USD."""
    year_list = ", ".join(str(y) for y in years)
    missing = con.execute(f"""
        SELECT y FROM unnest([{year_list}]) t(y)
        WHERE y NOT IN (SELECT year FROM rates WHERE isfinite(cny_per_usd) AND cny_per_usd > 0)
        ORDER BY y
    """).fetchall()
    if missing:
        raise CheckError(f"cny_per_usd.csv: no positive rate for years {[m[0] for m in missing]}")
    con.execute(f"""
        CREATE TABLE accepted AS
        SELECT
            src,
            TRY_CAST(year AS INTEGER) AS year,
            province,
            upper(partner)            AS partner,
            hs_code,
            TRY_CAST(value AS DOUBLE) AS value,
            upper(currency)           AS currency
        FROM raw
        WHERE regexp_full_match(year, '{INTEGER_SYNTAX}')
          AND TRY_CAST(year AS INTEGER) IN ({year_list})
          AND (month IS NULL
               OR (regexp_full_match(month, '{INTEGER_SYNTAX}')
                   AND TRY_CAST(month AS INTEGER) BETWEEN 1 AND 12))
          AND regexp_full_match(province, '[0-9]{{2}}')
          AND regexp_full_match(upper(partner), '[A-Z]{{3}}')
          AND regexp_full_match(hs_code, '[0-9]{{2,10}}')
          AND regexp_full_match(value, '{FLOAT_SYNTAX}')
          AND isfinite(TRY_CAST(value AS DOUBLE))
          AND TRY_CAST(value AS DOUBLE) >= 0
          AND upper(currency) IN ('USD', 'CNY')
    """)
    con.execute("""
        CREATE TABLE cube_rows AS
        SELECT
            a.src,
            a.year,
            a.province,
            a.partner,
            p.region,
            h.category,
            a.value,
            CASE a.currency
                WHEN 'USD' THEN a.value
                ELSE a.value / r.cny_per_usd
            END AS value_usd
        FROM accepted a
        JOIN provinces       v ON v.code = a.province
        JOIN partner_regions p ON p.iso3 = a.partner
        JOIN hs_chapters     h ON h.chapter = left(a.hs_code, 2)
        LEFT JOIN rates      r ON r.year = a.year
        WHERE h.category <> 'excluded'
          AND a.partner <> 'CHN'
    """)
    no_rate = con.execute(
        "SELECT DISTINCT year FROM cube_rows WHERE value_usd IS NULL ORDER BY year"
    ).fetchall()
    if no_rate:
        raise CheckError(f"cny_per_usd.csv: no usable rate for years {[r[0] for r in no_rate]}")


def build_cells(con):
    """Steps 4-5: cube cells, national cells ('CN'), and the 'all' category."""
    con.execute("""
        CREATE TABLE cube AS
        SELECT year, province, partner, region, category, sum(value_usd) AS x
        FROM cube_rows
        GROUP BY year, province, partner, region, category
        HAVING sum(value_usd) > 0
    """)
    con.execute("""
        CREATE TABLE cells_by_category AS
        SELECT year, province, partner, region, category, x
        FROM cube
        UNION ALL
        SELECT year, 'CN' AS province, partner, region, category, sum(x) AS x
        FROM cube
        GROUP BY year, partner, region, category
    """)
    con.execute("""
        CREATE TABLE cells AS
        SELECT year, province, partner, region, category, x
        FROM cells_by_category
        UNION ALL
        SELECT year, province, partner, region, 'all' AS category, sum(x) AS x
        FROM cells_by_category
        GROUP BY year, province, partner, region
    """)


# --------------------------------------------------------------------------- expected tables


def expected_indices(con):
    """Concentration of each origin's exports of a category over partners."""
    con.execute("""
        CREATE TABLE expected_indices AS
        WITH shares AS (
            SELECT year, province, category, x,
                   x / sum(x) OVER (PARTITION BY year, province, category) AS s
            FROM cells
        ),
        summary AS (
            SELECT year, province, category,
                   sum(x)                                      AS exports_usd,
                   count(*) FILTER (WHERE x > 0)               AS destinations,
                   sum(s * s)                                  AS hhi,
                   -sum(CASE WHEN s > 0 THEN s * ln(s) END)    AS entropy
            FROM shares
            GROUP BY year, province, category
        )
        SELECT year, province, category,
               exports_usd,
               destinations,
               hhi,
               CASE WHEN destinations = 1 THEN 0.0
                    ELSE (hhi - 1.0 / destinations) / (1.0 - 1.0 / destinations)
               END AS hhi_norm,
               entropy
        FROM summary
    """)


def expected_lq(con):
    """Location quotient of each (origin, partner, category), over the four categories."""
    con.execute("""
        CREATE TABLE expected_lq AS
        WITH totals AS (
            SELECT year, province, partner, category,
                   x                                                        AS e_rm,
                   sum(x) OVER (PARTITION BY year, province, partner)       AS e_r,
                   sum(x) OVER (PARTITION BY year, province, category)      AS e_m,
                   sum(x) OVER (PARTITION BY year, province)                AS e_n
            FROM cells
            WHERE category <> 'all'
        )
        SELECT year, province, partner, category,
               e_rm AS exports_usd,
               CASE WHEN e_r = 0 OR e_m = 0 OR e_n = 0 THEN NULL
                    ELSE (e_rm / e_r) / (e_m / e_n)
               END AS lq
        FROM totals
    """)


def expected_region_shares(con):
    """Each region's share of an origin's exports of a category."""
    con.execute("""
        CREATE TABLE expected_region_shares AS
        WITH by_region AS (
            SELECT year, province, region, category, sum(x) AS exports_usd
            FROM cells
            GROUP BY year, province, region, category
        )
        SELECT year, province, region, category,
               exports_usd,
               exports_usd / sum(exports_usd) OVER (PARTITION BY year, province, category) AS share
        FROM by_region
    """)


# --------------------------------------------------------------------------- comparison


def load_actual(con, outdir, table, keys, approx, exact, problems):
    """Loads exdep's table as `actual_<table>` with the expected column types.
    Returns the compared columns found, or None when the table cannot be compared."""
    files = glob.glob(os.path.join(glob.escape(outdir), table, "**", "*.parquet"), recursive=True)
    if not files:
        problems.append(f"no Parquet files under {os.path.join(outdir, table)}")
        con.execute(f"CREATE TABLE actual_{table} AS SELECT * FROM expected_{table} LIMIT 0")
        return approx + exact

    pattern = os.path.join(outdir, table, "**", "*.parquet")
    con.execute(f"""
        CREATE VIEW parquet_{table} AS
        SELECT * FROM read_parquet({sql_text(pattern)}, hive_partitioning = true,
                                   hive_types = {{'year': 'INTEGER', 'province': 'VARCHAR'}})
    """)
    present = {row[0] for row in con.execute(f"DESCRIBE parquet_{table}").fetchall()}
    missing = [c for c in keys + approx + exact if c not in present]
    for c in missing:
        problems.append(f"column {c!r} missing from exdep's table")
    if any(k in missing for k in keys):
        return None

    approx = [c for c in approx if c in present]
    exact = [c for c in exact if c in present]
    columns = (
        ["CAST(year AS INTEGER) AS year"]
        + [f"CAST({k} AS VARCHAR) AS {k}" for k in keys if k != "year"]
        + [f"CAST({c} AS DOUBLE) AS {c}" for c in approx]
        + [f"CAST({c} AS BIGINT) AS {c}" for c in exact]
    )
    con.execute(f"CREATE TABLE actual_{table} AS SELECT {', '.join(columns)} FROM parquet_{table}")
    return approx + exact


def describe_key(keys, values):
    return " ".join(f"{k}={v}" for k, v in zip(keys, values))


def compare_table(con, outdir, table):
    """Compares expected_<table> with exdep's table.
    Returns (rows expected, number of differences, difference lines)."""
    keys, approx, exact = OUTPUT_TABLES[table]
    problems = []
    compared = load_actual(con, outdir, table, keys, approx, exact, problems)
    n_expected = con.execute(f"SELECT count(*) FROM expected_{table}").fetchone()[0]
    if compared is None:
        return n_expected, len(problems), problems
    approx = [c for c in approx if c in compared]
    exact = [c for c in exact if c in compared]
    key_list = ", ".join(keys)

    # Every key once in exdep's table.
    for row in con.execute(f"""
        SELECT {key_list}, count(*) FROM actual_{table}
        GROUP BY {key_list} HAVING count(*) > 1 ORDER BY {key_list}
    """).fetchall():
        problems.append(f"{describe_key(keys, row[:-1])}: {row[-1]} rows in exdep's table")

    # Keys on one side only, and values that disagree.
    checks = {c: f"agrees(e.{c}, a.{c})" for c in approx}
    checks.update({c: f"e.{c} IS NOT DISTINCT FROM a.{c}" for c in exact})
    query = f"""
        FROM (SELECT *, true AS present FROM expected_{table}) e
        FULL OUTER JOIN (SELECT *, true AS present FROM actual_{table}) a
            ON {" AND ".join(f"e.{k} = a.{k}" for k in keys)}
        WHERE e.present IS NULL
           OR a.present IS NULL
           {"".join(f"OR NOT ({check})" for check in checks.values())}
    """
    select = ", ".join(
        [f"coalesce(e.{k}, a.{k})" for k in keys]
        + ["e.present IS NOT NULL", "a.present IS NOT NULL"]
        + [f"e.{c}, a.{c}, {check}" for c, check in checks.items()]
    )
    n_structural = len(problems)
    n_differing = con.execute(f"SELECT count(*) {query}").fetchone()[0]
    for row in con.execute(f"SELECT {select} {query} ORDER BY ALL LIMIT {MAX_REPORTED}").fetchall():
        key = describe_key(keys, row[: len(keys)])
        in_expected, in_actual = row[len(keys)], row[len(keys) + 1]
        values = row[len(keys) + 2:]
        first = list(checks)[0] if checks else None
        if not in_actual:
            shown = f" (expected {first}={values[0]!r})" if first else ""
            problems.append(f"{key}: missing from exdep's table{shown}")
        elif not in_expected:
            shown = f" (exdep {first}={values[1]!r})" if first else ""
            problems.append(f"{key}: in exdep's table but not expected{shown}")
        else:
            for i, column in enumerate(checks):
                e, a, same = values[3 * i: 3 * i + 3]
                if not same:
                    problems.append(f"{key}: {column} expected {e!r}, exdep {a!r}")

    return n_expected, n_structural + n_differing, problems


# --------------------------------------------------------------------------- manifest


def manifest_path(url):
    """The real path of a manifest `file` entry (a file:// URL or a plain path)."""
    parsed = urlparse(url)
    path = unquote(parsed.path) if parsed.scheme == "file" else url
    return os.path.realpath(path)


def check_manifest(con, outdir, inputs):
    """Step 8: the manifest's per-file record counts. Returns difference lines."""
    path = os.path.join(outdir, "_manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        return [f"cannot read {path}: {e}"]

    entries = {}
    problems = []
    for entry in manifest.get("inputs", []):
        entries[manifest_path(entry["file"])] = entry

    read = dict(con.execute("SELECT src, count(*) FROM raw GROUP BY src").fetchall())
    accepted = {src: (n, v) for src, n, v in con.execute(
        "SELECT src, count(*), sum(value) FROM cube_rows GROUP BY src").fetchall()}

    for src in inputs:
        entry = entries.get(src)
        if entry is None:
            problems.append(f"{src}: not listed in the manifest")
            continue
        want_read = read.get(src, 0)
        want_records, want_value = accepted.get(src, (0, 0.0))
        got_read = entry["read"]
        got_records = entry["accepted"]["records"]
        got_value = entry["accepted"]["value"]
        rejected = sum(t["records"] for t in entry["rejected"].values())
        excluded = sum(t["records"] for t in entry["excluded"].values())

        if got_read != want_read:
            problems.append(f"{src}: read expected {want_read}, manifest {got_read}")
        if got_records != want_records:
            problems.append(f"{src}: accepted.records expected {want_records}, manifest {got_records}")
        if not con.execute("SELECT agrees(?::DOUBLE, ?::DOUBLE)", [want_value, got_value]).fetchone()[0]:
            problems.append(f"{src}: accepted.value expected {want_value!r}, manifest {got_value!r}")
        if got_read != got_records + rejected + excluded:
            problems.append(f"{src}: manifest does not balance: read {got_read} != accepted "
                            f"{got_records} + rejected {rejected} + excluded {excluded}")

    for extra in sorted(set(entries) - set(inputs)):
        problems.append(f"{extra}: listed in the manifest but not given as an input")
    return problems


# --------------------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", required=True, help="folder with the four code tables")
    parser.add_argument("--output", required=True, help="exdep's output root")
    parser.add_argument("--years", required=True, help="comma-separated years, e.g. 2017,2018")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="canonical .csv/.parquet files")
    args = parser.parse_args(argv)
    try:
        args.years = sorted({int(y) for y in args.years.split(",") if y.strip()})
    except ValueError:
        parser.error(f"--years must be comma-separated integers, got {args.years!r}")
    if not args.years:
        parser.error("--years is empty")
    # Inputs by real path, each once, in the order given.
    args.inputs = list(dict.fromkeys(os.path.realpath(p) for p in args.inputs))
    for p in args.inputs:
        if not os.path.isfile(p):
            parser.error(f"input not found: {p}")
    return args


def main(argv=None):
    args = parse_args(argv)
    con = duckdb.connect()
    try:
        define_macros(con)
        load_config_tables(con, args.configs)
        load_inputs(con, args.inputs)
        build_cube_rows(con, args.years)
        build_cells(con)
        expected_indices(con)
        expected_lq(con)
        expected_region_shares(con)
    except CheckError as e:
        print(f"check_outputs: cannot run: {e}", file=sys.stderr)
        return 2

    failed = False
    summary = []
    for table in OUTPUT_TABLES:
        n_rows, n_differences, problems = compare_table(con, args.output, table)
        summary.append(f"{table} {n_rows} rows")
        if n_differences:
            failed = True
            print(f"{table}: {n_differences} difference(s) (differing rows and table problems)")
            for line in problems[:MAX_REPORTED]:
                print(f"  {table}: {line}")
            if len(problems) > MAX_REPORTED or n_differences > len(problems):
                print(f"  {table}: ... (only the first {MAX_REPORTED} shown)")

    problems = check_manifest(con, args.output, args.inputs)
    summary.append(f"manifest {len(args.inputs)} input file(s)")
    if problems:
        failed = True
        print(f"_manifest.json: {len(problems)} difference(s)")
        for line in problems:
            print(f"  _manifest.json: {line}")

    if failed:
        print("check_outputs: FAILED against " + args.output)
        return 1
    print("check_outputs: OK, agree: " + ", ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
