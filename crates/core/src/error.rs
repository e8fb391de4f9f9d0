//! The error type of the shared foundation.

use std::path::PathBuf;

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while loading configuration, resolving locations or writing Parquet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
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
    /// A partition value would not make a safe path segment.
    #[error("refusing to write partition {column}={value:?} under {root}: not a safe path segment")]
    UnsafePartitionValue {
        /// The table root the partition would be written under.
        root: String,
        /// The partition column.
        column: String,
        /// The offending value.
        value: String,
    },
    /// A batch handed to a writer lacks a partition column.
    #[error("cannot write {root}: the data has no partition column `{column}`")]
    MissingPartitionColumn {
        /// The table root being written.
        root: String,
        /// The absent column.
        column: String,
    },
    /// Rows declared ordered by partition came back to a partition whose file was closed.
    #[error(
        "cannot write {root}: rows of partition {partition} came after another partition's, \
         though they were declared ordered by partition"
    )]
    PartitionOutOfOrder {
        /// The table root being written.
        root: String,
        /// The partition, as `col=value/...`.
        partition: String,
    },
    /// The Ballista cluster cannot be used.
    #[error("cluster at {scheduler}: {source}")]
    Cluster {
        /// The scheduler's URL.
        scheduler: String,
        /// What failed.
        source: Box<datafusion::error::DataFusionError>,
    },
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// An error from the Parquet writer.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An error from object storage.
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
}
