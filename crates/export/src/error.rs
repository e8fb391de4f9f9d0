//! The error type of export.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

exdep_engine::layered_error! {
    /// A failure while writing, publishing or reading the output tables.
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
        /// A file in the run's staging folder that the run did not write: publishing it would
        /// record rows and statistics nobody measured.
        #[error(
            "{file} is in the run's staging folder but not among the files the run wrote; \
             nothing was published"
        )]
        UnknownStagedFile {
            /// The file's location.
            file: String,
        },
        /// Catalog DDL that cannot be written for a table or an engine.
        #[error("{0}")]
        Unsupported(String),
    }
}
