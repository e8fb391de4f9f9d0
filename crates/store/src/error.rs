//! The error type of object storage.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while reaching stores, reading and writing objects and Parquet files,
/// and holding the run lease.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `[storage]` option the location's store does not know.
    #[error("config key `{key}`: not an option of this object store")]
    StorageOption {
        /// The dotted key, `storage.NAME`.
        key: String,
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
    /// A manifest or run state exdep wrote earlier cannot be read back.
    #[error("{location} is not a document this exdep can read; move it away to start afresh")]
    Unreadable {
        /// Where it is.
        location: String,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// A document could not be serialized.
    #[error("cannot serialize {location}")]
    Unwritable {
        /// Where it was to be written.
        location: String,
        /// What failed.
        source: serde_json::Error,
    },
    /// Another run holds the lock of the output or the warehouse.
    #[error(
        "{lock} is held by {holder}: one run at a time per output and warehouse; if that run \
         is dead, rerun with --break-lock"
    )]
    Locked {
        /// The lock object.
        lock: String,
        /// Who holds it.
        holder: String,
    },
    /// Another run took this run's lease over (it expired: the run stalled longer than the
    /// lease's length); the run stopped without publishing anything more.
    #[error(
        "this run lost its lease {lock}, now held by {holder}; it stopped without publishing \
         anything more (a run stalled longer than `lease-seconds` loses its lease)"
    )]
    LeaseLost {
        /// The lease object.
        lock: String,
        /// Who holds it now.
        holder: String,
    },
    /// The store cannot replace an object conditionally, which renewing and taking over a
    /// lease need.
    #[error(
        "the store of {lock} cannot replace an object conditionally (PutMode::Update), which \
         exdep's run lease needs to tell two runs apart: for S3 keep `aws_conditional_put` at \
         its default `etag`; if the scheduler runs one job at a time (a CronJob with \
         concurrencyPolicy: Forbid), set `serialized-runs = true`"
    )]
    NoConditionalUpdate {
        /// The lease object.
        lock: String,
    },
    /// The lease file on a local disk could not be read or written.
    #[error("{lock}")]
    LeaseFile {
        /// The lease object.
        lock: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A code table file could not be read.
    #[error(
        "code table {file}: cannot read it (a relative path under [tables] is taken from the \
         config file's folder)"
    )]
    CodeTableRead {
        /// The table's location.
        file: String,
        /// Why reading failed.
        source: object_store::Error,
    },
    /// A scratch file (an intermediate table of the run) could not be written.
    #[error("{file}: cannot write this scratch file of the run")]
    ScratchWrite {
        /// The file.
        file: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A location's value is not usable (see [`exdep_core::Error`]).
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// An error from DataFusion (its store registry, a listing, a query written to Parquet).
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

impl Error {
    /// Whether this is a store's "no such object".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ObjectStore(object_store::Error::NotFound { .. })
        )
    }
}
