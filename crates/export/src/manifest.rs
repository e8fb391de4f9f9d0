//! The run manifest: what a run read, what it did with every record, what it wrote.

use std::collections::{BTreeMap, BTreeSet};

use exdep_classify::{CubeReport, TableDigest};
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::{ObjectStoreExt, PutPayload};
use exdep_core::{InputFormat, Location, Tally, TallyByReason, total};
use exdep_ingest::IngestReport;
use serde::{Deserialize, Serialize};

use crate::{Result, TableReport};

/// The manifest's name under the output root; `_` keeps lake readers from taking it as data.
pub const MANIFEST_NAME: &str = "_manifest.json";

/// The fate of every record of one input file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileReconciliation {
    /// The file.
    pub file: String,
    /// Its format.
    pub format: InputFormat,
    /// The text encoding it was decoded from.
    pub encoding: Option<String>,
    /// The column its origins came from, where the format offers a choice.
    pub origin_column: Option<String>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its entity tag, where the store gives one.
    pub e_tag: Option<String>,
    /// When it was last modified (RFC 3339).
    pub last_modified: String,
    /// The years its accepted records fall in.
    pub years: Vec<i32>,
    /// Records read.
    pub read: u64,
    /// Records that entered the cube.
    pub accepted: Tally,
    /// Records rejected, by reason: at ingest (unparseable, out of the run's years, ...) or at
    /// classification (codes no table maps).
    pub rejected: TallyByReason,
    /// Records left out by a rule, by rule.
    pub excluded: TallyByReason,
    /// Whether read = accepted + rejected + excluded holds.
    pub balanced: bool,
}

impl FileReconciliation {
    /// Rejected records over all reasons.
    pub fn rejected_total(&self) -> Tally {
        total(&self.rejected)
    }

    /// Excluded records over all rules.
    pub fn excluded_total(&self) -> Tally {
        total(&self.excluded)
    }
}

/// Joins what ingest and classification did into one account per input file.
pub fn reconcile(ingest: &IngestReport, cube: &CubeReport) -> Vec<FileReconciliation> {
    ingest
        .files
        .iter()
        .map(|file| {
            let disposition = cube.by_source.get(&file.file).cloned().unwrap_or_default();
            let mut rejected = file.rejected.clone();
            for (reason, tally) in disposition.rejected {
                rejected.entry(reason).or_default().add(tally);
            }
            let accepted = disposition.classified;
            let mut excluded = file.excluded.clone();
            for (rule, tally) in disposition.excluded {
                excluded.entry(rule).or_default().add(tally);
            }
            let counted = accepted.records + total(&rejected).records + total(&excluded).records;
            FileReconciliation {
                file: file.file.clone(),
                format: file.format,
                encoding: file.encoding.clone(),
                origin_column: file.origin_column.clone(),
                bytes: file.bytes,
                e_tag: file.e_tag.clone(),
                last_modified: file.last_modified.clone(),
                years: file.accepted_by_year.keys().copied().collect(),
                read: file.read,
                accepted,
                rejected,
                excluded,
                balanced: counted == file.read,
            }
        })
        .collect()
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
    /// Configured years for which no record was accepted.
    pub years_without_records: BTreeSet<i32>,
    /// The code tables used.
    pub code_tables: BTreeMap<String, TableDigest>,
    /// One account per input file.
    pub inputs: Vec<FileReconciliation>,
    /// Cube cells per year.
    pub cube_cells_by_year: BTreeMap<i32, u64>,
    /// The tables written.
    pub tables: Vec<TableReport>,
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
    /// A manifest for a finished run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        started: chrono::DateTime<chrono::Utc>,
        config: &exdep_core::Config,
        code_tables: BTreeMap<String, TableDigest>,
        inputs: Vec<FileReconciliation>,
        cube: &CubeReport,
        tables: Vec<TableReport>,
    ) -> Self {
        let years_without_records = config
            .years
            .iter()
            .filter(|y| !cube.cells_by_year.contains_key(y))
            .copied()
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
            years_without_records,
            code_tables,
            inputs,
            cube_cells_by_year: cube.cells_by_year.clone(),
            tables,
        }
    }
}

/// Reads the manifest of the last published run under `output`, if there is one.
pub async fn read_manifest(ctx: &SessionContext, output: &Location) -> Result<Option<RunManifest>> {
    match output.join(MANIFEST_NAME).read_all(ctx).await {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(exdep_core::Error::ObjectStore(exdep_core::object_store::Error::NotFound {
            ..
        })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The marker written after everything else, which a consumer can wait for.
pub const SUCCESS_NAME: &str = "_SUCCESS";

/// Writes the manifest as `OUTPUT/_manifest.json`, after every table, then the `_SUCCESS`
/// marker (holding the run's finish time).
pub async fn write_manifest(
    ctx: &SessionContext,
    output: &Location,
    manifest: &RunManifest,
) -> Result<Location> {
    let location = output.join(MANIFEST_NAME);
    let json = serde_json::to_vec_pretty(manifest)?;
    let store = location.store(ctx)?;
    store.put(&location.path()?, PutPayload::from(json)).await?;

    let marker = output.join(SUCCESS_NAME);
    store
        .put(
            &marker.path()?,
            PutPayload::from(manifest.finished.clone().into_bytes()),
        )
        .await?;
    Ok(location)
}
