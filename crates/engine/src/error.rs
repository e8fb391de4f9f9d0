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

/// Declares the error enum of a crate above the engine: the variants given, a transparent
/// variant for each error listed under `wraps` (the crates it calls), then one for each
/// layer every such crate stands on (`Core`, `Store`, `Engine`, `DataFusion`, `Arrow`,
/// `ObjectStore`), so that `?` takes their errors as they are and says them once. The enum
/// derives `Debug` and `thiserror::Error` (the crate depends on `thiserror`) and is
/// `#[non_exhaustive]`.
///
/// ```ignore
/// exdep_engine::layered_error! {
///     /// A failure while building a report.
///     pub enum Error {
///         /// No table of that name is published.
///         #[error("no table `{0}` is published")]
///         MissingTable(String),
///     }
///     wraps {
///         /// The code tables.
///         Classify(exdep_classify::Error),
///     }
/// }
/// ```
///
/// (Transparent variants are written here rather than passed in: thiserror's derive cannot
/// resolve a `#[error(transparent)]` that reaches it through a macro's variants.)
#[macro_export]
macro_rules! layered_error {
    (
        $(#[$attribute:meta])*
        pub enum $name:ident { $($variants:tt)* }
        $(wraps { $($(#[$wrap_doc:meta])* $wrap:ident($wrapped:ty)),* $(,)? })?
    ) => {
        $(#[$attribute])*
        #[derive(Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            $($variants)*
            $($(
                $(#[$wrap_doc])*
                #[error(transparent)]
                $wrap(#[from] $wrapped),
            )*)?
            /// A configuration or location value.
            #[error(transparent)]
            Core(#[from] $crate::layers::exdep_core::Error),
            /// An error from object storage (reading, writing, the layout's documents, the
            /// lease).
            #[error(transparent)]
            Store(#[from] $crate::layers::exdep_store::Error),
            /// An error from the engine (the session, the cluster, registering tables).
            #[error(transparent)]
            Engine(#[from] $crate::Error),
            /// An error from DataFusion.
            #[error(transparent)]
            DataFusion(#[from] $crate::datafusion::error::DataFusionError),
            /// An error from Arrow.
            #[error(transparent)]
            Arrow(#[from] $crate::datafusion::arrow::error::ArrowError),
            /// An error from an object store reached directly.
            #[error(transparent)]
            ObjectStore(#[from] $crate::layers::exdep_core::object_store::Error),
        }
    };
}
