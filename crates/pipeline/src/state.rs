//! The run state: what the warehouse holds and what it was built from, so that the next run
//! redoes only what changed.

use std::collections::{BTreeMap, BTreeSet};

use exdep_classify::{CubeReport, TableDigest};
use exdep_core::Config;
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_ingest::FileReport;
use serde::{Deserialize, Serialize};

use exdep_store::layout::Warehouse;
use exdep_store::{Objects, Result, read_json, write_json};

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
    /// How it was read (see [`exdep_core::Input::reading`]).
    pub reading: String,
    /// What ingest did with it, with its size, entity tag and modification time.
    pub report: FileReport,
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
