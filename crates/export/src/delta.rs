//! Delta Lake publication (`table-format = "delta"`): each run's change to a table is one
//! commit to the table's `_delta_log`, which adds the files the run wrote and removes, in
//! the same commit, the files of the year partitions it replaced. Readers see a table's
//! old version or its new one, never a mix; the removed files stay for readers of old
//! versions until [`vacuum`] deletes them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, StructField};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use exdep_core::Location;
use exdep_core::arrow::datatypes::{Field, SchemaRef};
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::prefix::PrefixStore;
use exdep_core::schema::{YEAR, partition_column_type};
use futures::TryStreamExt;
use serde_json::json;

use crate::error::{Error, Result};
use crate::{PublishedFile, TableLayout};

/// The folder of a Delta table's transaction log.
pub(crate) const DELTA_LOG: &str = "_delta_log";

/// The Delta table at `root`, through the session's object store for it (so the same
/// credentials and retries apply), not yet loaded.
fn table_at(ctx: &SessionContext, root: &Location) -> Result<DeltaTable> {
    let root_store = root.store(ctx)?;
    let prefixed = Arc::new(PrefixStore::new(root_store.clone(), root.path()?));
    let log_store: LogStoreRef =
        default_logstore(prefixed, root_store, root.url(), &StorageConfig::default());
    Ok(DeltaTable::new(log_store))
}

/// The Delta table at `root` with its latest version loaded, or `None` when there is none.
pub(crate) async fn load(ctx: &SessionContext, root: &Location) -> Result<Option<DeltaTable>> {
    let mut table = table_at(ctx, root)?;
    Ok(load_latest(&mut table, root).await?.then_some(table))
}

/// Loads the latest version of `table` (at `root`); false when there is no table yet.
async fn load_latest(table: &mut DeltaTable, root: &Location) -> Result<bool> {
    if !table
        .verify_deltatable_existence()
        .await
        .map_err(|source| delta_error(root, source))?
    {
        return Ok(false);
    }
    table
        .load()
        .await
        .map_err(|source| delta_error(root, source))?;
    Ok(true)
}

fn delta_error(root: &Location, source: DeltaTableError) -> Error {
    Error::Delta {
        table: root.to_string(),
        source: Box::new(source),
    }
}

/// The year a file of a table is in, from its partition values.
fn year_of(partition_values: &HashMap<String, Option<String>>) -> Option<i32> {
    partition_values.get(YEAR)?.as_ref()?.parse().ok()
}

/// Commits to the Delta table at `root` (creating it on its first run) the `files` the run
/// moved into it, replacing every file of the year partitions `years`, as one commit; the
/// commit's metadata names the run. Returns the table's new version.
pub(crate) async fn commit(
    ctx: &SessionContext,
    root: &Location,
    layout: &TableLayout,
    files: &[PublishedFile],
    years: &BTreeSet<i32>,
    run_id: &str,
) -> Result<u64> {
    let mut adds = Vec::with_capacity(files.len());
    for file in files {
        adds.push(Action::Add(Add {
            path: file.relative_path.clone(),
            partition_values: file
                .partition
                .iter()
                .map(|(column, value)| (column.clone(), Some(value.clone())))
                .collect(),
            size: file.size as i64,
            modification_time: file.modified_millis,
            data_change: true,
            stats: Some(json!({ "numRecords": file.rows }).to_string()),
            ..Default::default()
        }));
    }
    let metadata = HashMap::from([
        ("exdepRun".to_string(), json!(run_id)),
        ("exdepVersion".to_string(), json!(env!("CARGO_PKG_VERSION"))),
    ]);
    let mut table = table_at(ctx, root)?;
    if !load_latest(&mut table, root).await? {
        let mut columns = Vec::new();
        for field in layout
            .file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain(
                layout
                    .partition_by
                    .iter()
                    .map(|c| Field::new(c, partition_column_type(c), false)),
            )
        {
            let column: StructField = (&field)
                .try_into_kernel()
                .map_err(|source| delta_error(root, source.into()))?;
            columns.push(column);
        }
        let created = CreateBuilder::new()
            .with_log_store(table.log_store())
            .with_table_name(&layout.name)
            .with_columns(columns)
            .with_partition_columns(layout.partition_by.clone())
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_actions(adds)
            .with_commit_properties(CommitProperties::default().with_metadata(metadata))
            .await
            .map_err(|source| delta_error(root, source))?;
        return Ok(created.version().unwrap_or_default());
    }
    let mut actions = adds;
    let current: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|source| delta_error(root, source))?;
    for file in current {
        if year_of(&file.partition_values_map()).is_some_and(|y| years.contains(&y)) {
            actions.push(Action::Remove(file.remove_action(true)));
        }
    }
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(layout.partition_by.clone()),
        predicate: Some(format!("{YEAR} IN ({})", exdep_core::sql::year_list(years))),
    };
    let snapshot = table
        .snapshot()
        .map_err(|source| delta_error(root, source))?;
    let committed = CommitBuilder::default()
        .with_actions(actions)
        .with_app_metadata(metadata)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(|source| delta_error(root, source))?;
    Ok(committed.version())
}

/// The schema and the files of the Delta table at `root`'s latest version, each file with
/// its partition values; `None` when there is no table there.
pub(crate) async fn active_files(
    ctx: &SessionContext,
    root: &Location,
) -> Result<Option<(SchemaRef, Vec<(String, BTreeMap<String, String>)>)>> {
    let mut table = table_at(ctx, root)?;
    if !load_latest(&mut table, root).await? {
        return Ok(None);
    }
    let schema = table
        .snapshot()
        .map_err(|source| delta_error(root, source))?
        .snapshot()
        .arrow_schema();
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|source| delta_error(root, source))?;
    let files = views
        .iter()
        .map(|view| {
            let partition = view
                .partition_values_map()
                .into_iter()
                .filter_map(|(column, value)| Some((column, value?)))
                .collect();
            (view.path().to_string(), partition)
        })
        .collect();
    Ok(Some((schema, files)))
}

/// What [`vacuum`] did to one table.
#[derive(Debug, Clone)]
pub struct Vacuumed {
    /// The table's folder.
    pub table: String,
    /// The files deleted.
    pub deleted: usize,
}

/// Deletes, from every Delta table under `output`, the files no version younger than
/// `retention` reads: files later commits removed, and files of runs killed before they
/// committed.
pub async fn vacuum(
    ctx: &SessionContext,
    output: &Location,
    tables: &[String],
    retention: std::time::Duration,
) -> Result<Vec<Vacuumed>> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut vacuumed = Vec::new();
    for name in tables {
        let root = output.join(name);
        let Some(table) = load(ctx, &root).await? else {
            continue;
        };
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .await
            .map_err(|source| delta_error(&root, source))?;
        vacuumed.push(Vacuumed {
            table: name.clone(),
            deleted: metrics.files_deleted.len(),
        });
    }
    Ok(vacuumed)
}
