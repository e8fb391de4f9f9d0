//! The error type of a run's reports.

use std::path::PathBuf;

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A report that could not be delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint (lineage, Pushgateway) could not be reached or refused the report.
    #[error("could not send the run's report to {target}: {message}")]
    Http {
        /// The URL.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// A report's file could not be written.
    #[error("could not write the run's report to {}", file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}
