//! The error type of the shared data: configuration and locations.

use std::path::PathBuf;

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while loading configuration or resolving locations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}")]
    ConfigRead {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    ConfigSyntax {
        /// The file being parsed.
        path: PathBuf,
        /// The parser's explanation, naming the key and line.
        message: String,
    },
    /// A configuration key (or the command-line option that replaces it) holds a value exdep
    /// cannot use.
    #[error("{} `{key}`: {message}", if key.starts_with("--") { "option" } else { "config key" })]
    ConfigValue {
        /// The dotted key, as written in the TOML file, or the option (`--output`).
        key: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A location string is neither a usable URL nor a local path.
    #[error("invalid location `{location}`: {message}")]
    Location {
        /// The location as the user wrote it.
        location: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A code table has a bad line.
    #[error("code table {file}: line {line}: {message}")]
    CodeTableLine {
        /// The table's location.
        file: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A code table misses keys it must cover.
    #[error("code table {file}: {message}")]
    CodeTableCoverage {
        /// The table's location.
        file: String,
        /// What is missing.
        message: String,
    },
}
