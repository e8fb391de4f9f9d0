//! `exdep run` and `exdep check`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use exdep_classify::CodeTables;
use exdep_core::Config;
use exdep_core::account::FileReconciliation;
use exdep_engine::new_session;
use exdep_observe::{Ended, Observer, RunEnd, StageClock};
use exdep_pipeline::{Origins, Plan, Progress, RunOptions, RunOutcome, year_span};
use exdep_store::RunManifest;
use exdep_store::layout::{Output, REJECTS};

use crate::signals::{Signals, Stopped};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The pipeline config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Read these files, folders or globs instead of the config's inputs (repeatable); the
    /// format follows the extension (.csv or .parquet).
    #[arg(long = "input", value_name = "URL")]
    inputs: Vec<String>,
    /// Write the tables under this root instead of the config's `output`.
    #[arg(long, value_name = "URL")]
    output: Option<String>,
    /// Fail, before publishing anything, when more than this fraction of the records read
    /// is rejected (replaces the config's `max-reject-ratio`).
    #[arg(long, value_name = "R")]
    max_reject_ratio: Option<f64>,
    /// Rebuild these years, and the tables that read them, even if nothing changed; a year
    /// the config does not name is added to this run (comma-separated or repeated).
    #[arg(long, value_name = "YEAR", value_delimiter = ',')]
    years: Vec<i32>,
    /// Rebuild every year from the inputs, whatever the warehouse's run state says.
    #[arg(long)]
    force: bool,
    /// Remove the published tables of years the config no longer names (kept by default).
    #[arg(long)]
    prune: bool,
    /// Remove the lock of the output and the warehouse that a dead run left behind (a lock
    /// of a run on this host whose process is gone is removed without it).
    #[arg(long)]
    break_lock: bool,
    /// Publish years that have no records at all (their inputs are gone, empty or wholly
    /// rejected), replacing their published tables with nothing.
    #[arg(long)]
    allow_empty_years: bool,
    /// Run the plans on the Ballista cluster whose scheduler this is, `df://HOST:PORT`
    /// (replaces the config's `[engine]`).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// The memory the engine may use before it spills to disk, such as `2GiB` (replaces the
    /// config's `memory-limit`; on a cluster, each executor sets its own).
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// Cancel the run, its cluster jobs included, when it has not finished after this many
    /// seconds, and fail (replaces the config's `[engine] timeout-seconds`).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Print only the final summary, no progress.
    #[arg(long)]
    quiet: bool,
}

pub async fn check(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let ctx = new_session();
    exdep_engine::prepare_session(&ctx, &config)?;
    let tables = CodeTables::load(&ctx, &config.tables, &config.years).await?;
    println!(
        "config ok: {} years, {} inputs, {} chapters, {} partners, {} provinces",
        config.years.len(),
        config.inputs.len(),
        tables.chapters.len(),
        tables.partner_regions.len(),
        tables.provinces.len()
    );
    Ok(())
}

pub async fn vacuum(path: &Path, break_lock: bool) -> Result<()> {
    let config = Config::load(path)?;
    let ctx = new_session();
    let vacuumed = exdep_pipeline::vacuum_output(&ctx, &config, break_lock).await?;
    if vacuumed.is_empty() {
        println!("no Delta tables under {}", config.output);
    }
    for table in vacuumed {
        println!("{}: {} files deleted", table.table, table.deleted);
    }
    Ok(())
}

pub async fn run(args: RunArgs, log: crate::log::Log) -> Result<()> {
    let timer = Instant::now();
    let config = configured(&args)?;
    let signals = Signals::watch();
    // From here the run has a job to report: its start, and its end however it ends. A
    // signal while the start is reported stops the run before it begins.
    let observer = Observer::new(&config);
    let started = chrono::Utc::now();
    (signals.unless_after(0, observer.started(started)).await).map_err(Stopped)?;
    let clock = StageClock::default();
    let result = run_configured(&args, &config, log, &clock, &signals).await;
    let message = result
        .as_ref()
        .err()
        .map(|e| exdep_core::error_chain(e.as_ref()));
    let ended = match (&result, &message) {
        (Ok(outcome), _) => Ended::Completed {
            manifest: &outcome.manifest,
            changed: !outcome.plan.is_empty(),
        },
        (Err(error), message) => Ended::Failed {
            message: message.as_deref().unwrap_or_default(),
            exit_code: crate::exit_status(error),
        },
    };
    let stages = clock.stages();
    let end = RunEnd {
        started,
        finished: chrono::Utc::now(),
        ended,
        stages: &stages,
    };
    // The run is over, and its outcome stands; a signal now (other than the one that
    // stopped it) cuts the report of its end short.
    let seen = signals.seen();
    if let Err(signal) = signals.unless_after(seen, observer.ended(&end)).await {
        tracing::warn!(
            "{} came while the run's end was being reported: its lineage and metrics targets \
             may not have it",
            signal.name()
        );
    }
    let outcome = result?;
    let manifest = &outcome.manifest;
    let manifest_location = Output::of(&config).manifest();
    let seconds = timer.elapsed().as_secs_f64();
    if outcome.plan.is_empty() {
        println!(
            "exdep run: nothing changed since the run of {}; nothing written ({seconds:.2} s)",
            manifest.finished
        );
        println!("manifest: {manifest_location}");
        return Ok(());
    }
    print_summary(manifest, &manifest_location.to_string(), seconds);
    print_origins(&outcome.origins);
    print_plan(&outcome.plan);
    Ok(())
}

/// The config `args` name, with the options that replace its settings.
fn configured(args: &RunArgs) -> Result<Config> {
    let mut config = Config::load(&args.config)?;
    config.override_locations(&args.inputs, args.output.as_deref())?;
    if let Some(seconds) = args.timeout {
        config.override_timeout(seconds)?;
    }
    if let Some(ratio) = args.max_reject_ratio {
        exdep_core::check_ratio(Some(ratio), "--max-reject-ratio")?;
        config.max_reject_ratio = Some(ratio);
    }
    if let Some(limit) = &args.memory_limit {
        config.override_memory_limit(limit)?;
    }
    config.add_years(&args.years, "--years")?;
    match &args.cluster {
        Some(scheduler) => config.use_cluster(scheduler)?,
        None => config.check_engine()?,
    }
    Ok(config)
}

/// Runs the pipeline of `config`, reporting its progress and timing its stages on `clock`,
/// until it ends or a signal stops it.
async fn run_configured(
    args: &RunArgs,
    config: &Config,
    log: crate::log::Log,
    clock: &StageClock,
    signals: &Signals,
) -> Result<RunOutcome> {
    let stop = tokio_util::sync::CancellationToken::new();
    let options = RunOptions {
        force: args.force,
        years: args.years.clone(),
        prune: args.prune,
        break_lock: args.break_lock,
        allow_empty_years: args.allow_empty_years,
        stop: stop.clone(),
    };
    let ctx = exdep_engine::connect(config).await?;
    let reporter = crate::progress::Reporter::new(log, args.quiet);
    let pipeline = exdep_pipeline::run_pipeline(&ctx, config, &options, |progress| {
        if let Progress::Stage(stage) = progress {
            clock.start(stage);
        }
        reporter.report(progress)
    });
    let mut pipeline = std::pin::pin!(pipeline);
    // A signal stops the run through its token: it releases its lease and removes its
    // staging folder before it returns.
    let outcome = tokio::select! {
        outcome = &mut pipeline => outcome?,
        signal = signals.after(0) => {
            stop.cancel();
            match (&mut pipeline).await {
                Err(exdep_pipeline::Error::Stopped) => {
                    return Err(Stopped(signal).into());
                }
                // It ended before it could be stopped.
                ended => ended?,
            }
        }
    };
    Ok(outcome)
}

fn print_summary(manifest: &RunManifest, manifest_location: &str, seconds: f64) {
    let years = &manifest.years;
    println!(
        "exdep run: years {}-{} ({}), {} input files, {seconds:.2} s",
        years.first().unwrap_or(&0),
        years.last().unwrap_or(&0),
        years.len(),
        manifest.inputs.len()
    );
    println!("inputs (read = accepted + rejected + excluded):");
    for file in &manifest.inputs {
        print_reconciliation(file);
    }
    for skipped in &manifest.skipped_inputs {
        println!("  {}\n    skipped: {}", skipped.file, skipped.reason);
    }
    if manifest.years_without_records.is_empty() {
        println!("every configured year has records");
    } else {
        let missing: Vec<String> = manifest
            .years_without_records
            .iter()
            .map(|y| y.to_string())
            .collect();
        println!("configured years without records: {}", missing.join(", "));
    }
    let month_warnings: Vec<String> = (manifest.months_by_year.iter())
        .flat_map(|(year, months)| months.warnings(*year))
        .collect();
    if month_warnings.is_empty() {
        println!("months: no year misses a month or mixes an origin's annual and monthly records");
    } else {
        println!("months (the manifest's months_by_year has each file's):");
        for warning in month_warnings {
            println!("  warning: {warning}");
        }
    }
    println!("tables:");
    for table in &manifest.tables {
        println!(
            "  {:<14} {:>9} rows in {:>4} partitions",
            table.name,
            table.rows,
            table.files.len()
        );
    }
    println!("manifest: {manifest_location}");
}

fn print_reconciliation(file: &FileReconciliation) {
    let detail = |tallies: &exdep_core::TallyByReason| {
        if tallies.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = tallies
                .iter()
                .map(|(reason, t)| format!("{reason} {}", t.records))
                .collect();
            format!(" ({})", parts.join(", "))
        }
    };
    println!("  {}", file.source.file);
    println!(
        "    read {} = accepted {} + rejected {}{} + excluded {}{}{}",
        file.read,
        file.accepted.records,
        file.rejected_total().records,
        detail(&file.rejected),
        file.excluded_total().records,
        detail(&file.excluded),
        if file.balanced { "" } else { "  MISMATCH" }
    );
}

/// Which kinds of origin the cube holds, said plainly when a run mixes them: reporter
/// countries are not part of the national aggregate.
fn print_origins(origins: &Origins) {
    let countries: Vec<&str> = origins.countries.iter().map(String::as_str).collect();
    match (origins.provinces.len(), countries.len()) {
        (_, 0) => {}
        (0, n) => println!(
            "origins: {n} reporter countries ({}), no provinces: the national aggregate CN is empty",
            countries.join(", ")
        ),
        (p, n) => println!(
            "origins: mixed: {p} provinces, summed into CN, and {n} reporter countries ({}), \
             each its own row and not part of CN",
            countries.join(", ")
        ),
    }
}

/// What the run redid and why, and what it left as it was.
fn print_plan(plan: &Plan) {
    if let Some(why) = &plan.full {
        println!("rebuilt every year: {why}");
    }
    println!("years:");
    for year in &plan.years {
        let state = if let Some(reasons) = plan.rebuild.get(year) {
            let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
            format!("recomputed: {}", reasons.join("; "))
        } else {
            let rewritten: Vec<&str> = plan
                .replaced
                .iter()
                .filter(|(name, years)| *name != REJECTS && years.contains(year))
                .map(|(name, _)| name.as_str())
                .collect();
            if rewritten.is_empty() {
                "skipped: current".to_string()
            } else if plan.unpublished.contains(year) {
                "tables recomputed: not published under this output yet".to_string()
            } else {
                format!(
                    "tables {} recomputed: they read a rebuilt or removed year",
                    rewritten.join(", ")
                )
            }
        };
        println!("  {year}  {state}");
    }
    if !plan.dropped.is_empty() {
        println!(
            "no longer configured, removed from the warehouse: {}",
            year_span(&plan.dropped)
        );
    }
    if !plan.pruned.is_empty() {
        println!("pruned from the output: {}", year_span(&plan.pruned));
    }
}
