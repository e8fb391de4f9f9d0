//! Export: writes tables as Hive-partitioned Parquet, first to a staging folder, then
//! publishes them under the output root, as plain Parquet or as Delta Lake tables (one
//! commit per table); and reads published tables back.
//!
//! ```no_run
//! # async fn demo(ctx: exdep_engine::datafusion::prelude::SessionContext,
//! #               config: exdep_core::Config,
//! #               schema: exdep_core::arrow::datatypes::SchemaRef) -> exdep_export::Result<()> {
//! let output = exdep_store::layout::Output::of(&config);
//! let staging = output.staging("run-1");
//! let table = exdep_export::TableToWrite {
//!     name: "totals",
//!     partition_by: &["year"],
//!     files_by: None,
//!     file_schema: &schema,
//!     sql: "SELECT year, sum(exports_usd) AS usd FROM cube GROUP BY year",
//! };
//! let mut reports = vec![exdep_export::write_table(&ctx, &staging, table).await?];
//! let replaced = reports
//!     .iter()
//!     .map(|r| (r.name.clone(), config.years.clone()))
//!     .collect();
//! let layouts = [exdep_export::TableLayout {
//!     name: "totals".into(),
//!     partition_by: vec!["year".into()],
//!     file_schema: schema.clone(),
//! }];
//! let publication = exdep_export::Publication {
//!     run_id: "run-1",
//!     format: config.table_format,
//!     layouts: &layouts,
//! };
//! let versions = exdep_export::publish(
//!     &ctx, &staging, &output, &mut reports, &replaced, publication,
//! )
//! .await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod ddl;
mod delta;
mod error;
mod read;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use exdep_core::arrow::datatypes::SchemaRef;
use exdep_core::schema::{REJECTS_FILE, UNKNOWN_YEAR, YEAR};
use exdep_core::{Location, TableFormat};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::layout::{Layer, Output, REJECTS, Warehouse};
use exdep_store::object_store::ObjectStoreExt;
use exdep_store::{Objects, TableReport, WrittenFile};
use futures::{StreamExt, TryStreamExt};
use tracing::{Instrument, info, info_span};

pub use ddl::{CatalogEngine, CatalogNames, catalog_ddl};
pub use delta::{Vacuumed, vacuum};
pub use error::{Error, Result};
pub use read::{PublishedTable, published_tables, published_years, register_published};
use table::PublishedFile;
pub use table::TableLayout;

/// Removes what runs that were killed before publishing left in the output's staging
/// folder.
pub async fn clear_staging(ctx: &SessionContext, output: &Output) -> Result<usize> {
    Ok(output.staging_root().delete_all(ctx).await?)
}

/// Stages the warehouse's quarantine of rejected records of `years` (year 0 holds records
/// without a usable year) as table [`REJECTS`]: one file per year, its rows in a fixed
/// order, whichever input files and stages they came from; a year without rejects gets a
/// file of no rows. Returns the staged table, listed in the manifest like the others.
pub async fn stage_rejects(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    staging: &Location,
    years: &BTreeSet<i32>,
) -> Result<TableReport> {
    let quarantine = warehouse.layer(Layer::Rejects);
    let root = staging.join(REJECTS);
    let mut written = Vec::new();
    if !years.is_empty() && quarantine.has_objects(ctx).await? {
        let table = "quarantine";
        exdep_engine::register_layer(ctx, table, &quarantine, &REJECTS_FILE).await?;
        let rejects = exdep_store::write_partitioned(
            ctx,
            &format!(
                "SELECT * FROM {table} WHERE {YEAR} IN ({})",
                exdep_core::sql::year_list(years)
            ),
            &root,
            &[YEAR],
            None,
            &REJECTS_FILE,
        )
        .await;
        ctx.deregister_table(table)?;
        written = rejects?;
    }
    // A year without rejects gets a file of none, so that the table always exists for
    // readers, with its columns, in every year published.
    let without_rejects: Vec<Vec<String>> = (years.iter())
        .filter(|&&year| year != UNKNOWN_YEAR)
        .map(|year| vec![year.to_string()])
        .filter(|key| !written.iter().any(|file| file.partition[0].1 == key[0]))
        .collect();
    written.extend(
        exdep_store::write_empty_partitions(ctx, &root, &[YEAR], &REJECTS_FILE, &without_rejects)
            .await?,
    );
    written.sort_by(|a, b| a.partition.cmp(&b.partition));
    Ok(TableReport {
        name: REJECTS.to_string(),
        rows: written.iter().map(|file| file.rows).sum(),
        files: written,
    })
}

/// How [`publish`] publishes a run's staged tables.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The run's id, which names the files it publishes so that no file of another run is
    /// ever overwritten.
    pub run_id: &'a str,
    /// The tables' format.
    pub format: TableFormat,
    /// The layout of every table.
    pub layouts: &'a [TableLayout],
}

/// How many staged files [`publish`] moves at a time.
const CONCURRENT_MOVES: usize = 16;

/// The Delta version each table was committed at, by table.
pub type Versions = BTreeMap<String, u64>;

/// Moves every staged table into place under the output root, each file under a name
/// unique to the run (`part-00000-RUN.parquet`), then replaces, in the year partitions
/// `replaced` names for each table (index tables and [`REJECTS`]), what the run did not
/// rewrite, and removes the staging folder. Until `publish` starts, the published tables
/// are untouched, so a run killed while computing leaves them as they were.
///
/// Plain Parquet: after the moves, the replaced partitions' other files are deleted;
/// readers listing a partition in between see old and new files (the pipeline removes
/// `_SUCCESS` and the manifest first). Delta: each table changes in one commit that adds
/// the new files and removes the replaced partitions' old ones; a reader sees the old
/// version or the new one. Partitions of other years are not touched in either.
pub async fn publish(
    ctx: &SessionContext,
    staging: &Location,
    output: &Output,
    tables: &mut [TableReport],
    replaced: &BTreeMap<String, BTreeSet<i32>>,
    publication: Publication<'_>,
) -> Result<Versions> {
    let store = staging.store(ctx)?;
    let staged_files: HashMap<String, WrittenFile> = tables
        .iter()
        .flat_map(|t| t.files.iter())
        .map(|f| (f.location.clone(), f.clone()))
        .collect();
    // Every table's moves are decided before the first one is made, so that a staged file
    // the run did not write stops the publication before it touches the output.
    let mut moved_to = HashMap::new();
    let mut table_moves = Vec::with_capacity(replaced.len());
    for (name, years) in replaced {
        let (from, to) = (staging.join(name), output.table(name));
        let prefix = from.path()?;
        let mut objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut moves = TableMoves {
            name,
            years,
            kept: HashSet::new(),
            published: Vec::with_capacity(objects.len()),
            renames: Vec::with_capacity(objects.len()),
        };
        for object in objects {
            let staged_relative = relative_path_of(&object.location, &prefix);
            let mut segments: Vec<&str> = staged_relative.split('/').collect();
            let file_name = segments.pop().expect("an object has a name");
            let partition: Vec<(String, String)> = segments
                .iter()
                .filter_map(|folder| folder.split_once('='))
                .map(|(column, value)| (column.to_string(), value.to_string()))
                .collect();
            let unique_name = match file_name.strip_suffix(".parquet") {
                Some(stem) => format!("{stem}-{}.parquet", publication.run_id),
                None => format!("{file_name}-{}", publication.run_id),
            };
            segments.push(&unique_name);
            let relative_path = segments.join("/");
            let target = to.join(&relative_path);
            let target_path = target.path()?;
            let staged_url = from.join(&staged_relative).to_string();
            let staged_file =
                (staged_files.get(&staged_url)).ok_or_else(|| Error::UnknownStagedFile {
                    file: staged_url.clone(),
                })?;
            moves
                .renames
                .push((object.location.clone(), target_path.clone()));
            moves.published.push(PublishedFile {
                relative_path,
                partition,
                rows: staged_file.rows,
                size: object.size,
                modified_millis: object.last_modified.timestamp_millis(),
                statistics: staged_file.statistics.clone(),
            });
            moved_to.insert(staged_url, target.to_string());
            moves.kept.insert(target_path);
        }
        table_moves.push(moves);
    }
    let mut versions = Versions::new();
    for moves in table_moves {
        let (name, to) = (moves.name, output.table(moves.name));
        // A move is a round trip to the store (on S3 a copy and a delete; on a local disk
        // a rename that may create its partition's folder): done a few at a time.
        futures::stream::iter(moves.renames)
            .map(|(from, to)| {
                let store = store.clone();
                async move { store.rename(&from, &to).await }
            })
            .buffer_unordered(CONCURRENT_MOVES)
            .try_collect::<()>()
            .await?;
        match publication.format {
            TableFormat::Parquet => {
                for year in moves.years {
                    to.join(&format!("{YEAR}={year}"))
                        .delete_all_except(ctx, &moves.kept)
                        .await?;
                }
            }
            TableFormat::Delta if moves.years.is_empty() && moves.published.is_empty() => {}
            TableFormat::Delta => {
                let layout = publication
                    .layouts
                    .iter()
                    .find(|layout| layout.name == *name)
                    .expect("every published table has a layout");
                let version = delta::commit(
                    ctx,
                    &to,
                    layout,
                    &moves.published,
                    moves.years,
                    publication.run_id,
                )
                .await?;
                versions.insert(name.clone(), version);
            }
        }
    }
    for file in tables.iter_mut().flat_map(|t| t.files.iter_mut()) {
        if let Some(location) = moved_to.get(&file.location) {
            file.location = location.clone();
        }
    }
    clear_staging(ctx, output).await?;
    Ok(versions)
}

/// What [`publish`] does to one table: its staged files' moves, and what they publish.
struct TableMoves<'a> {
    name: &'a String,
    /// The year partitions the run replaces.
    years: &'a BTreeSet<i32>,
    /// Each staged file's location, and where it goes.
    renames: Vec<(
        exdep_core::object_store::path::Path,
        exdep_core::object_store::path::Path,
    )>,
    /// The files, as published.
    published: Vec<PublishedFile>,
    /// Their paths under the output.
    kept: HashSet<exdep_core::object_store::path::Path>,
}

/// The path of `object` under `prefix`, as text.
fn relative_path_of(
    object: &exdep_core::object_store::path::Path,
    prefix: &exdep_core::object_store::path::Path,
) -> String {
    object
        .prefix_match(prefix)
        .expect("listed under the prefix")
        .map(|part| part.as_ref().to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// An output table to compute: its name (the folder under the output root), its Hive
/// partition columns, the schema of its files and the plan that computes it.
#[derive(Debug, Clone, Copy)]
pub struct TableToWrite<'a> {
    /// Folder name under the output root.
    pub name: &'a str,
    /// Hive partition columns, outermost first.
    pub partition_by: &'a [&'a str],
    /// A column whose values split each partition's rows into files (see
    /// [`exdep_store::PartitionedWriter::files_by`]).
    pub files_by: Option<&'a str>,
    /// Schema of the Parquet files (without the partition columns).
    pub file_schema: &'a SchemaRef,
    /// The plan, as SQL.
    pub sql: &'a str,
}

/// Computes `table` and writes it under `STAGING/NAME/` (`STAGING` is the run's, see
/// [`Output::staging`]).
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
    let files = exdep_store::write_partitioned(
        ctx,
        table.sql,
        &staging.join(table.name),
        table.partition_by,
        table.files_by,
        table.file_schema,
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

#[cfg(test)]
mod tests {
    use super::*;
    use exdep_core::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    /// A file in the staging folder that no table's report lists (nothing of this run's
    /// wrote it) stops the publication before any table is moved.
    #[tokio::test]
    async fn a_staged_file_the_run_did_not_write_stops_the_publication() {
        let ctx = exdep_engine::new_session();
        let output = Output::new(Location::parse_url("memory:///stray/out").unwrap());
        let staging = output.staging("run-1");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "usd",
            DataType::Float64,
            false,
        )]));
        let mut reports = Vec::new();
        for name in ["first", "second"] {
            let table = TableToWrite {
                name,
                partition_by: &[YEAR],
                files_by: None,
                file_schema: &schema,
                sql: "SELECT 2021 AS year, 1.5 AS usd",
            };
            reports.push(write_table(&ctx, &staging, table).await.unwrap());
        }
        let stray = staging.join("second/year=2021/part-00001.parquet");
        exdep_store::write_object(&ctx, &stray, b"not the run's".to_vec())
            .await
            .unwrap();
        let replaced = ["first", "second"]
            .map(|name| (name.to_string(), BTreeSet::from([2021])))
            .into();
        let layouts = ["first", "second"].map(|name| TableLayout {
            name: name.to_string(),
            partition_by: vec![YEAR.to_string()],
            file_schema: schema.clone(),
        });
        let publication = Publication {
            run_id: "run-1",
            format: TableFormat::Parquet,
            layouts: &layouts,
        };
        let error = publish(
            &ctx,
            &staging,
            &output,
            &mut reports,
            &replaced,
            publication,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&error, Error::UnknownStagedFile { file } if file == &stray.to_string()),
            "{error}"
        );
        for name in ["first", "second"] {
            assert!(
                !output.table(name).has_objects(&ctx).await.unwrap(),
                "`{name}` is untouched"
            );
        }
    }
}
