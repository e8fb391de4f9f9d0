//! The exdep pipeline as one call, as `exdep run` runs it: per input file, one pass that
//! checks (ingest) and classifies its records into the file's partial cube; then the index
//! plans over the cube, and export. The binary adds argument parsing and the summary; tests and embedding programs call
//! [`run_pipeline`] directly, for example on a `memory://` store.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exdep_pipeline::Error> {
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! let ctx = exdep_engine::new_session();
//! let options = exdep_pipeline::RunOptions::default();
//! let outcome = exdep_pipeline::run_pipeline(&ctx, &config, &options, |progress| {
//!     if let exdep_pipeline::Progress::Stage(stage) = progress {
//!         eprintln!("{stage}");
//!     }
//! })
//! .await?;
//! println!("{} years rebuilt", outcome.plan.rebuild.len());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use tracing::{info, warn};

use exdep_classify::CodeTables;
use exdep_core::account::{CubeReport, FileReconciliation, FileReport};
use exdep_core::months::{Slice, YearMonths};
use exdep_core::{Config, Engine, TableFormat};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_export::{Publication, TableLayout, TableToWrite, write_table};
use exdep_ingest::{Listing, PreparedFile, part_name};
use exdep_store::layout::{Output, Staging, Warehouse};
use exdep_store::{
    FileState, LockHolder, Objects, RunLock, RunManifest, RunState, TableReport, read_manifest,
    read_state, remove_state, withdraw_publication, write_manifest, write_state,
};

pub use plan::{Plan, RunOptions};

exdep_engine::layered_error! {
    /// A failure in one of the stages; each names the file, key or table involved.
    pub enum Error {
        /// Reading the inputs.
        #[error("ingest failed")]
        Ingest(#[from] exdep_ingest::Error),
        /// Published years would be replaced by no records: their inputs are gone, empty or
        /// wholly rejected. Nothing was published.
        #[error(
            "this run has no records for published years {years} (their inputs are gone, empty \
             or wholly rejected: {inputs}); the warehouse and the outputs were left as they were. \
             If emptying them is meant, rerun with --allow-empty-years"
        )]
        EmptyYears {
            /// The years, as a span or list.
            years: String,
            /// The inputs that held their records, and what they hold now.
            inputs: String,
        },
        /// Two input files hold the same records (see `exdep_core::months::duplicate_deliveries`).
        #[error(
            "{first} and {second} hold the same records: for {shared} year(s) of an origin, the \
             same number of records with the same total in the same months, e.g. {example}; \
             summed, they would count them twice. Remove one of the files; nothing was committed \
             or published"
        )]
        DuplicateDelivery {
            /// The one file.
            first: String,
            /// The other.
            second: String,
            /// How many (year, origin, currency) slices they share.
            shared: usize,
            /// One of them.
            example: String,
        },
        /// A year's monthly records cover fewer than 12 months and `require-complete-years`
        /// is set.
        #[error(
            "{problems}; `require-complete-years = true` refuses such a run (nothing was \
             committed or published): add the missing months' inputs, or drop the key to \
             publish the year flagged"
        )]
        IncompleteYears {
            /// Each incomplete year, with the months it misses.
            problems: String,
        },
        /// The output holds a table published in the other format: a run does not convert
        /// published tables, and writing beside them would leave a Delta log over plain files
        /// (or plain files a Delta log does not list).
        #[error(
            "{table} is published as {found}, but `table-format` is \"{configured}\": a run does \
             not convert published tables. Publish to a new `output` root, or move the old tables \
             away first"
        )]
        FormatSwitch {
            /// The table's location.
            table: String,
            /// How it is published.
            found: &'static str,
            /// The configured format.
            configured: &'static str,
        },
        /// An input's records do not add up: read != accepted + rejected + excluded. A defect of
        /// exdep's, never of the data; nothing was committed or published.
        #[error(
            "{file}: records do not reconcile (read {read}, accepted {accepted}, rejected \
             {rejected}, excluded {excluded}); the warehouse and the outputs were left as they were"
        )]
        Unreconciled {
            /// The input.
            file: String,
            /// Records read.
            read: u64,
            /// Records accepted.
            accepted: u64,
            /// Records rejected.
            rejected: u64,
            /// Records excluded by a rule.
            excluded: u64,
        },
        /// The run did not finish within its time limit (see [`Config::run_timeout`]): its
        /// cluster jobs were cancelled, then it stopped like [`Error::Stopped`].
        #[error(
            "the run did not finish within {seconds} s (--timeout or [engine] timeout-seconds) \
             and was {stopped}; the published tables are as they were"
        )]
        TimedOut {
            /// The limit.
            seconds: u64,
            /// What was stopped: the run, and on a cluster its jobs.
            stopped: String,
        },
        /// The run was stopped through [`RunOptions::stop`] before it finished.
        #[error(
            "the run was stopped before it finished; its lease was released, and what it had \
             not published is left to the next run"
        )]
        Stopped,
        /// More records were rejected than `max-reject-ratio` allows; nothing was published.
        #[error(
            "{rejected} of {read} records were rejected ({ratio:.4}), more than max-reject-ratio \
             {max}, most in {worst}; the warehouse and the outputs were left as they were"
        )]
        TooManyRejects {
            /// The inputs with the most rejected records, with their counts.
            worst: String,
            /// Records rejected.
            rejected: u64,
            /// Records read.
            read: u64,
            /// rejected / read.
            ratio: f64,
            /// The limit.
            max: f64,
        },
    }
    wraps {
        /// Code tables or the cube.
        Classify(exdep_classify::Error),
        /// Planning an index.
        Index(exdep_index::Error),
        /// Writing, publishing or reading the output tables.
        Export(exdep_export::Error),
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The work it found to do, with the reasons; empty when nothing changed.
    pub plan: Plan,
    /// The manifest of the published tables: the one this run wrote, or, when there was
    /// nothing to do, the one already there.
    pub manifest: RunManifest,
    /// The origins of the run's cube, by kind; empty when there was nothing to do.
    pub origins: Origins,
}

/// The origins in a run's cube. Provinces add up to the national aggregate `CN`; reporter
/// countries (from Comtrade, BACI or canonical records with an ISO3 origin) are their own
/// rows and never part of it.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Province codes.
    pub provinces: BTreeSet<String>,
    /// ISO3 codes of reporter countries.
    pub countries: BTreeSet<String>,
}

impl Error {
    /// Whether the run failed on the data rather than on its set-up: an input file that
    /// cannot be read as records, too many rejected records, or published years this run
    /// has no records for. A scheduled job can tell a problem of the data's delivery from
    /// one of its own configuration or environment.
    pub fn is_data_problem(&self) -> bool {
        match self {
            Self::Ingest(error) => error.is_input_problem(),
            Self::EmptyYears { .. }
            | Self::TooManyRejects { .. }
            | Self::DuplicateDelivery { .. }
            | Self::IncompleteYears { .. } => true,
            _ => false,
        }
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A stage starts.
    Stage(&'a str),
    /// Another input file has been read.
    FileRead {
        /// Files read so far.
        done: usize,
        /// Files to read in all.
        total: usize,
        /// The bytes of the files read so far, as stored (compressed or not).
        bytes: u64,
        /// The bytes of all the files to read.
        total_bytes: u64,
    },
}

/// Runs the pipeline `config` describes in `ctx`, calling `progress` as each stage starts
/// and as each input file is read.
/// Only what changed since the last run is redone (see [`Plan`]); when nothing changed,
/// nothing is written. The run holds the lease of its warehouse and output throughout (see
/// [`RunLock`]): a second run on either fails at once. However the run ends (done, failed,
/// stopped through [`RunOptions::stop`], past its time limit, its lease lost, or a panic)
/// it removes its staging folder and releases its lease.
pub async fn run_pipeline(
    ctx: &SessionContext,
    config: &Config,
    options: &RunOptions,
    progress: impl Fn(Progress<'_>),
) -> Result<RunOutcome, Error> {
    let started = chrono::Utc::now();
    // The time limit counts from here: reading the code tables and taking the lease are
    // part of the run.
    let deadline = config
        .run_timeout()
        .map(|limit| tokio::time::Instant::now() + limit);
    let time_limit = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    let mut time_limit = std::pin::pin!(time_limit);
    config.require_inputs()?;
    exdep_engine::prepare_session(ctx, config)?;
    // A bad code table fails the run before anything, the lock included, is written.
    progress(Progress::Stage("loading code tables and listing inputs"));
    let before_lease = async {
        let tables = CodeTables::load(ctx, &config.tables, &config.years).await?;
        let (lease, run_id) = lock_output(ctx, config, "", started, options.break_lock).await?;
        Ok::<_, Error>((tables, lease, run_id))
    };
    // Before the lease there is nothing to release: a stop or the time limit just ends it.
    let (tables, lease, run_id) = tokio::select! {
        biased;
        taken = before_lease => taken?,
        () = options.stop.cancelled() => return Err(Error::Stopped),
        () = &mut time_limit => return Err(past_time_limit(ctx, config).await),
    };
    // The run's staging folder holds the code tables' copies, decoded text inputs and the
    // files' partial cubes, rejects and raw records, until the run commits them (see
    // `commit_warehouse`).
    let staged = Warehouse::of(config).staging(&run_id);
    let publishing = AtomicBool::new(false);
    let steps = Run {
        ctx,
        config,
        tables: &tables,
        run_id: &run_id,
        progress: &progress,
        publishing: &publishing,
    };
    let run = steps.run_locked(options, started, &lease, &staged);
    let lost = lease.lost();
    // The run is dropped at the end of this block, before its staging goes and its lease is
    // released. A run that ends in the same poll as a stop is not stopped: it is polled
    // first.
    let ended = {
        let mut run = std::pin::pin!(AssertUnwindSafe(run).catch_unwind());
        tokio::select! {
            biased;
            ended = &mut run => ended,
            () = async {
                options.stop.cancelled().await;
                unless_publishing(&publishing, "stopped").await;
            } => Ok(Err(Error::Stopped)),
            () = lost.cancelled() => {
                Ok(Err(lease.lost_error().map_or(Error::Stopped, Error::from)))
            }
            () = async {
                (&mut time_limit).await;
                unless_publishing(&publishing, "past its time limit").await;
            } => Ok(Err(past_time_limit(ctx, config).await)),
        }
    };
    // A staging folder left behind is swept by the next run: not worth failing a run for.
    if let Err(error) = staged.root().delete_all(ctx).await {
        warn!(staging = %staged.root(), %error, "could not remove the run's staging folder");
    }
    let released = lease.release(ctx).await;
    let outcome = ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    released?;
    Ok(outcome)
}

/// The layout of every table a run with the index `settings` publishes: the index tables
/// the settings switch on, and the rejects.
pub fn published_layouts(settings: &exdep_core::IndexSettings) -> Vec<TableLayout> {
    (exdep_index::published_tables(settings).into_iter())
        .map(|table| TableLayout {
            name: table.name.clone(),
            partition_by: table.partition_by.clone(),
            file_schema: table.file_schema.clone(),
        })
        .chain([TableLayout::rejects()])
        .collect()
}

/// Returns at once before the run begins to publish, and never after: a stop or the time
/// limit ends a run only before its first move, since a run dropped in the middle of its
/// moves would leave some partitions new and others old. A publishing run finishes (its
/// moves, manifest and state take seconds); only the loss of its lease, which means another
/// run may be writing, still stops it.
async fn unless_publishing(publishing: &AtomicBool, signal: &str) {
    if publishing.load(Ordering::Acquire) {
        info!("the run was {signal} while publishing: it finishes its publication first");
        std::future::pending::<()>().await;
    }
}

/// The error of a run past its time limit, once its jobs on the cluster (if any) are
/// cancelled: while the run is still alive, so none of them is left running for nobody.
async fn past_time_limit(ctx: &SessionContext, config: &Config) -> Error {
    let stopped = match &config.engine {
        Engine::Ballista { scheduler, .. } => {
            match exdep_engine::cancel_cluster_jobs(ctx, scheduler).await {
                Ok(jobs) => format!(
                    "stopped, its {} running job(s) on the cluster at {scheduler} cancelled ({})",
                    jobs.len(),
                    jobs.join(", ")
                ),
                Err(e) => format!(
                    "stopped, but its jobs on the cluster could not be cancelled: {}",
                    exdep_core::error_chain(&e)
                ),
            }
        }
        Engine::Embedded => "stopped".to_string(),
    };
    Error::TimedOut {
        seconds: config.run_timeout().unwrap_or_default().as_secs(),
        stopped,
    }
}

/// What a run of `config` would do now, and what it is planned from: the inputs listed,
/// the warehouse's run state and the manifest of what is published. `exdep status` shows
/// it; a run does it.
pub async fn plan(
    ctx: &SessionContext,
    config: &Config,
    tables: &CodeTables,
    options: &RunOptions,
) -> Result<Planned, Error> {
    let listing = exdep_ingest::list_inputs(ctx, config).await?;
    let state = read_state(ctx, &Warehouse::of(config)).await?;
    let previous = read_manifest(ctx, &Output::of(config)).await?;
    let plan = Plan::new(
        config,
        &listing.files,
        &tables.digests,
        state.as_ref(),
        previous.as_ref(),
        options,
    );
    Ok(Planned {
        plan,
        listing,
        state,
        previous,
    })
}

/// A run's [`Plan`], with what it was made from.
#[derive(Debug)]
pub struct Planned {
    /// The work to do, with the reasons.
    pub plan: Plan,
    /// The input files listed, and those skipped.
    pub listing: Listing,
    /// The warehouse's run state, if there is one.
    pub state: Option<RunState>,
    /// The manifest of what is published, if anything is.
    pub previous: Option<RunManifest>,
}

/// What a run works with once it holds its lease.
struct Run<'a> {
    ctx: &'a SessionContext,
    config: &'a Config,
    tables: &'a CodeTables,
    run_id: &'a str,
    progress: &'a dyn Fn(Progress<'_>),
    /// Set when the run begins to publish: from then on a stop or the time limit waits
    /// for it to finish (see `run_pipeline`).
    publishing: &'a AtomicBool,
}

/// What reading the changed inputs made: every file's account, and what the commit writes.
struct ReadInputs {
    /// Every input file of the warehouse after the run: those kept and those read.
    files: BTreeMap<String, FileState>,
    /// The cube's years, with the dispositions of every file's records.
    cube: CubeReport,
    /// The state the commit writes before it changes the layers (see `commit_warehouse`).
    pending: Option<RunState>,
    /// The names of the warehouse objects of the files kept as they were.
    kept: BTreeSet<String>,
    /// One account per listed input file.
    inputs: Vec<FileReconciliation>,
}

/// The index tables a run computed, staged for publication.
struct ComputedTables {
    /// The origins of the run's cube, by kind.
    origins: Origins,
    /// Every index table's layout (the quarantine's included), for publication.
    layouts: Vec<TableLayout>,
    /// The tables written to the output's staging folder.
    written: Vec<TableReport>,
}

impl Run<'_> {
    /// The run, once it holds its lease, step by step: plan; read the changed inputs into the
    /// run's staging folder; refuse the run, or commit the staged objects to the warehouse;
    /// compute the index tables; publish them; record the manifest and the run state.
    async fn run_locked(
        &self,
        options: &RunOptions,
        started: chrono::DateTime<chrono::Utc>,
        lease: &RunLock,
        staged: &Staging,
    ) -> Result<RunOutcome, Error> {
        let (ctx, config, tables, progress) = (self.ctx, self.config, self.tables, self.progress);
        let Planned {
            mut plan,
            listing: Listing {
                files: listed,
                skipped,
            },
            state,
            previous,
        } = plan(ctx, config, tables, options).await?;
        refuse_format_switch(ctx, config).await?;
        if plan.is_empty() {
            let manifest = previous.expect("a run with nothing to do has published every year");
            return Ok(RunOutcome {
                plan,
                manifest,
                origins: Origins::default(),
            });
        }
        let read = self
            .read_inputs(&mut plan, state.as_ref(), &listed, staged)
            .await?;
        let slices = (read.files.iter()).map(|(url, file)| (url, file.slices.as_slice()));
        let months = exdep_core::months::months_by_year(slices, &config.years);
        for (year, year_months) in &months {
            for warning in year_months.warnings(*year) {
                warn!("{warning}");
            }
        }
        let refusal = Refusal {
            plan: &plan,
            state: state.as_ref(),
            previous: previous.as_ref(),
            inputs: &read.inputs,
            cube: &read.cube,
            files: &read.files,
            months: &months,
        };
        refusal.check(ctx, config, options).await?;
        lease.ensure_held(ctx).await?;
        commit_warehouse(
            ctx,
            config,
            &plan,
            read.pending.as_ref(),
            staged,
            &read.kept,
        )
        .await?;
        let ReadInputs {
            files,
            mut cube,
            inputs,
            ..
        } = read;
        let rebuilt = plan.rebuilt_years();
        let cells = exdep_classify::cube_cells(ctx, &Warehouse::of(config), &rebuilt).await?;
        for year in &rebuilt {
            cube.entry(*year).or_default().cells = cells.get(year).copied().unwrap_or(0);
        }
        let ComputedTables {
            origins,
            layouts,
            written,
        } = self.compute_tables(&mut plan).await?;
        self.publishing.store(true, Ordering::Release);
        progress(Progress::Stage("publishing"));
        lease.ensure_held(ctx).await?;
        let (written, versions) = self.publish(&plan, &layouts, written).await?;
        let mut manifest = RunManifest::new(
            started,
            config,
            tables.digests.clone(),
            inputs,
            &cube,
            previous.as_ref(),
            written,
            &plan.replaced,
            &plan.pruned,
        );
        manifest.skipped_inputs = skipped;
        manifest.months_by_year = months;
        manifest.delta_versions.extend(versions);
        lease.ensure_held(ctx).await?;
        write_manifest(ctx, &Output::of(config), &manifest).await?;
        let state = RunState::new(config, tables.digests.clone(), files, cube);
        lease.ensure_held(ctx).await?;
        write_state(ctx, &Warehouse::of(config), &state).await?;
        Ok(RunOutcome {
            plan,
            manifest,
            origins,
        })
    }

    /// Reads the files the plan names in one pass each into the run's staging folder, and
    /// accounts for every record of every listed file. Nothing the run reads or writes
    /// touches the warehouse's layers or its state until every check that can refuse the
    /// run has passed (see `commit_warehouse`).
    async fn read_inputs(
        &self,
        plan: &mut Plan,
        state: Option<&RunState>,
        listed: &[exdep_ingest::InputFile],
        staged: &Staging,
    ) -> Result<ReadInputs, Error> {
        let (ctx, config) = (self.ctx, self.config);
        let redone: BTreeSet<String> = plan
            .read
            .iter()
            .map(|(f, _)| f.location.to_string())
            .chain(plan.gone.iter().cloned())
            .collect();
        let mut files = BTreeMap::new();
        let mut cube = CubeReport::new();
        // The state the commit writes before it changes the layers: it leaves out what is
        // about to be redone, so a run killed midway sends the next one over the same ground.
        let mut pending = None;
        if let Some(state) = state.filter(|_| plan.full.is_none()) {
            files = state.files.clone();
            files.retain(|url, _| !redone.contains(url));
            cube = state.cube.clone();
            cube.retain(|year, _| config.years.contains(year));
            for year in cube.values_mut() {
                year.by_source.retain(|url, _| !redone.contains(url));
            }
            let mut written_first = state.clone();
            written_first.files = files.clone();
            written_first.cube = cube.clone();
            written_first.rejects_without_year_pending = plan.rejects_without_year;
            // The years this run rebuilds are not built until it ends: the next run must
            // rebuild them too, even if the files that held their records are now empty.
            written_first
                .cube
                .retain(|year, _| !plan.rebuild.contains_key(year));
            pending = Some(written_first);
        }
        let kept: BTreeSet<String> = files.keys().map(|url| part_name(url)).collect();
        // Leftovers of killed runs go first: no other run is live while this one holds the
        // lease.
        Warehouse::of(config).staging_root().delete_all(ctx).await?;
        self.tables.register(ctx, &staged.tables()).await?;
        (self.progress)(Progress::Stage(&format!(
            "reading {} input files",
            plan.read.len()
        )));
        let to_read: Vec<_> = plan.read.iter().map(|(f, _)| f.clone()).collect();
        let prepared =
            exdep_ingest::prepare_inputs(ctx, config, &self.tables.known_codes(), staged, &to_read)
                .await?;
        let provinces: Vec<String> = self.tables.provinces.keys().cloned().collect();
        let read = read_files(
            ctx,
            config,
            &prepared.files,
            &provinces,
            staged,
            &mut cube,
            self.progress,
        )
        .await;
        prepared.release(ctx).await?;
        let reports = read?;
        plan.add_years_read(reports.iter().map(|(report, _)| report), config);
        for (file, (report, slices)) in to_read.iter().zip(reports) {
            let reading = config.inputs[file.input_index].reading();
            let state = FileState {
                reading,
                report,
                slices,
            };
            files.insert(state.report.source.file.clone(), state);
        }
        let inputs = listed
            .iter()
            .filter_map(|f| files.get(&f.location.to_string()))
            .map(|f| FileReconciliation::of(&f.report, &cube))
            .collect();
        Ok(ReadInputs {
            files,
            cube,
            pending,
            kept,
            inputs,
        })
    }

    /// Computes the index tables over the committed cube, for the years the plan names for
    /// each, into the output's staging folder, and stages the quarantine.
    async fn compute_tables(&self, plan: &mut Plan) -> Result<ComputedTables, Error> {
        let (ctx, config, run_id) = (self.ctx, self.config, self.run_id);
        let warehouse = Warehouse::of(config);
        let output = Output::of(config);
        exdep_index::prepare(ctx, &warehouse, &config.indices).await?;
        let settings = exdep_index::PlanSettings {
            cube_years: exdep_index::cube_years(ctx, &warehouse).await?,
            base_year: config.indices.base_year,
            destination_level: config.indices.destination_level,
            top_n: config.indices.top_n,
            destination_threshold_cny: config.indices.destination_threshold_cny,
            provinces: self.tables.provinces.keys().cloned().collect(),
            product_reference: config.indices.product_reference,
            quadrant_cut: config.indices.quadrant_cut,
        };
        let (provinces, countries) = exdep_index::origins(ctx, &config.years)
            .await?
            .into_iter()
            .partition(|origin| settings.provinces.contains(origin));
        let origins = Origins {
            provinces,
            countries,
        };
        let index_tables = exdep_index::published_tables(&config.indices);
        plan.replaced = plan.partitions_to_replace(&index_tables);
        // Leftovers of a run killed before it published go first; this run stages its tables
        // and publishes them only when all are computed.
        exdep_export::clear_staging(ctx, &output).await?;
        let staging = output.staging(run_id);
        let mut cell_years = BTreeSet::new();
        let mut to_write = Vec::new();
        // The product plan reads the most: it goes first, and the others fill in beside it.
        let mut in_order_of_work = index_tables.clone();
        in_order_of_work.sort_by_key(|table| !table.reads_products);
        for &table in &in_order_of_work {
            let years = plan.table_years(table);
            if years.is_empty() {
                continue;
            }
            let stage = format!(
                "computing and writing `{}` for {}",
                table.name,
                year_span(&years)
            );
            to_write.push((stage, table, table.sql(&settings, &years)?));
            cell_years.extend(years);
        }
        if !cell_years.is_empty() {
            (self.progress)(Progress::Stage("summing the cube's cells"));
            let cells = output.staged_cells(run_id);
            exdep_index::compute_cells(ctx, &settings, &cell_years, &cells).await?;
        }
        // Each table's plan runs in one partition (a fixed summation order), so a table keeps
        // one core busy: tables are computed side by side, one per core.
        let layouts = published_layouts(&config.indices);
        let stages: Vec<String> = to_write.iter().map(|(stage, ..)| stage.clone()).collect();
        let jobs = to_write.into_iter().map(|(_, table, sql)| {
            let ctx = ctx.clone();
            let staging = staging.clone();
            let files_by = (layouts.iter())
                .find(|layout| layout.name == table.name)
                .and_then(|layout| layout.files_by(config.table_format));
            async move {
                let partition_by: Vec<&str> =
                    table.partition_by.iter().map(String::as_str).collect();
                let table = TableToWrite {
                    name: &table.name,
                    partition_by: &partition_by,
                    files_by,
                    file_schema: &table.file_schema,
                    sql: &sql,
                };
                write_table(&ctx, &staging, table).await
            }
        });
        let mut written = in_order(
            jobs,
            |index| (self.progress)(Progress::Stage(&stages[index])),
            |_| {},
        )
        .await?;
        written.sort_by_key(|report| {
            (index_tables.iter()).position(|table| table.name == report.name)
        });
        let rejects_years = plan.rejects_years();
        if !rejects_years.is_empty() {
            written.push(
                exdep_export::stage_rejects(ctx, &warehouse, &staging, &rejects_years).await?,
            );
        }
        Ok(ComputedTables {
            origins,
            layouts,
            written,
        })
    }

    /// Moves the staged tables into place under the output, replacing the partitions the
    /// plan names, after withdrawing the manifest and the `_SUCCESS` marker; returns the
    /// tables' files where they now are, and each Delta table's new version.
    async fn publish(
        &self,
        plan: &Plan,
        layouts: &[TableLayout],
        mut written: Vec<TableReport>,
    ) -> Result<(Vec<TableReport>, BTreeMap<String, u64>), Error> {
        let output = Output::of(self.config);
        // From the first moved file until the manifest is written the output is in between:
        // neither `_SUCCESS` nor a manifest (which could list a file about to go) says
        // otherwise, and a run killed in between leaves the next one to republish every year.
        withdraw_publication(self.ctx, &output).await?;
        let publication = Publication {
            run_id: self.run_id,
            format: self.config.table_format,
            layouts,
        };
        let versions = exdep_export::publish(
            self.ctx,
            &output.staging(self.run_id),
            &output,
            &mut written,
            &plan.replaced,
            publication,
        )
        .await?;
        Ok((written, versions))
    }
}

/// Fails when a table under the output is published in the format the config does not
/// name (see [`Error::FormatSwitch`]).
async fn refuse_format_switch(ctx: &SessionContext, config: &Config) -> Result<(), Error> {
    for table in exdep_export::published_tables(ctx, &Output::of(config)).await? {
        let root = Output::of(config).table(&table.name);
        // A folder without year partitions is no table of exdep's (a warehouse kept
        // under the output, say).
        let plain_table =
            table.format == TableFormat::Parquet && !root.partition_years(ctx).await?.is_empty();
        let delta_table = table.format == TableFormat::Delta;
        let (found, configured) = match config.table_format {
            TableFormat::Parquet if delta_table => ("a Delta table", "parquet"),
            TableFormat::Delta if plain_table => ("plain Parquet files", "delta"),
            _ => continue,
        };
        return Err(Error::FormatSwitch {
            table: root.to_string(),
            found,
            configured,
        });
    }
    Ok(())
}

/// What the checks that can refuse a run look at, once its inputs are read and before
/// anything is committed.
struct Refusal<'a> {
    plan: &'a Plan,
    state: Option<&'a RunState>,
    previous: Option<&'a RunManifest>,
    inputs: &'a [FileReconciliation],
    cube: &'a CubeReport,
    /// Every input file of the warehouse after the run, with its slices.
    files: &'a BTreeMap<String, FileState>,
    /// The months of each year over every file.
    months: &'a BTreeMap<i32, YearMonths>,
}

impl Refusal<'_> {
    /// Refuses the run when an input's records do not reconcile, when more records were
    /// rejected than `max-reject-ratio` allows, when two files hold the same records, when a
    /// year misses months and `require-complete-years` is set, or
    /// when a year published under the output (by the manifest or by the tables'
    /// partitions, so that a withdrawn manifest does not open the gate) would be replaced
    /// by no records at all; each refusal names the inputs concerned.
    async fn check(
        &self,
        ctx: &SessionContext,
        config: &Config,
        options: &RunOptions,
    ) -> Result<(), Error> {
        if let Some(file) = self.inputs.iter().find(|f| !f.balanced) {
            return Err(Error::Unreconciled {
                file: file.source.file.clone(),
                read: file.read,
                accepted: file.accepted.records,
                rejected: file.rejected_total().records,
                excluded: file.excluded_total().records,
            });
        }
        if let Some(max) = config.max_reject_ratio {
            let read: u64 = self.inputs.iter().map(|f| f.read).sum();
            let rejected: u64 = self.inputs.iter().map(|f| f.rejected_total().records).sum();
            let ratio = if read == 0 {
                0.0
            } else {
                rejected as f64 / read as f64
            };
            if ratio > max {
                let mut worst: Vec<_> = self
                    .inputs
                    .iter()
                    .map(|f| (f.rejected_total().records, f))
                    .filter(|(rejected, _)| *rejected > 0)
                    .collect();
                worst.sort_by(|a, b| {
                    b.0.cmp(&a.0)
                        .then_with(|| a.1.source.file.cmp(&b.1.source.file))
                });
                let worst: Vec<String> = worst
                    .iter()
                    .take(3)
                    .map(|(rejected, f)| format!("{} ({rejected} of {})", f.source.file, f.read))
                    .collect();
                return Err(Error::TooManyRejects {
                    worst: worst.join(", "),
                    rejected,
                    read,
                    ratio,
                    max,
                });
            }
        }
        let slices = (self.files.iter()).map(|(url, file)| (url, file.slices.as_slice()));
        if let Some(duplicate) = exdep_core::months::duplicate_deliveries(slices).first() {
            let example = &duplicate.shared[0];
            return Err(Error::DuplicateDelivery {
                first: duplicate.first.clone(),
                second: duplicate.second.clone(),
                shared: duplicate.shared.len(),
                example: format!(
                    "{} origin {}: {} records, {} {}",
                    example.period(),
                    example.origin,
                    example.records,
                    example.value,
                    example.currency
                ),
            });
        }
        if config.require_complete_years {
            let incomplete: Vec<String> = (self.months.iter())
                .filter(|(_, months)| months.is_incomplete())
                .map(|(year, months)| {
                    let missing = (1..=12).filter(|m| !months.months.contains(m)).collect();
                    format!(
                        "{year} misses months {} ({})",
                        exdep_core::months::month_list(&missing),
                        months.files.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            if !incomplete.is_empty() {
                return Err(Error::IncompleteYears {
                    problems: incomplete.join("; "),
                });
            }
        }
        let mut published = exdep_export::published_years(ctx, &Output::of(config)).await?;
        published.extend(self.previous.iter().flat_map(|m| &m.published_years));
        let emptied: BTreeSet<i32> = self
            .plan
            .rebuilt_years()
            .into_iter()
            .filter(|y| published.contains(y))
            .filter(|y| {
                // Values are finite and not negative: a year has a cube cell with exports
                // exactly when some record it classified has a positive value.
                self.cube
                    .get(y)
                    .is_none_or(|c| c.by_source.values().all(|d| d.classified.value <= 0.0))
            })
            .collect();
        if !emptied.is_empty() && !options.allow_empty_years {
            return Err(Error::EmptyYears {
                years: year_span(&emptied),
                inputs: self.inputs_of(&emptied),
            });
        }
        Ok(())
    }

    /// The inputs that held records of `years` in the last run, and those this run read,
    /// each with what it holds now.
    fn inputs_of(&self, years: &BTreeSet<i32>) -> String {
        let held = self.state.into_iter().flat_map(|state| {
            state.files.iter().filter_map(|(url, file)| {
                let years_held = &file.report.records.accepted_by_year;
                years
                    .iter()
                    .any(|y| years_held.contains_key(y))
                    .then_some(url.clone())
            })
        });
        let read = self.plan.read.iter().map(|(f, _)| f.location.to_string());
        let urls: BTreeSet<String> = held.chain(read).collect();
        if urls.is_empty() {
            return "no input holds them".to_string();
        }
        let described: Vec<String> = urls
            .iter()
            .map(
                |url| match self.inputs.iter().find(|f| &f.source.file == url) {
                    Some(f) => format!(
                        "{url}: {} records read, {} accepted",
                        f.read, f.accepted.records
                    ),
                    None => format!("{url}: gone"),
                },
            )
            .collect();
        described.join("; ")
    }
}

/// Makes what the run staged under `staged` the warehouse's, once no check can refuse the
/// run: writes the `pending` state (or, for a full rebuild, removes the state), removes
/// the years the config no longer names, and commits the files' objects (see
/// [`exdep_classify::commit_files`]), keeping those of the files in `kept` only. A full
/// rebuild keeps none: it was built beside the old warehouse, which stays whole until here.
async fn commit_warehouse(
    ctx: &SessionContext,
    config: &Config,
    plan: &Plan,
    pending: Option<&RunState>,
    staged: &Staging,
    kept: &BTreeSet<String>,
) -> Result<(), Error> {
    match pending {
        Some(pending) => write_state(ctx, &Warehouse::of(config), pending).await?,
        None => remove_state(ctx, &Warehouse::of(config)).await?,
    }
    exdep_classify::drop_years(ctx, &Warehouse::of(config), &plan.dropped).await?;
    exdep_classify::commit_files(ctx, staged, &Warehouse::of(config), kept).await?;
    Ok(())
}

/// Takes the lock of `config`'s warehouse and output (see [`RunLock`]) for a job started at
/// `started`; returns it with the job's id (`PREFIX`, the start time, the process id), which
/// also names the files a run publishes.
async fn lock_output(
    ctx: &SessionContext,
    config: &Config,
    prefix: &str,
    started: chrono::DateTime<chrono::Utc>,
    break_lock: bool,
) -> Result<(RunLock, String), Error> {
    let job_id = format!(
        "{prefix}{}-{}",
        started.format("%Y%m%dT%H%M%S%3fZ"),
        std::process::id()
    );
    let holder = LockHolder::this_process(&job_id, &started.to_rfc3339());
    let lock = RunLock::acquire(
        ctx,
        &[Warehouse::of(config).lease(), Output::of(config).lease()],
        holder,
        config.lease,
        config.serialized_runs,
        break_lock,
    )
    .await?;
    Ok((lock, job_id))
}

/// Deletes from the output's Delta tables the files no version within
/// `vacuum-retention-hours` reads (see [`exdep_export::vacuum`]), holding the run lock so
/// that no run publishes meanwhile. Plain Parquet tables keep no old files: nothing to do.
pub async fn vacuum_output(
    ctx: &SessionContext,
    config: &Config,
    break_lock: bool,
) -> Result<Vec<exdep_export::Vacuumed>, Error> {
    exdep_engine::prepare_session(ctx, config)?;
    let (lock, _) = lock_output(ctx, config, "vacuum-", chrono::Utc::now(), break_lock).await?;
    let vacuumed = async {
        let tables: Vec<String> = exdep_export::published_tables(ctx, &Output::of(config))
            .await?
            .into_iter()
            .filter(|table| table.format == TableFormat::Delta)
            .map(|table| table.name)
            .collect();
        exdep_export::vacuum(ctx, &Output::of(config), &tables, config.vacuum_retention).await
    }
    .await;
    lock.release(ctx).await?;
    Ok(vacuumed?)
}

/// Reads each prepared input in its one pass (its partial cube and rejects go to the run's
/// staging folder `staged`, its dispositions into `cube`), and reports on each. A file's plan leaves a
/// core idle while it sorts and writes its results, so files are read side by side, one
/// per core, each plan splitting its file only among the cores the other files leave it:
/// a plan in one partition holds one grouping table, not one per core and a final one.
async fn read_files(
    ctx: &SessionContext,
    config: &Config,
    prepared: &[PreparedFile],
    provinces: &[String],
    staged: &Staging,
    cube: &mut CubeReport,
    progress: &dyn Fn(Progress<'_>),
) -> Result<Vec<(FileReport, Vec<Slice>)>, Error> {
    let total_bytes = prepared.iter().map(PreparedFile::bytes).sum();
    let (mut bytes, mut done) = (0, 0);
    let cores = exdep_core::cores();
    let side_by_side = prepared.len().clamp(1, cores);
    let settings = Arc::new(exdep_classify::FileSettings {
        years: config.years.clone(),
        provinces: provinces.to_vec(),
        monthly_rates: config.tables.exchange_rates_monthly.is_some(),
        product_margins: config.indices.product_margins,
        embedded: matches!(config.engine, Engine::Embedded),
    });
    let shared = Arc::new(config.clone());
    let jobs = prepared.iter().map(|file| {
        let (ctx, config) = (ctx.clone(), shared.clone());
        let (staged, settings) = (staged.clone(), settings.clone());
        let (checked, url) = (file.checked_sql().to_string(), file.url());
        let reading = file.reading();
        async move {
            let part = part_name(&url);
            let (checked, url, part, staged) = (&checked, &url, &part, &staged);
            let settings = &*settings;
            let partitions = cores / side_by_side;
            reading
                .run::<_, Error, _, _, _>(&ctx, &config, partitions, |ctx| async move {
                    let file =
                        exdep_classify::classify_file(&ctx, checked, url, part, staged, settings);
                    file.await
                })
                .await
        }
    });
    let outcomes = in_order(
        jobs,
        |_| {},
        |index| {
            bytes += prepared[index].bytes();
            done += 1;
            progress(Progress::FileRead {
                done,
                total: prepared.len(),
                bytes,
                total_bytes,
            });
        },
    )
    .await?;
    let mut reports = Vec::with_capacity(prepared.len());
    for (file, outcome) in prepared.iter().zip(outcomes) {
        let url = file.url();
        if config.raw_layer {
            exdep_ingest::write_raw(ctx, config, file, staged).await?;
        }
        for (year, disposition) in outcome.dispositions {
            cube.entry(year)
                .or_default()
                .by_source
                .insert(url.clone(), disposition);
        }
        let report = FileReport {
            source: file.source(),
            records: outcome.records,
        };
        reports.push((report, outcome.slices));
    }
    Ok(reports)
}

/// Runs `jobs`, one per core at a time, each in a task of its own, calling `started` with a
/// job's index as it starts and `finished` as it ends; returns their results in the jobs'
/// order. The first error is returned as soon as it comes, and the jobs still running are
/// aborted.
async fn in_order<T, E, Job>(
    jobs: impl IntoIterator<Item = Job>,
    mut started: impl FnMut(usize),
    mut finished: impl FnMut(usize),
) -> Result<Vec<T>, Error>
where
    Job: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    Error: From<E>,
{
    let parallel = exdep_core::cores();
    let mut waiting = jobs.into_iter().enumerate();
    let mut running = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    loop {
        while running.len() < parallel {
            let Some((index, job)) = waiting.next() else {
                break;
            };
            started(index);
            results.push(None);
            running.spawn(async move { (index, job.await) });
        }
        let Some(ended) = running.join_next().await else {
            break;
        };
        let (index, result) =
            ended.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
        let result = result?;
        finished(index);
        results[index] = Some(result);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Years as a short text: `2017-2022` for a run of consecutive years, else a list.
pub fn year_span(years: &BTreeSet<i32>) -> String {
    let (Some(first), Some(last)) = (years.first(), years.last()) else {
        return "no years".to_string();
    };
    if (last - first) as usize + 1 == years.len() && years.len() > 1 {
        format!("{first}-{last}")
    } else {
        let list: Vec<String> = years.iter().map(|y| y.to_string()).collect();
        list.join(", ")
    }
}
