//! The error type of classification.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

exdep_engine::layered_error! {
    /// A code table that cannot be used (see [`exdep_core::Error`] and [`exdep_store::Error`]), or
    /// a failure while building the cube.
    pub enum Error {
        /// Reading an input file in its one pass failed part-way.
        #[error("{file}")]
        Read {
            /// The file's URL.
            file: String,
            /// What failed.
            source: Box<exdep_engine::datafusion::error::DataFusionError>,
        },
        /// Records passed every check but the cube kernel gave them no cell: the checks'
        /// two forms disagree, a defect; the run stops rather than lose them.
        #[error(
            "{file}: {records} record(s) of year {year} passed every check but have no cube cell \
             (a defect of exdep: please report it with the input)"
        )]
        NoCell {
            /// The file's URL.
            file: String,
            /// How many.
            records: u64,
            /// Their year.
            year: i32,
        },
    }
}
