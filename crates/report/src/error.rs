//! The error type of the report.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure while building a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table the report draws from is not published.
    #[error("no table `{table}` is published under {output}: run `exdep run` first")]
    MissingTable {
        /// The table.
        table: String,
        /// The output root.
        output: String,
    },
    /// None of the published years is in the years asked for.
    #[error("no published year is in {asked} (published: {published:?})")]
    NoYears {
        /// The years asked for.
        asked: String,
        /// The years published.
        published: Vec<i32>,
    },
    /// `--province` names no province of the code table.
    #[error("--province {code} is not a province code of the provinces table")]
    UnknownProvince {
        /// The code given.
        code: String,
    },
    /// The published tables have no province rows to choose one from.
    #[error("the published tables have no province rows")]
    NoProvinces,
    /// Configuration or storage.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// The code tables.
    #[error(transparent)]
    Classify(#[from] exdep_classify::Error),
    /// Reading the published tables or the manifest.
    #[error(transparent)]
    Export(#[from] exdep_export::Error),
    /// An error from object storage (reading, writing, the layout's documents).
    #[error(transparent)]
    Store(#[from] exdep_store::Error),
    /// An error from the engine (the session, registering tables).
    #[error(transparent)]
    Engine(#[from] exdep_engine::Error),
    /// Querying them.
    #[error(transparent)]
    DataFusion(#[from] exdep_engine::datafusion::error::DataFusionError),
    /// Turning rows into the figures' data.
    #[error("cannot turn rows into JSON")]
    Arrow(#[from] exdep_core::arrow::error::ArrowError),
    /// Turning rows into the figures' data.
    #[error("cannot turn rows into JSON")]
    Json(#[from] serde_json::Error),
}
