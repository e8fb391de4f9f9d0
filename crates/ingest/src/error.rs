//! The error type of ingestion.

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

exdep_engine::layered_error! {
    /// A problem that stops an input: the file, and where in it, are always named.
    pub enum Error {
        /// An input location matched no file.
        #[error("input `{input}` matched no{extension} file")]
        NoFiles {
            /// The location as configured.
            input: String,
            /// The endings files were filtered by, with a leading space (none for any file).
            extension: String,
        },
        /// Every file an input location matched was skipped.
        #[error("input `{input}` has nothing readable: {skipped}")]
        NothingReadable {
            /// The location as configured.
            input: String,
            /// The files skipped and why.
            skipped: String,
        },
        /// A Comtrade file lists its trade at more than one HS level and the input does not say
        /// which to keep.
        #[error(
            "{file}: the file mixes HS levels {levels} (Comtrade's aggrLevel), which would count \
             the same trade more than once; set {key} to one of them or to \"finest\""
        )]
        MixedHsLevels {
            /// The file.
            file: String,
            /// The levels found, as a list.
            levels: String,
            /// The config key that chooses.
            key: String,
        },
        /// The code tables hold a code the cube kernel cannot pack (they are checked for
        /// the shapes it packs at load, so this is a defect).
        #[error("the run's codes cannot be packed into cube cells: {message}")]
        CellDomain {
            /// Which code, and why.
            message: String,
        },
        /// A file has no bytes at all.
        #[error("{file}: the file is empty (not even a header line)")]
        EmptyFile {
            /// The file.
            file: String,
        },
        /// A file's header cannot be read.
        #[error("{file}: line 1: {message}")]
        Header {
            /// The file.
            file: String,
            /// What is wrong with the header.
            message: String,
        },
        /// A customs download of year-to-date (累计) totals, which cannot be summed as months.
        #[error(
            "{file}: line 1: column `{column}` holds year-to-date (累计) totals: each month's row \
             repeats every earlier month of its year, so summing them counts January up to 12 \
             times. Download the monthly values instead (the platform's 当月 option: columns \
             `人民币` or `美元`)"
        )]
        YearToDate {
            /// The file.
            file: String,
            /// The year-to-date column.
            column: String,
        },
        /// Bytes that do not decode in the file's encoding.
        #[error(
            "{file}: line {line} (byte {byte}) is not valid {encoding}; set `encoding` on the input if the file uses another"
        )]
        Decode {
            /// The file.
            file: String,
            /// The 1-based line of the first bad byte.
            line: u64,
            /// The byte offset of the first bad byte.
            byte: u64,
            /// The encoding tried.
            encoding: &'static str,
        },
        /// A text input whose bytes are compressed or archived under a name that says text.
        #[error(
            "{file}: the file is {found}, not text; {fix} (exdep reads `.gz` and `.zst` text files)"
        )]
        Compressed {
            /// The file.
            file: String,
            /// What its first bytes are.
            found: &'static str,
            /// What to do about it.
            fix: &'static str,
        },
        /// A compressed input could not be inflated (truncated or corrupt).
        #[error("{file}: cannot decompress: {message}")]
        Decompress {
            /// The file.
            file: String,
            /// What the decompressor reported.
            message: String,
        },
        /// The staging copy of an input could not be written.
        #[error("cannot write the staging copy {location}: {message}")]
        Staging {
            /// Where the copy was being written.
            location: String,
            /// What failed.
            message: String,
        },
        /// The format of a file could not be recognized from its header.
        #[error("{file}: cannot tell the format from the header ({found}); set `format` on the input")]
        UnknownFormat {
            /// The file.
            file: String,
            /// The header's columns.
            found: String,
        },
        /// A required column is absent.
        #[error("{file}: required column `{column}` is missing (found: {found})")]
        MissingColumn {
            /// The file.
            file: String,
            /// The column that is required.
            column: String,
            /// The columns the file does have.
            found: String,
        },
        /// A Parquet column has a type that cannot hold its field faithfully: an HS code stored
        /// as a number has lost its leading zero (coffee, `0901`, read as `901`), and a year or
        /// month stored as a float would be truncated.
        #[error("{file}: column `{column}` is {found}, but must be {expected}")]
        ColumnType {
            /// The file.
            file: String,
            /// The column.
            column: String,
            /// Its type in the file.
            found: String,
            /// What it must be.
            expected: &'static str,
        },
        /// A Parquet footer exdep will not read: too large, or a schema nested too deep.
        #[error("{file}: {message}")]
        ParquetFooter {
            /// The file.
            file: String,
            /// What is wrong with it.
            message: String,
        },
        /// The thread that checks a Parquet footer could not start (this machine's limits, not
        /// the file's fault).
        #[error("{file}: cannot start the thread that checks its metadata: {message}")]
        FooterThread {
            /// The file.
            file: String,
            /// Why.
            message: String,
        },
        /// A Parquet row group too large to read within the memory limit.
        #[error(
            "{file}: row group {row_group} holds {} MiB uncompressed, more than the {} MiB a row \
             group may take (an eighth of memory-limit); rewrite the file with smaller row groups \
             or raise memory-limit",
            bytes >> 20,
            limit >> 20
        )]
        RowGroupTooLarge {
            /// The file.
            file: String,
            /// The row group's index.
            row_group: usize,
            /// Its uncompressed size.
            bytes: u64,
            /// The most a row group may hold.
            limit: u64,
        },
        /// Reading or decoding a file failed part-way.
        #[error("{file}")]
        Read {
            /// The file.
            file: String,
            /// What DataFusion reported.
            source: Box<exdep_engine::datafusion::error::DataFusionError>,
        },
    }
}

impl Error {
    /// Whether the error is in an input file's content (its bytes, header, columns or
    /// encoding), as opposed to the set-up: locations, code tables, storage.
    pub fn is_input_problem(&self) -> bool {
        matches!(
            self,
            Self::NothingReadable { .. }
                | Self::MixedHsLevels { .. }
                | Self::EmptyFile { .. }
                | Self::Header { .. }
                | Self::YearToDate { .. }
                | Self::Decode { .. }
                | Self::Compressed { .. }
                | Self::Decompress { .. }
                | Self::UnknownFormat { .. }
                | Self::MissingColumn { .. }
                | Self::ColumnType { .. }
                | Self::RowGroupTooLarge { .. }
                | Self::ParquetFooter { .. }
                | Self::Read { .. }
        )
    }
}
