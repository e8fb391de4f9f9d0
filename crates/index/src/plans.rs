//! The SQL of every index table.

use std::collections::BTreeSet;
use std::sync::Arc;

use exdep_core::arrow::datatypes::{DataType, Field, Schema};
use exdep_core::schema::{ALL_CATEGORIES, NATIONAL, YEAR};

use crate::IndexTable;

/// The partitioning of per-origin tables.
const BY_YEAR_AND_PROVINCE: &[&str] = &[YEAR, "province"];

/// The cells every index reads: the run's cube rows, plus the national aggregate (province
/// `CN`, the sum over provinces) and the `all` category (the sum of the four categories).
fn cells_cte(years: &BTreeSet<i32>) -> String {
    let years = years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "cube_run AS (
            SELECT year, province, partner, region, category, exports_usd
            FROM cube WHERE year IN ({years})
        ),
        by_category AS (
            SELECT year, province, partner, region, category, exports_usd FROM cube_run
            UNION ALL
            SELECT year, '{NATIONAL}' AS province, partner, region, category,
                   sum(exports_usd) AS exports_usd
            FROM cube_run GROUP BY year, partner, region, category
        ),
        cells AS (
            SELECT year, province, partner, region, category, exports_usd FROM by_category
            UNION ALL
            SELECT year, province, partner, region, '{ALL_CATEGORIES}' AS category,
                   sum(exports_usd) AS exports_usd
            FROM by_category GROUP BY year, province, partner, region
        )"
    )
}

fn schema(fields: &[(&str, DataType, bool)]) -> exdep_core::arrow::datatypes::SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(name, data_type, nullable)| Field::new(*name, data_type.clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The tables of a run over `years`, in the order they are written.
pub fn tables(years: &BTreeSet<i32>) -> Vec<IndexTable> {
    let cells = cells_cte(years);
    vec![
        IndexTable {
            name: "indices",
            partition_by: BY_YEAR_AND_PROVINCE,
            file_schema: schema(&[
                ("category", DataType::Utf8, false),
                ("exports_usd", DataType::Float64, false),
                ("destinations", DataType::Int64, false),
                ("hhi", DataType::Float64, false),
                ("hhi_norm", DataType::Float64, false),
                ("entropy", DataType::Float64, false),
            ]),
            // hhi = sum s_i^2; hhi_norm = (hhi - 1/N) / (1 - 1/N), 0 when N = 1;
            // entropy = -sum s_i ln s_i (written 0 - sum so a single market gives +0, not -0).
            sql: format!(
                "WITH {cells},
                shares AS (
                    SELECT year, province, category, exports_usd,
                           exports_usd / sum(exports_usd)
                               OVER (PARTITION BY year, province, category) AS s
                    FROM cells
                )
                SELECT year, province, category,
                       sum(exports_usd) AS exports_usd,
                       count(*) AS destinations,
                       sum(s * s) AS hhi,
                       CASE WHEN count(*) = 1 THEN 0.0
                            ELSE (sum(s * s) - 1.0 / count(*)) / (1.0 - 1.0 / count(*))
                       END AS hhi_norm,
                       0.0 - sum(s * ln(s)) AS entropy
                FROM shares
                GROUP BY year, province, category
                ORDER BY year, province, category"
            ),
        },
        IndexTable {
            name: "lq",
            partition_by: BY_YEAR_AND_PROVINCE,
            file_schema: schema(&[
                ("partner", DataType::Utf8, false),
                ("category", DataType::Utf8, false),
                ("exports_usd", DataType::Float64, false),
                ("lq", DataType::Float64, true),
            ]),
            // lq = (e_rm / e_r) / (e_Nm / e_N); null, never inf or NaN, when a denominator is 0.
            sql: format!(
                "WITH {cells},
                totals AS (
                    SELECT year, province, partner, category, exports_usd,
                           sum(exports_usd) OVER (PARTITION BY year, province, partner) AS e_r,
                           sum(exports_usd) OVER (PARTITION BY year, province, category) AS e_m,
                           sum(exports_usd) OVER (PARTITION BY year, province) AS e_n
                    FROM cells WHERE category <> '{ALL_CATEGORIES}'
                )
                SELECT year, province, partner, category, exports_usd,
                       (exports_usd / nullif(e_r, 0.0)) / nullif(e_m / nullif(e_n, 0.0), 0.0) AS lq
                FROM totals
                ORDER BY year, province, partner, category"
            ),
        },
        IndexTable {
            name: "region_shares",
            partition_by: BY_YEAR_AND_PROVINCE,
            file_schema: schema(&[
                ("region", DataType::Utf8, false),
                ("category", DataType::Utf8, false),
                ("exports_usd", DataType::Float64, false),
                ("share", DataType::Float64, false),
            ]),
            sql: format!(
                "WITH {cells},
                regions AS (
                    SELECT year, province, region, category, sum(exports_usd) AS exports_usd
                    FROM cells GROUP BY year, province, region, category
                )
                SELECT year, province, region, category, exports_usd,
                       exports_usd / sum(exports_usd)
                           OVER (PARTITION BY year, province, category) AS share
                FROM regions
                ORDER BY year, province, category, region"
            ),
        },
    ]
}
