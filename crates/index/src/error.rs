//! The error type of the index engine.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure while planning an index table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the shared foundation.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] exdep_core::datafusion::error::DataFusionError),
}
