//! Export: writes tables as Hive-partitioned Parquet, first to a staging folder, then
//! publishes them under the output root partition by partition; and writes the JSON
//! documents (run state, manifest) the pipeline keeps.
//!
//! ```no_run
//! # async fn demo(ctx: exdep_core::datafusion::prelude::SessionContext,
//! #               config: exdep_core::Config,
//! #               schema: exdep_core::arrow::datatypes::SchemaRef) -> exdep_export::Result<()> {
//! let staging = exdep_export::staging_root(&config.output, "run-1");
//! let table = exdep_export::TableToWrite {
//!     name: "totals",
//!     partition_by: &["year"],
//!     file_schema: &schema,
//!     sql: "SELECT year, sum(exports_usd) AS usd FROM cube GROUP BY year",
//! };
//! let mut reports = vec![exdep_export::write_table(&ctx, &staging, table).await?];
//! let replaced = reports
//!     .iter()
//!     .map(|r| (r.name.clone(), config.years.clone()))
//!     .collect();
//! exdep_export::publish(&ctx, &staging, &config.output, &mut reports, &replaced).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod lock;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use exdep_core::arrow::datatypes::SchemaRef;
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::ObjectStoreExt;
use exdep_core::object_store::PutPayload;
use exdep_core::schema::{REJECTS_FILE, YEAR};
use exdep_core::{Location, WrittenFile};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info, info_span};

pub use error::{Error, Result};
pub use lock::{LOCK_NAME, LockHolder, RunLock};

/// What was written for one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    /// The table's name.
    pub name: String,
    /// Rows written.
    pub rows: u64,
    /// One file per partition.
    pub files: Vec<WrittenFile>,
}

/// The folder under the output root where a run stages its tables; `_` keeps lake readers
/// out of it.
const STAGING: &str = "_staging";

/// Where run `run_id` stages its tables before [`publish`] moves them into place.
pub fn staging_root(output: &Location, run_id: &str) -> Location {
    output.join(STAGING).join(run_id)
}

/// Removes what runs that were killed before publishing left in the staging folder.
pub async fn clear_staging(ctx: &SessionContext, output: &Location) -> Result<usize> {
    Ok(output.join(STAGING).delete_all(ctx).await?)
}

/// Stages the warehouse's quarantine of rejected records of `years` (year 0 holds records
/// without a usable year) as table [`REJECTS`]: one file per year, its rows in a fixed
/// order, whichever input files and stages they came from.
pub async fn stage_rejects(
    ctx: &SessionContext,
    warehouse: &Location,
    staging: &Location,
    years: &BTreeSet<i32>,
) -> Result<u64> {
    let quarantine = warehouse.join(REJECTS);
    if years.is_empty() || !quarantine.has_objects(ctx).await? {
        return Ok(0);
    }
    let table = "quarantine";
    exdep_core::register_layer(ctx, table, &quarantine, &REJECTS_FILE).await?;
    let written = exdep_core::copy_partitioned(
        ctx,
        &format!(
            "SELECT * FROM {table} WHERE {YEAR} IN ({})",
            exdep_core::sql::year_list(years)
        ),
        &staging.join(REJECTS),
        &[YEAR],
        &REJECTS_FILE,
        &staging.join(COPY_SCRATCH).join(REJECTS),
    )
    .await;
    ctx.deregister_table(table)?;
    Ok(written?.iter().map(|file| file.rows).sum())
}

/// Moves every staged table into place under the output root, object by object, then
/// removes, in the year partitions `replaced` names for each table (index tables and
/// [`REJECTS`]), what the run did not rewrite, and then the staging folder. Each move
/// replaces one partition's object whole, so readers see old or new partitions, never a
/// partial one; until `publish` starts, the published tables are untouched, so a run killed
/// while computing leaves them as they were. Partitions of other years are not touched.
pub async fn publish(
    ctx: &SessionContext,
    staging: &Location,
    output: &Location,
    tables: &mut [TableReport],
    replaced: &BTreeMap<String, BTreeSet<i32>>,
) -> Result<()> {
    let store = staging.store(ctx)?;
    for (name, years) in replaced {
        let (from, to) = (staging.join(name), output.join(name));
        let prefix = from.path()?;
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        let mut kept = HashSet::new();
        for object in objects {
            let relative: Vec<_> = object
                .location
                .prefix_match(&prefix)
                .expect("listed under the prefix")
                .map(|part| part.as_ref().to_string())
                .collect();
            let target = to.join(&relative.join("/")).path()?;
            store.rename(&object.location, &target).await?;
            kept.insert(target);
        }
        for year in years {
            to.join(&format!("{YEAR}={year}"))
                .delete_all_except(ctx, &kept)
                .await?;
        }
    }
    let (staged, published) = (staging.to_string(), output.to_string());
    for file in tables.iter_mut().flat_map(|t| t.files.iter_mut()) {
        file.location = file.location.replacen(&staged, &published, 1);
    }
    clear_staging(ctx, output).await?;
    Ok(())
}

/// Where `COPY` writes a table's files before they are renamed into the staged table.
const COPY_SCRATCH: &str = "_copy";

/// The quarantine table's name.
pub const REJECTS: &str = "rejects";

/// An output table to compute: its name (the folder under the output root), its Hive
/// partition columns, the schema of its files and the plan that computes it.
#[derive(Debug, Clone, Copy)]
pub struct TableToWrite<'a> {
    /// Folder name under the output root.
    pub name: &'a str,
    /// Hive partition columns, outermost first.
    pub partition_by: &'a [&'a str],
    /// Schema of the Parquet files (without the partition columns).
    pub file_schema: &'a SchemaRef,
    /// The plan, as SQL.
    pub sql: &'a str,
}

/// Computes `table` and writes it under `STAGING/NAME/` (see [`staging_root`]).
pub async fn write_table(
    ctx: &SessionContext,
    staging: &Location,
    table: TableToWrite<'_>,
) -> Result<TableReport> {
    let span = info_span!("write", table = table.name);
    write_table_inner(ctx, staging, table)
        .instrument(span)
        .await
        .map_err(|source| Error::Table {
            table: table.name.to_string(),
            source: Box::new(source),
        })
}

async fn write_table_inner(
    ctx: &SessionContext,
    staging: &Location,
    table: TableToWrite<'_>,
) -> Result<TableReport> {
    let files = exdep_core::copy_partitioned(
        ctx,
        table.sql,
        &staging.join(table.name),
        table.partition_by,
        table.file_schema,
        &staging.join(COPY_SCRATCH).join(table.name),
    )
    .await?;
    let rows = files.iter().map(|f| f.rows).sum();
    info!(rows, partitions = files.len(), "written");
    Ok(TableReport {
        name: table.name.to_string(),
        rows,
        files,
    })
}

/// Reads a JSON document exdep wrote (a run state, a manifest), if it exists.
pub async fn read_json<T: DeserializeOwned>(
    ctx: &SessionContext,
    location: &Location,
) -> Result<Option<T>> {
    match location.read_all(ctx).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Unreadable {
                location: location.to_string(),
                source,
            }),
        Err(exdep_core::Error::ObjectStore(exdep_core::object_store::Error::NotFound {
            ..
        })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `value` as a JSON document, replacing what was there.
pub async fn write_json<T: Serialize>(
    ctx: &SessionContext,
    location: &Location,
    value: &T,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    write_object(ctx, location, json).await
}

/// Writes `bytes` as the object at `location`, replacing what was there.
pub async fn write_object(ctx: &SessionContext, location: &Location, bytes: Vec<u8>) -> Result<()> {
    location
        .store(ctx)?
        .put(&location.path()?, PutPayload::from(bytes))
        .await?;
    Ok(())
}
