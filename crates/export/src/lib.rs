//! Export: writes the index tables as Hive-partitioned Parquet under the output root and
//! records the run in a manifest, `OUTPUT/_manifest.json`, that reconciles every input
//! record: read = classified + rejected + excluded, with value sums per bucket.
//!
//! ```no_run
//! # async fn demo(ctx: exdep_core::datafusion::prelude::SessionContext,
//! #               config: exdep_core::Config) -> exdep_export::Result<()> {
//! # let settings: exdep_index::PlanSettings = todo!();
//! for table in exdep_index::tables(&settings) {
//!     let report = exdep_export::write_table(&ctx, &config.output, &table, &config.years).await?;
//!     println!("{}: {} rows in {} partitions", report.name, report.rows, report.files.len());
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod manifest;

use std::collections::BTreeSet;

use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::ObjectStoreExt;
use exdep_core::schema::{UNKNOWN_YEAR, YEAR};
use exdep_core::{Location, PartitionedWriter, WrittenFile};
use exdep_index::IndexTable;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tracing::{Instrument, info, info_span};

pub use error::{Error, Result};
pub use manifest::{FileReconciliation, MANIFEST_NAME, RunManifest, reconcile, write_manifest};

/// What was written for one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// The table's name.
    pub name: String,
    /// Rows written.
    pub rows: u64,
    /// One file per partition.
    pub files: Vec<WrittenFile>,
}

/// Publishes the warehouse's quarantine of rejected records as `OUTPUT/rejects/`, replacing
/// the partitions of `years` and of records without a usable year.
pub async fn publish_rejects(
    ctx: &SessionContext,
    warehouse: &Location,
    output: &Location,
    years: &BTreeSet<i32>,
) -> Result<u64> {
    let mut copied = 0;
    for year in years.iter().chain([&UNKNOWN_YEAR]) {
        let partition = format!("{YEAR}={year}");
        let (from, to) = (
            warehouse.join("rejects").join(&partition),
            output.join("rejects").join(&partition),
        );
        to.delete_all(ctx).await?;
        let store = from.store(ctx)?;
        let objects: Vec<_> = store.list(Some(&from.path()?)).try_collect().await?;
        for object in objects {
            let name = object.location.filename().unwrap_or_default().to_string();
            store
                .copy(&object.location, &to.join(&name).path()?)
                .await?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Computes `table` and writes it under `OUTPUT/NAME/`, replacing the partitions of `years`.
pub async fn write_table(
    ctx: &SessionContext,
    output: &Location,
    table: &IndexTable,
    years: &BTreeSet<i32>,
) -> Result<TableReport> {
    let span = info_span!("write", table = table.name);
    write_table_inner(ctx, output, table, years)
        .instrument(span)
        .await
        .map_err(|source| Error::Table {
            table: table.name.to_string(),
            source: Box::new(source),
        })
}

async fn write_table_inner(
    ctx: &SessionContext,
    output: &Location,
    table: &IndexTable,
    years: &BTreeSet<i32>,
) -> Result<TableReport> {
    let root = output.join(table.name);
    // Plan before deleting, so a plan error leaves the published table as it was.
    let frame = ctx.sql(&table.sql).await?;
    let mut stream = frame.execute_stream().await?;
    for year in years {
        root.join(&format!("{YEAR}={year}")).delete_all(ctx).await?;
    }
    let mut writer = PartitionedWriter::new(ctx, &root, table.partition_by, "part-00000.parquet")?
        .with_file_schema(table.file_schema.clone());
    while let Some(batch) = stream.next().await {
        writer.write(&batch?).await?;
    }
    let files = writer.finish().await?;
    let rows = files.iter().map(|f| f.rows).sum();
    info!(rows, partitions = files.len(), "written");
    Ok(TableReport {
        name: table.name.to_string(),
        rows,
        files,
    })
}
