//! The error type of the index engine.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure while planning an index table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or location value.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// An error from object storage (reading, writing, the layout's documents).
    #[error(transparent)]
    Store(#[from] exdep_store::Error),
    /// An error from the engine (the session, registering tables).
    #[error(transparent)]
    Engine(#[from] exdep_engine::Error),
    /// A table's plan could not be written out from its template (`sql/<table>.sql`).
    #[error("the plan of `{template}` cannot be rendered")]
    Template {
        /// The template's name.
        template: String,
        /// What went wrong in it.
        #[source]
        source: minijinja::Error,
    },
    /// An error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] exdep_engine::datafusion::error::DataFusionError),
}
