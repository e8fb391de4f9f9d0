//! The error type of the engine.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while building a session, reaching the cluster or registering tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Ballista cluster cannot be used.
    #[error("cluster at {scheduler}")]
    Cluster {
        /// The scheduler's URL.
        scheduler: String,
        /// What failed.
        source: Box<datafusion::error::DataFusionError>,
    },
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An error from the Parquet writer (a code table's copy).
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An error from object storage.
    #[error(transparent)]
    Store(#[from] exdep_store::Error),
}
