//! The error type of the index engine.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

exdep_engine::layered_error! {
    /// A failure while planning an index table.
    pub enum Error {
        /// A table's plan could not be written out from its template (`sql/<table>.sql`).
        #[error("the plan of `{template}` cannot be rendered")]
        Template {
            /// The template's name.
            template: String,
            /// What went wrong in it.
            #[source]
            source: minijinja::Error,
        },
    }
}
