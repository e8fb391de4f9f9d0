#!/usr/bin/env python3
"""The job of `exdep run`, written as a DuckDB script: the benchmark's peer, with exdep's
acceptance checks, or without them (`--lean`: what a data team writes first).

Reads canonical input files (typed, all at once, in one scan), sums the records by their
raw keys, keeps the valid ones, classifies them with the four code tables, builds the cube
and writes the seven output tables as Hive-partitioned Parquet, one folder per table:

    indices, lq, region_shares, margins, indices_change   partitioned by (year, province)
    top_links, destinations                               partitioned by (year)

(each table's earlier files under OUTPUT are replaced).

With the checks, it is the job as someone who knows DuckDB writes it: the scan sums the
records by their raw key values, and every field check is then made once per distinct
value of its field, not once per record; only the value checks (and the HS code's shape,
which lets the codes of one chapter share a sum) are made per record. It tallies the records
by exdep's reject reasons and exclusion rules and prints the tallies.

The table math is not written here: it is imported from the independent reference check
tests/reference/check_outputs.py (CUBE_ROWS, build_cells, build_units and the expected_*
functions), so this job computes exactly what the reference expects of exdep. Only the input
path differs: the reference reads every field as text to reproduce exdep's reject reasons
one record at a time; this job reads typed columns and checks distinct values.

Usage:
    duckdb_job.py --configs DIR --output OUTDIR --years 2017,...,2022 [--base-year Y]
                  [--top-n N] [--threshold-cny T] [--destination-level country|region]
                  [--threads N] [--lean] INPUT [INPUT ...]

INPUT: canonical .parquet or .csv files (year, month, province, partner, hs_code, value,
currency). Prints a summary (with the checks, the tallies too) and exits 0; exits 2 when
the job cannot run.
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

# An HS code: 2 to 10 digits, in pairs.
HS_CODE = "([0-9]{2}){1,5}"

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

# Why a CSV row DuckDB's typed reader skips is rejected, by the error it recorded: a field
# that is not a number of its column's type, or a row of the wrong shape (exdep's reasons).
CAST_REASONS = {"year": "bad_year", "month": "bad_month", "value": "bad_value"}
SHAPE_REASONS = {"MISSING COLUMNS": "bad_field_count", "TOO MANY COLUMNS": "bad_field_count",
                 "LINE SIZE OVER MAXIMUM": "line_too_long"}


def sql_list(paths):
    return "[" + ", ".join(ref.sql_text(p) for p in paths) + "]"


def typed_records(inputs, checked):
    """The inputs' canonical columns, typed: one SELECT per file kind, each reading all its
    files at once. With `checked`, a value that does not have its column's type is rejected
    later: in Parquet it becomes NULL, and a CSV row with one is skipped and recorded in
    DuckDB's reject_errors table. Without, it stops the job."""
    parquet = [p for p in inputs if p.lower().endswith(".parquet")]
    csv = [p for p in inputs if p.lower().endswith(".csv")]
    other = [p for p in inputs if p not in parquet and p not in csv]
    if other:
        raise ref.CheckError(f"inputs must end in .csv or .parquet: {other}")

    selects = []
    if parquet:
        # Parquet is typed already: the casts are no-ops on exdep's canonical Parquet.
        columns = ", ".join(f"TRY_CAST({c} AS {t}) AS {c}" if checked else c
                            for c, t in COLUMN_TYPES.items())
        selects.append(f"SELECT {columns} FROM read_parquet({sql_list(parquet)})")
    if csv:
        # Typed CSV by header name: codes stay text (a province code would pass for a number).
        types = ", ".join(f"{ref.sql_text(c)}: {ref.sql_text(t)}" for c, t in COLUMN_TYPES.items())
        keep_rejects = ", ignore_errors = true, store_rejects = true" if checked else ""
        selects.append(
            f"SELECT {', '.join(COLUMN_TYPES)} "
            f"FROM read_csv({sql_list(csv)}, header = true, delim = ',', quote = '\"', "
            f"escape = '\"', types = {{{types}}}{keep_rejects})"
        )
    return "\nUNION ALL\n".join(selects)


def check_rates(con, years):
    """Stops the job unless every run year has a usable rate, so that no accepted record's
    value in USD is NULL."""
    year_list = ", ".join(str(y) for y in years)
    missing = con.execute(f"""
        SELECT y FROM unnest([{year_list}]) t(y)
        WHERE y NOT IN (SELECT year FROM rates WHERE isfinite(cny_per_usd) AND cny_per_usd > 0)
        ORDER BY y
    """).fetchall()
    if missing:
        raise ref.CheckError(f"cny_per_usd.csv: no positive rate for years {[m[0] for m in missing]}")


def first_failed(checks):
    """A SQL expression: the reason of the first of `checks` ((reason, condition) pairs, in
    exdep's order) whose condition is not true, or NULL when all pass."""
    whens = "".join(f" WHEN NOT coalesce({passes}, false) THEN {ref.sql_text(reason)}"
                    for reason, passes in checks)
    return f"CASE{whens} END"


def field_checks(con, field, clean, reasons, extra=None):
    """`<field>_checks`: every distinct raw value of `field` among the key groups, `raw`,
    with its clean form `c` (`clean`, an expression of `raw`), a column of each of `reasons`
    (column name: checks of `c`, for first_failed) and of `extra` (column name: expression
    of `c`)."""
    columns = [f"{first_failed(checks)} AS {name}" for name, checks in reasons.items()]
    columns += [f"{expression} AS {name}" for name, expression in (extra or {}).items()]
    con.execute(f"""
        CREATE TABLE {field}_checks AS
        SELECT raw, c AS clean, {', '.join(columns)}
        FROM (SELECT raw, {clean} AS c FROM (SELECT DISTINCT {field} AS raw FROM key_groups))
    """)


def build_cube_rows(con, inputs, years):
    """`accepted` and `cube_rows` for the reference's build_cells, with exdep's checks made
    where they cost least. One scan sums the records by their raw key values and by which
    value check each fails (the only checks made per record, with the HS code's shape);
    each field's checks are then made once per distinct value, the code tables' membership
    included; every key group gets the reason of the first check it fails, in exdep's
    order, so the group's records are rejected or accepted together. Returns the account of
    the records: the number accepted, and the numbers rejected by reason and excluded by
    rule."""
    check_rates(con, years)
    # The HS code is the one key of many values (every code of a chapter): a code of the
    # right shape as given groups by its chapter, any other (untrimmed, malformed, missing)
    # as given, to be checked with the other distinct values.
    con.execute(f"""
        CREATE TABLE key_groups AS
        SELECT year,
               month IS NULL OR month BETWEEN 1 AND 12 AS month_ok,
               province,
               partner,
               CASE WHEN regexp_full_match(hs_code, {ref.sql_text(HS_CODE)})
                    THEN left(hs_code, 2) ELSE hs_code END AS hs_code,
               currency,
               CASE
                   WHEN value IS NULL THEN 'missing_value'
                   WHEN NOT isfinite(value) THEN 'bad_value'
                   WHEN value < 0 THEN 'negative_value'
                   WHEN value > {MAX_VALUE} THEN 'value_too_large'
               END AS value_reason,
               count(*) AS records,
               sum(value) AS value
        FROM ({typed_records(inputs, checked=True)}) AS records
        GROUP BY ALL
    """)
    trimmed = f"nullif(trim(raw, {ref.sql_text(WHITESPACE)}), '')"
    field_checks(
        con, "province", trimmed,
        reasons={
            "before_value": [("missing_province", "c IS NOT NULL"),
                             ("bad_province_code", "regexp_full_match(c, '[0-9]{2}|[A-Z]{3}')")],
            "after_value": [("unknown_province", "c IN (SELECT code FROM provinces)"
                                                 " OR c IN (SELECT iso3 FROM partner_regions)")],
        },
        extra={"is_province": "c IN (SELECT code FROM provinces)"},
    )
    field_checks(
        con, "partner", f"upper({trimmed})",
        reasons={
            "before_value": [("missing_partner", "c IS NOT NULL"),
                             ("bad_partner_code", "regexp_full_match(c, '[A-Z]{3}')")],
            "after_value": [("unknown_partner", "c IN (SELECT iso3 FROM partner_regions)")],
        },
    )
    field_checks(
        con, "hs_code", trimmed,
        reasons={
            "before_value": [("missing_hs_code", "c IS NOT NULL"),
                             ("bad_hs_code", f"regexp_full_match(c, {ref.sql_text(HS_CODE)})")],
            "after_value": [("unknown_hs_chapter",
                             "left(c, 2) IN (SELECT chapter FROM hs_chapters)")],
        },
        extra={"excluded": "left(c, 2) IN "
                            "(SELECT chapter FROM hs_chapters WHERE category = 'excluded')"},
    )
    field_checks(
        con, "currency", f"upper({trimmed})",
        reasons={"after_value": [("missing_currency", "c IS NOT NULL"),
                                 ("bad_currency", "c IN ('USD', 'CNY')")]},
    )
    year_list = ", ".join(str(y) for y in years)
    # exdep's order: year, month, the fields' shapes, the value, the currency, the codes.
    con.execute(f"""
        CREATE TABLE key_checks AS
        SELECT g.year, pv.clean AS province, pa.clean AS partner, hs.clean AS hs_code,
               cu.clean AS currency, g.records, g.value,
               coalesce(
                   {first_failed([("missing_year", "g.year IS NOT NULL"),
                                  ("year_outside_run", f"g.year IN ({year_list})"),
                                  ("bad_month", "g.month_ok")])},
                   pv.before_value, pa.before_value, hs.before_value,
                   g.value_reason,
                   cu.after_value, pv.after_value, pa.after_value, hs.after_value
               ) AS reason,
               CASE
                   WHEN hs.excluded THEN 'excluded_hs_chapter'
                   WHEN pv.is_province AND pa.clean = 'CHN' THEN 'partner_is_china'
               END AS rule
        FROM key_groups g
        JOIN province_checks pv ON pv.raw IS NOT DISTINCT FROM g.province
        JOIN partner_checks  pa ON pa.raw IS NOT DISTINCT FROM g.partner
        JOIN hs_code_checks  hs ON hs.raw IS NOT DISTINCT FROM g.hs_code
        JOIN currency_checks cu ON cu.raw IS NOT DISTINCT FROM g.currency
    """)
    # Every accepted group's value in USD has a rate (check_rates), so the reference's
    # check of value_usd needs no second look. CUBE_ROWS leaves out the excluded groups.
    con.execute("""
        CREATE VIEW accepted AS
        SELECT '' AS src, year, province, partner, hs_code, value, currency
        FROM key_checks
        WHERE reason IS NULL
    """)
    con.execute(f"CREATE VIEW cube_rows AS {ref.CUBE_ROWS}")
    account = {"accepted": 0, "rejected": {}, "excluded": {}}
    for reason, rule, records in con.execute("""
        SELECT reason, CASE WHEN reason IS NULL THEN rule END, sum(records)
        FROM key_checks
        GROUP BY ALL
    """).fetchall():
        if reason is not None:
            account["rejected"][reason] = records
        elif rule is not None:
            account["excluded"][rule] = records
        else:
            account["accepted"] = records
    for reason, records in skipped_rows(con, inputs):
        account["rejected"][reason] = account["rejected"].get(reason, 0) + records
    return account


def skipped_rows(con, inputs):
    """The CSV rows the typed reader skipped, counted by reason: each row's reason is that of
    the first error DuckDB recorded for it, a wrong shape before a field that is not a number
    of its type, fields in the file's (and exdep's) order."""
    if not any(p.lower().endswith(".csv") for p in inputs):
        return []
    cast_reason = "".join(f" WHEN {ref.sql_text(c)} THEN {ref.sql_text(r)}"
                          for c, r in CAST_REASONS.items())
    shape_reason = "".join(f" WHEN {ref.sql_text(e)} THEN {ref.sql_text(r)}"
                           for e, r in SHAPE_REASONS.items())
    reason = (f"CASE CAST(error_type AS VARCHAR) WHEN 'CAST' THEN CASE column_name{cast_reason} END"
              f"{shape_reason} ELSE lower(replace(CAST(error_type AS VARCHAR), ' ', '_')) END")
    return con.execute(f"""
        SELECT reason, count(*)
        FROM (SELECT arg_min({reason}, (error_type = 'CAST', column_idx)) AS reason
              FROM reject_errors
              GROUP BY scan_id, file_id, line)
        GROUP BY reason
    """).fetchall()


def build_lean_cube_rows(con, inputs, years, products):
    """`cube_rows` as a data team writes it first, without exdep's checks: one scan sums the
    records by their raw keys (year, origin, partner, HS chapter, currency; with `products`
    the HS6 product in place of the chapter), and the code tables and rates are joined to
    those sums, not to every record."""
    year_list = ", ".join(str(y) for y in years)
    digits = 6 if products else 2
    con.execute(f"""
        CREATE TABLE accepted AS
        SELECT '' AS src, year, province, partner, left(hs_code, {digits}) AS hs_code, currency,
               sum(value) AS value
        FROM ({typed_records(inputs, checked=False)}) AS records
        WHERE year IN ({year_list})
        GROUP BY ALL
    """)
    con.execute(f"CREATE VIEW cube_rows AS {ref.CUBE_ROWS}")


def account_line(account):
    """exdep's account of the records, as its run prints it: read = accepted + rejected (by
    reason) + excluded (by rule)."""
    def part(name, tallies):
        listed = ", ".join(f"{k} {n}" for k, n in sorted(tallies.items()))
        return f"{name} {sum(tallies.values())}" + (f" ({listed})" if listed else "")

    rejected, excluded = account["rejected"], account["excluded"]
    read = account["accepted"] + sum(rejected.values()) + sum(excluded.values())
    return (f"read {read} = accepted {account['accepted']} + {part('rejected', rejected)} + "
            f"{part('excluded', excluded)}")


def lean_product_margins(con, years, reference):
    """`expected_product_margins` as a data team writes it with DuckDB: the product cells
    (HS6) summed once, the nation's beside them, each year joined with the previous one on
    (origin, partner, product), the roll-ups as grouping sets, and the Hummels-Klenow
    reference joined on (year, partner, product). The same rows and columns as the
    reference's (which sums the reference per cell in a subquery, to be checkable line by
    line), so run.sh can compare row counts."""
    pairs = ", ".join(str(y) for y in years if y - 1 in years) or "NULL"
    rest = reference == "rest-of-nation"

    def destination_sets(keys):
        """The row groupings of `product_margins` after `keys`: by partner, by region and
        over all destinations, per category and over all categories."""
        rollups = ["category, region, partner", "category, region", "category",
                   "region, partner", "region", ""]
        return "GROUPING SETS (" + ", ".join(
            f"({keys}, {rollup})" if rollup else f"({keys})" for rollup in rollups) + ")"
    rolled = """coalesce(category, 'all') AS category, coalesce(region, 'all') AS region,
        coalesce(partner, 'all') AS partner"""
    con.execute("""
        CREATE TABLE lean_product_cells AS
        WITH origins AS (
            SELECT year, province, kind, partner, region, category, product,
                   sum(value_usd) AS x, sum(value_cny) AS x_cny
            FROM cube_rows GROUP BY ALL HAVING sum(value_usd) > 0
        )
        SELECT * FROM origins
        UNION ALL
        SELECT year, 'CN', 'national', partner, region, category, product, sum(x), sum(x_cny)
        FROM origins WHERE kind = 'province' GROUP BY year, partner, region, category, product
    """)
    con.execute(f"""
        CREATE TABLE expected_product_margins AS
        WITH joined AS ({ref.product_pairs("lean_product_cells", pairs)}),
        growth AS (
            SELECT year, province, {rolled}, {ref.PRODUCT_GROWTH}
            FROM joined GROUP BY {destination_sets("year, province")}
        ),
        national AS (
            SELECT * FROM lean_product_cells WHERE kind = 'national' AND year IN ({pairs})
        ),
        served AS (
            SELECT year, province, {rolled}, sum(own) AS own, sum(served) AS served
            FROM (
                SELECT o.year, o.province, o.category, o.region, o.partner, o.x AS own,
                       n.x {"- o.x" if rest else ""} AS served
                FROM lean_product_cells o
                JOIN national n USING (year, partner, product)
                WHERE o.kind = 'province'
            ) GROUP BY {destination_sets("year, province")}
        ),
        reference_totals AS (
            SELECT year, {rolled}, sum(x) AS national
            FROM national GROUP BY {destination_sets("year")}
        ),
        hk AS (
            SELECT s.year, s.province, s.category, s.region, s.partner, s.own, s.served,
                   t.national {"- s.own" if rest else ""} AS reference_total
            FROM served s JOIN reference_totals t USING (year, category, region, partner)
        )
        SELECT g.*,
               CASE WHEN h.reference_total > 0 THEN h.served / h.reference_total END
                   AS hk_extensive,
               CASE WHEN h.served > 0 THEN h.own / h.served END AS hk_intensive
        FROM growth g
        LEFT JOIN hk h USING (year, province, category, region, partner)
    """)


def publish_tables(con, args, product_reference=None):
    """The seven tables from `cube_rows`, with the reference's SQL, each written as
    OUTPUT/<table>/, Hive-partitioned Parquet (zstd); with `product_reference` (`nation` or
    `rest-of-nation`) `product_margins` too. Returns their row counts."""
    ref.build_cells(con)
    ref.build_units(con, args.destination_level)
    ref.expected_indices(con)
    ref.expected_lq(con)
    ref.expected_region_shares(con)
    ref.expected_margins(con, args.years)
    ref.expected_top_links(con, args.top_n)
    ref.expected_destinations(con, args.threshold_cny, args.base_year)
    ref.expected_indices_change(con, args.base_year)
    tables = dict(TABLES)
    if product_reference:
        lean_product_margins(con, args.years, product_reference)
        tables["product_margins"] = ref.PRODUCT_MARGINS["partitions"]
    os.makedirs(args.output, exist_ok=True)
    counts = {}
    for table, partitions in tables.items():
        folder = os.path.join(args.output, table)
        con.execute(f"""
            COPY (SELECT * FROM expected_{table}) TO {ref.sql_text(folder)}
            (FORMAT parquet, PARTITION_BY ({', '.join(partitions)}), COMPRESSION zstd,
             OVERWRITE)
        """)
        counts[table] = con.execute(f"SELECT count(*) FROM expected_{table}").fetchone()[0]
    return counts


def job_parser(description):
    """The reference's run arguments, and --threads."""
    parser = ref.run_parser(description, "output root (one folder per table)")
    parser.add_argument("--threads", type=int, default=None,
                        help="worker threads (default: one per core)")
    return parser


def job_args(parser, argv):
    """The arguments, checked and normalized as the reference does."""
    args = ref.check_run_args(parser, parser.parse_args(argv))
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def parse_args(argv):
    parser = job_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--lean", action="store_true",
                        help="the job without exdep's checks, summing by raw keys first")
    parser.add_argument("--product-margins", choices=["nation", "rest-of-nation"],
                        help="also write product_margins (with --lean only), with this "
                             "Hummels-Klenow reference")
    args = job_args(parser, argv)
    if args.product_margins and not args.lean:
        parser.error("--product-margins needs --lean")
    return args


def connect(args):
    """A DuckDB connection set up for the job: threads, the reference's macros and the
    code tables of `args.configs` loaded."""
    con = duckdb.connect()
    if args.threads is not None:
        con.execute(f"SET threads = {args.threads}")
    # Row order of the intermediate tables carries no meaning.
    con.execute("SET preserve_insertion_order = false")
    ref.define_macros(con)
    ref.load_config_tables(con, args.configs)
    return con


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        con = connect(args)
        # The one scan of the inputs.
        if args.lean:
            build_lean_cube_rows(con, args.inputs, args.years, args.product_margins)
        else:
            account = build_cube_rows(con, args.inputs, args.years)
        counts = publish_tables(con, args, args.product_margins)
    except (ref.CheckError, duckdb.Error) as e:
        print(f"duckdb_job: cannot run: {e}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if not args.lean:
        print("duckdb_job: " + account_line(account))
    print("duckdb_job: " + ", ".join(f"{t} {n} rows" for t, n in counts.items())
          + f" ({len(args.inputs)} input file(s), {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
