//! `exdep`: export-dependence indices of Chinese provinces, from bilateral export records.

mod ddl;
mod generate;
mod inspect;
mod log;
mod progress;
mod report;
mod run;
mod signals;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::log::{Color, Log, LogFormat, init_logging};

#[derive(Parser)]
#[command(
    name = "exdep",
    version,
    about = "Export-dependence indices from bilateral export records"
)]
struct Cli {
    /// When log lines carry colours: `auto` (when standard error is a terminal and
    /// `NO_COLOR` is not set), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// How log lines are written: `text` for people, or `json`, one JSON object per line
    /// (progress, warnings, the final error) for a scheduler's log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline a config file describes: ingest, classify, index, export.
    Run(run::RunArgs),
    /// Check a config file and its code tables without reading or writing any data.
    Check {
        /// The pipeline config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Show, per year, what is published, when, from which inputs, and whether it is stale.
    Status {
        /// The pipeline config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Write deterministic synthetic records in the canonical format.
    Generate(generate::GenerateArgs),
    /// Print a published table's rows, optionally of one year and one province.
    Inspect(inspect::InspectArgs),
    /// Draw the study's figures from the published tables as one self-contained HTML file.
    Report(report::ReportArgs),
    /// Print the statements that declare the published tables, with their column and
    /// partition types, in Spark, Trino, Hive or DuckDB.
    Ddl(ddl::DdlArgs),
    /// Delete the files of Delta tables that no version younger than
    /// `vacuum-retention-hours` reads.
    Vacuum {
        /// The pipeline config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Remove a lock a dead run left.
        #[arg(long)]
        break_lock: bool,
    },
}

fn main() -> ExitCode {
    exdep_cluster::tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.color, cli.log_format);
    let log = Log {
        json: cli.log_format == LogFormat::Json,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log.error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, log).await,
            Command::Check { config } => run::check(&config).await,
            Command::Status { config } => status::status(&config).await,
            Command::Generate(args) => generate::generate(args),
            Command::Inspect(args) => inspect::inspect(args).await,
            Command::Report(args) => report::report(args).await,
            Command::Ddl(args) => ddl::ddl(args),
            Command::Vacuum { config, break_lock } => run::vacuum(&config, break_lock).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&exdep_core::error_chain(e.as_ref()));
            ExitCode::from(exit_status(&e))
        }
    }
}

/// 1 when the run failed on the data (an unreadable input file, too many rejects, published
/// years with no records), 128 + the signal's number when SIGTERM or SIGINT stopped it, 2 for
/// anything else: usage, configuration, storage, a held lock, the cluster, a timeout.
fn exit_status(error: &anyhow::Error) -> u8 {
    if let Some(signals::Stopped(signal)) = error.downcast_ref::<signals::Stopped>() {
        return signal.exit_code();
    }
    let data = error.chain().any(|cause| {
        cause
            .downcast_ref::<exdep_pipeline::Error>()
            .is_some_and(exdep_pipeline::Error::is_data_problem)
    });
    if data { 1 } else { 2 }
}
