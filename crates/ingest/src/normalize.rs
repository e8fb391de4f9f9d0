//! Text inputs are normalized before DataFusion reads them: decompressed (`.gz`, `.zst`),
//! decoded to UTF-8 (UTF-8 with or without a byte order mark, or GBK/GB18030), parsed into
//! CSV records (by `csv-core`) and written straight from the parser's buffers into Arrow
//! columns ([`TextReader`]), batches whose rows carry their line number, whether the record
//! has as many fields as the header, and its raw text where that is not simply its fields
//! joined by commas (most records are, and their text is then not held twice). Rejected
//! rows can then name their line, and a short or long record is a rejected row rather than
//! a failed file. An embedded run's plans pull the batches as they read (`stream`); for a
//! cluster they are written to a staging Parquet file, which the engine reads with no
//! second parse of the text, a row group at a time (each bounded in bytes, so a reader's
//! memory is bounded on any store), and which as a file-backed table a cluster's executors
//! read as well.
//!
//! A record ends at LF, CRLF or a lone CR (old Mac files) outside double quotes: a quoted
//! field may hold line breaks (each becomes a space in the raw text). A record is at most
//! `max-line-bytes` long: past that, an open quote no longer joins lines, and a single line
//! that long is rejected (`line_too_long`) without being held. The file streams through:
//! memory does not grow with its size, and a compressed file is inflated a slice at a time.
//!
//! With `encoding = "auto"` the file is read as UTF-8 until the first byte that is not; the
//! whole file is then read again as GB18030, so the choice holds for every line of it. A
//! file that is not GB18030 either is reported where it stops being UTF-8. (A stream's
//! plans do the same, see `stream`.)

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use encoding_rs::{Decoder, DecoderResult, Encoding, GB18030, UTF_8};
use exdep_core::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use exdep_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use exdep_core::object_store::buffered::BufWriter;
use exdep_core::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use exdep_core::parquet::arrow::AsyncArrowWriter;
use exdep_core::parquet::basic::Compression;
use exdep_core::parquet::file::properties::{EnabledStatistics, WriterProperties};
use exdep_core::{Location, TextEncoding};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::Objects;
use futures::StreamExt;
use futures::stream::BoxStream;
use tracing::info;

use crate::error::{Error, Result};
use crate::formats::input_column;

/// The staging file's own columns, before the source's.
pub(crate) const LINE: &str = "__line";
const RAW: &str = "__raw";
pub(crate) const FIELDS_OK: &str = "__fields_ok";
/// How many columns of its own the staging file has before the header's.
const STAGING_OWN_COLUMNS: usize = 3;

/// What `__fields_ok` holds for a record cut at the line cap.
pub(crate) const TOO_LONG: &str = "L";

/// The raw text kept of a record longer than the cap.
const TOO_LONG_PREFIX_BYTES: usize = 256;

/// Compressed bytes are inflated this many at a time, so that one chunk of a highly
/// compressed file never becomes more than a bounded amount of text at once (a zstd block
/// inflates to at most 128 KiB, and takes at least 4 bytes: 32 MiB per slice at most).
const INFLATE_SLICE_BYTES: usize = 1 << 10;

/// The raw text kept of a record, enough to see what is wrong with a rejected one: a record
/// under `max-line-bytes` may still be long, and every rejected record's raw text is a
/// grouping key of its file's plan.
const RAW_KEPT_BYTES: usize = 1 << 10;

/// The bytes of a text input read per request.
const READ_BYTES: u64 = 1 << 20;

/// The rows of a staging batch at most (the engine's own batch size).
pub(crate) const STAGED_BATCH_ROWS: usize = 8192;

/// A normalized input: where its staging copy is, its schema and what its header was.
pub(crate) struct Normalized {
    pub staging: Location,
    /// `__line` (a number), `__raw`, `__fields_ok`, then the header's columns as text, as
    /// the engine reads them (see [`read_schema`]).
    pub schema: SchemaRef,
    pub header: Vec<String>,
    pub encoding: &'static str,
    /// The longest row of the staging copy, in bytes of text: it bounds how many rows a
    /// batch made from it may hold.
    pub longest_row: usize,
}

/// How a text input is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextOptions {
    /// The configured encoding.
    pub encoding: TextEncoding,
    /// The longest record kept, in bytes of UTF-8 (config `max-line-bytes`).
    pub max_line_bytes: usize,
    /// How many times its compressed size a compressed file may inflate to
    /// (`max-compression-ratio`).
    pub max_compression_ratio: u64,
}

/// Decodes `file` and writes its staging copy to `staging`.
pub(crate) async fn normalize(
    ctx: &SessionContext,
    file: &Location,
    meta: &ObjectMeta,
    options: TextOptions,
    staging: &Location,
) -> Result<Normalized> {
    if meta.size == 0 {
        return Err(Error::EmptyFile {
            file: file.to_string(),
        });
    }
    let first = first_encoding(options.encoding);
    let result = write_staging(ctx, file, meta, first, options, staging).await;
    let result = match result {
        Err(not_utf8 @ Error::Decode { .. }) if options.encoding == TextEncoding::Auto => {
            info!(file = %file, "{not_utf8}: reading the whole file as GB18030");
            // A file that is neither is reported where it stops being UTF-8, the encoding
            // it was read in the longest.
            write_staging(ctx, file, meta, GB18030, options, staging)
                .await
                .map_err(|error| match error {
                    Error::Decode { .. } => not_utf8,
                    other => other,
                })
        }
        other => other,
    };
    if let Ok(normalized) = &result {
        info!(file = %file, encoding = normalized.encoding, "text encoding");
    }
    result
}

/// One pass over `file` in one encoding: its staging copy, or the first problem.
async fn write_staging(
    ctx: &SessionContext,
    file: &Location,
    meta: &ObjectMeta,
    encoding: &'static Encoding,
    options: TextOptions,
    staging: &Location,
) -> Result<Normalized> {
    let mut reader = TextReader::open(file.store(ctx)?, file.to_string(), meta, encoding, options);
    // Taken by the staging file's writer at the first batch.
    let mut out = Some(BufWriter::new(staging.store(ctx)?, staging.path()?));
    let mut writer = None;
    let written = async {
        loop {
            let more = reader.advance().await?;
            for batch in reader.take_batches() {
                write_batch(&mut writer, &mut out, &batch, staging).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }
    .await;
    let Some(columns) = reader.rows.columns.as_ref().filter(|_| written.is_ok()) else {
        abandon(&mut out, staging).await?;
        return Err(written.err().unwrap_or(Error::EmptyFile {
            file: file.to_string(),
        }));
    };
    let (written, header) = (columns.schema.clone(), columns.header.clone());
    // A header and no records: a file of no rows with the columns.
    let writer = match writer {
        Some(writer) => writer,
        None => staged_writer(out.take().expect("no batch was written"), &written, staging)?,
    };
    writer
        .close()
        .await
        .map_err(|e| staging_error(staging, e))?;
    Ok(Normalized {
        staging: staging.clone(),
        schema: read_schema(&written),
        header,
        encoding: reader.decoder.name(),
        longest_row: reader.rows.longest,
    })
}

/// Writes `batch` as a row group of the staging file, opening it (with `out`) at the first.
async fn write_batch(
    writer: &mut Option<AsyncArrowWriter<BufWriter>>,
    out: &mut Option<BufWriter>,
    batch: &RecordBatch,
    staging: &Location,
) -> Result<()> {
    let writer = match writer {
        Some(writer) => writer,
        None => {
            let out = out.take().expect("the staging file is opened once");
            writer.insert(staged_writer(out, &batch.schema(), staging)?)
        }
    };
    writer
        .write(batch)
        .await
        .map_err(|e| staging_error(staging, e))?;
    writer.flush().await.map_err(|e| staging_error(staging, e))
}

/// A text file read in one encoding: its bytes fetched, inflated, decoded and parsed a
/// slice at a time into batches of its records (the staging columns, see [`StagingRows`]).
pub(crate) struct TextReader {
    name: String,
    /// The file's bytes, READ_BYTES per request, the next fetched while the last is decoded:
    /// a store's own stream of a local file comes in pieces of 8 KiB, each read on a thread
    /// of its own, and those hand-overs cost more than the parsing.
    chunks: BoxStream<'static, exdep_core::object_store::Result<Bytes>>,
    /// The piece being read, and how much of it is.
    chunk: Bytes,
    read: usize,
    first_chunk: bool,
    inflater: Inflater,
    decoder: TextDecoder,
    parser: RecordParser,
    rows: StagingRows,
    max_compression_ratio: u64,
    plain: Vec<u8>,
    text: String,
    compressed_bytes: u64,
    plain_bytes: u64,
}

impl TextReader {
    /// A reader of `meta`'s object in `store` (named `name` in errors) as `encoding`.
    pub(crate) fn open(
        store: Arc<dyn ObjectStore>,
        name: String,
        meta: &ObjectMeta,
        encoding: &'static Encoding,
        options: TextOptions,
    ) -> Self {
        let (location, size) = (meta.location.clone(), meta.size);
        let chunks = futures::stream::iter((0..size).step_by(READ_BYTES as usize))
            .map(move |start| {
                let (store, location) = (store.clone(), location.clone());
                async move {
                    store
                        .get_range(&location, start..size.min(start + READ_BYTES))
                        .await
                }
            })
            .buffered(2)
            .boxed();
        Self {
            rows: StagingRows::new(name.clone()),
            name,
            chunks,
            chunk: Bytes::new(),
            read: 0,
            first_chunk: true,
            inflater: Inflater::for_name(meta.location.as_ref()),
            decoder: TextDecoder::new(encoding),
            parser: RecordParser::new(options.max_line_bytes),
            max_compression_ratio: options.max_compression_ratio,
            plain: Vec::new(),
            text: String::new(),
            compressed_bytes: 0,
            plain_bytes: 0,
        }
    }

    /// The encoding read in.
    pub(crate) fn encoding(&self) -> &'static Encoding {
        self.decoder.encoding
    }

    /// The file's header, once read.
    pub(crate) fn header(&self) -> Option<&[String]> {
        self.rows
            .columns
            .as_ref()
            .map(|columns| &columns.header[..])
    }

    /// The columns of the batches, once the header is read.
    pub(crate) fn schema(&self) -> Option<SchemaRef> {
        (self.rows.columns.as_ref()).map(|columns| columns.schema.clone())
    }

    /// The longest row read so far, in bytes of text.
    pub(crate) fn longest_row(&self) -> usize {
        self.rows.longest
    }

    /// The batches completed so far.
    pub(crate) fn take_batches(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.rows.full)
    }

    /// Reads the next slice of the file; false once the file has ended (its last rows are
    /// then a batch).
    pub(crate) async fn advance(&mut self) -> Result<bool> {
        let name = &self.name;
        if self.read == self.chunk.len() {
            match self.chunks.next().await {
                Some(chunk) => {
                    self.chunk = chunk.map_err(exdep_store::Error::from)?;
                    self.read = 0;
                    if self.first_chunk {
                        check_not_compressed(name, &self.inflater, &self.chunk)?;
                        self.first_chunk = false;
                    }
                }
                None => return self.finish().map(|()| false),
            }
        }
        let rest = self.chunk.len() - self.read;
        let length = match self.inflater {
            Inflater::Plain => rest,
            _ => rest.min(INFLATE_SLICE_BYTES),
        };
        let slice = self.chunk.slice(self.read..self.read + length);
        self.read += length;
        self.take_text(&slice, false)?;
        Ok(true)
    }

    /// Inflates, decodes and parses `slice`, the file's last bytes when `end`.
    fn take_text(&mut self, slice: &[u8], end: bool) -> Result<()> {
        let name = &self.name;
        (self.inflater)
            .inflate(slice, end, &mut self.plain)
            .map_err(|e| Error::Decompress {
                file: name.clone(),
                message: e.to_string(),
            })?;
        self.compressed_bytes += slice.len() as u64;
        self.plain_bytes += self.plain.len() as u64;
        // Checked as the file inflates, so that a decompression bomb stops after its first
        // few megabytes; a small file may inflate freely up to 1 MiB.
        if !matches!(self.inflater, Inflater::Plain)
            && self.plain_bytes
                > (1 << 20).max(
                    self.compressed_bytes
                        .saturating_mul(self.max_compression_ratio),
                )
        {
            return Err(Error::Decompress {
                file: name.clone(),
                message: format!(
                    "it inflates to more than {} times its compressed size \
                     (max-compression-ratio); export records do not compress that well, so it \
                     is refused as a decompression bomb",
                    self.max_compression_ratio
                ),
            });
        }
        let decoded = self.decoder.decode(&self.plain, end, &mut self.text);
        self.plain.clear();
        // Each record goes straight from the parser's buffers into the columns.
        let (rows, mut refused) = (&mut self.rows, None);
        (self.parser).push(
            self.text.as_bytes(),
            end && decoded.is_ok(),
            &mut |record| {
                if refused.is_none() {
                    refused = rows.push(record).err();
                }
            },
        );
        self.text.clear();
        if let Err(byte) = decoded {
            return Err(Error::Decode {
                file: name.clone(),
                line: self.parser.current_line(),
                byte,
                encoding: self.decoder.name(),
            });
        }
        refused.map_or(Ok(()), Err)
    }

    /// Ends the file: the inflater and decoder finish, and the last rows become a batch.
    fn finish(&mut self) -> Result<()> {
        self.take_text(&[], true)?;
        if let Some(columns) = self.rows.columns.as_mut()
            && columns.rows > 0
        {
            let batch = columns.take_batch()?;
            self.rows.full.push(batch);
        }
        Ok(())
    }
}

/// The schema the engine reads a staging copy written with `written` in: text as string
/// views, which the Parquet reader makes without copying each value into one buffer, and
/// which the plans compare and cast faster. (A stream's batches are read as they are made:
/// a string view of a short value is slower to build than its plain string.)
fn read_schema(written: &Schema) -> SchemaRef {
    let fields: Vec<Field> = (written.fields().iter())
        .map(|field| match field.data_type() {
            DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Drops the staging file before any batch went to it: a file that fails is never read.
async fn abandon(out: &mut Option<BufWriter>, staging: &Location) -> Result<()> {
    match out.as_mut() {
        Some(out) => out.abort().await.map_err(|e| staging_error(staging, e)),
        None => Ok(()),
    }
}

/// The staging copy `staging` could not be written: its I/O, or the Arrow or Parquet
/// writing, failed with `e`.
fn staging_error(staging: &Location, e: impl std::fmt::Display) -> Error {
    Error::Staging {
        location: staging.to_string(),
        message: e.to_string(),
    }
}

/// The writer of a staging copy. Read once, soon after, and deleted: not compressed (LZ4
/// took a tenth of a CSV run's time), no statistics or dictionaries (nothing filters on
/// them), a row group per batch written (so a reader holds one batch, bounded in bytes, at
/// a time).
fn staged_writer(
    out: BufWriter,
    schema: &SchemaRef,
    staging: &Location,
) -> Result<AsyncArrowWriter<BufWriter>> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false)
        .build();
    AsyncArrowWriter::try_new(out, schema.clone(), Some(properties))
        .map_err(|e| staging_error(staging, e))
}

/// Inflates a compressed text file, told from its name (`.gz`, `.zst`).
enum Inflater {
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
}

impl Inflater {
    fn for_name(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".gz") {
            Self::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Vec::new())))
        } else if name.ends_with(".zst") {
            let decoder = zstd::stream::write::Decoder::new(Vec::new())
                .expect("a zstd decoder needs no more than memory");
            Self::Zstd(Box::new(decoder))
        } else {
            Self::Plain
        }
    }

    /// Appends the plain bytes of `bytes` to `plain`; `end` when they are the file's last.
    fn inflate(&mut self, bytes: &[u8], end: bool, plain: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Self::Plain => plain.extend_from_slice(bytes),
            Self::Gzip(decoder) => {
                decoder.write_all(bytes)?;
                if end {
                    decoder.try_finish()?;
                }
                plain.append(decoder.get_mut());
            }
            Self::Zstd(decoder) => {
                decoder.write_all(bytes)?;
                if end {
                    decoder.flush()?;
                }
                plain.append(decoder.get_mut());
            }
        }
        Ok(())
    }
}

/// A file whose name promises text but whose first bytes are a compressed stream or an
/// archive is a file-level error: read as text, it would be one endless bad line.
fn check_not_compressed(file: &str, inflater: &Inflater, first: &[u8]) -> Result<()> {
    if !matches!(inflater, Inflater::Plain) {
        return Ok(());
    }
    let found = [
        (&b"\x1f\x8b"[..], "gzip-compressed", "name it `.gz`"),
        (
            &b"\x28\xb5\x2f\xfd"[..],
            "zstd-compressed",
            "name it `.zst`",
        ),
        (&b"PK\x03\x04"[..], "a zip archive", "unzip it"),
    ]
    .into_iter()
    .find(|(magic, _, _)| first.starts_with(magic));
    match found {
        Some((_, what, fix)) => Err(Error::Compressed {
            file: file.to_string(),
            found: what,
            fix,
        }),
        None => Ok(()),
    }
}

/// The encoding a file is read in first: the config's (`encoding`), UTF-8 for `auto`.
pub(crate) fn first_encoding(chosen: TextEncoding) -> &'static Encoding {
    match chosen {
        TextEncoding::Gb18030 => GB18030,
        TextEncoding::Utf8 | TextEncoding::Auto => UTF_8,
    }
}

/// The name of an encoding exdep reads text in, as its reports give it.
pub(crate) fn encoding_name(encoding: &'static Encoding) -> &'static str {
    if encoding == GB18030 {
        "gb18030"
    } else {
        "utf-8"
    }
}

/// Decodes bytes in one encoding, stopping at the first byte that is not valid in it.
struct TextDecoder {
    encoding: &'static Encoding,
    decoder: Decoder,
    bytes_seen: u64,
}

impl TextDecoder {
    fn new(encoding: &'static Encoding) -> Self {
        Self {
            encoding,
            // The decoder removes a UTF-8 byte order mark.
            decoder: encoding.new_decoder_with_bom_removal(),
            bytes_seen: 0,
        }
    }

    fn name(&self) -> &'static str {
        encoding_name(self.encoding)
    }

    /// Appends the text of `bytes` to `text`; at a malformed sequence, the valid text before
    /// it is appended and the error is the offset in the file of the byte after it.
    fn decode(&mut self, bytes: &[u8], last: bool, text: &mut String) -> Result<(), u64> {
        let mut input = bytes;
        loop {
            text.reserve(input.len() * 3 + 16);
            let (result, read) = self
                .decoder
                .decode_to_string_without_replacement(input, text, last);
            input = &input[read..];
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(_, _) => {
                    return Err(self.bytes_seen + (bytes.len() - input.len()) as u64);
                }
            }
        }
        self.bytes_seen += bytes.len() as u64;
        Ok(())
    }
}

/// A text file's records as the staging columns: the columns, known once the header is
/// read, the rows not yet made a batch, and the batches not yet taken.
struct StagingRows {
    file: String,
    columns: Option<StagingColumns>,
    /// Full batches, taken after the piece of text that filled them is parsed.
    full: Vec<RecordBatch>,
    /// The header ends in a comma (an unnamed empty last column, as spreadsheets export):
    /// records may then end in one more, empty, field.
    trailing_empty_column: bool,
    /// The longest row, in bytes of text.
    longest: usize,
}

/// The staging file's columns: builders for the rows not yet made a batch.
struct StagingColumns {
    header: Vec<String>,
    schema: SchemaRef,
    line: Int64Builder,
    raw: StringBuilder,
    fields_ok: StringBuilder,
    fields: Vec<StringBuilder>,
    rows: usize,
    bytes: usize,
}

impl StagingColumns {
    fn new(header: Vec<String>) -> Self {
        let fields: Vec<Field> = [
            Field::new(LINE, DataType::Int64, false),
            // Null where the record's text is its fields joined by commas (see
            // [`raw_text_sql`]).
            Field::new(RAW, DataType::Utf8, true),
            Field::new(FIELDS_OK, DataType::Utf8, false),
        ]
        .into_iter()
        .chain(
            header
                .iter()
                .map(|name| Field::new(name, DataType::Utf8, true)),
        )
        .collect();
        let schema = Arc::new(Schema::new(fields));
        Self {
            fields: header.iter().map(|_| StringBuilder::new()).collect(),
            header,
            schema,
            line: Int64Builder::new(),
            raw: StringBuilder::new(),
            fields_ok: StringBuilder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends a row: its raw text (none when its fields joined by commas are that text),
    /// and `fields` (as many as the header's) or none, every field then null.
    fn append<'f>(
        &mut self,
        line: u64,
        raw: Option<&str>,
        fields_ok: &str,
        fields: Option<impl Iterator<Item = &'f str>>,
    ) -> usize {
        self.line.append_value(line as i64);
        self.raw.append_option(raw);
        self.fields_ok.append_value(fields_ok);
        let mut bytes = raw.map_or(0, str::len) + 16;
        match fields {
            Some(fields) => {
                for (builder, field) in self.fields.iter_mut().zip(fields) {
                    // An empty field is null, as a CSV reader makes it.
                    if field.is_empty() {
                        builder.append_null();
                    } else {
                        builder.append_value(field);
                        bytes += field.len() + 1;
                    }
                }
            }
            None => self.fields.iter_mut().for_each(StringBuilder::append_null),
        }
        self.rows += 1;
        self.bytes += bytes;
        bytes
    }

    /// Whether the rows since the last batch make a batch.
    fn is_full(&self) -> bool {
        self.rows >= STAGED_BATCH_ROWS || self.bytes >= crate::BATCH_BYTES
    }

    /// The rows appended since the last batch, as one batch.
    fn take_batch(&mut self) -> Result<RecordBatch> {
        // The next batch starts with room for as many rows (and bytes) as this one: a
        // builder that finishes is left empty, and growing it again row by row copies its
        // rows over and over.
        let rows = self.rows;
        let text = |builder: &mut StringBuilder| {
            let bytes = builder.values_slice().len();
            let next = StringBuilder::with_capacity(rows, bytes);
            Arc::new(std::mem::replace(builder, next).finish()) as ArrayRef
        };
        let line = std::mem::replace(&mut self.line, Int64Builder::with_capacity(rows)).finish();
        let columns: Vec<ArrayRef> = [Arc::new(line) as ArrayRef, text(&mut self.raw)]
            .into_iter()
            .chain(std::iter::once(text(&mut self.fields_ok)))
            .chain(self.fields.iter_mut().map(text))
            .collect();
        (self.rows, self.bytes) = (0, 0);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl StagingRows {
    fn new(file: String) -> Self {
        Self {
            file,
            columns: None,
            full: Vec::new(),
            trailing_empty_column: false,
            longest: 0,
        }
    }

    /// Takes one record: the header, or a row (a batch when the rows fill one).
    fn push(&mut self, record: RecordView) -> Result<()> {
        let Some(columns) = self.columns.as_mut() else {
            return self.push_header(record);
        };
        let RecordView { line, text, fields } = record;
        let bytes = match fields {
            None => columns.append(line, Some(text), TOO_LONG, None::<std::iter::Empty<&str>>),
            Some(_) if text.trim().is_empty() => return Ok(()),
            Some(fields) => {
                let names = columns.header.len();
                // The empty field a trailing comma of the header allows is dropped.
                let count = if self.trailing_empty_column
                    && fields.len() == names + 1
                    && fields.last().is_some_and(|f| f.trim().is_empty())
                {
                    names
                } else {
                    fields.len()
                };
                if count == names {
                    // Most records are their fields joined by commas: their text is then
                    // not kept twice.
                    let joined = fields.len() == names
                        && text.len() <= RAW_KEPT_BYTES
                        && (fields.are_split_text() || !text.contains('"'));
                    let raw = (!joined).then(|| kept_raw(text));
                    columns.append(line, raw, "1", Some(fields.iter().take(count)))
                } else {
                    // A record of the wrong shape keeps its raw text but no fields: it is
                    // rejected whole.
                    let raw = Some(kept_raw(text));
                    columns.append(line, raw, "0", None::<std::iter::Empty<&str>>)
                }
            }
        };
        self.longest = self.longest.max(bytes);
        if columns.is_full() {
            self.full.push(columns.take_batch()?);
        }
        Ok(())
    }

    fn push_header(&mut self, record: RecordView) -> Result<()> {
        let header_error = |message: &str| Error::Header {
            file: self.file.to_string(),
            message: message.to_string(),
        };
        let fields = (record.fields)
            .ok_or_else(|| header_error("the header line is longer than max-line-bytes"))?;
        let mut names: Vec<String> = fields.iter().map(|n| n.trim().to_string()).collect();
        if names.len() == 1 && names[0].is_empty() {
            // Blank-looking lines before the header are skipped, as blank lines are after it.
            return Ok(());
        }
        if names.len() > 1 && names.last().is_some_and(String::is_empty) {
            names.pop();
            self.trailing_empty_column = true;
        }
        check_header(&self.file, &names)?;
        self.columns = Some(StagingColumns::new(names));
        Ok(())
    }
}

/// The raw text of a staged record as SQL over the staging table `t` of `columns` (its own
/// three, then the header's): `__raw`, or where that is null the fields joined by commas
/// (an empty field is null).
pub(crate) fn raw_text_sql<'h>(columns: impl Iterator<Item = &'h str>) -> String {
    let fields: Vec<String> = (columns.skip(STAGING_OWN_COLUMNS))
        .map(input_column)
        .collect();
    format!(
        "coalesce({}, concat({}))",
        input_column(RAW),
        fields.join(", ',', ")
    )
}

/// The start of a record's raw text that is kept (see [`RAW_KEPT_BYTES`]).
fn kept_raw(text: &str) -> &str {
    let mut end = text.len().min(RAW_KEPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn check_header(file: &str, names: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::Header {
                file: file.to_string(),
                message: format!("column {} has no name", i + 1),
            });
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(Error::Header {
                file: file.to_string(),
                message: format!("column `{name}` appears twice"),
            });
        }
    }
    Ok(())
}

/// A record as the parser completes it, borrowed from the parser's buffers: the line it
/// starts on, its text (line breaks inside quotes turned into spaces) and its fields, or no
/// fields when it was longer than the cap (its text is then the start of it). A text
/// input's records pass through here one by one, with no copy made of them.
#[derive(Debug, Clone, Copy)]
struct RecordView<'a> {
    line: u64,
    text: &'a str,
    fields: Option<FieldList<'a>>,
}

/// A record's fields: their text, where each ends, and the bytes between one and the next
/// (none in csv-core's output, where they are back to back; the comma in a record's own
/// text).
#[derive(Debug, Clone, Copy)]
struct FieldList<'a> {
    text: &'a str,
    ends: &'a [usize],
    gap: usize,
}

impl<'a> FieldList<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let (text, ends, gap) = (self.text, self.ends, self.gap);
        let starts = std::iter::once(0).chain(ends.iter().map(move |end| end + gap));
        starts.zip(ends).map(move |(start, &end)| &text[start..end])
    }

    fn last(&self) -> Option<&'a str> {
        self.iter().last()
    }

    /// The fields are their record's text split at its commas: joined by commas, they are
    /// that text.
    fn are_split_text(&self) -> bool {
        self.gap == 1
    }
}

/// A record of its own: one the parser makes outside its buffers (a line read alone, see
/// [`RecordParser::split_or_cut`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    line: u64,
    text: String,
    fields: Option<Fields>,
}

impl Record {
    fn view(&self) -> RecordView<'_> {
        RecordView {
            line: self.line,
            text: &self.text,
            fields: self.fields.as_ref().map(Fields::view),
        }
    }
}

/// A record's fields held: their text back to back, and where each ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fields {
    text: String,
    ends: Vec<usize>,
}

impl Fields {
    /// Makes these the fields csv-core wrote to `bytes`, the one before `ends[i]` ending
    /// there, in the buffers they have.
    fn fill(&mut self, bytes: &[u8], ends: &[usize]) {
        self.text.clear();
        self.ends.clear();
        // Bytes that are not UTF-8 become replacement characters, field by field.
        let mut start = 0;
        for &end in ends {
            self.text
                .push_str(&String::from_utf8_lossy(&bytes[start..end]));
            self.ends.push(self.text.len());
            start = end;
        }
    }

    fn view(&self) -> FieldList<'_> {
        FieldList {
            text: &self.text,
            ends: &self.ends,
            gap: 0,
        }
    }
}

/// Counts line breaks (LF, CRLF or a lone CR) across the pieces of a stream: a CRLF split
/// between two pieces is one break.
#[derive(Debug, Clone, Copy, Default)]
struct BreakCounter {
    after_cr: bool,
}

impl BreakCounter {
    fn count(&mut self, bytes: &[u8]) -> u64 {
        let mut breaks = 0;
        let mut rest = bytes;
        while let Some(at) = memchr::memchr2(b'\n', b'\r', rest) {
            if at > 0 {
                self.after_cr = false;
            }
            match rest[at] {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' => breaks += 1,
                _ => {
                    breaks += 1;
                    self.after_cr = true;
                }
            }
            rest = &rest[at + 1..];
        }
        if !rest.is_empty() {
            self.after_cr = false;
        }
        breaks
    }
}

fn is_break(byte: &u8) -> bool {
    matches!(byte, b'\n' | b'\r')
}

/// Appends a record's text to `out` with each line break inside its quotes (LF, CRLF or a
/// lone CR) as one space, so that its raw text is one line.
fn push_breaks_as_spaces(out: &mut String, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    if text.contains(['\r', '\n']) {
        out.push_str(&text.replace("\r\n", " ").replace(['\r', '\n'], " "));
    } else {
        out.push_str(&text);
    }
}

/// A CSV reader that takes a byte order mark as text. The decoder removes a file's own; a
/// fresh or reset `csv-core` reader would drop one opening the next record it reads, which
/// would make a record's fields depend on where the parser last started over.
fn csv_reader() -> csv_core::Reader {
    let mut reader = csv_core::Reader::new();
    // Any first read disarms the mark's removal; with no room for output this one reads
    // nothing and leaves the reader where it was.
    let (result, read, ..) = reader.read_record(b" ", &mut [], &mut []);
    debug_assert!(matches!(result, csv_core::ReadRecordResult::OutputFull) && read == 0);
    reader
}

/// The fields of one line read on its own, where quotes cannot join it to the next, in one
/// buffer.
fn line_field_parts(line: &[u8]) -> Fields {
    let mut reader = csv_reader();
    // A line has no more field bytes than bytes, and no more fields than bytes plus one.
    let (mut output, mut ends) = (vec![0; line.len()], vec![0; line.len() + 1]);
    let (mut input, mut written, mut ended) = (line, 0, 0);
    loop {
        let (result, read, out, end) =
            reader.read_record(input, &mut output[written..], &mut ends[ended..]);
        input = &input[read..];
        (written, ended) = (written + out, ended + end);
        match result {
            csv_core::ReadRecordResult::InputEmpty if !input.is_empty() => continue,
            csv_core::ReadRecordResult::InputEmpty => input = &[],
            csv_core::ReadRecordResult::Record
            | csv_core::ReadRecordResult::End
            | csv_core::ReadRecordResult::OutputFull
            | csv_core::ReadRecordResult::OutputEndsFull => break,
        }
    }
    let mut fields = Fields::default();
    fields.fill(&output[..written], &ends[..ended]);
    fields
}

/// The record of a line longer than the cap: its start, and no fields.
fn too_long(line: u64, content: &[u8]) -> Record {
    let mut end = TOO_LONG_PREFIX_BYTES.min(content.len());
    // Cut before a character, not inside one.
    while end > 0 && end < content.len() && (content[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    Record {
        line,
        text: String::from_utf8_lossy(&content[..end]).into_owned(),
        fields: None,
    }
}

/// Splits UTF-8 text into numbered CSV records with `csv-core`, keeping each record's raw
/// text and holding at most `max_line_bytes` of any record.
struct RecordParser {
    reader: csv_core::Reader,
    max_line_bytes: usize,
    /// The bytes of the record being read, as consumed (never starting with a line break).
    raw: Vec<u8>,
    /// csv-core's output: the fields' bytes back to back, and where each ends.
    fields: Vec<u8>,
    ends: Vec<usize>,
    fields_len: usize,
    ends_len: usize,
    /// Line breaks consumed before `raw`.
    line: u64,
    breaks: BreakCounter,
    /// Inside a line already rejected as too long: the rest of it is dropped.
    skipping: bool,
    /// A record's text with its line breaks turned into spaces, when it has any.
    spaced: String,
    /// A record's fields made UTF-8, when csv-core's bytes are not.
    lossy: Fields,
    /// Where the fields of a record read without csv-core end (see [`Self::take_line`]).
    line_ends: Vec<usize>,
}

impl RecordParser {
    fn new(max_line_bytes: usize) -> Self {
        Self {
            // Any of CR, LF and CRLF ends a record.
            reader: csv_reader(),
            max_line_bytes,
            raw: Vec::new(),
            fields: vec![0; 1024],
            ends: vec![0; 64],
            fields_len: 0,
            ends_len: 0,
            line: 0,
            breaks: BreakCounter::default(),
            skipping: false,
            spaced: String::new(),
            lossy: Fields::default(),
            line_ends: Vec::new(),
        }
    }

    /// The line the parser is on: where a problem in the bytes not yet given is reported.
    fn current_line(&self) -> u64 {
        self.line + self.breaks.clone().count(&self.raw) + 1
    }

    /// Parses `input`, handing each record it completes to `sink` (every record left when
    /// `last`).
    fn push<S: FnMut(RecordView<'_>)>(&mut self, mut input: &[u8], last: bool, sink: &mut S) {
        use csv_core::ReadRecordResult;
        loop {
            if self.skipping {
                let Some(at) = input.iter().position(is_break) else {
                    self.breaks.count(input);
                    return;
                };
                self.line += self.breaks.count(&input[..=at]);
                input = &input[at + 1..];
                self.skipping = false;
                self.reader = csv_reader();
            }
            if self.raw.is_empty() {
                // Blank lines between records are no records (csv-core skips them too).
                let blank = input.iter().take_while(|b| is_break(b)).count();
                self.line += self.breaks.count(&input[..blank]);
                input = &input[blank..];
                if let Some(taken) = self.take_line(input, sink) {
                    input = &input[taken..];
                    continue;
                }
            }
            let (result, read, written, ended) = self.reader.read_record(
                input,
                &mut self.fields[self.fields_len..],
                &mut self.ends[self.ends_len..],
            );
            let (consumed, rest) = input.split_at(read);
            input = rest;
            self.fields_len += written;
            self.ends_len += ended;
            if matches!(result, ReadRecordResult::Record)
                && self.raw.is_empty()
                && consumed.len() <= self.max_line_bytes
                && !(last && input.is_empty())
            {
                // The whole record is in this piece: its text is read where it is.
                self.take_record(consumed, sink);
                continue;
            }
            self.raw.extend_from_slice(consumed);
            match result {
                ReadRecordResult::OutputFull => {
                    let grown = self.fields.len() * 2;
                    self.fields.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    let at_end = last && input.is_empty();
                    if self.raw.len() > self.max_line_bytes || (at_end && self.quote_is_open()) {
                        self.split_or_cut(at_end, sink);
                    } else {
                        let raw = std::mem::take(&mut self.raw);
                        self.take_record(&raw, sink);
                        self.raw = raw;
                        self.raw.clear();
                    }
                }
                // With no input left, the next call tells csv-core the file has ended: it
                // completes the last record, if any, and then reports the end.
                ReadRecordResult::InputEmpty if last => {}
                ReadRecordResult::InputEmpty => {
                    if self.raw.len() > self.max_line_bytes {
                        self.split_or_cut(false, sink);
                    }
                    return;
                }
                ReadRecordResult::End => return,
            }
        }
    }

    /// Whether the record in `raw` ends inside a quoted field, counting its quotes: an
    /// escaped quote (`""`) counts twice.
    fn quote_is_open(&self) -> bool {
        self.raw.iter().filter(|&&b| b == b'"').count() % 2 == 1
    }

    /// Hands `sink` the record csv-core has just completed, from its text `raw` and its
    /// fields.
    fn take_record<S: FnMut(RecordView<'_>)>(&mut self, raw: &[u8], sink: &mut S) {
        let line = self.line + 1;
        let end = raw.len() - raw.iter().rev().take_while(|b| is_break(b)).count();
        let (inside, ending) = raw.split_at(end);
        let inner_breaks = self.breaks.count(inside);
        self.line += inner_breaks + self.breaks.count(ending);
        let text = match std::str::from_utf8(inside) {
            Ok(text) if inner_breaks == 0 => text,
            _ => {
                self.spaced.clear();
                push_breaks_as_spaces(&mut self.spaced, inside);
                self.spaced.as_str()
            }
        };
        // csv-core splits UTF-8 text at ASCII bytes, so its fields are UTF-8.
        let (bytes, ends) = (&self.fields[..self.fields_len], &self.ends[..self.ends_len]);
        let fields = match std::str::from_utf8(bytes) {
            Ok(text) => FieldList { text, ends, gap: 0 },
            Err(_) => {
                self.lossy.fill(bytes, ends);
                self.lossy.view()
            }
        };
        sink(RecordView {
            line,
            text,
            fields: Some(fields),
        });
        self.fields_len = 0;
        self.ends_len = 0;
    }

    /// Most records are one line with no quote: their fields are the text between its
    /// commas, as csv-core would make them, read where they are with no copy and no second
    /// check of their UTF-8. Takes such a record at the start of `input` (a record's start)
    /// with its line break, and returns the bytes it took; `None` for any other record, left
    /// to csv-core.
    fn take_line<S: FnMut(RecordView<'_>)>(&mut self, input: &[u8], sink: &mut S) -> Option<usize> {
        // One look at each byte finds the commas, a quote and the line's end. A line near
        // the cap is left to csv-core, which decides with its line break.
        self.line_ends.clear();
        let mut end = None;
        let scanned = input.len().min(self.max_line_bytes.saturating_sub(1));
        for (at, byte) in input[..scanned].iter().enumerate() {
            match byte {
                b',' => self.line_ends.push(at),
                b'\n' | b'\r' => {
                    end = Some(at);
                    break;
                }
                b'"' => return None,
                _ => {}
            }
        }
        let end = end?;
        let text = std::str::from_utf8(&input[..end]).ok()?;
        self.line_ends.push(end);
        let number = self.line + 1;
        // Counted with the line's own bytes, so that a CR just before the line does not
        // make its LF the second half of a CRLF.
        self.line += self.breaks.count(&input[..=end]);
        sink(RecordView {
            line: number,
            text,
            fields: Some(FieldList {
                text,
                ends: &self.line_ends,
                gap: 1,
            }),
        });
        Some(end + 1)
    }

    /// `raw` is over the cap, or ends the file inside quotes: when quotes joined several
    /// lines into it, each line becomes a record of its own (the incomplete last one is read
    /// again, unless the file has ended); a single line over the cap is rejected and the
    /// rest of it dropped.
    fn split_or_cut<S: FnMut(RecordView<'_>)>(&mut self, at_end: bool, sink: &mut S) {
        let raw = std::mem::take(&mut self.raw);
        self.fields_len = 0;
        self.ends_len = 0;
        self.reader = csv_reader();
        let mut rest = &raw[..];
        while let Some(at) = rest.iter().position(is_break) {
            let (line, after) = rest.split_at(at + 1);
            let number = self.line + 1;
            self.line += self.breaks.count(line);
            rest = after;
            if at > 0 {
                sink(self.line_record(number, &line[..at]).view());
            }
        }
        if rest.is_empty() {
            return;
        }
        if at_end || rest.len() > self.max_line_bytes {
            sink(self.line_record(self.line + 1, rest).view());
            self.breaks.count(rest);
            self.skipping = !at_end;
        } else {
            let rest = rest.to_vec();
            self.push(&rest, false, sink);
        }
    }

    /// One line read on its own.
    fn line_record(&self, line: u64, content: &[u8]) -> Record {
        if content.len() > self.max_line_bytes {
            return too_long(line, content);
        }
        Record {
            line,
            text: String::from_utf8_lossy(content).into_owned(),
            fields: Some(line_field_parts(content)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CAP: usize = 1 << 20;

    /// A record the parser handed on, kept.
    fn kept(record: RecordView) -> Record {
        Record {
            line: record.line,
            text: record.text.to_string(),
            fields: record.fields.map(|fields| {
                let mut held = Fields::default();
                for field in fields.iter() {
                    held.text.push_str(field);
                    held.ends.push(held.text.len());
                }
                held
            }),
        }
    }

    fn parse(chunks: &[&[u8]], cap: usize) -> Vec<Record> {
        let mut parser = RecordParser::new(cap);
        let mut records = Vec::new();
        for chunk in chunks {
            parser.push(chunk, false, &mut |record| records.push(kept(record)));
        }
        parser.push(b"", true, &mut |record| records.push(kept(record)));
        records
    }

    fn lines(chunks: &[&[u8]]) -> Vec<(u64, String)> {
        parse(chunks, CAP)
            .into_iter()
            .map(|r| (r.line, r.text))
            .collect()
    }

    fn plain(records: &[(u64, &str)]) -> Vec<(u64, String)> {
        records
            .iter()
            .map(|(line, text)| (*line, text.to_string()))
            .collect()
    }

    #[test]
    fn fields_follow_csv_quoting() {
        let records = parse(&[b"a,\"b,c\",d\n\"x \"\"y\"\"\",\n"], CAP);
        assert_eq!(fields_of(&records[0]).unwrap(), ["a", "b,c", "d"]);
        assert_eq!(fields_of(&records[1]).unwrap(), ["x \"y\"", ""]);
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks() {
        assert_eq!(
            lines(&[b"a,b\r\n1,", b"2\n3,4"]),
            plain(&[(1, "a,b"), (2, "1,2"), (3, "3,4")])
        );
    }

    #[test]
    fn cr_lf_and_crlf_all_end_records_even_split_across_chunks() {
        assert_eq!(
            lines(&[b"a,b\r1,2\r", b"\n3,4\n5,6\r", b"7,8\r"]),
            plain(&[(1, "a,b"), (2, "1,2"), (3, "3,4"), (4, "5,6"), (5, "7,8")])
        );
    }

    #[test]
    fn blank_lines_are_no_records_but_count_as_lines() {
        assert_eq!(
            lines(&[b"a,b\n\n1,2\r\n\r\n\n3,4\n\n"]),
            plain(&[(1, "a,b"), (3, "1,2"), (6, "3,4")])
        );
    }

    #[test]
    fn a_quoted_field_may_hold_line_breaks() {
        let records = parse(&[b"a,b\n\"x\ny\",2\n3,\"p\r\nq\"\n4,5\n"], CAP);
        let found: Vec<_> = records.iter().map(|r| (r.line, r.text.as_str())).collect();
        assert_eq!(
            found,
            [(1, "a,b"), (2, "\"x y\",2"), (4, "3,\"p q\""), (6, "4,5")]
        );
        assert_eq!(fields_of(&records[1]).unwrap(), ["x\ny", "2"]);
    }

    #[test]
    fn an_open_quote_at_the_end_ends_at_its_line() {
        assert_eq!(
            lines(&[b"a,b\n\"open,1\n2,3\n4,5"]),
            plain(&[(1, "a,b"), (2, "\"open,1"), (3, "2,3"), (4, "4,5")])
        );
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_and_the_rest_dropped() {
        let long = vec![b'x'; 100];
        let found = parse(&[b"a,b\n", &long, b"tail\n1,2\n"], 64);
        let summary: Vec<_> = found.iter().map(|r| (r.line, r.fields.is_some())).collect();
        assert_eq!(summary, [(1, true), (2, false), (3, true)]);
        assert_eq!(found[2].text, "1,2");
    }

    #[test]
    fn an_open_quote_joins_lines_only_up_to_the_cap() {
        let mut input = b"a,b\n\"open,1\n".to_vec();
        for line in 0..20 {
            input.extend_from_slice(format!("{line},2\n").as_bytes());
        }
        let found = parse(&[&input], 64);
        assert_eq!(found.len(), 22, "{found:?}");
        assert_eq!((found[1].line, found[1].text.as_str()), (2, "\"open,1"));
        assert_eq!(fields_of(&found[21]).unwrap(), ["19", "2"]);
        assert!(found.iter().all(|r| r.fields.is_some()));
    }

    /// Text the parser finds hardest: separators, quotes, spaces, byte order marks and every
    /// kind of line break, with any other character now and then.
    fn csv_text(quotes: bool) -> impl Strategy<Value = Vec<u8>> {
        let special: &[char] = if quotes {
            &['a', '1', ',', '"', '\r', '\n', ' ', '\u{feff}']
        } else {
            &['a', '1', ',', '\r', '\n', ' ', '\u{feff}']
        };
        let character = prop_oneof![
            6 => prop::sample::select(special),
            1 => any::<char>().prop_filter("no quote", move |c| quotes || *c != '"'),
        ];
        prop::collection::vec(character, 0..400)
            .prop_map(|chars| chars.into_iter().collect::<String>().into_bytes())
    }

    /// `bytes` cut at `cuts` (each taken modulo its length).
    fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        at.dedup();
        at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
    }

    fn fields_of(record: &Record) -> Option<Vec<String>> {
        let fields = record.fields.as_ref()?;
        Some(fields.view().iter().map(str::to_string).collect())
    }

    fn summary(records: &[Record]) -> Vec<(u64, String, Option<Vec<String>>)> {
        records
            .iter()
            .map(|r| (r.line, r.text.clone(), fields_of(r)))
            .collect()
    }

    /// The lines of `bytes` ended by CRLF, CR or LF, numbered from 1, without the empty ones.
    fn numbered_lines(bytes: &[u8]) -> Vec<(u64, String)> {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        text.replace("\r\n", "\n")
            .split(['\r', '\n'])
            .enumerate()
            .filter(|(_, line)| !line.is_empty())
            .map(|(index, line)| (index as u64 + 1, line.to_string()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Any text, in any pieces, with any cap: no panic, never more than the cap held
        /// between pieces, records in line order, none longer than the cap.
        #[test]
        fn any_text_parses_within_the_cap(
            bytes in csv_text(true),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            cap in 8usize..300,
        ) {
            let mut parser = RecordParser::new(cap);
            let mut records = Vec::new();
            for piece in pieces(&bytes, &cuts) {
                parser.push(piece, false, &mut |record| records.push(kept(record)));
                prop_assert!(parser.raw.len() <= cap, "{} bytes held", parser.raw.len());
            }
            parser.push(b"", true, &mut |record| records.push(kept(record)));
            let lines = BreakCounter::default().count(&bytes) + 1;
            let mut previous = 0;
            for record in &records {
                prop_assert!(previous < record.line && record.line <= lines, "{record:?}");
                prop_assert!(record.text.len() <= cap.max(TOO_LONG_PREFIX_BYTES));
                previous = record.line;
            }
        }

        /// Without quotes, each non-empty line is a record under its own number, its fields
        /// split at the commas, however the text is cut.
        #[test]
        fn unquoted_text_is_one_record_per_line(
            bytes in csv_text(false),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let records = parse(&pieces(&bytes, &cuts), CAP);
            let expected: Vec<_> = numbered_lines(&bytes)
                .into_iter()
                .map(|(line, text)| {
                    let fields = text.split(',').map(str::to_string).collect();
                    (line, text, Some(fields))
                })
                .collect();
            prop_assert_eq!(summary(&records), expected);
        }

        /// Where the pieces end changes nothing (a CRLF or a quoted field may be cut in two).
        #[test]
        fn records_do_not_depend_on_where_pieces_end(
            bytes in csv_text(true),
            cuts in prop::collection::vec(any::<usize>(), 1..8),
        ) {
            prop_assert_eq!(
                summary(&parse(&pieces(&bytes, &cuts), CAP)),
                summary(&parse(&[&bytes], CAP))
            );
        }
    }

    fn decode_all(bytes: &[u8], encoding: &'static Encoding) -> Result<String, u64> {
        let mut decoder = TextDecoder::new(encoding);
        let mut text = String::new();
        decoder.decode(bytes, true, &mut text).map(|()| text)
    }

    #[test]
    fn gbk_decodes_and_invalid_utf8_is_located() {
        let (bytes, _, _) = GB18030.encode("数据年月,人民币\n202101,5\n");
        assert_eq!(
            decode_all(&bytes, GB18030).unwrap(),
            "数据年月,人民币\n202101,5\n"
        );
        assert_eq!(decode_all(b"a,b\n1,2\n\xff,3\n", UTF_8), Err(9));
        assert_eq!(decode_all(b"\xEF\xBB\xBFa,b\n", UTF_8).unwrap(), "a,b\n");
    }

    #[test]
    fn compressed_text_inflates_and_unnamed_compression_is_refused() {
        let text = b"a,b\n1,2\n".repeat(5000);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&text).unwrap();
        let gzip = gzip.finish().unwrap();
        let zstd = zstd::encode_all(&text[..], 3).unwrap();
        for (name, bytes) in [("f.csv.gz", &gzip), ("F.CSV.ZST", &zstd)] {
            let mut inflater = Inflater::for_name(name);
            let mut plain = Vec::new();
            let slices: Vec<_> = bytes.chunks(100).collect();
            for (i, slice) in slices.iter().enumerate() {
                inflater
                    .inflate(slice, i + 1 == slices.len(), &mut plain)
                    .unwrap();
            }
            assert_eq!(plain, text, "{name}");
            let error = check_not_compressed("f.csv", &Inflater::for_name("f.csv"), bytes);
            assert!(matches!(error, Err(Error::Compressed { .. })), "{name}");
        }
        let mut truncated = Inflater::for_name("f.gz");
        let mut plain = Vec::new();
        assert!(
            truncated
                .inflate(&gzip[..gzip.len() / 2], true, &mut plain)
                .is_err()
        );
    }
}
