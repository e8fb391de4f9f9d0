//! The run manifest: what a run read, what it did with every record, what it wrote.

use std::collections::{BTreeMap, BTreeSet};

use exdep_classify::{CubeReport, TableDigest};
use exdep_core::{InputFormat, Location, TableFormat, Tally, TallyByReason, total};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_export::TableReport;
use exdep_ingest::{FileReport, SkippedFile};
use exdep_store::layout::Output;
use exdep_store::{Objects, Result, read_json, write_json, write_object};
use serde::{Deserialize, Serialize};

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
    /// Records rejected, by reason: a field that fails a check (unparseable, out of the
    /// run's years, ...) or a code no table maps.
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

/// Joins what ingest did with each file and what classification did with its records, in
/// every year of `cube`, into one account per input file.
pub fn reconcile(files: &[FileReport], cube: &CubeReport) -> Vec<FileReconciliation> {
    files
        .iter()
        .map(|file| {
            let mut accepted = Tally::default();
            let rejected = file.rejected.clone();
            let mut excluded = file.excluded.clone();
            for disposition in cube.values().filter_map(|y| y.by_source.get(&file.file)) {
                accepted.add(disposition.classified);
                for (rule, tally) in &disposition.excluded {
                    excluded.entry(rule.clone()).or_default().add(*tally);
                }
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
        config: &exdep_core::Config,
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
fn partition_year(file: &exdep_store::WrittenFile) -> Option<i32> {
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
