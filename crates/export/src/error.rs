//! The error type of export.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure while writing, publishing or reading the output tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Computing or writing a table failed.
    #[error("table `{table}`")]
    Table {
        /// The table being written.
        table: String,
        /// What failed.
        source: Box<Error>,
    },
    /// Reading or committing to a Delta table failed.
    #[error("Delta table {table}")]
    Delta {
        /// The table's location.
        table: String,
        /// What failed.
        source: Box<deltalake_core::DeltaTableError>,
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
    /// An error from object storage.
    #[error(transparent)]
    ObjectStore(#[from] exdep_core::object_store::Error),
}
