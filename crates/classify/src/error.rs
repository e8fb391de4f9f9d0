//! The error type of classification.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A code table that cannot be used (see [`exdep_core::Error`] and [`exdep_store::Error`]), or
/// a failure while building the cube.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an input file in its one pass failed part-way.
    #[error("{file}")]
    Read {
        /// The file's URL.
        file: String,
        /// What failed.
        source: Box<exdep_engine::datafusion::error::DataFusionError>,
    },
    /// A configuration or location value.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// An error from object storage (reading, writing, the layout's documents).
    #[error(transparent)]
    Store(#[from] exdep_store::Error),
    /// An error from the engine (the session, registering tables).
    #[error(transparent)]
    Engine(#[from] exdep_engine::Error),
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] exdep_engine::datafusion::error::DataFusionError),
    /// An error from Arrow.
    #[error(transparent)]
    Arrow(#[from] exdep_core::arrow::error::ArrowError),
}
