//! The classified cube: one pass over the raw records joins the code tables, converts
//! currencies and sums exports by year, province, partner and category.

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::arrow::array::{Array, AsArray};
use exdep_core::arrow::compute::cast;
use exdep_core::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::schema::{CUBE_FILE, RAW_FILE, REJECTS_FILE, YEAR};
use exdep_core::sql::{exact_sum, year_list};
use exdep_core::{
    Location, PartitionedWriter, Tally, TallyByReason, copy_partitioned, register_layer,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::Result;

/// Dispositions that mean the record is counted in the cube.
const CLASSIFIED: &str = "classified";

/// Dispositions that are rules, not errors: the record is valid but out of scope.
const EXCLUSION_RULES: [&str; 2] = ["excluded_hs_chapter", "partner_is_china"];

/// What classification did with the raw records of one source file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceDisposition {
    /// Records that entered the cube.
    pub classified: Tally,
    /// Records whose codes no table maps, by kind (`unknown_province`, ...).
    pub rejected: TallyByReason,
    /// Records left out by a rule (`excluded_hs_chapter`, `partner_is_china`: exports of a
    /// Chinese province to China itself).
    pub excluded: TallyByReason,
}

/// What the cube build did, by year.
pub type CubeReport = BTreeMap<i32, YearCube>;

/// What the cube build did for one year.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct YearCube {
    /// Cube cells written.
    pub cells: u64,
    /// Dispositions of the year's raw records by source file URL.
    pub by_source: BTreeMap<String, SourceDisposition>,
}

/// The plan that builds the cube from the raw layer for the given years.
fn cube_sql(years: &BTreeSet<i32>) -> String {
    let years = year_list(years);
    let (exact_usd, exact_cny) = (exact_sum("value_usd"), exact_sum("value_cny"));
    format!(
        "SELECT year, province, partner, region, category,
            {exact_usd} AS exports_usd,
            {exact_cny} AS exports_cny,
            count(*) AS records
        FROM (
            SELECT r.year, r.province, r.partner, p.region, c.category,
                CASE WHEN r.currency = 'USD' THEN r.value
                     ELSE r.value / CAST(x.cny_per_usd AS DOUBLE) END AS value_usd,
                CASE WHEN r.currency = 'CNY' THEN r.value
                     ELSE r.value * CAST(x.cny_per_usd AS DOUBLE) END AS value_cny
            FROM raw r
            LEFT JOIN provinces pv ON r.province = pv.code
            LEFT JOIN partner_regions o ON r.province = o.iso3
            JOIN partner_regions p ON r.partner = p.iso3
            JOIN hs_chapters c ON substr(r.hs_code, 1, 2) = c.chapter
            JOIN exchange_rates x ON r.year = CAST(x.year AS INT)
            WHERE r.year IN ({years}) AND c.category <> 'excluded'
              AND (pv.code IS NOT NULL AND r.partner <> 'CHN' OR o.iso3 IS NOT NULL)
        )
        GROUP BY year, province, partner, region, category
        HAVING {exact_usd} > 0
        ORDER BY year, province, partner, category"
    )
}

/// Each raw record with its disposition: classified, rejected (a code no table maps) or
/// excluded by a rule. Origins are provinces (`provinces.csv`) or, for sources whose
/// reporters are countries, ISO3 codes (`partner_regions.csv`).
fn dispositions(years: &BTreeSet<i32>) -> String {
    let years = year_list(years);
    format!(
        "SELECT r.year, r.source, r.line,
            concat_ws(',', CAST(r.year AS VARCHAR), coalesce(CAST(r.month AS VARCHAR), ''),
                      r.province, r.partner, r.hs_code, CAST(r.value AS VARCHAR), r.currency)
                AS raw,
            r.value,
            CASE
                WHEN pv.code IS NULL AND o.iso3 IS NULL THEN 'unknown_province'
                WHEN p.iso3 IS NULL THEN 'unknown_partner'
                WHEN c.chapter IS NULL THEN 'unknown_hs_chapter'
                WHEN c.category = 'excluded' THEN 'excluded_hs_chapter'
                WHEN pv.code IS NOT NULL AND r.partner = 'CHN' THEN 'partner_is_china'
                ELSE '{CLASSIFIED}'
            END AS disposition
        FROM raw r
        LEFT JOIN provinces pv ON r.province = pv.code
        LEFT JOIN partner_regions o ON r.province = o.iso3
        LEFT JOIN partner_regions p ON r.partner = p.iso3
        LEFT JOIN hs_chapters c ON substr(r.hs_code, 1, 2) = c.chapter
        WHERE r.year IN ({years})"
    )
}

/// Counts of [`dispositions`] by source.
fn disposition_sql(years: &BTreeSet<i32>) -> String {
    let value = exact_sum("value");
    format!(
        "SELECT year, source, disposition, count(*) AS records, {value} AS value
        FROM ({}) GROUP BY year, source, disposition",
        dispositions(years)
    )
}

/// The records [`dispositions`] rejects, for the quarantine.
fn rejects_sql(years: &BTreeSet<i32>) -> String {
    let rules = EXCLUSION_RULES.map(|r| format!("'{r}'")).join(", ");
    format!(
        "SELECT year, source, line, disposition AS reason, raw
        FROM ({}) WHERE disposition NOT IN ('{CLASSIFIED}', {rules})
        ORDER BY source, line, raw, reason",
        dispositions(years)
    )
}

/// The name of the object that holds, in each `rejects/year=YYYY/` partition, the records
/// classification rejected.
const CLASSIFY_REJECTS: &str = "part-classify.parquet";

/// Builds `WAREHOUSE/cube/year=YYYY/` for `years` from the raw layer (replacing what was
/// there, with classification's rejects of those years) and accounts for every raw record
/// of those years. Other years are untouched. The code tables must be registered.
pub async fn build_cube(
    ctx: &SessionContext,
    warehouse: &Location,
    years: &BTreeSet<i32>,
) -> Result<CubeReport> {
    register_layer(ctx, "raw", &warehouse.join("raw"), &RAW_FILE).await?;
    let mut report: CubeReport = years.iter().map(|y| (*y, YearCube::default())).collect();

    let dispositions = ctx.sql(&disposition_sql(years)).await?.collect().await?;
    for batch in &dispositions {
        let batch_years = cast(batch.column(0), &DataType::Int32)?;
        let batch_years = batch_years.as_primitive::<Int32Type>();
        let sources = cast(batch.column(1), &DataType::Utf8)?;
        let kinds = cast(batch.column(2), &DataType::Utf8)?;
        let (sources, kinds) = (sources.as_string::<i32>(), kinds.as_string::<i32>());
        let records = batch.column(3).as_primitive::<Int64Type>();
        let values = batch.column(4).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let entry = report
                .entry(batch_years.value(row))
                .or_default()
                .by_source
                .entry(sources.value(row).to_string())
                .or_default();
            let tally = Tally {
                records: records.value(row) as u64,
                value: if values.is_null(row) {
                    0.0
                } else {
                    values.value(row)
                },
            };
            let kind = kinds.value(row);
            if kind == CLASSIFIED {
                entry.classified.add(tally);
            } else if EXCLUSION_RULES.contains(&kind) {
                entry
                    .excluded
                    .entry(kind.to_string())
                    .or_default()
                    .add(tally);
            } else {
                entry
                    .rejected
                    .entry(kind.to_string())
                    .or_default()
                    .add(tally);
            }
        }
    }

    // Records whose codes no table maps join the quarantine beside ingest's rejects.
    let rejects = warehouse.join("rejects");
    for year in years {
        rejects
            .join(&format!("{YEAR}={year}"))
            .delete_where(ctx, |path| path.filename() == Some(CLASSIFY_REJECTS))
            .await?;
    }
    let mut rejected = PartitionedWriter::new(ctx, &rejects, &[YEAR], CLASSIFY_REJECTS)?
        .with_file_schema(REJECTS_FILE.clone());
    let mut stream = ctx.sql(&rejects_sql(years)).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        rejected.write(&batch?).await?;
    }
    rejected.finish().await?;

    let cube = warehouse.join("cube");
    for year in years {
        cube.join(&format!("{YEAR}={year}")).delete_all(ctx).await?;
    }
    let scratch = warehouse.join("_staging").join("cube");
    let written =
        copy_partitioned(ctx, &cube_sql(years), &cube, &[YEAR], &CUBE_FILE, &scratch).await?;
    for file in written {
        let year = file.partition[0]
            .1
            .parse()
            .expect("year partitions are integers");
        report.entry(year).or_default().cells = file.rows;
    }
    ctx.deregister_table("raw")?;
    info!(
        cells = report.values().map(|y| y.cells).sum::<u64>(),
        "cube built"
    );
    Ok(report)
}

/// Removes the warehouse's partitions of `years` from every layer (raw, cube, rejects): the
/// years a config no longer names, so that the cube holds the run's years only.
pub async fn drop_years(
    ctx: &SessionContext,
    warehouse: &Location,
    years: &BTreeSet<i32>,
) -> Result<()> {
    for layer in ["raw", "cube", "rejects"] {
        for year in years {
            warehouse
                .join(layer)
                .join(&format!("{YEAR}={year}"))
                .delete_all(ctx)
                .await?;
        }
    }
    Ok(())
}
