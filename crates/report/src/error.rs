//! The error type of the report.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

exdep_engine::layered_error! {
    /// A failure while building a report.
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
        /// Turning rows into the figures' data.
        #[error("cannot turn rows into JSON")]
        RowsToJson(#[source] exdep_core::arrow::error::ArrowError),
        /// Turning rows into the figures' data.
        #[error("cannot turn rows into JSON")]
        Json(#[from] serde_json::Error),
    }
    wraps {
        /// The code tables.
        Classify(exdep_classify::Error),
        /// Reading the published tables or the manifest.
        Export(exdep_export::Error),
    }
}
