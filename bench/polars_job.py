#!/usr/bin/env python3
"""The lean job of `exdep run` with Polars' lazy API: the benchmark's Polars peer, doing what
`duckdb_job.py --lean` does (no checks) on the same inputs and code tables.

The cube rows are Polars' work, one lazy query run by its streaming engine: a scan of the
inputs (scan_parquet, scan_csv) sums the records of the run's years by their raw keys (year,
origin, partner, HS chapter, currency), the heavy part; the code tables and the rates are
then joined to those sums, and each sum is valued in USD and CNY.

The seven tables are not Polars' work: DuckDB computes them from that frame with the table
SQL of the reference check tests/reference/check_outputs.py (from build_cells on, through
duckdb_job.publish_tables), and writes them as the DuckDB jobs do: Hive-partitioned zstd
Parquet, one folder per table under OUTPUT. So the tables' math is the reference's, as in
the DuckDB jobs, and only the step that reads every record differs between the peers. The
code tables are read by the reference's loader too (the same parsing and checks as the
other peers) and handed to Polars.

Usage:
    polars_job.py --configs DIR --output OUTDIR --years 2017,...,2022 [--base-year Y]
                  [--top-n N] [--threshold-cny T] [--destination-level country|region]
                  [--threads N] INPUT [INPUT ...]

INPUT: canonical .parquet or .csv files (year, month, province, partner, hs_code, value,
currency). --threads is Polars' and DuckDB's. Prints one summary line and exits 0; exits 2
when the job cannot run.
"""

import os
import sys
import time

# Importing the DuckDB job (and through it the reference) must not leave a bytecode cache.
sys.dont_write_bytecode = True

import duckdb  # noqa: E402
import duckdb_job  # noqa: E402

ref = duckdb_job.ref


def cube_rows(pl, con, inputs, years):
    """The lean cube rows, as the reference's CUBE_ROWS gives them from `accepted` in
    `duckdb_job.py --lean`: one row per sum by raw keys that classifies, with its origin's
    kind, its partner's region, its chapter's category and its value in USD and CNY. Only
    the columns build_cells reads."""
    parquet = [p for p in inputs if p.lower().endswith(".parquet")]
    csv = [p for p in inputs if p.lower().endswith(".csv")]
    other = [p for p in inputs if p not in parquet and p not in csv]
    if other:
        raise ref.CheckError(f"inputs must end in .csv or .parquet: {other}")
    # The DuckDB jobs' column types, in Polars.
    types = {"INTEGER": pl.Int32, "VARCHAR": pl.String, "DOUBLE": pl.Float64}
    schema = {c: types[t] for c, t in duckdb_job.COLUMN_TYPES.items()}
    scans = []
    if parquet:
        # Canonical Parquet is typed already; the casts only make both kinds of scan alike.
        scans.append(pl.scan_parquet(parquet).select(
            pl.col(c).cast(t) for c, t in schema.items()))
    if csv:
        # Typed by header name: codes stay text (a province code would pass for a number).
        scans.append(pl.scan_csv(csv, schema_overrides=schema))
    sums = (
        pl.concat(scans)
        .filter(pl.col("year").is_in(years))
        .group_by("year", "province", "partner",
                  pl.col("hs_code").str.slice(0, 2).alias("chapter"), "currency")
        .agg(pl.col("value").sum())
    )

    def code_table(name, columns):
        return con.sql(f"SELECT {columns} FROM {name}").pl().lazy()

    # An origin is a province of provinces.csv or a reporter country of partner_regions.csv;
    # only a province's exports to CHN are left out, and so are the excluded chapters.
    provinces = code_table("provinces", "code AS province, 'province' AS province_kind")
    countries = code_table("partner_regions", "iso3 AS province, 'country' AS country_kind")
    regions = code_table("partner_regions", "iso3 AS partner, region")
    chapters = code_table("hs_chapters", "chapter, category")
    rates = code_table("rates", "year, cny_per_usd")
    value, rate, currency = pl.col("value"), pl.col("cny_per_usd"), pl.col("currency")
    return (
        sums.join(provinces, on="province", how="left")
        .join(countries, on="province", how="left")
        .join(regions, on="partner", how="inner")
        .join(chapters, on="chapter", how="inner")
        .join(rates, on="year", how="left")
        .with_columns(kind=pl.coalesce("province_kind", "country_kind"))
        .filter(pl.col("kind").is_not_null()
                & (pl.col("category") != "excluded")
                & ((pl.col("kind") != "province") | (pl.col("partner") != "CHN")))
        .select(
            "year", "province", "kind", "partner", "region", "category",
            value_usd=pl.when(currency == "USD").then(value).otherwise(value / rate),
            value_cny=pl.when(currency == "CNY").then(value).otherwise(value * rate),
        )
        .collect(engine="streaming")
    )


def parse_args(argv):
    return duckdb_job.job_args(duckdb_job.job_parser(__doc__.split("\n\n")[0]), argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads is not None:
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    # Polars sizes its thread pool when it is imported: only now is --threads known.
    import polars as pl

    try:
        con = duckdb_job.connect(args)
        rows = cube_rows(pl, con, args.inputs, args.years)
        con.register("cube_rows", rows)
        counts = duckdb_job.publish_tables(con, args)
    except (ref.CheckError, duckdb.Error, pl.exceptions.PolarsError) as e:
        print(f"polars_job: cannot run: {e}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print("polars_job: " + ", ".join(f"{t} {n} rows" for t, n in counts.items())
          + f" ({len(args.inputs)} input file(s), {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
