//! The documents exdep keeps beside its data: the run state in the warehouse (what its
//! layers were built from) and the manifest in the output (what the last run read, did with
//! every record, and wrote), as types, with their reading and writing; and single objects
//! written whole.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::prelude::SessionContext;
use exdep_core::account::{CubeReport, FileReconciliation, FileReport, SkippedFile, TableDigest};
use exdep_core::codes::{CodeRow, CodeTable};
use exdep_core::months::{Slice, YearMonths};
use exdep_core::{Config, Location, TableFormat, hex_sha256};
use object_store::{ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{Output, Warehouse};
use crate::objects::Objects;
use crate::writer::{TableReport, WrittenFile};

/// What the warehouse's layers were built from. A run writes it last; before it changes
/// the warehouse it writes the state without what it is about to rebuild, so a run killed
/// midway leaves a state that sends the next run over the same ground.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The exdep version that built the layers.
    pub exdep_version: String,
    /// When the state was written (RFC 3339, UTC).
    pub written: String,
    /// SHA-256 of the config file's bytes.
    pub config_sha256: String,
    /// SHA-256 of the settings that shape every year (see [`Config::settings_sha256`]).
    pub settings_sha256: String,
    /// The code tables, with the hash of their bytes.
    pub code_tables: BTreeMap<String, TableDigest>,
    /// The years the layers were built for.
    pub years: BTreeSet<i32>,
    /// Whether the audit layer `raw/` was written.
    #[serde(default)]
    pub raw_layer: bool,
    /// Every input file in the raw layer: its fingerprint, how it was read and what became
    /// of its records.
    pub files: BTreeMap<String, FileState>,
    /// The cube's years: cells and the dispositions of their raw records.
    pub cube: CubeReport,
    /// Whether the quarantine's year 0 (records without a usable year) must be republished:
    /// set in the state a run writes before it changes the warehouse, when it was to
    /// republish it, because the files it reads again are then no longer in the state to
    /// tell.
    #[serde(default)]
    pub rejects_without_year_pending: bool,
}

/// One input file in the raw layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileState {
    /// How it was read (see `exdep_core::Input::reading`).
    pub reading: String,
    /// What ingest did with it, with its size, entity tag and modification time.
    pub report: FileReport,
    /// Its accepted records by year, origin and currency, with their months: the time
    /// guards compare them with the other files' (see [`exdep_core::months`]).
    #[serde(default)]
    pub slices: Vec<Slice>,
}

impl RunState {
    /// The state of a warehouse built for `config` from these files and cube years.
    pub fn new(
        config: &Config,
        code_tables: BTreeMap<String, TableDigest>,
        files: BTreeMap<String, FileState>,
        cube: CubeReport,
    ) -> Self {
        Self {
            exdep_version: env!("CARGO_PKG_VERSION").to_string(),
            written: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            config_sha256: config.sha256.clone(),
            settings_sha256: config.settings_sha256(),
            code_tables,
            years: config.years.clone(),
            raw_layer: config.raw_layer,
            files,
            cube,
            rejects_without_year_pending: false,
        }
    }
}

/// Reads the warehouse's run state, if there is one.
pub async fn read_state(ctx: &SessionContext, warehouse: &Warehouse) -> Result<Option<RunState>> {
    read_json(ctx, &warehouse.state()).await
}

/// Writes the warehouse's run state.
pub async fn write_state(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    state: &RunState,
) -> Result<()> {
    write_json(ctx, &warehouse.state(), state).await
}

/// Removes the warehouse's run state, so that the next run starts from the inputs.
pub async fn remove_state(ctx: &SessionContext, warehouse: &Warehouse) -> Result<()> {
    warehouse.state().delete_if_exists(ctx).await
}

/// Everything a run records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    /// The exdep version that ran.
    pub exdep_version: String,
    /// When the run started and finished (RFC 3339, UTC).
    pub started: String,
    /// When the run finished.
    pub finished: String,
    /// The config file and the SHA-256 of its bytes.
    pub config: ConfigRecord,
    /// The years of the run.
    pub years: BTreeSet<i32>,
    /// The years whose tables are published: the run's, and those of earlier runs that a
    /// config no longer names but `--prune` did not remove.
    #[serde(default)]
    pub published_years: BTreeSet<i32>,
    /// SHA-256 of the index settings the tables were computed with.
    #[serde(default)]
    pub settings_sha256: String,
    /// Configured years for which no record was accepted.
    pub years_without_records: BTreeSet<i32>,
    /// The code tables used.
    pub code_tables: BTreeMap<String, TableDigest>,
    /// One account per input file.
    pub inputs: Vec<FileReconciliation>,
    /// Files of the input locations that were not read: hidden names, empty files.
    #[serde(default)]
    pub skipped_inputs: Vec<SkippedFile>,
    /// Cube cells per year.
    pub cube_cells_by_year: BTreeMap<i32, u64>,
    /// The months of each year's accepted records, over every input file, and what the
    /// time guards found in them (see [`exdep_core::months`]).
    #[serde(default)]
    pub months_by_year: BTreeMap<i32, YearMonths>,
    /// The tables written.
    pub tables: Vec<TableReport>,
    /// The format of the published tables.
    #[serde(default)]
    pub table_format: TableFormat,
    /// For Delta tables, the version each table's last commit made, by table (a table the
    /// run did not change keeps the version of the run that did).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delta_versions: BTreeMap<String, u64>,
}

/// The config a run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// Its path.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

impl RunManifest {
    /// A manifest for a finished run that rewrote `written` and removed the `pruned` years:
    /// the files of `previous` in partitions the run did not replace stay listed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        started: chrono::DateTime<chrono::Utc>,
        config: &Config,
        code_tables: BTreeMap<String, TableDigest>,
        inputs: Vec<FileReconciliation>,
        cube: &CubeReport,
        previous: Option<&RunManifest>,
        written: Vec<TableReport>,
        replaced: &BTreeMap<String, BTreeSet<i32>>,
        pruned: &BTreeSet<i32>,
    ) -> Self {
        let years_without_records = config
            .years
            .iter()
            .filter(|y| cube.get(y).is_none_or(|c| c.cells == 0))
            .copied()
            .collect();
        let mut published_years = config.years.clone();
        if let Some(previous) = previous {
            published_years.extend(previous.published_years.difference(pruned));
        }
        let no_years = BTreeSet::new();
        let tables = written
            .into_iter()
            .map(|mut table| {
                let replaced = replaced.get(&table.name).unwrap_or(&no_years);
                let kept = previous
                    .and_then(|p| p.tables.iter().find(|t| t.name == table.name))
                    .into_iter()
                    .flat_map(|t| t.files.iter())
                    .filter(|f| {
                        partition_year(f)
                            .is_some_and(|y| !replaced.contains(&y) && published_years.contains(&y))
                    })
                    .cloned();
                table.files.extend(kept);
                table.files.sort_by(|a, b| a.partition.cmp(&b.partition));
                table.rows = table.files.iter().map(|f| f.rows).sum();
                table
            })
            .collect();
        Self {
            exdep_version: env!("CARGO_PKG_VERSION").to_string(),
            started: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            config: ConfigRecord {
                path: config.path.display().to_string(),
                sha256: config.sha256.clone(),
            },
            years: config.years.clone(),
            published_years,
            settings_sha256: config.settings_sha256(),
            years_without_records,
            code_tables,
            inputs,
            skipped_inputs: Vec::new(),
            cube_cells_by_year: cube.iter().map(|(y, c)| (*y, c.cells)).collect(),
            months_by_year: BTreeMap::new(),
            tables,
            table_format: config.table_format,
            delta_versions: previous
                .filter(|p| p.table_format == config.table_format)
                .map(|p| p.delta_versions.clone())
                .unwrap_or_default(),
        }
    }
}

/// The year partition a published file is in.
fn partition_year(file: &WrittenFile) -> Option<i32> {
    file.partition.first()?.1.parse().ok()
}

/// Reads the manifest of the last published run under `output`, if there is one.
pub async fn read_manifest(ctx: &SessionContext, output: &Output) -> Result<Option<RunManifest>> {
    read_json(ctx, &output.manifest()).await
}

/// Removes the `_SUCCESS` marker, then the manifest, before a run changes the published
/// tables: a consumer waiting for the marker never reads a half-published output, and no
/// manifest lists a file the run is about to replace.
pub async fn withdraw_publication(ctx: &SessionContext, output: &Output) -> Result<()> {
    for document in [output.success_marker(), output.manifest()] {
        document.delete_if_exists(ctx).await?;
    }
    Ok(())
}

/// Writes the manifest, after every table, then the `_SUCCESS` marker (holding the run's
/// finish time).
pub async fn write_manifest(
    ctx: &SessionContext,
    output: &Output,
    manifest: &RunManifest,
) -> Result<Location> {
    let location = output.manifest();
    write_json(ctx, &location, manifest).await?;
    let marker = output.success_marker();
    write_object(ctx, &marker, manifest.finished.clone().into_bytes()).await?;
    Ok(location)
}

/// Reads a JSON document exdep wrote, if it exists.
async fn read_json<T: DeserializeOwned>(
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
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes `value` as a JSON document, replacing what was there.
async fn write_json<T: Serialize>(
    ctx: &SessionContext,
    location: &Location,
    value: &T,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| Error::Unwritable {
        location: location.to_string(),
        source,
    })?;
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

/// Reads and checks the code table at `location` (see [`exdep_core::codes`]), with the
/// digest of its bytes for the manifest.
pub async fn read_code_table<R: CodeRow>(
    ctx: &SessionContext,
    location: &Location,
) -> Result<(CodeTable<R>, TableDigest)> {
    let bytes = location.read_all(ctx).await.map_err(|e| match e {
        Error::ObjectStore(source) => Error::CodeTableRead {
            file: location.to_string(),
            source,
        },
        other => other,
    })?;
    let digest = TableDigest {
        location: location.to_string(),
        sha256: hex_sha256(&bytes),
    };
    Ok((CodeTable::parse(&location.to_string(), &bytes)?, digest))
}
