//! What a run has to do: which input files to read, which cube years to rebuild and which
//! table partitions to rewrite, each with the reason, found by comparing the config and the
//! inputs as they are now with the warehouse's run state and the published manifest.

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::account::{FileReport, TableDigest};
use exdep_core::schema::UNKNOWN_YEAR;
use exdep_core::{Config, QuadrantCut};
use exdep_index::IndexTable;
use exdep_ingest::InputFile;
use exdep_store::layout::REJECTS;

use exdep_store::{RunManifest, RunState};
use tokio_util::sync::CancellationToken;

/// How `exdep run` treats earlier runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Rebuild every year from the inputs, whatever the run state says.
    pub force: bool,
    /// Rebuild these years (and what reads them) even when nothing changed.
    pub years: Vec<i32>,
    /// Remove the published tables of years the config no longer names.
    pub prune: bool,
    /// Remove a lock another run left (it died; see `exdep_store::RunLock`).
    pub break_lock: bool,
    /// Publish a year that would be replaced by no records at all (see
    /// `Error::EmptyYears`).
    pub allow_empty_years: bool,
    /// Cancelled by the caller to stop the run (on SIGTERM, say): the run stops where it
    /// is, removes its staging folder, releases its lease and fails with
    /// `Error::Stopped`.
    pub stop: CancellationToken,
}

/// The work of one run, with the reason for each piece.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Why every year is rebuilt from the inputs, when it is (`--force`, no run state, the
    /// index settings, a code table or the exdep version changed).
    pub full: Option<String>,
    /// Input files to read, with why.
    pub read: Vec<(InputFile, String)>,
    /// Files in the raw layer that are no longer among the inputs.
    pub gone: Vec<String>,
    /// Cube years to rebuild, with why.
    pub rebuild: BTreeMap<i32, Vec<String>>,
    /// Whether a file read or gone has records filed under year 0 in the quarantine.
    pub rejects_without_year: bool,
    /// Years the warehouse holds that the config no longer names: removed from the
    /// warehouse (their published tables stay unless `--prune`).
    pub dropped: BTreeSet<i32>,
    /// The run's years with no tables published under the output root yet.
    pub unpublished: BTreeSet<i32>,
    /// Published years the config no longer names, removed from the output by `--prune`.
    pub pruned: BTreeSet<i32>,
    /// The year partitions of each table (index tables and the quarantine) the run
    /// replaced, once its tables are planned (see [`Plan::partitions_to_replace`]).
    pub replaced: BTreeMap<String, BTreeSet<i32>>,
    /// The run's years.
    pub years: BTreeSet<i32>,
    /// The base year of the changes.
    pub base_year: i32,
    /// Where the quadrants are cut: at the base year's means, every year's `indices` read
    /// the base year.
    pub quadrant_cut: QuadrantCut,
}

impl Plan {
    /// The plan for `config` with the inputs as `listed` now, the code tables as `tables`
    /// now, the warehouse's `state` and the output's `published` manifest.
    pub fn new(
        config: &Config,
        listed: &[InputFile],
        tables: &BTreeMap<String, TableDigest>,
        state: Option<&RunState>,
        published: Option<&RunManifest>,
        options: &RunOptions,
    ) -> Self {
        let mut plan = Plan {
            years: config.years.clone(),
            base_year: config.indices.base_year,
            quadrant_cut: config.indices.quadrant_cut,
            ..Plan::default()
        };
        // Tables published in another format are not this run's: every year is published
        // afresh.
        let published_years = published
            .filter(|m| m.table_format == config.table_format)
            .map(|m| &m.published_years);
        plan.unpublished = config
            .years
            .iter()
            .filter(|y| published_years.is_none_or(|p| !p.contains(y)))
            .copied()
            .collect();
        if options.prune
            && let Some(published) = published_years
        {
            plan.pruned = published.difference(&config.years).copied().collect();
        }
        plan.full = full_rebuild(config, tables, state, options);
        let Some(state) = state.filter(|_| plan.full.is_none()) else {
            let why = plan.full.clone().unwrap_or_default();
            plan.rejects_without_year = true;
            plan.read = listed.iter().map(|f| (f.clone(), why.clone())).collect();
            for year in &config.years {
                plan.rebuild_year(*year, &why);
            }
            return plan;
        };

        plan.rejects_without_year = state.rejects_without_year_pending;
        let added: BTreeSet<i32> = config.years.difference(&state.years).copied().collect();
        plan.dropped = state.years.difference(&config.years).copied().collect();
        let forced: BTreeSet<i32> = options.years.iter().copied().collect();
        for year in &added {
            plan.rebuild_year(*year, "added to the run");
        }
        for year in config.years.iter().filter(|y| !state.cube.contains_key(y)) {
            plan.rebuild_year(*year, "its cube was not built");
        }
        for year in &forced {
            plan.rebuild_year(*year, "named by --years");
        }
        // Records of an added, removed or named year change fate: their files are read again.
        let moved: BTreeSet<i32> = added
            .iter()
            .chain(&plan.dropped)
            .chain(&forced)
            .copied()
            .collect();
        for file in listed {
            let url = file.location.to_string();
            let why = match state.files.get(&url) {
                None => Some(format!("input {url} is new")),
                Some(known) if !same_fingerprint(&known.report, file) => {
                    Some(format!("input {url} changed"))
                }
                Some(known) if known.reading != config.inputs[file.input_index].reading() => {
                    Some(format!("input {url} is read differently"))
                }
                Some(known) => known
                    .report
                    .records
                    .years_seen
                    .intersection(&moved)
                    .next()
                    .map(|year| format!("input {url} has records of {year}")),
            };
            if let Some(why) = why {
                if let Some(known) = state.files.get(&url) {
                    plan.rebuild_years_of(&known.report, config, &why);
                }
                plan.read.push((file.clone(), why));
            }
        }
        let listed_urls: BTreeSet<String> = listed.iter().map(|f| f.location.to_string()).collect();
        for (url, known) in &state.files {
            if !listed_urls.contains(url) {
                plan.rebuild_years_of(&known.report, config, &format!("input {url} is gone"));
                plan.gone.push(url.clone());
            }
        }
        plan
    }

    /// Adds the years the files just read turned out to hold.
    pub fn add_years_read<'a>(
        &mut self,
        reports: impl IntoIterator<Item = &'a FileReport>,
        config: &Config,
    ) {
        for report in reports {
            self.rejects_without_year |= report.records.rejected_without_year > 0;
            for year in report.records.years_seen.intersection(&config.years) {
                if !self.rebuild.contains_key(year) {
                    self.rebuild_year(
                        *year,
                        &format!("input {} holds its records", report.source.file),
                    );
                }
            }
        }
    }

    /// Rebuilds the years a file had (or has) records in.
    fn rebuild_years_of(&mut self, report: &FileReport, config: &Config, why: &str) {
        self.rejects_without_year |= report.records.rejected_without_year > 0;
        for year in report.records.years_seen.intersection(&config.years) {
            self.rebuild_year(*year, why);
        }
    }

    fn rebuild_year(&mut self, year: i32, why: &str) {
        let reasons = self.rebuild.entry(year).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }

    /// The cube years to rebuild.
    pub fn rebuilt_years(&self) -> BTreeSet<i32> {
        self.rebuild.keys().copied().collect()
    }

    /// The years of `table` to recompute: those reading a rebuilt or dropped cube year (a
    /// year after a dropped one loses its previous year), and those not published yet.
    pub fn table_years(&self, table: &IndexTable) -> BTreeSet<i32> {
        let changed = self.rebuilt_years().union(&self.dropped).copied().collect();
        let mut years =
            table.years_reading(&changed, &self.years, self.base_year, self.quadrant_cut);
        years.extend(&self.unpublished);
        years
    }

    /// The year partitions of the quarantine to republish: the rebuilt and unpublished
    /// years, and year 0 when a file read or gone has records there.
    pub fn rejects_years(&self) -> BTreeSet<i32> {
        let mut years: BTreeSet<i32> = self.rebuilt_years();
        years.extend(&self.unpublished);
        if self.rejects_without_year || !self.unpublished.is_empty() {
            years.insert(UNKNOWN_YEAR);
        }
        years
    }

    /// For each table (index tables and the quarantine), the year partitions the run
    /// replaces, `--prune`d years included.
    pub fn partitions_to_replace(&self, tables: &[&IndexTable]) -> BTreeMap<String, BTreeSet<i32>> {
        tables
            .iter()
            .map(|t| (t.name.to_string(), self.table_years(t)))
            .chain([(REJECTS.to_string(), self.rejects_years())])
            .map(|(name, mut years)| {
                years.extend(&self.pruned);
                (name, years)
            })
            .collect()
    }

    /// Whether the run has nothing to do: then it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.full.is_none()
            && self.read.is_empty()
            && self.gone.is_empty()
            && self.rebuild.is_empty()
            && self.dropped.is_empty()
            && self.unpublished.is_empty()
            && self.pruned.is_empty()
    }
}

/// Why every year must be rebuilt, if it must.
fn full_rebuild(
    config: &Config,
    tables: &BTreeMap<String, TableDigest>,
    state: Option<&RunState>,
    options: &RunOptions,
) -> Option<String> {
    if options.force {
        return Some("--force".to_string());
    }
    let Some(state) = state else {
        return Some("the warehouse has no run state".to_string());
    };
    let version = env!("CARGO_PKG_VERSION");
    if state.exdep_version != version {
        return Some(format!(
            "exdep {} built the warehouse, this is {version}",
            state.exdep_version
        ));
    }
    if state.raw_layer != config.raw_layer {
        return Some("raw-layer changed".to_string());
    }
    if state.settings_sha256 != config.settings_sha256() {
        return Some("the index settings changed".to_string());
    }
    let changed: Vec<&str> = tables
        .iter()
        .filter(|(name, digest)| {
            state
                .code_tables
                .get(*name)
                .is_none_or(|used| used.sha256 != digest.sha256)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !changed.is_empty() {
        return Some(format!("code table {} changed", changed.join(", ")));
    }
    None
}

/// Whether a file listed now is the file a report was made from: same size, entity tag and
/// modification time.
fn same_fingerprint(report: &FileReport, file: &InputFile) -> bool {
    report.source.bytes == file.meta.size
        && report.source.e_tag == file.meta.e_tag
        && report.source.last_modified == file.meta.last_modified.to_rfc3339()
}
