//! Delta Lake publication (`table-format = "delta"`): each run's change to a table is one
//! commit to the table's `_delta_log`, which adds the files the run wrote and removes, in
//! the same commit, the files of the year partitions it replaced. Readers see a table's
//! old version or its new one, never a mix; the removed files stay for readers of old
//! versions until [`vacuum`] deletes them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use deltalake_core::checkpoints;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, MetadataExt, StructField, StructType};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::config::TablePropertiesExt;
use deltalake_core::{DeltaTable, DeltaTableError, TableProperty};
use exdep_core::Location;
use exdep_core::arrow::datatypes::{Field, SchemaRef};
use exdep_core::object_store::prefix::PrefixStore;
use exdep_core::schema::{YEAR, partition_column_type};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::Objects;
use exdep_store::layout::Output;
use futures::TryStreamExt;
use serde_json::json;
use tracing::warn;

use crate::error::{Error, Result};
use crate::table::{PublishedFile, TableLayout};

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

/// How many times a commit is tried against a fresh snapshot when other writers committed
/// in between.
const COMMIT_ATTEMPTS: usize = 5;

/// Commits between checkpoints of the tables exdep creates: a reader replays at most this
/// many JSON commits after the last checkpoint.
const CHECKPOINT_INTERVAL: &str = "10";

/// Commits to the Delta table at `root` (creating it on its first run) the `files` the run
/// moved into it, replacing every file of the year partitions `years`, as one commit; the
/// commit's metadata names the run. Returns the table's new version.
///
/// The files to remove are those of the snapshot the commit is built on. When another
/// writer commits in between (an append into a replaced year, a compaction), the commit is
/// refused rather than resolved by the log's own conflict check, and built again on the
/// newer snapshot: the replaced years then hold exactly this run's files, never a
/// duplicate of the other writer's rows.
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
            stats: Some(file_stats(file).to_string()),
            ..Default::default()
        }));
    }
    let metrics = CommitMetrics::adding(files);
    let metadata = HashMap::from([
        ("exdepRun".to_string(), json!(run_id)),
        ("exdepVersion".to_string(), json!(env!("CARGO_PKG_VERSION"))),
    ]);
    let mut table = table_at(ctx, root)?;
    if !load_latest(&mut table, root).await? {
        return create(root, &table, layout, adds, metrics.noted_in(&metadata)).await;
    }
    let mut attempt = 1;
    loop {
        match replace_years(&table, &adds, years, layout, &metadata, &metrics).await {
            Ok(version) => {
                checkpoint_if_due(&mut table, root, version).await;
                return Ok(version);
            }
            Err(error) if attempt < COMMIT_ATTEMPTS && is_concurrent_commit(&error) => {
                warn!(table = %root, %error, "another writer committed first; building the commit again on its version");
                load_latest(&mut table, root).await?;
                attempt += 1;
            }
            Err(source) => return Err(delta_error(root, source)),
        }
    }
}

/// The `stats` of `file`'s add action: its rows, and its columns' bounds and null counts,
/// by which engines skip files on values of columns that are not partition columns.
fn file_stats(file: &PublishedFile) -> serde_json::Value {
    json!({
        "numRecords": file.rows,
        "minValues": file.statistics.min_values,
        "maxValues": file.statistics.max_values,
        "nullCount": file.statistics.null_count,
    })
}

/// Files, rows and bytes a commit adds or removes.
#[derive(Debug, Default, Clone)]
struct Changed {
    files: usize,
    rows: u64,
    bytes: u64,
}

/// What a commit changes: its `operationMetrics`, named as delta-rs names a write's, which
/// `DESCRIBE HISTORY` and delta-rs' `history()` show.
#[derive(Debug, Default, Clone)]
struct CommitMetrics {
    added: Changed,
    removed: Changed,
    /// The partitions it adds files to.
    partitions: usize,
}

impl CommitMetrics {
    /// The metrics of a commit that adds `files` and removes nothing (yet).
    fn adding(files: &[PublishedFile]) -> Self {
        let partitions: BTreeSet<&[(String, String)]> =
            files.iter().map(|file| file.partition.as_slice()).collect();
        Self {
            added: Changed {
                files: files.len(),
                rows: files.iter().map(|file| file.rows).sum(),
                bytes: files.iter().map(|file| file.size).sum(),
            },
            removed: Changed::default(),
            partitions: partitions.len(),
        }
    }

    /// The commit's `metadata` with these metrics.
    fn noted_in(
        &self,
        metadata: &HashMap<String, serde_json::Value>,
    ) -> HashMap<String, serde_json::Value> {
        let mut metadata = metadata.clone();
        metadata.insert(
            "operationMetrics".to_string(),
            json!({
                "num_added_files": self.added.files,
                "num_added_rows": self.added.rows,
                "num_added_bytes": self.added.bytes,
                "num_removed_files": self.removed.files,
                "num_removed_rows": self.removed.rows,
                "num_removed_bytes": self.removed.bytes,
                "num_partitions": self.partitions,
            }),
        );
        metadata
    }
}

/// The rows of a file the log lists, from its `stats`; 0 when it has none.
fn rows_of(stats: Option<&str>) -> u64 {
    stats
        .and_then(|stats| serde_json::from_str::<serde_json::Value>(stats).ok())
        .and_then(|stats| stats.get("numRecords")?.as_u64())
        .unwrap_or_default()
}

/// The columns of a table of `layout`, its partition columns last, in Delta's types.
fn table_columns(layout: &TableLayout) -> std::result::Result<Vec<StructField>, DeltaTableError> {
    (layout.file_schema.fields().iter())
        .map(|f| f.as_ref().clone())
        .chain((layout.partition_by.iter()).map(|c| Field::new(c, partition_column_type(c), false)))
        .map(|field| Ok((&field).try_into_kernel()?))
        .collect()
}

/// Creates the table at `root` with its first files.
async fn create(
    root: &Location,
    table: &DeltaTable,
    layout: &TableLayout,
    adds: Vec<Action>,
    metadata: HashMap<String, serde_json::Value>,
) -> Result<u64> {
    let columns = table_columns(layout).map_err(|source| delta_error(root, source))?;
    let created = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_table_name(&layout.name)
        .with_columns(columns)
        .with_partition_columns(layout.partition_by.clone())
        .with_configuration_property(TableProperty::CheckpointInterval, Some(CHECKPOINT_INTERVAL))
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_actions(adds)
        .with_commit_properties(
            CommitProperties::default()
                .with_metadata(metadata)
                .with_create_checkpoint(false),
        )
        .await
        .map_err(|source| delta_error(root, source))?;
    Ok(created.version().unwrap_or_default())
}

/// One commit on `table`'s loaded snapshot: `adds`, and the removal of every file of the
/// year partitions `years` in that snapshot. Fails, without committing, when the table has
/// a newer version than the snapshot; writes a checkpoint when the table's interval says so.
async fn replace_years(
    table: &DeltaTable,
    adds: &[Action],
    years: &BTreeSet<i32>,
    layout: &TableLayout,
    metadata: &HashMap<String, serde_json::Value>,
    metrics: &CommitMetrics,
) -> std::result::Result<u64, DeltaTableError> {
    let mut actions = adds.to_vec();
    // A table published by an earlier exdep may declare other columns (a column added, one
    // that may now be null): the commit that replaces its years declares this run's.
    let schema = StructType::try_new(table_columns(layout)?)?;
    let snapshot = table.snapshot()?;
    if *snapshot.schema() != schema {
        actions.push(Action::Metadata(
            snapshot.metadata().clone().with_schema(&schema)?,
        ));
    }
    let current: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await?;
    let mut metrics = metrics.clone();
    for file in current {
        if year_of(&file.partition_values_map()).is_some_and(|y| years.contains(&y)) {
            metrics.removed.files += 1;
            metrics.removed.rows += rows_of(file.stats().as_deref());
            metrics.removed.bytes += file.size() as u64;
            actions.push(Action::Remove(file.remove_action(true)));
        }
    }
    let operation = DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(layout.partition_by.clone()),
        predicate: Some(format!("{YEAR} IN ({})", exdep_core::sql::year_list(years))),
    };
    let properties = CommitProperties::default()
        .with_metadata(metrics.noted_in(metadata))
        .with_max_retries(0)
        .with_create_checkpoint(false);
    let committed = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), operation)
        .await?;
    Ok(committed.version())
}

/// Writes a checkpoint of `table` at `version` when the table's interval says so. A failure
/// only warns: the commit stands, and readers replay the JSON commits instead.
async fn checkpoint_if_due(table: &mut DeltaTable, root: &Location, version: u64) {
    let interval = match table.snapshot() {
        Ok(snapshot) => snapshot.table_config().checkpoint_interval().get(),
        Err(_) => return,
    };
    if !(version + 1).is_multiple_of(interval) {
        return;
    }
    let written = match table.load().await {
        Ok(()) => checkpoints::create_checkpoint(table, None).await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        warn!(table = %root, version, %error, "the commit stands, but its checkpoint could not be written");
    }
}

/// Whether a commit failed because another writer committed a version first.
fn is_concurrent_commit(error: &DeltaTableError) -> bool {
    matches!(
        error,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction {
                source: TransactionError::MaxCommitAttempts(_)
                    | TransactionError::VersionAlreadyExists(_)
                    | TransactionError::CommitConflict(_)
            }
    )
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
    output: &Output,
    tables: &[String],
    retention: std::time::Duration,
) -> Result<Vec<Vacuumed>> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut vacuumed = Vec::new();
    for name in tables {
        let root = output.table(name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use exdep_store::layout::DELTA_LOG;

    fn published(year: i32, name: &str) -> PublishedFile {
        PublishedFile {
            relative_path: format!("{YEAR}={year}/{name}"),
            partition: vec![(YEAR.to_string(), year.to_string())],
            rows: 1,
            size: 100,
            modified_millis: 0,
            statistics: Default::default(),
        }
    }

    fn add(year: i32, name: &str, data_change: bool) -> Action {
        Action::Add(Add {
            path: format!("{YEAR}={year}/{name}"),
            partition_values: [(YEAR.to_string(), Some(year.to_string()))]
                .into_iter()
                .collect(),
            size: 100,
            data_change,
            ..Default::default()
        })
    }

    async fn loaded(ctx: &SessionContext, root: &Location) -> DeltaTable {
        load(ctx, root).await.unwrap().expect("the table exists")
    }

    async fn active(ctx: &SessionContext, root: &Location) -> BTreeSet<String> {
        let (_, files) = active_files(ctx, root).await.unwrap().unwrap();
        files.into_iter().map(|(path, _)| path).collect()
    }

    /// Another writer commits between the snapshot exdep's commit is built on and the
    /// commit itself (an append into a replaced year, or a compaction that rewrites its
    /// files without changing data): the commit on the old snapshot is refused, not merged,
    /// and the commit built again on the new version leaves the replaced year with this
    /// run's file only, no duplicate of the other writer's rows.
    #[tokio::test]
    async fn a_commit_by_another_writer_in_between_leaves_no_duplicates() {
        let ctx = exdep_engine::new_session();
        let layout = TableLayout::rejects();
        let (years_2021, both) = (BTreeSet::from([2021]), BTreeSet::from([2021, 2022]));
        for (other_writer, name) in [
            (vec![add(2021, "appended.parquet", true)], "append"),
            (vec![add(2021, "compacted.parquet", false)], "compaction"),
        ] {
            let root = Location::parse_url(&format!("memory:///{name}/rejects")).unwrap();
            let first = [published(2021, "a.parquet"), published(2022, "b.parquet")];
            commit(&ctx, &root, &layout, &first, &both, "run-1")
                .await
                .unwrap();
            let stale = loaded(&ctx, &root).await;

            let mut actions = other_writer;
            if name == "compaction" {
                let current: Vec<_> = stale
                    .get_active_add_actions_by_partitions(&[])
                    .try_collect()
                    .await
                    .unwrap();
                for file in current.iter().filter(|f| f.path().starts_with("year=2021")) {
                    actions.push(Action::Remove(file.remove_action(false)));
                }
            }
            let other = loaded(&ctx, &root).await;
            CommitBuilder::default()
                .with_actions(actions)
                .build(
                    Some(other.snapshot().unwrap()),
                    other.log_store(),
                    DeltaOperation::Write {
                        mode: SaveMode::Append,
                        partition_by: None,
                        predicate: None,
                    },
                )
                .await
                .unwrap();

            let ours = [add(2021, "c.parquet", true)];
            let refused = replace_years(
                &stale,
                &ours,
                &years_2021,
                &layout,
                &HashMap::new(),
                &Default::default(),
            )
            .await
            .expect_err("a commit on a stale snapshot is refused");
            assert!(is_concurrent_commit(&refused), "{name}: {refused}");

            let second = [published(2021, "c.parquet")];
            commit(&ctx, &root, &layout, &second, &years_2021, "run-2")
                .await
                .unwrap();
            assert_eq!(
                active(&ctx, &root).await,
                BTreeSet::from(["year=2021/c.parquet".into(), "year=2022/b.parquet".into()]),
                "{name}"
            );
        }
    }

    /// A table exdep creates writes a checkpoint every ten commits, so that readers replay
    /// at most ten JSON commits.
    #[tokio::test]
    async fn every_tenth_commit_writes_a_checkpoint() {
        let ctx = exdep_engine::new_session();
        let layout = TableLayout::rejects();
        let root = Location::parse_url("memory:///checkpoints/rejects").unwrap();
        for run in 0..10 {
            let file = [published(2021, &format!("run-{run}.parquet"))];
            commit(&ctx, &root, &layout, &file, &BTreeSet::from([2021]), "run")
                .await
                .unwrap();
        }
        let log = root.join(DELTA_LOG);
        let store = log.store(&ctx).unwrap();
        let names: Vec<String> = store
            .list(Some(&log.path().unwrap()))
            .map_ok(|meta| meta.location.filename().unwrap_or_default().to_string())
            .try_collect()
            .await
            .unwrap();
        assert!(
            names
                .iter()
                .any(|n| n == "00000000000000000009.checkpoint.parquet"),
            "{names:?}"
        );
    }

    /// A table published by an earlier exdep declares other columns (here: one that may
    /// now be null, and one added): the commit that replaces its years declares the run's
    /// columns, so readers of the new version see the new schema.
    #[tokio::test]
    async fn a_commit_declares_the_runs_columns_over_an_earlier_schema() {
        use exdep_core::arrow::datatypes::{DataType, Schema};
        let ctx = exdep_engine::new_session();
        let root = Location::parse_url("memory:///schema/indices").unwrap();
        let layout = |fields: Vec<Field>| TableLayout {
            name: "indices".to_string(),
            partition_by: vec![YEAR.to_string()],
            file_schema: Arc::new(Schema::new(fields)),
        };
        let earlier = layout(vec![Field::new("hhi_norm", DataType::Float64, false)]);
        let years = BTreeSet::from([2021]);
        commit(
            &ctx,
            &root,
            &earlier,
            &[published(2021, "a.parquet")],
            &years,
            "run-1",
        )
        .await
        .unwrap();
        let now = layout(vec![
            Field::new("hhi_norm", DataType::Float64, true),
            Field::new("exports_cny", DataType::Float64, false),
        ]);
        commit(
            &ctx,
            &root,
            &now,
            &[published(2021, "b.parquet")],
            &years,
            "run-2",
        )
        .await
        .unwrap();
        let table = loaded(&ctx, &root).await;
        let schema = table.snapshot().unwrap().schema();
        let columns: Vec<(String, bool)> = schema
            .fields()
            .map(|field| (field.name().clone(), field.is_nullable()))
            .collect();
        assert_eq!(
            columns,
            [
                ("hhi_norm".to_string(), true),
                ("exports_cny".to_string(), false),
                (YEAR.to_string(), false)
            ]
        );
        assert_eq!(
            active(&ctx, &root).await,
            BTreeSet::from(["year=2021/b.parquet".to_string()])
        );
    }
}
