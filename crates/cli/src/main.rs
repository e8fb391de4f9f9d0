//! `exdep`: export-dependence indices of Chinese provinces, from bilateral export records.

mod generate;
mod inspect;
mod progress;
mod report;
mod run;
mod signals;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

#[derive(Clone, Copy, clap::ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn enabled(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
            Command::Vacuum { config, break_lock } => run::vacuum(&config, break_lock).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&one_line(&e));
            exit_code(&e)
        }
    }
}

/// 1 when the run failed on the data (an unreadable input file, too many rejects, published
/// years with no records), 128 + the signal's number when SIGTERM or SIGINT stopped it, 2 for
/// anything else: usage, configuration, storage, a held lock, the cluster, a timeout.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    if let Some(signals::Stopped(signal)) = error.downcast_ref::<signals::Stopped>() {
        return ExitCode::from(signal.exit_code());
    }
    let data = error.chain().any(|cause| {
        cause
            .downcast_ref::<exdep_pipeline::Error>()
            .is_some_and(exdep_pipeline::Error::is_data_problem)
    });
    ExitCode::from(if data { 1 } else { 2 })
}

/// Log lines go to standard error, filtered by `EXDEP_LOG` (default `warn`); progress lines
/// (target `exdep::progress`) are let through in JSON, where the run prints no plain lines.
fn init_logging(color: Color, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EXDEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_env_filter(filter)
            .with_ansi(color.enabled())
            .init(),
        LogFormat::Json => builder
            .with_env_filter(
                filter.add_directive(
                    format!("{PROGRESS}=info")
                        .parse()
                        .expect("a valid directive"),
                ),
            )
            .json()
            .init(),
    }
}

/// The target of the run's progress lines.
const PROGRESS: &str = "exdep::progress";

/// Where the run's own lines (progress, the final error) go: plain lines on standard error,
/// or, with `--log-format json`, events among the other JSON log lines.
#[derive(Clone, Copy)]
pub struct Log {
    json: bool,
}

impl Log {
    /// Whether lines are JSON objects.
    pub fn is_json(self) -> bool {
        self.json
    }

    /// A progress line: how far the run is.
    pub fn progress(self, line: &str) {
        if self.json {
            tracing::info!(target: PROGRESS, "{line}");
        } else {
            eprintln!("{line}");
        }
    }

    /// The line the command fails with.
    fn error(self, line: &str) {
        if self.json {
            tracing::error!(target: "exdep", "{line}");
        } else {
            eprintln!("error: {line}");
        }
    }
}

/// The error and its causes on one line. Library errors often repeat their cause's text in
/// their own message; a cause already said is not said again.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
