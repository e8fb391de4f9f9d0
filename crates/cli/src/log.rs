//! Where the command's lines go: log lines and progress on standard error, as plain text
//! or JSON.

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Log lines go to standard error, filtered by `EXDEP_LOG` (default `warn`); progress lines
/// (target `exdep::progress`) are let through in JSON, where the run prints no plain lines.
pub fn init_logging(color: Color, format: LogFormat) {
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
    pub json: bool,
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
    pub fn error(self, line: &str) {
        if self.json {
            tracing::error!(target: "exdep", "{line}");
        } else {
            eprintln!("error: {line}");
        }
    }
}
