//! Ingestion: finds export records in their sources — exdep's canonical CSV or Parquet,
//! China Customs query exports, UN Comtrade and CEPII BACI — and plans, per input file, the
//! check of every record: its canonical fields, and either nothing (it passed), an exclusion
//! rule of the source format or a reject reason. Classification reads that plan in the same
//! pass that builds the file's partial cube, so no copy of the records is written (the raw
//! layer, [`write_raw`], is an opt-in audit copy).
//!
//! A problem with a whole file (missing column, empty file, undecodable bytes) stops the run
//! with an error that names the file, before the warehouse is touched. Parquet is read by
//! the engine (the executors, on a cluster). Text is decoded by this process: in an embedded
//! run, as the plans over it pull its records (`stream`); for a cluster, into a staging copy
//! its executors read (`normalize`).
//!
//! ```no_run
//! # async fn demo(config: exdep_core::Config) -> exdep_ingest::Result<()> {
//! let ctx = exdep_engine::new_session();
//! let listing = exdep_ingest::list_inputs(&ctx, &config).await?;
//! let known = exdep_core::schema::KnownCodes::default();
//! let staging = exdep_store::layout::Warehouse::of(&config).staging("run-1");
//! let inputs =
//!     exdep_ingest::prepare_inputs(&ctx, &config, &known, &staging, &listing.files).await?;
//! for file in &inputs.files {
//!     println!("{}: {}", file.url(), file.checked_sql());
//! }
//! inputs.release(&ctx).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod formats;
mod normalize;
mod stream;
mod tables;

use std::sync::Arc;

use exdep_core::account::{SkippedFile, SourceFile};
use exdep_core::arrow::array::AsArray;
use exdep_core::arrow::datatypes::{DataType, Int32Type, Schema, SchemaRef};
use exdep_core::object_store::ObjectMeta;
use exdep_core::object_store::ObjectStoreExt;
use exdep_core::parquet::file::metadata::ParquetMetaDataReader;
use exdep_core::schema::{KnownCodes, RAW_FILE};
use exdep_core::sql::text_literal;
use exdep_core::{Config, Engine, HsLevel, Input, InputFormat, Location};
use exdep_engine::CellDomain;
use exdep_engine::datafusion::prelude::{ParquetReadOptions, SessionContext};
use exdep_store::layout::{Layer, Staging};
use exdep_store::{InputFiles, Objects};
use futures::StreamExt;
use tokio_util::task::AbortOnDropHandle;
use tracing::info;

pub use error::{Error, Result};
pub use formats::CANONICAL_COLUMNS;
pub use stream::Reading;

/// One file of the configured inputs, as listed.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Which of the config's `[[inputs]]` lists it.
    pub input_index: usize,
    /// Where it is.
    pub location: Location,
    /// Size, entity tag and modification time.
    pub meta: ObjectMeta,
}

/// The files of the configured inputs: those to read, in input order, and those skipped.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The files to read.
    pub files: Vec<InputFile>,
    /// Files of a landing folder that are not data: hidden names and empty files.
    pub skipped: Vec<SkippedFile>,
}

/// Lists the files of every configured input. As Spark and Hive do, names below a listed
/// folder that start with `_` or `.` (`_SUCCESS`, `.DS_Store`) are skipped, and so are
/// zero-byte files; both are reported. An input that names no file, or only skipped ones,
/// is an error naming it.
pub async fn list_inputs(ctx: &SessionContext, config: &Config) -> Result<Listing> {
    let mut listing = Listing::default();
    for (input_index, input) in config.inputs.iter().enumerate() {
        let mut listed = input.location.list_files(ctx, "").await?;
        listed.retain(|(_, meta)| input.format.takes_file(meta.location.as_ref()));
        if listed.is_empty() {
            return Err(Error::NoFiles {
                input: input.location.as_written().to_string(),
                extension: match input.format.file_extensions() {
                    [] => "".to_string(),
                    extensions => format!(" {}", extensions.join(", ")),
                },
            });
        }
        let mut skipped = Vec::new();
        for (location, meta) in listed {
            let reason = if input.location.is_hidden(&meta.location) {
                Some("a hidden name (starts with `_` or `.`)")
            } else if meta.size == 0 {
                Some("empty (0 bytes)")
            } else {
                None
            };
            match reason {
                Some(reason) => skipped.push(SkippedFile {
                    file: location.to_string(),
                    reason: reason.to_string(),
                }),
                None => listing.files.push(InputFile {
                    input_index,
                    location,
                    meta,
                }),
            }
        }
        if !listing.files.iter().any(|f| f.input_index == input_index) {
            return Err(Error::NothingReadable {
                input: input.location.as_written().to_string(),
                skipped: skipped
                    .iter()
                    .map(|s| format!("{} is {}", s.file, s.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        listing.skipped.extend(skipped);
    }
    Ok(listing)
}

/// The name of the objects a file's records take in each partition of the warehouse's
/// layers (`cube/`, `rejects/`, `raw/`): named after the file's URL, so reading one file again
/// replaces exactly its own objects.
pub fn part_name(file: &str) -> String {
    let digest = exdep_core::hex_sha256(file.as_bytes());
    format!("part-{}.parquet", &digest[..16])
}

/// The bytes of text a batch read from a text input holds at most (about): with 8,192 rows a
/// batch of records of up to `max-line-bytes` each could hold gigabytes.
pub const BATCH_BYTES: usize = 16 << 20;

/// The extension of a text input's staging copy (a Parquet file, see `normalize`).
const STAGED_TEXT_EXTENSION: &str = ".parquet";

/// One input file, looked at and registered, ready to be read in one plan.
pub struct PreparedFile {
    file: Location,
    meta: ObjectMeta,
    format: InputFormat,
    encoding: Option<String>,
    origin_column: Option<String>,
    /// Its checked records (see the crate docs), as SQL over its registered table.
    checked_sql: String,
    tables: Vec<String>,
    batch_rows: usize,
    /// A text input read as a stream (an embedded run's).
    streamed: Option<Arc<stream::TextSource>>,
}

impl PreparedFile {
    /// The file's URL.
    pub fn url(&self) -> String {
        self.file.to_string()
    }

    /// Its records, checked: columns `year`, `month`, `province`, `partner`, `hs_code`,
    /// `value`, `currency`, `line`, `raw`, and the exclusion `rule` or reject `reason` of
    /// each record (both null: it passed every check, the code tables' membership included).
    pub fn checked_sql(&self) -> &str {
        &self.checked_sql
    }

    /// How the run's plans read its records: each plan over it runs through
    /// [`Reading::run`], in batches of at most the rows it is given (for a text input whose
    /// longest record is long, as many as fit in [`BATCH_BYTES`]; else the engine's own
    /// batch size).
    pub fn reading(&self) -> Reading {
        Reading::of(self.streamed.clone(), self.batch_rows)
    }

    /// The file's size in bytes.
    pub fn bytes(&self) -> u64 {
        self.meta.size
    }

    /// The file as it is read: its fingerprint, format and encoding.
    pub fn source(&self) -> SourceFile {
        SourceFile {
            file: self.file.to_string(),
            format: self.format,
            // A streamed `auto` file's encoding is known once it has been read.
            encoding: match &self.streamed {
                Some(source) => Some(source.encoding().to_string()),
                None => self.encoding.clone(),
            },
            origin_column: self.origin_column.clone(),
            bytes: self.bytes(),
            e_tag: self.meta.e_tag.clone(),
            last_modified: self.meta.last_modified.to_rfc3339(),
        }
    }
}

/// The input files of a run, prepared: text files are decoded into the run's staging folder,
/// whose decoded copies [`PreparedInputs::release`] removes with the session's tables.
pub struct PreparedInputs {
    /// The files, in input order.
    pub files: Vec<PreparedFile>,
    staging: Staging,
    customs_registered: bool,
    comtrade_aliases_registered: bool,
}

impl PreparedInputs {
    /// Deregisters the files' tables and removes their staging copies.
    pub async fn release(self, ctx: &SessionContext) -> Result<()> {
        for table in self.files.iter().flat_map(|f| &f.tables) {
            ctx.deregister_table(table.as_str())?;
        }
        if self.customs_registered {
            ctx.deregister_table(formats::CUSTOMS_PARTNERS)?;
        }
        if self.comtrade_aliases_registered {
            ctx.deregister_table(formats::COMTRADE_ALIASES)?;
        }
        self.staging.text().delete_all(ctx).await?;
        Ok(())
    }
}

/// Looks at every file of `files` (from [`list_inputs`]) and plans its checked records
/// against the `known` codes, before anything is read or written: a bad input fails the run
/// while the warehouse is as it was. Text that must be decoded first is decoded into the
/// text folder of `staging`, the run's own; inputs' code tables are copied to its tables.
pub async fn prepare_inputs(
    ctx: &SessionContext,
    config: &Config,
    known: &KnownCodes,
    staging: &Staging,
    files: &[InputFile],
) -> Result<PreparedInputs> {
    let staging = staging.clone();
    staging.text().delete_all(ctx).await?;
    let mut prepared = PreparedInputs {
        files: Vec::new(),
        staging: staging.clone(),
        customs_registered: false,
        comtrade_aliases_registered: false,
    };
    let run_codes = RunCodes {
        known,
        domain: CellDomain::new(config.years.iter().copied(), known)
            .map_err(|message| Error::CellDomain { message })?,
    };
    let mut decoded = decode_text_inputs(ctx, config, files, &staging.text()).await;
    for (index, file) in files.iter().enumerate() {
        let result = match decoded[index].take() {
            Some(Err(error)) => Err(error),
            normalized => {
                prepare(
                    ctx,
                    config,
                    &run_codes,
                    file,
                    index,
                    normalized.map(|n| n.expect("errors are taken above")),
                    &mut prepared,
                )
                .await
            }
        };
        match result {
            Ok(file) => prepared.files.push(file),
            Err(error) => {
                prepared.release(ctx).await?;
                return Err(error);
            }
        }
    }
    Ok(prepared)
}

/// Whether a listed file is read as Parquet (else as text).
fn is_parquet(input: &Input, meta: &ObjectMeta) -> bool {
    match input.format {
        InputFormat::CanonicalParquet => true,
        InputFormat::Auto => meta
            .location
            .as_ref()
            .to_ascii_lowercase()
            .ends_with(".parquet"),
        _ => false,
    }
}

/// A text input, ready to be read: a staging copy (on a cluster, whose executors read it),
/// or a stream its plans pull records from (embedded, see `stream`).
enum DecodedText {
    Staged(normalize::Normalized),
    Streamed(Arc<stream::TextSource>),
}

impl DecodedText {
    fn header(&self) -> &[String] {
        match self {
            Self::Staged(normalized) => &normalized.header,
            Self::Streamed(source) => source.header(),
        }
    }

    fn schema(&self) -> SchemaRef {
        match self {
            Self::Staged(normalized) => normalized.schema.clone(),
            Self::Streamed(source) => source.schema(),
        }
    }

    fn encoding(&self) -> &'static str {
        match self {
            Self::Staged(normalized) => normalized.encoding,
            Self::Streamed(source) => source.encoding(),
        }
    }

    /// The most rows a batch of the file's plans may hold: as many of its longest record as
    /// fit in [`BATCH_BYTES`] for a staging copy; for a stream, as many as its rows read so
    /// far allow (see `stream`).
    fn batch_rows(&self) -> usize {
        match self {
            Self::Staged(normalized) => BATCH_BYTES / normalized.longest_row.max(1),
            Self::Streamed(source) => source.batch_rows(),
        }
    }
}

/// Readies the text inputs among `files`: embedded, opens each as a stream (its header
/// read); on a cluster, decodes each into a UTF-8 staging copy, as many at once as the
/// machine has cores (decoding is this process's work, one core per file). One entry per
/// file, `None` for Parquet.
async fn decode_text_inputs(
    ctx: &SessionContext,
    config: &Config,
    files: &[InputFile],
    staging: &Location,
) -> Vec<Option<Result<DecodedText>>> {
    let parallelism = exdep_core::cores();
    let streamed = matches!(config.engine, Engine::Embedded);
    let tasks = files.iter().enumerate().map(|(index, listed)| {
        let input = &config.inputs[listed.input_index];
        let text = !is_parquet(input, &listed.meta);
        let (ctx, file, meta) = (ctx.clone(), listed.location.clone(), listed.meta.clone());
        let options = normalize::TextOptions {
            encoding: input.encoding,
            max_line_bytes: config.max_line_bytes,
            max_compression_ratio: config.max_compression_ratio,
        };
        let staged = staging.join(&format!("{index:05}{STAGED_TEXT_EXTENSION}"));
        async move {
            if !text {
                return None;
            }
            // Aborted when the run stops: no decoding goes on writing after it.
            let task = AbortOnDropHandle::new(tokio::spawn(async move {
                if streamed {
                    stream::TextSource::open(&ctx, &file, &meta, options)
                        .await
                        .map(DecodedText::Streamed)
                } else {
                    normalize::normalize(&ctx, &file, &meta, options, &staged)
                        .await
                        .map(DecodedText::Staged)
                }
            }));
            Some(
                task.await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
            )
        }
    });
    futures::stream::iter(tasks)
        .buffered(parallelism)
        .collect()
        .await
}

/// The largest Parquet footer (the file's metadata) exdep reads: an export-records file's is
/// kilobytes (a few columns, their statistics per row group).
const MAX_FOOTER_BYTES: u64 = 8 << 20;

/// The deepest nesting of a Parquet schema exdep reads: the contract's columns are flat, and
/// the engine's reader recurses once per level, on a stack of a few megabytes.
const MAX_SCHEMA_DEPTH: usize = 64;

/// The stack of the thread that parses a footer before the engine does, per byte of the
/// footer: a level of nesting takes at least 6 bytes of footer, and its parsing a few
/// hundred bytes of stack.
const FOOTER_STACK_PER_BYTE: u64 = 256;

/// Looks at a Parquet input's footer before the engine reads the file, and refuses one
/// whose footer is larger than [`MAX_FOOTER_BYTES`], whose schema nests deeper than
/// [`MAX_SCHEMA_DEPTH`] (the engine's reader would exhaust its stack), or with a row group
/// larger, uncompressed, than an eighth of `memory_limit` (the reader fetches a row
/// group's column chunks whole, so one such row group would hold more memory than the run
/// may use, whatever the batch size). A file that is no Parquet is left to the engine's
/// reader, which says why.
async fn check_parquet_footer(
    ctx: &SessionContext,
    file: &Location,
    meta: &ObjectMeta,
    memory_limit: u64,
) -> Result<()> {
    let store = file.store(ctx)?;
    let size = meta.size;
    if size < 12 {
        return Ok(());
    }
    let tail = store
        .get_range(&meta.location, size - 8..size)
        .await
        .map_err(exdep_store::Error::from)?;
    if &tail[4..] != b"PAR1" {
        return Ok(());
    }
    let footer_bytes = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer_bytes > MAX_FOOTER_BYTES {
        return Err(Error::ParquetFooter {
            file: file.to_string(),
            message: format!(
                "its metadata takes {} MiB, more than the {} MiB an export-records file's \
                 needs",
                footer_bytes >> 20,
                MAX_FOOTER_BYTES >> 20
            ),
        });
    }
    if footer_bytes + 8 > size {
        return Ok(());
    }
    let footer = store
        .get_range(&meta.location, size - 8 - footer_bytes..size - 8)
        .await
        .map_err(exdep_store::Error::from)?;
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("parquet-footer".into())
        // Deep enough for the deepest schema this footer can encode; reserved, not used,
        // unless the schema is that deep.
        .stack_size((footer_bytes * FOOTER_STACK_PER_BYTE).clamp(8 << 20, 2 << 30) as usize)
        .spawn(move || {
            let _ = send.send(FooterFacts::of(&footer));
        })
        .map_err(|e| Error::FooterThread {
            file: file.to_string(),
            message: e.to_string(),
        })?;
    let facts = match receive.await {
        Ok(Some(facts)) => facts,
        // Not a footer the reader takes: the engine's reader says why.
        Ok(None) => return Ok(()),
        Err(_) => {
            return Err(Error::ParquetFooter {
                file: file.to_string(),
                message: "its metadata makes the Parquet reader fail".to_string(),
            });
        }
    };
    if facts.depth > MAX_SCHEMA_DEPTH {
        return Err(Error::ParquetFooter {
            file: file.to_string(),
            message: format!(
                "its schema nests {} levels deep, more than the {MAX_SCHEMA_DEPTH} exdep reads \
                 (the contract's columns are flat)",
                facts.depth
            ),
        });
    }
    let limit = memory_limit / 8;
    let too_large = facts
        .row_group_bytes
        .into_iter()
        .enumerate()
        .find(|&(_, bytes)| bytes > limit);
    match too_large {
        Some((index, bytes)) => Err(Error::RowGroupTooLarge {
            file: file.to_string(),
            row_group: index,
            bytes,
            limit,
        }),
        None => Ok(()),
    }
}

/// What the checks of a Parquet footer need of it.
struct FooterFacts {
    /// The deepest nesting of its schema (a flat schema's columns are at depth 1).
    depth: usize,
    /// Each row group's uncompressed size.
    row_group_bytes: Vec<u64>,
}

impl FooterFacts {
    /// Parses `footer`; `None` when it is no valid footer. The parsed metadata is dropped
    /// here as well, on the parsing thread's stack: dropping a deep schema recurses too.
    fn of(footer: &[u8]) -> Option<Self> {
        let metadata = ParquetMetaDataReader::decode_metadata(footer).ok()?;
        let mut depth = 0;
        let mut nodes = vec![(metadata.file_metadata().schema(), 0)];
        while let Some((node, level)) = nodes.pop() {
            depth = depth.max(level);
            if node.is_group() {
                nodes.extend(node.get_fields().iter().map(|f| (f.as_ref(), level + 1)));
            }
        }
        let row_group_bytes = metadata
            .row_groups()
            .iter()
            .map(|group| group.total_byte_size().max(0) as u64)
            .collect();
        Some(Self {
            depth,
            row_group_bytes,
        })
    }
}

/// The HS levels of a Comtrade file's export rows, in increasing order: one more scan of
/// the file, of one column, needed to choose the level before the records are read.
async fn comtrade_levels(
    ctx: &SessionContext,
    config: &Config,
    table: &str,
    columns: &formats::Columns,
    reading: &Reading,
) -> Result<Vec<u8>> {
    let read_error = |e| Error::Read {
        file: columns.file.clone(),
        source: Box::new(e),
    };
    let sql = &formats::comtrade_levels_sql(table, columns)?;
    let read_error = &read_error;
    let batches: Vec<_> = reading
        .run::<_, Error, _, _, _>(ctx, config, exdep_core::cores(), |bounded| async move {
            let frame = bounded.sql(sql).await.map_err(read_error)?;
            frame.collect().await.map_err(read_error)
        })
        .await?;
    let mut levels = Vec::new();
    for batch in &batches {
        let column = batch.column(0).as_primitive::<Int32Type>();
        levels.extend(column.iter().flatten().filter_map(|l| u8::try_from(l).ok()));
    }
    levels.sort_unstable();
    Ok(levels)
}

/// Writes the records of `file` that passed every check to the audit layer `raw` of the
/// run's `staging` folder (config key `raw-layer`; the run moves it into the warehouse when
/// it commits), one object per file and year
/// (see [`part_name`]). Returns the records written.
pub async fn write_raw(
    ctx: &SessionContext,
    config: &Config,
    file: &PreparedFile,
    staging: &Staging,
) -> Result<u64> {
    let url = file.url();
    let read_error = |e| Error::Read {
        file: url.clone(),
        source: Box::new(e),
    };
    let sql = format!(
        "SELECT year, month, province, partner, hs_code, value, currency, {source} AS source,
            line
        FROM ({checked}) WHERE reason IS NULL AND rule IS NULL",
        source = text_literal(&url),
        checked = file.checked_sql,
    );
    let (sql, url, read_error) = (&sql, &url, &read_error);
    file.reading()
        .run(ctx, config, exdep_core::cores(), |ctx| async move {
            let mut stream = ctx
                .sql(sql)
                .await
                .map_err(read_error)?
                .execute_stream()
                .await
                .map_err(read_error)?;
            let mut writer = staging.layer_writer(&ctx, Layer::Raw, &part_name(url), &RAW_FILE)?;
            while let Some(batch) = stream.next().await {
                writer.write(&batch.map_err(read_error)?).await?;
            }
            Ok::<_, Error>(writer.finish().await?.iter().map(|f| f.rows).sum())
        })
        .await
}

/// The codes a run's records are checked against: as lists, and as the cube kernel's domain.
struct RunCodes<'a> {
    known: &'a KnownCodes,
    domain: CellDomain,
}

async fn prepare(
    ctx: &SessionContext,
    config: &Config,
    run_codes: &RunCodes<'_>,
    listed: &InputFile,
    index: usize,
    decoded: Option<DecodedText>,
    inputs: &mut PreparedInputs,
) -> Result<PreparedFile> {
    let (file, meta) = (&listed.location, &listed.meta);
    let input: &Input = &config.inputs[listed.input_index];
    let table = format!("ingest_input_{index}");
    let batch_rows = decoded.as_ref().map_or(usize::MAX, DecodedText::batch_rows);
    let registered = register_input(ctx, config, listed, &table, decoded.as_ref()).await?;
    let streamed = match decoded {
        Some(DecodedText::Streamed(source)) => Some(source),
        _ => None,
    };
    let mut tables = vec![table.clone()];
    let codes = register_format_tables(ctx, config, listed, index, &registered, inputs).await?;
    if let Some((name, _)) = &codes {
        tables.push(name.clone());
    }
    let columns = formats::Columns {
        file: file.to_string(),
        columns: registered.columns,
    };
    if registered.encoding.is_none() {
        columns.check_types()?;
    }
    let comtrade = match registered.format {
        InputFormat::ComtradeCsv => {
            let reading = Reading::of(streamed.clone(), batch_rows);
            Some(comtrade_reading(ctx, config, listed, input, &table, &columns, &reading).await?)
        }
        _ => None,
    };
    let projection = formats::projection(
        registered.format,
        &table,
        &columns,
        registered.encoding.is_some(),
        codes.as_ref().map(|(_, sql)| sql.as_str()),
        comtrade,
    )?;
    let checked_sql = formats::checked_sql(
        &projection,
        &config.years,
        run_codes.known,
        &run_codes.domain,
    );
    // Plan now, so a mistake in a file's shape surfaces before any data moves.
    ctx.sql(&checked_sql).await.map_err(|e| Error::Read {
        file: file.to_string(),
        source: Box::new(e),
    })?;
    Ok(PreparedFile {
        file: file.clone(),
        meta: meta.clone(),
        format: registered.format,
        encoding: registered.encoding,
        origin_column: projection.origin_column.clone(),
        checked_sql,
        tables,
        batch_rows,
        streamed,
    })
}

/// An input file registered as a table: its format (told from the header for `auto`), its
/// columns, and for a text file the encoding it was decoded from.
struct RegisteredInput {
    format: InputFormat,
    columns: Vec<(String, DataType)>,
    encoding: Option<String>,
}

/// Registers `listed` as table `table`: a Parquet file as it is (after a look at its
/// footer), a text file as `decoded`, its staging copy or its stream (its columns as text).
async fn register_input(
    ctx: &SessionContext,
    config: &Config,
    listed: &InputFile,
    table: &str,
    decoded: Option<&DecodedText>,
) -> Result<RegisteredInput> {
    let (file, meta) = (&listed.location, &listed.meta);
    let read_error = |e| Error::Read {
        file: file.to_string(),
        source: Box::new(e),
    };
    let Some(decoded) = decoded else {
        if meta.size == 0 {
            return Err(Error::EmptyFile {
                file: file.to_string(),
            });
        }
        check_parquet_footer(ctx, file, meta, config.memory_limit).await?;
        ctx.register_parquet(
            table,
            file.url().as_str(),
            ParquetReadOptions::default().file_extension(""),
        )
        .await
        .map_err(read_error)?;
        let schema = ctx.table_provider(table).await?.schema();
        return Ok(RegisteredInput {
            format: InputFormat::CanonicalParquet,
            columns: columns_of(&schema),
            encoding: None,
        });
    };
    let format = match config.inputs[listed.input_index].format {
        InputFormat::Auto => {
            let format = formats::infer(decoded.header()).ok_or_else(|| Error::UnknownFormat {
                file: file.to_string(),
                found: decoded.header().join(", "),
            })?;
            info!(file = %file, format = format.name(), "format told from the header");
            format
        }
        format => format,
    };
    let schema = decoded.schema();
    match decoded {
        DecodedText::Staged(normalized) => {
            let options = ParquetReadOptions::default()
                .schema(&schema)
                .file_extension(STAGED_TEXT_EXTENSION);
            ctx.register_parquet(table, normalized.staging.url().as_str(), options)
                .await
                .map_err(read_error)?;
        }
        DecodedText::Streamed(source) => {
            ctx.register_table(table, Arc::new(source.table()?))
                .map_err(read_error)?;
        }
    }
    Ok(RegisteredInput {
        format,
        columns: columns_of(&schema),
        encoding: Some(decoded.encoding().to_string()),
    })
}

/// A table's columns, named and typed.
fn columns_of(schema: &Schema) -> Vec<(String, DataType)> {
    (schema.fields().iter())
        .map(|field| (field.name().clone(), field.data_type().clone()))
        .collect()
}

/// Registers the code tables the file's format joins, the shipped ones once per run: the
/// customs partner codes, Comtrade's partner aliases (unless the input turns them off), or
/// the input's BACI country codes, returned as the table's name and the SQL that reads it.
async fn register_format_tables(
    ctx: &SessionContext,
    config: &Config,
    listed: &InputFile,
    index: usize,
    registered: &RegisteredInput,
    inputs: &mut PreparedInputs,
) -> Result<Option<(String, String)>> {
    let cache = inputs.staging.tables();
    let input = &config.inputs[listed.input_index];
    match registered.format {
        InputFormat::CustomsCsv if !inputs.customs_registered => {
            tables::register_customs_partners(ctx, &config.tables.customs_partner_codes, &cache)
                .await?;
            inputs.customs_registered = true;
        }
        InputFormat::ComtradeCsv
            if input.partner_aliases && !inputs.comtrade_aliases_registered =>
        {
            tables::register_comtrade_aliases(ctx, &config.tables.comtrade_partner_aliases, &cache)
                .await?;
            inputs.comtrade_aliases_registered = true;
        }
        InputFormat::BaciCsv => {
            let location =
                input
                    .country_codes
                    .as_ref()
                    .ok_or_else(|| exdep_core::Error::ConfigValue {
                        key: format!("inputs[{}].country-codes", listed.input_index),
                        message: format!(
                            "{} is a BACI file; give BACI's country_codes file",
                            listed.location
                        ),
                    })?;
            let name = format!("baci_country_codes_{index}");
            tables::register_baci_codes(ctx, &name, location, &cache).await?;
            let sql = format!("(SELECT country_code AS code, country_iso3 AS iso3 FROM {name})");
            return Ok(Some((name, sql)));
        }
        _ => {}
    }
    Ok(None)
}

/// How a Comtrade file is read: the HS level kept (the input's `hs-level`, else the one
/// level the file has; a file with several and no choice is refused).
async fn comtrade_reading(
    ctx: &SessionContext,
    config: &Config,
    listed: &InputFile,
    input: &Input,
    table: &str,
    columns: &formats::Columns,
    reading: &Reading,
) -> Result<formats::ComtradeReading> {
    let hs_level = match input.hs_level {
        Some(HsLevel::Digits(digits)) => Some(digits),
        choice => {
            let levels = comtrade_levels(ctx, config, table, columns, reading).await?;
            match choice {
                Some(_) => levels.last().copied(),
                None if levels.len() > 1 => {
                    return Err(Error::MixedHsLevels {
                        file: listed.location.to_string(),
                        levels: levels
                            .iter()
                            .map(u8::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        key: format!("inputs[{}].hs-level", listed.input_index),
                    });
                }
                None => None,
            }
        }
    };
    Ok(formats::ComtradeReading {
        hs_level,
        partner_aliases: input.partner_aliases,
    })
}
