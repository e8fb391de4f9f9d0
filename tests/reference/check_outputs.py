#!/usr/bin/env python3
"""Independent reference check of exdep's output tables.

This script is an independent re-implementation of exdep's arithmetic, used by exdep's
tests. It shares no code with exdep: it reads the same raw inputs and code tables,
recomputes the `indices`, `lq`, `region_shares`, `margins`, `top_links`, `destinations` and
`indices_change` tables (and `product_margins`, with `--product-margins`) with DuckDB SQL, and compares them with the Parquet tables exdep
wrote. It also checks the per-file record counts in exdep's `_manifest.json`.

Origins are of two kinds. A record's `province` field (trimmed, case kept) is either a
province code of provinces.csv (two digits) or a reporter country, an ISO3 code of
partner_regions.csv (three capitals, e.g. USA). The national aggregate `CN` is the sum over
province origins only; a reporter country is its own origin, never part of `CN`. Records
to partner CHN are excluded from province origins only (re-imports); a reporter country's
exports to CHN are kept. By kind:
    quadrant       against the means of hhi and entropy over the origins of the same kind
                   (provinces or countries, never `CN`) in that year and category; NULL for CN
    hk_extensive,  against the nation, for provinces; 1.0 for CN; NULL for countries
    hk_intensive
    top_links      province origins only (not CN, not countries); shares of CN's total
    destinations   national (`CN`) exports; a partner above the threshold in the base year
                   with no national exports in a year that has some is listed in that year
                   with zero exports, as `left`

Usage:
    check_outputs.py --configs DIR --output OUTDIR --years 2017,2018
                     [--base-year Y] [--top-n N] [--threshold-cny T]
                     [--destination-level country|region]
                     [--quadrant-cut year-mean|base-year-mean|year-median]
                     [--product-margins nation|rest-of-nation] INPUT [INPUT ...]

    DIR     folder with hs_chapters.csv, partner_regions.csv, provinces.csv, cny_per_usd.csv
    OUTDIR  exdep's output root (one folder per table, _manifest.json)
    INPUT   canonical input files, each .csv or .parquet
    Y       base year of `destinations` and `indices_change`, one of --years (default: the first)
    N       number of links kept per year and category in `top_links` (default 10)
    T       threshold in CNY of a partner in `destinations` (default 1e11)
    level   what a destination is for the concentration indices and `margins`: a partner
            country, or a region of partners (default country)

Exit status: 0 when everything agrees (one summary line is printed), 1 when any difference
is found (each is printed, at most 20 per table), 2 when the check itself cannot run.
Needs Python 3 and the `duckdb` package only.
"""

import argparse
import csv
import glob
import json
import math
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

# Output tables: the Hive partition columns of the folder layout, the key columns, and the
# compared columns by kind: numbers compared with a relative tolerance (`approx`), and
# integers, text and booleans compared exactly (each must also have a column type of its kind).
OUTPUT_TABLES = {
    "indices": dict(
        partitions=["year", "province"],
        keys=["year", "province", "category"],
        approx=["exports_usd", "exports_cny", "hhi", "hhi_norm", "entropy", "evenness", "equivalent_markets",
                "equivalent_markets_entropy", "theil", "theil_between", "theil_within",
                "specialization", "hk_extensive", "hk_intensive"],
        integer=["destinations"],
        text=["quadrant"],
        boolean=[],
    ),
    "lq": dict(
        partitions=["year", "province"],
        keys=["year", "province", "partner", "category"],
        approx=["exports_usd", "exports_cny", "lq"],
        integer=[],
        text=[],
        boolean=[],
    ),
    "region_shares": dict(
        partitions=["year", "province"],
        keys=["year", "province", "region", "category"],
        approx=["exports_usd", "exports_cny", "share"],
        integer=[],
        text=[],
        boolean=[],
    ),
    "margins": dict(
        partitions=["year", "province"],
        keys=["year", "province", "category", "region"],
        approx=["delta", "new", "lost", "intensive", "delta_cny", "new_cny", "lost_cny",
                "intensive_cny"],
        integer=[],
        text=[],
        boolean=[],
    ),
    "top_links": dict(
        partitions=["year"],
        keys=["year", "category", "rank"],
        approx=["exports_usd", "exports_cny", "share_of_category"],
        integer=[],
        text=["province", "partner"],
        boolean=[],
    ),
    "destinations": dict(
        partitions=["year"],
        keys=["year", "partner"],
        approx=["exports_usd", "exports_cny"],
        integer=[],
        text=["region", "status"],
        boolean=["above_threshold"],
    ),
    "indices_change": dict(
        partitions=["year", "province"],
        keys=["year", "province", "category", "index"],
        approx=["value", "change_from_previous", "change_from_base", "exports_cagr",
                "exports_cagr_cny"],
        integer=[],
        text=[],
        boolean=[],
    ),
}

# Published with `product-margins = true` only; checked when --product-margins is given.
PRODUCT_MARGINS = dict(
    partitions=["year", "province"],
    keys=["year", "province", "category", "region", "partner"],
    approx=["delta_usd", "new_usd", "lost_usd", "continuing_usd", "delta_cny", "new_cny",
            "lost_cny", "continuing_cny", "hk_extensive", "hk_intensive"],
    integer=["new_products", "lost_products", "continuing_products"],
    text=[],
    boolean=[],
)

# SQL type of a key column; every other key is text.
KEY_TYPES = {"year": "INTEGER", "rank": "BIGINT"}

# SQL type each kind of column is compared as, and the Parquet column types accepted for it.
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
KINDS = {
    "approx": ("DOUBLE", lambda t: t in {"FLOAT", "DOUBLE"} | INTEGER_TYPES
                                   or t.startswith("DECIMAL")),
    "integer": ("BIGINT", lambda t: t in INTEGER_TYPES),
    "text": ("VARCHAR", lambda t: t == "VARCHAR"),
    "boolean": ("BOOLEAN", lambda t: t == "BOOLEAN"),
}

# The indices listed in `indices_change`, in this order (`quadrant`, text, is not).
CHANGE_INDICES = [
    "exports_usd", "exports_cny", "destinations", "hhi", "hhi_norm", "entropy", "evenness",
    "equivalent_markets", "equivalent_markets_entropy", "theil", "theil_between",
    "theil_within", "specialization", "hk_extensive", "hk_intensive",
]

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


# Step 3: the accepted records with their kind of origin ('province' or 'country'), region,
# category and value in both currencies. An origin is a province of provinces.csv or a
# reporter country of partner_regions.csv (the two kinds of code do not overlap: two digits,
# three capitals); only a province's exports to CHN are excluded.
CUBE_ROWS = """
    SELECT
        a.src,
        a.year,
        a.province,
        CASE WHEN v.code IS NOT NULL THEN 'province' ELSE 'country' END AS kind,
        a.partner,
        p.region,
        h.category,
        left(a.hs_code, 6) AS product,
        a.value,
        CASE a.currency
            WHEN 'USD' THEN a.value
            ELSE a.value / r.cny_per_usd
        END AS value_usd,
        CASE a.currency
            WHEN 'CNY' THEN a.value
            ELSE a.value * r.cny_per_usd
        END AS value_cny
    FROM accepted a
    LEFT JOIN provinces       v ON v.code = a.province
    LEFT JOIN partner_regions o ON o.iso3 = a.province
    JOIN partner_regions      p ON p.iso3 = a.partner
    JOIN hs_chapters          h ON h.chapter = left(a.hs_code, 2)
    LEFT JOIN rates           r ON r.year = a.year
    WHERE (v.code IS NOT NULL OR o.iso3 IS NOT NULL)
      AND h.category <> 'excluded'
      AND (v.code IS NULL OR a.partner <> 'CHN')
"""


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
          AND (regexp_full_match(province, '[0-9]{{2}}')
               OR regexp_full_match(province, '[A-Z]{{3}}'))
          AND regexp_full_match(upper(partner), '[A-Z]{{3}}')
          AND regexp_full_match(hs_code, '([0-9]{{2}}){{1,5}}')
          AND regexp_full_match(value, '{FLOAT_SYNTAX}')
          AND isfinite(TRY_CAST(value AS DOUBLE))
          AND TRY_CAST(value AS DOUBLE) >= 0
          AND TRY_CAST(value AS DOUBLE) <= 1e15
          AND upper(currency) IN ('USD', 'CNY')
    """)
    con.execute(f"CREATE TABLE cube_rows AS {CUBE_ROWS}")
    no_rate = con.execute(
        "SELECT DISTINCT year FROM cube_rows WHERE value_usd IS NULL ORDER BY year"
    ).fetchall()
    if no_rate:
        raise CheckError(f"cny_per_usd.csv: no usable rate for years {[r[0] for r in no_rate]}")


def build_cells(con):
    """Steps 4-5: cube cells, national cells ('CN', the sum over province origins only), and
    the 'all' category; x in USD, x_cny in CNY. `kind` is the kind of origin: 'province',
    'country' (a reporter country) or 'national' (CN)."""
    con.execute("""
        CREATE TABLE cube AS
        SELECT year, province, kind, partner, region, category,
               sum(value_usd) AS x,
               sum(value_cny) AS x_cny
        FROM cube_rows
        GROUP BY year, province, kind, partner, region, category
        HAVING sum(value_usd) > 0
    """)
    con.execute("""
        CREATE TABLE cells_by_category AS
        SELECT year, province, kind, partner, region, category, x, x_cny
        FROM cube
        UNION ALL
        SELECT year, 'CN' AS province, 'national' AS kind, partner, region, category,
               sum(x) AS x, sum(x_cny) AS x_cny
        FROM cube
        WHERE kind = 'province'
        GROUP BY year, partner, region, category
    """)
    con.execute("""
        CREATE TABLE cells AS
        SELECT year, province, kind, partner, region, category, x, x_cny
        FROM cells_by_category
        UNION ALL
        SELECT year, province, kind, partner, region, 'all' AS category,
               sum(x) AS x, sum(x_cny) AS x_cny
        FROM cells_by_category
        GROUP BY year, province, kind, partner, region
    """)


def build_units(con, level):
    """Destination units of the concentration indices and margins: a partner country with its
    region (level 'country'), or a region (level 'region'); `unit` names the unit, `kind` is
    the origin's kind as in `cells`."""
    if level == "country":
        con.execute("""
            CREATE TABLE units AS
            SELECT year, province, kind, category, partner AS unit, region, x, x_cny
            FROM cells
        """)
    else:
        con.execute("""
            CREATE TABLE units AS
            SELECT year, province, kind, category, region AS unit, region, sum(x) AS x,
                   sum(x_cny) AS x_cny
            FROM cells
            GROUP BY year, province, kind, category, region
        """)


# --------------------------------------------------------------------------- expected tables


def expected_indices(con, quadrant_cut="year-mean", base_year=None):
    """Concentration of each origin's exports of a category over destination units, the
    Theil decomposition by region, specialization, the Hummels-Klenow margins over partner
    countries (province origins and CN only), and the quadrant of each origin against the
    origins of its own kind: against their means in the year ('year-mean'), in the base
    year ('base-year-mean') or their medians in the year ('year-median')."""
    center = "median" if quadrant_cut == "year-median" else "avg"
    if quadrant_cut == "base-year-mean":
        means_of, means_on = f"year = {int(base_year)} AND ", "category, kind"
    else:
        means_of, means_on = "", "year, category, kind"
    con.execute(f"""
        CREATE TABLE expected_indices AS
        WITH shares AS (
            SELECT year, province, kind, category, region, x, x_cny,
                   x / sum(x) OVER (PARTITION BY year, province, category) AS s
            FROM units
        ),
        summary AS (
            SELECT year, province, kind, category,
                   sum(x)                                      AS exports_usd,
                   sum(x_cny)                                  AS exports_cny,
                   count(*) FILTER (WHERE x > 0)               AS destinations,
                   sum(s * s)                                  AS hhi,
                   -sum(CASE WHEN s > 0 THEN s * ln(s) END)    AS entropy
            FROM shares
            GROUP BY year, province, kind, category
        ),
        region_shares AS (
            SELECT year, province, category, region, s,
                   sum(s) OVER (PARTITION BY year, province, category, region)   AS s_g,
                   count(*) OVER (PARTITION BY year, province, category, region) AS n_g
            FROM shares
        ),
        regions AS (
            -- One row per region g: S_g, N_g and V_g, the entropy of the units within g.
            SELECT year, province, category, region,
                   any_value(s_g)                                              AS s_g,
                   any_value(n_g)                                              AS n_g,
                   -sum(CASE WHEN s > 0 THEN (s / s_g) * ln(s / s_g) END)      AS v_g
            FROM region_shares
            GROUP BY year, province, category, region
        ),
        theil AS (
            SELECT r.year, r.province, r.category,
                   sum(r.s_g * ln(r.s_g * m.destinations / r.n_g))  AS theil_between,
                   sum(r.s_g * (ln(r.n_g) - r.v_g))                 AS theil_within
            FROM regions r
            JOIN summary m USING (year, province, category)
            GROUP BY r.year, r.province, r.category
        ),
        category_totals AS (
            SELECT year, province, category, sum(x) AS e_m
            FROM cells
            WHERE category <> 'all'
            GROUP BY year, province, category
        ),
        partner_totals AS (
            SELECT year, province, partner, x AS e_r
            FROM cells
            WHERE category = 'all'
        ),
        origin_totals AS (
            SELECT year, province, sum(x) AS e_n
            FROM cells
            WHERE category = 'all'
            GROUP BY year, province
        ),
        specialization AS (
            -- Every partner of the origin, with 0 for a category it does not receive.
            SELECT m.year, m.province, m.category,
                   sum(abs(coalesce(c.x, 0.0) / m.e_m - r.e_r / n.e_n)) AS specialization
            FROM category_totals m
            JOIN partner_totals r ON r.year = m.year AND r.province = m.province
            JOIN origin_totals n  ON n.year = m.year AND n.province = m.province
            LEFT JOIN cells c     ON c.year = m.year AND c.province = m.province
                                 AND c.category = m.category AND c.partner = r.partner
            GROUP BY m.year, m.province, m.category
        ),
        national_totals AS (
            SELECT year, category, sum(x) AS national_total
            FROM cells
            WHERE province = 'CN'
            GROUP BY year, category
        ),
        served AS (
            -- Province origins and CN only: a reporter country is not part of the nation.
            SELECT p.year, p.province, p.category,
                   sum(n.x) AS served,
                   sum(p.x) AS x_p
            FROM cells p
            JOIN cells n ON n.year = p.year AND n.province = 'CN'
                        AND n.category = p.category AND n.partner = p.partner
            WHERE p.x > 0 AND p.kind IN ('province', 'national')
            GROUP BY p.year, p.province, p.category
        ),
        hummels_klenow AS (
            SELECT v.year, v.province, v.category,
                   CASE WHEN v.province = 'CN' THEN 1.0 ELSE v.served / t.national_total END
                       AS hk_extensive,
                   CASE WHEN v.province = 'CN' THEN 1.0 ELSE v.x_p / v.served END
                       AS hk_intensive
            FROM served v
            JOIN national_totals t USING (year, category)
        ),
        means AS (
            -- One center per kind of origin: provinces, and reporter countries; never CN.
            SELECT {means_on}, {center}(hhi) AS mean_hhi, {center}(entropy) AS mean_entropy
            FROM summary
            WHERE {means_of}province <> 'CN' AND kind IN ('province', 'country')
            GROUP BY {means_on}
        ),
        quadrants AS (
            SELECT m.year, m.province, m.category,
                   CASE
                       WHEN m.province = 'CN' THEN NULL
                       WHEN high_g AND high_v THEN 'I'
                       WHEN high_v THEN 'II'
                       WHEN NOT high_g THEN 'III'
                       ELSE 'IV'
                   END AS quadrant
            FROM (
                SELECT s.year, s.province, s.category,
                       s.hhi >= a.mean_hhi - 1e-12 * abs(a.mean_hhi)             AS high_g,
                       s.entropy >= a.mean_entropy - 1e-12 * abs(a.mean_entropy) AS high_v
                FROM summary s
                LEFT JOIN means a USING ({means_on})
            ) m
        )
        SELECT m.year, m.province, m.category,
               m.exports_usd,
               m.exports_cny,
               m.destinations,
               m.hhi,
               CASE WHEN m.destinations = 1 THEN NULL
                    ELSE (m.hhi - 1.0 / m.destinations) / (1.0 - 1.0 / m.destinations)
               END AS hhi_norm,
               m.entropy,
               CASE WHEN m.destinations = 1 THEN NULL
                    ELSE m.entropy / ln(m.destinations)
               END AS evenness,
               1.0 / m.hhi                                   AS equivalent_markets,
               exp(m.entropy)                                AS equivalent_markets_entropy,
               ln(m.destinations) - m.entropy                AS theil,
               t.theil_between,
               t.theil_within,
               CASE WHEN m.category = 'all' THEN NULL ELSE z.specialization END
                                                             AS specialization,
               q.quadrant,
               h.hk_extensive,
               h.hk_intensive
        FROM summary m
        LEFT JOIN theil t           USING (year, province, category)
        LEFT JOIN specialization z  USING (year, province, category)
        LEFT JOIN quadrants q       USING (year, province, category)
        LEFT JOIN hummels_klenow h  USING (year, province, category)
    """)


def expected_lq(con):
    """Location quotient of each (origin, partner, category), over the four categories."""
    con.execute("""
        CREATE TABLE expected_lq AS
        WITH totals AS (
            SELECT year, province, partner, category, x_cny,
                   x                                                        AS e_rm,
                   sum(x) OVER (PARTITION BY year, province, partner)       AS e_r,
                   sum(x) OVER (PARTITION BY year, province, category)      AS e_m,
                   sum(x) OVER (PARTITION BY year, province)                AS e_n
            FROM cells
            WHERE category <> 'all'
        )
        SELECT year, province, partner, category,
               e_rm AS exports_usd,
               x_cny AS exports_cny,
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
            SELECT year, province, region, category, sum(x) AS exports_usd,
                   sum(x_cny) AS exports_cny
            FROM cells
            GROUP BY year, province, region, category
        )
        SELECT year, province, region, category,
               exports_usd,
               exports_cny,
               exports_usd / sum(exports_usd) OVER (PARTITION BY year, province, category) AS share
        FROM by_region
    """)


def expected_margins(con, years):
    """Year-on-year change of each origin's exports of a category, split into new, lost and
    continuing destination units; by region of the units and over all of them ('all')."""
    pairs = [y for y in years if y - 1 in years]
    year_list = ", ".join(str(y) for y in pairs) or "NULL"
    con.execute(f"""
        CREATE TABLE expected_margins AS
        WITH eligible AS (
            -- Years t whose previous year t-1 is also a run year with cells.
            SELECT t AS year
            FROM unnest([{year_list}]::INTEGER[]) y(t)
            WHERE t IS NOT NULL AND t - 1 IN (SELECT year FROM units)
        ),
        current AS (
            SELECT u.year, u.province, u.category, u.unit, u.region, u.x, u.x_cny
            FROM units u
            JOIN eligible e ON u.year = e.year
        ),
        previous AS (
            SELECT e.year, u.province, u.category, u.unit, u.region, u.x, u.x_cny
            FROM units u
            JOIN eligible e ON u.year = e.year - 1
        ),
        joined AS (
            SELECT coalesce(c.year, p.year)         AS year,
                   coalesce(c.province, p.province) AS province,
                   coalesce(c.category, p.category) AS category,
                   coalesce(c.region, p.region)     AS region,
                   coalesce(c.x, 0.0)               AS x1,
                   coalesce(p.x, 0.0)               AS x0,
                   coalesce(c.x_cny, 0.0)           AS c1,
                   coalesce(p.x_cny, 0.0)           AS c0
            FROM current c
            FULL OUTER JOIN previous p
                ON c.year = p.year AND c.province = p.province
               AND c.category = p.category AND c.unit = p.unit
        ),
        grouped AS (
            SELECT year, province, category, region, x1, x0, c1, c0 FROM joined
            UNION ALL
            SELECT year, province, category, 'all' AS region, x1, x0, c1, c0 FROM joined
        )
        SELECT year, province, category, region,
               sum(x1) - sum(x0)                                         AS delta,
               sum(CASE WHEN x0 = 0 THEN x1 ELSE 0.0 END)                AS "new",
               sum(CASE WHEN x1 = 0 THEN x0 ELSE 0.0 END)                AS lost,
               sum(CASE WHEN x0 > 0 AND x1 > 0 THEN x1 - x0 ELSE 0.0 END) AS intensive,
               sum(c1) - sum(c0)                                         AS delta_cny,
               sum(CASE WHEN x0 = 0 THEN c1 ELSE 0.0 END)                AS new_cny,
               sum(CASE WHEN x1 = 0 THEN c0 ELSE 0.0 END)                AS lost_cny,
               sum(CASE WHEN x0 > 0 AND x1 > 0 THEN c1 - c0 ELSE 0.0 END) AS intensive_cny
        FROM grouped
        GROUP BY year, province, category, region
        HAVING count(*) FILTER (WHERE x0 > 0 OR x1 > 0) > 0
    """)


def product_pairs(cells, years):
    """SQL: each origin's (partner, product) pairs of `cells` (a product-cell table) in
    `years` (a query of years) and the year before, full-outer-joined: x1 and c1 the exports
    in the year in USD and CNY, x0 and c0 the year before's, 0 where there were none."""
    return f"""
            SELECT coalesce(c.year, p.year + 1) AS year,
                   coalesce(c.province, p.province) AS province,
                   coalesce(c.kind, p.kind) AS kind,
                   coalesce(c.partner, p.partner) AS partner,
                   coalesce(c.region, p.region) AS region,
                   coalesce(c.category, p.category) AS category,
                   coalesce(c.x, 0.0) AS x1, coalesce(p.x, 0.0) AS x0,
                   coalesce(c.x_cny, 0.0) AS c1, coalesce(p.x_cny, 0.0) AS c0
            FROM (SELECT * FROM {cells} WHERE year IN ({years})) c
            FULL OUTER JOIN (SELECT * FROM {cells} WHERE year + 1 IN ({years})) p
              ON c.year = p.year + 1 AND c.province = p.province AND c.partner = p.partner
             AND c.product = p.product"""


# The growth columns of `product_margins` over rows of `product_pairs`.
PRODUCT_GROWTH = """
                   sum(x1) - sum(x0) AS delta_usd,
                   sum(CASE WHEN x0 = 0 THEN x1 ELSE 0 END) AS new_usd,
                   sum(CASE WHEN x1 = 0 THEN x0 ELSE 0 END) AS lost_usd,
                   sum(CASE WHEN x0 > 0 AND x1 > 0 THEN x1 - x0 ELSE 0 END) AS continuing_usd,
                   sum(c1) - sum(c0) AS delta_cny,
                   sum(CASE WHEN x0 = 0 THEN c1 ELSE 0 END) AS new_cny,
                   sum(CASE WHEN x1 = 0 THEN c0 ELSE 0 END) AS lost_cny,
                   sum(CASE WHEN x0 > 0 AND x1 > 0 THEN c1 - c0 ELSE 0 END) AS continuing_cny,
                   count(*) FILTER (WHERE x0 = 0) AS new_products,
                   count(*) FILTER (WHERE x1 = 0) AS lost_products,
                   count(*) FILTER (WHERE x0 > 0 AND x1 > 0) AS continuing_products"""


def expected_product_margins(con, years, reference):
    """Year-on-year change of each origin's exports to each destination split over HS6
    products (the first six digits of the HS code): new products (not exported there the
    year before), lost products and continuing ones, in USD and CNY, with their counts; per
    partner, per region (partner 'all') and over all, per category and over all ('all').
    With them, the Hummels-Klenow margins of year t over the (partner, product) pairs of the
    row, against the nation ('nation') or the nation without the origin ('rest-of-nation');
    NULL for CN and for reporter countries."""
    pairs = [y for y in years if y - 1 in years]
    year_list = ", ".join(str(y) for y in pairs) or "NULL"
    con.execute("""
        CREATE TABLE product_cells AS
        WITH origin_cells AS (
            SELECT year, province, kind, partner, region, category, product,
                   sum(value_usd) AS x, sum(value_cny) AS x_cny
            FROM cube_rows
            GROUP BY year, province, kind, partner, region, category, product
            HAVING sum(value_usd) > 0
        )
        SELECT * FROM origin_cells
        UNION ALL
        SELECT year, 'CN', 'national', partner, region, category, product, sum(x), sum(x_cny)
        FROM origin_cells WHERE kind = 'province'
        GROUP BY year, partner, region, category, product
    """)
    # Each row of `expanded` stands for one grouping of a (partner, product) pair: by
    # partner, by region, over all destinations; per category and over all categories.
    def expanded(source):
        return " UNION ALL ".join(
            f"SELECT *, {category} AS g_category, {region} AS g_region, {partner} AS g_partner "
            f"FROM {source}"
            for category in ("category", "'all'")
            for region, partner in (("region", "partner"), ("region", "'all'"),
                                    ("'all'", "'all'"))
        )
    con.execute(f"""
        CREATE TABLE expected_product_margins AS
        WITH eligible AS (
            SELECT t AS year FROM unnest([{year_list}]::INTEGER[]) y(t)
            WHERE t IS NOT NULL AND t - 1 IN (SELECT year FROM product_cells)
        ),
        joined AS ({product_pairs("product_cells", "SELECT year FROM eligible")}),
        growth AS (
            SELECT year, province, g_category AS category, g_region AS region,
                   g_partner AS partner, {PRODUCT_GROWTH}
            FROM ({expanded("joined")})
            GROUP BY ALL
        ),
        -- The reference of a province's pair: the nation, or the other provinces' exports
        -- (summed directly, so a pair the province alone serves has exactly none).
        own AS (
            SELECT o.*, (
                SELECT sum(q.x) FROM product_cells q
                WHERE q.kind = 'province' AND q.year = o.year AND q.partner = o.partner
                  AND q.product = o.product
                  AND ({reference == "nation"} OR q.province <> o.province)
            ) AS r
            FROM product_cells o
            WHERE o.kind = 'province' AND o.year IN (SELECT year FROM eligible)
        ),
        served AS (
            SELECT year, province, g_category AS category, g_region AS region,
                   g_partner AS partner, sum(x) AS own_total, sum(coalesce(r, 0)) AS served_reference
            FROM ({expanded("own")}) GROUP BY ALL
        ),
        -- Every province's exports in each group, and each province's reference total: the
        -- nation's, or the other provinces' (again summed directly).
        province_groups AS (
            SELECT year, province, g_category AS category, g_region AS region,
                   g_partner AS partner, sum(x) AS total
            FROM ({expanded("(SELECT * FROM product_cells WHERE kind = 'province')")})
            GROUP BY ALL
        ),
        reference_totals AS (
            SELECT o.year, o.province, o.category, o.region, o.partner,
                   sum(q.total) AS reference_total
            FROM province_groups o
            JOIN province_groups q
              ON q.year = o.year AND q.category = o.category AND q.region = o.region
             AND q.partner = o.partner
             AND ({reference == "nation"} OR q.province <> o.province)
            GROUP BY ALL
        ),
        hk AS (
            SELECT s.*, t.reference_total
            FROM served s
            LEFT JOIN reference_totals t USING (year, province, category, region, partner)
        )
        SELECT g.*,
               CASE WHEN h.reference_total > 0 THEN h.served_reference / h.reference_total END
                   AS hk_extensive,
               CASE WHEN h.served_reference > 0 THEN h.own_total / h.served_reference END
                   AS hk_intensive
        FROM growth g
        LEFT JOIN hk h USING (year, province, category, region, partner)
    """)


def expected_top_links(con, top_n):
    """The largest province-partner links of each year and category: province origins only
    (not CN, not reporter countries), each as a share of CN's exports of the category."""
    con.execute(f"""
        CREATE TABLE expected_top_links AS
        WITH national AS (
            SELECT year, category, sum(x) AS national_total
            FROM cells
            WHERE province = 'CN'
            GROUP BY year, category
        ),
        ranked AS (
            SELECT year, category, province, partner, x, x_cny,
                   row_number() OVER (PARTITION BY year, category
                                      ORDER BY x DESC, province ASC, partner ASC) AS "rank"
            FROM cells
            WHERE kind = 'province'
        )
        SELECT r.year, r.category, r."rank", r.province, r.partner,
               r.x                    AS exports_usd,
               r.x_cny                AS exports_cny,
               r.x / n.national_total AS share_of_category
        FROM ranked r
        JOIN national n USING (year, category)
        WHERE r."rank" <= {int(top_n)}
    """)


def expected_destinations(con, threshold_cny, base_year):
    """National exports to each partner, against a threshold in CNY, and how each partner
    moved across the threshold since the base year. A partner above the threshold in the
    base year with no national exports in a year that has national exports is listed in
    that year too, with zero exports, as 'left'."""
    threshold = sql_text(repr(float(threshold_cny))) + "::DOUBLE"
    con.execute(f"""
        CREATE TABLE expected_destinations AS
        WITH national AS (
            SELECT year, partner, region, x, x_cny,
                   x_cny >= {threshold} AS above
            FROM cells
            WHERE province = 'CN' AND category = 'all' AND x > 0
        ),
        base AS (
            SELECT partner, region, above FROM national WHERE year = {int(base_year)}
        ),
        gone AS (
            -- Base-year partners above the threshold without a national cell in a year
            -- that has national cells.
            SELECT y.year, b.partner, b.region,
                   0.0::DOUBLE AS x, 0.0::DOUBLE AS x_cny, false AS above
            FROM (SELECT DISTINCT year FROM national) y
            CROSS JOIN base b
            WHERE b.above
              AND NOT EXISTS (SELECT 1 FROM national n
                              WHERE n.year = y.year AND n.partner = b.partner)
        ),
        listed AS (
            SELECT year, partner, region, x, x_cny, above FROM national
            UNION ALL
            SELECT year, partner, region, x, x_cny, above FROM gone
        )
        SELECT n.year, n.partner, n.region,
               n.x     AS exports_usd,
               n.x_cny AS exports_cny,
               n.above AS above_threshold,
               CASE
                   WHEN coalesce(b.above, false) AND n.above THEN 'stayed'
                   WHEN n.above THEN 'entered'
                   WHEN coalesce(b.above, false) THEN 'left'
                   ELSE 'never'
               END AS status
        FROM listed n
        LEFT JOIN base b USING (partner)
    """)


def expected_indices_change(con, base_year):
    """Each index of `indices` as one row, with its change from the previous year and from
    the base year, and the growth rate of exports since the base year."""
    long_rows = "\n            UNION ALL\n            ".join(
        f"SELECT year, province, category, {sql_text(name)} AS index_name, "
        f"CAST({name} AS DOUBLE) AS value FROM expected_indices"
        for name in CHANGE_INDICES
    )
    con.execute(f"""
        CREATE TABLE expected_indices_change AS
        WITH indices_long AS (
            {long_rows}
        )
        SELECT c.year, c.province, c.category,
               c.index_name          AS "index",
               c.value,
               c.value - p.value     AS change_from_previous,
               c.value - b.value     AS change_from_base,
               CASE WHEN c.year > {int(base_year)} AND bx.exports_usd IS NOT NULL
                    THEN pow(cx.exports_usd / bx.exports_usd, 1.0 / (c.year - {int(base_year)})) - 1
               END                   AS exports_cagr,
               CASE WHEN c.year > {int(base_year)} AND bx.exports_cny IS NOT NULL
                    THEN pow(cx.exports_cny / bx.exports_cny, 1.0 / (c.year - {int(base_year)})) - 1
               END                   AS exports_cagr_cny
        FROM indices_long c
        JOIN expected_indices cx
            ON cx.year = c.year AND cx.province = c.province AND cx.category = c.category
        LEFT JOIN indices_long p
            ON p.year = c.year - 1 AND p.province = c.province
           AND p.category = c.category AND p.index_name = c.index_name
        LEFT JOIN indices_long b
            ON b.year = {int(base_year)} AND b.province = c.province
           AND b.category = c.category AND b.index_name = c.index_name
        LEFT JOIN expected_indices bx
            ON bx.year = {int(base_year)} AND bx.province = c.province AND bx.category = c.category
    """)


# --------------------------------------------------------------------------- comparison


def key_kind(key):
    """The kind of a key column: integer for year and rank, text otherwise."""
    return "integer" if key in KEY_TYPES else "text"


def compared_columns(spec):
    """The compared (non-key) columns of a table, each with its kind, in a fixed order."""
    return [(c, kind) for kind in KINDS for c in spec[kind]]


def load_actual(con, outdir, table, spec, problems):
    """Loads exdep's table as `actual_<table>` with the expected column types.
    Returns the compared columns found (name -> kind), or None when the table cannot be
    compared. A folder without Parquet files is an empty table, and so is a missing folder
    when no rows are expected (exdep writes no files for an empty table); a missing folder
    is a difference otherwise."""
    keys = spec["keys"]
    columns = compared_columns(spec)
    folder = os.path.join(outdir, table)
    empty = f"CREATE TABLE actual_{table} AS SELECT * FROM expected_{table} LIMIT 0"
    if not os.path.isdir(folder):
        if con.execute(f"SELECT count(*) FROM expected_{table}").fetchone()[0]:
            problems.append(f"no table folder {folder}")
        con.execute(empty)
        return dict(columns)
    files = glob.glob(os.path.join(glob.escape(folder), "**", "*.parquet"), recursive=True)
    if not files:
        con.execute(empty)
        return dict(columns)

    pattern = os.path.join(folder, "**", "*.parquet")
    hive_types = ", ".join(f"{sql_text(k)}: {sql_text(KEY_TYPES.get(k, 'VARCHAR'))}"
                           for k in spec["partitions"])
    try:
        con.execute(f"""
            CREATE VIEW parquet_{table} AS
            SELECT * FROM read_parquet({sql_text(pattern)}, hive_partitioning = true,
                                       hive_types = {{{hive_types}}})
        """)
        present = {row[0]: row[1] for row in con.execute(f"DESCRIBE parquet_{table}").fetchall()}
    except duckdb.Error as e:
        problems.append(f"cannot read exdep's table: {e}")
        return None

    def type_ok(column, kind):
        if column not in present:
            problems.append(f"column {column!r} missing from exdep's table")
            return False
        if not KINDS[kind][1](present[column]):
            wanted = {"approx": "a numeric", "integer": "an integer",
                      "text": "a text", "boolean": "a boolean"}[kind]
            problems.append(f"column {column!r} has type {present[column]} in exdep's table, "
                            f"expected {wanted} column")
            return False
        return True

    keys_ok = [type_ok(k, key_kind(k)) for k in keys]
    found = {c: kind for c, kind in columns if type_ok(c, kind)}
    if not all(keys_ok):
        return None

    selects = (
        [f"CAST({sql_name(k)} AS {KEY_TYPES.get(k, 'VARCHAR')}) AS {sql_name(k)}" for k in keys]
        + [f"CAST({sql_name(c)} AS {KINDS[kind][0]}) AS {sql_name(c)}" for c, kind in found.items()]
    )
    try:
        con.execute(f"CREATE TABLE actual_{table} AS SELECT {', '.join(selects)} FROM parquet_{table}")
    except duckdb.Error as e:
        problems.append(f"cannot read exdep's table: {e}")
        return None
    return found


def describe_key(keys, values):
    return " ".join(f"{k}={v}" for k, v in zip(keys, values))


def compare_table(con, outdir, table):
    """Compares expected_<table> with exdep's table.
    Returns (rows expected, number of differences, difference lines)."""
    spec = OUTPUT_TABLES[table]
    keys = spec["keys"]
    problems = []
    compared = load_actual(con, outdir, table, spec, problems)
    n_expected = con.execute(f"SELECT count(*) FROM expected_{table}").fetchone()[0]
    if compared is None:
        return n_expected, len(problems), problems
    key_list = ", ".join(sql_name(k) for k in keys)

    # Every key once in exdep's table.
    for row in con.execute(f"""
        SELECT {key_list}, count(*) FROM actual_{table}
        GROUP BY {key_list} HAVING count(*) > 1 ORDER BY {key_list}
    """).fetchall():
        problems.append(f"{describe_key(keys, row[:-1])}: {row[-1]} rows in exdep's table")

    # Keys on one side only, and values that disagree.
    checks = {}
    for c, kind in compared.items():
        e, a = f"e.{sql_name(c)}", f"a.{sql_name(c)}"
        checks[c] = f"agrees({e}, {a})" if kind == "approx" else f"{e} IS NOT DISTINCT FROM {a}"
    query = f"""
        FROM (SELECT *, true AS present FROM expected_{table}) e
        FULL OUTER JOIN (SELECT *, true AS present FROM actual_{table}) a
            ON {" AND ".join(f"e.{sql_name(k)} = a.{sql_name(k)}" for k in keys)}
        WHERE e.present IS NULL
           OR a.present IS NULL
           {"".join(f"OR NOT ({check})" for check in checks.values())}
    """
    select = ", ".join(
        [f"coalesce(e.{sql_name(k)}, a.{sql_name(k)})" for k in keys]
        + ["e.present IS NOT NULL", "a.present IS NOT NULL"]
        + [f"e.{sql_name(c)}, a.{sql_name(c)}, {check}" for c, check in checks.items()]
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


def run_parser(description, output_help):
    """The arguments of a run's settings and inputs, shared with bench/duckdb_job.py."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--configs", required=True, help="folder with the four code tables")
    parser.add_argument("--output", required=True, help=output_help)
    parser.add_argument("--years", required=True, help="comma-separated years, e.g. 2017,2018")
    parser.add_argument("--base-year", type=int, default=None,
                        help="base year of destinations and indices_change (default: the first year)")
    parser.add_argument("--top-n", type=int, default=10,
                        help="links kept per year and category in top_links (default 10)")
    parser.add_argument("--threshold-cny", type=float, default=1e11,
                        help="national exports threshold in CNY for destinations (default 1e11)")
    parser.add_argument("--destination-level", choices=["country", "region"], default="country",
                        help="destination unit of the concentration indices and margins")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="canonical .csv/.parquet files")
    return parser


def check_run_args(parser, args):
    """Checks and normalizes what run_parser read: years as a sorted list, the base year,
    inputs by real path, each once, in the order given."""
    try:
        args.years = sorted({int(y) for y in args.years.split(",") if y.strip()})
    except ValueError:
        parser.error(f"--years must be comma-separated integers, got {args.years!r}")
    if not args.years:
        parser.error("--years is empty")
    if args.base_year is None:
        args.base_year = args.years[0]
    elif args.base_year not in args.years:
        parser.error(f"--base-year {args.base_year} is not one of --years")
    if args.top_n < 1:
        parser.error(f"--top-n must be at least 1, got {args.top_n}")
    if not (math.isfinite(args.threshold_cny) and args.threshold_cny > 0):
        parser.error(f"--threshold-cny must be a positive number, got {args.threshold_cny}")
    args.inputs = list(dict.fromkeys(os.path.realpath(p) for p in args.inputs))
    for p in args.inputs:
        if not os.path.isfile(p):
            parser.error(f"input not found: {p}")
    return args


def parse_args(argv):
    parser = run_parser(__doc__.split("\n\n")[0], "exdep's output root")
    parser.add_argument("--quadrant-cut", default="year-mean",
                        choices=["year-mean", "base-year-mean", "year-median"],
                        help="where quadrants cut G and V (default year-mean)")
    parser.add_argument("--product-margins", choices=["nation", "rest-of-nation"],
                        help="also check product_margins, with this Hummels-Klenow reference")
    return check_run_args(parser, parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    con = duckdb.connect()
    try:
        define_macros(con)
        load_config_tables(con, args.configs)
        load_inputs(con, args.inputs)
        build_cube_rows(con, args.years)
        build_cells(con)
        build_units(con, args.destination_level)
        expected_indices(con, args.quadrant_cut, args.base_year)
        expected_lq(con)
        expected_region_shares(con)
        expected_margins(con, args.years)
        expected_top_links(con, args.top_n)
        expected_destinations(con, args.threshold_cny, args.base_year)
        expected_indices_change(con, args.base_year)
        if args.product_margins:
            OUTPUT_TABLES["product_margins"] = PRODUCT_MARGINS
            expected_product_margins(con, args.years, args.product_margins)
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
