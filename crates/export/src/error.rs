//! The error type of export.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure while writing outputs or the manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Computing or writing a table failed.
    #[error("table `{table}`: {source}")]
    Table {
        /// The table being written.
        table: String,
        /// What failed.
        source: Box<Error>,
    },
    /// A manifest or run state exdep wrote earlier cannot be read back.
    #[error(
        "{location} is not a manifest this exdep can read ({source}); move it away to start afresh"
    )]
    Unreadable {
        /// Where it is.
        location: String,
        /// What is wrong with it.
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
    #[error("{lock}: {source}")]
    LeaseFile {
        /// The lease object.
        lock: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Reading or committing to a Delta table failed.
    #[error("Delta table {table}: {source}")]
    Delta {
        /// The table's location.
        table: String,
        /// What failed.
        source: Box<deltalake_core::DeltaTableError>,
    },
    /// The manifest could not be serialized.
    #[error("cannot serialize the run manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    /// An error from the shared foundation.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] exdep_core::datafusion::error::DataFusionError),
    /// An error from object storage.
    #[error(transparent)]
    ObjectStore(#[from] exdep_core::object_store::Error),
}
