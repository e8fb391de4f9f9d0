//! `exdep`: export-dependence indices of Chinese provinces, from bilateral export records.

mod generate;
mod run;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXDEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Check { config } => run::check(&config).await,
            Command::Status { config } => status::status(&config).await,
            Command::Generate(args) => generate::generate(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
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
