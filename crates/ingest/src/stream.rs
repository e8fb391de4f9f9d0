//! Text inputs of an embedded run are read as a stream: the plan over a file pulls its
//! records from the file's reader ([`TextReader`]) as it needs them, with no staging copy
//! written and read back (that copy, and its Parquet encoding and decoding, took half of a
//! CSV run's time). A cluster's executors cannot reach this process's reader, so a cluster
//! run still stages its text inputs (see `normalize`).
//!
//! A file is read once per plan over it, each time from its first byte. What the reader
//! found wrong stops the plan and is kept here ([`TextSource::after_failure`]), so the run
//! reports it as the input problem it is, with its file, line and byte. With
//! `encoding = "auto"` the file is read as UTF-8; at the first byte that is not, the plan
//! stops, and it is run again over the whole file read as GB18030 (see [`Reading::run`]):
//! no plan has written anything before its input ends, so nothing of the first read stays.
//!
//! A plan's operators gather rows into batches of the engine's batch size, so a file's rows
//! must be narrow enough for that many to fit in [`BATCH_BYTES`]. A staging copy knows its
//! longest row before any plan runs; a stream learns it as it goes. A file is read in the
//! engine's batches while its rows are that narrow, and the first row that is not stops the
//! plan, which runs again in batches small enough for rows eight times as long (at most as
//! long as `max-line-bytes` allows): a file with a long line costs one more read (three at
//! most, however long its lines), and memory stays bounded.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use encoding_rs::{Encoding, GB18030};
use exdep_core::arrow::datatypes::SchemaRef;
use exdep_core::object_store::{ObjectMeta, ObjectStore};
use exdep_core::{Config, Location, TextEncoding};
use exdep_engine::datafusion::catalog::streaming::StreamingTable;
use exdep_engine::datafusion::error::DataFusionError;
use exdep_engine::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use exdep_engine::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use exdep_engine::datafusion::physical_plan::streaming::PartitionStream;
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::Objects;
use futures::TryStreamExt;
use tracing::info;

use crate::BATCH_BYTES;
use crate::error::{Error, Result};
use crate::normalize::{STAGED_BATCH_ROWS, TextOptions, TextReader, encoding_name, first_encoding};

/// A text input read as a stream: where it is, how it is read, and how its reads went.
pub(crate) struct TextSource {
    store: Arc<dyn ObjectStore>,
    name: String,
    meta: ObjectMeta,
    options: TextOptions,
    header: Vec<String>,
    schema: SchemaRef,
    state: Mutex<ReadState>,
}

/// How a stream's reads went.
struct ReadState {
    /// The encoding the next read decodes.
    encoding: &'static Encoding,
    /// `auto`, and read as UTF-8 so far: a byte that is not UTF-8 switches to GB18030.
    may_switch: bool,
    /// The most rows a batch of the plans over the file holds.
    batch_rows: usize,
    /// The last read switched encoding or batch size: the plan is to run again.
    read_again: bool,
    /// Where an `auto` file stopped being UTF-8: what is reported if GB18030 fails too.
    not_utf8: Option<Error>,
    /// What stopped the last read, when the reader stopped it.
    failure: Option<Error>,
}

impl fmt::Debug for TextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextSource")
            .field("file", &self.name)
            .finish()
    }
}

impl TextSource {
    /// Opens `file` (`meta`) for reading as a stream: reads its start until its header, so
    /// that the file's columns are known and a file with no header, a compressed one under
    /// a text name, or undecodable text before the header fails here.
    pub(crate) async fn open(
        ctx: &SessionContext,
        file: &Location,
        meta: &ObjectMeta,
        options: TextOptions,
    ) -> Result<Arc<Self>> {
        let (name, store) = (file.to_string(), file.store(ctx)?);
        if meta.size == 0 {
            return Err(Error::EmptyFile { file: name });
        }
        let first = first_encoding(options.encoding);
        let opened = read_header(&store, &name, meta, first, options).await;
        let (reader, may_switch) = match opened {
            Err(not_utf8 @ Error::Decode { .. }) if options.encoding == TextEncoding::Auto => {
                info!(file = %file, "{not_utf8}: reading the whole file as GB18030");
                let reader = read_header(&store, &name, meta, GB18030, options)
                    .await
                    .map_err(|error| match error {
                        Error::Decode { .. } => not_utf8,
                        other => other,
                    })?;
                (reader, false)
            }
            opened => (opened?, options.encoding == TextEncoding::Auto),
        };
        let schema = reader.schema().expect("the header is read");
        let batch_rows = if fits(reader.longest_row(), STAGED_BATCH_ROWS) {
            STAGED_BATCH_ROWS
        } else {
            narrow_batch_rows(reader.longest_row(), options)
        };
        Ok(Arc::new(Self {
            header: reader.header().expect("the header is read").to_vec(),
            schema,
            state: Mutex::new(ReadState {
                encoding: reader.encoding(),
                may_switch,
                batch_rows,
                read_again: false,
                not_utf8: None,
                failure: None,
            }),
            store,
            name,
            meta: meta.clone(),
            options,
        }))
    }

    /// The file's header.
    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// The columns of its records, as the engine reads them.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The encoding it is read in (the last read's).
    pub(crate) fn encoding(&self) -> &'static str {
        encoding_name(self.state().encoding)
    }

    /// The most rows a batch of a plan over the file may hold (see the module's docs).
    pub(crate) fn batch_rows(&self) -> usize {
        self.state().batch_rows
    }

    /// The file as a table of one partition, for `ctx` to read.
    pub(crate) fn table(self: &Arc<Self>) -> Result<StreamingTable> {
        let partition: Arc<dyn PartitionStream> = Arc::new(TextPartition(self.clone()));
        Ok(StreamingTable::try_new(self.schema(), vec![partition])?)
    }

    fn state(&self) -> MutexGuard<'_, ReadState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps what stopped a read, and tells the plan reading it that the read failed.
    fn stopped(&self, stop: Stop) -> DataFusionError {
        let error = match stop {
            Stop::WideRows(longest) => {
                let rows = narrow_batch_rows(longest, self.options);
                info!(
                    file = %self.name,
                    "a record is too long for batches of {} rows: reading it again in batches \
                     of {rows}",
                    self.batch_rows()
                );
                let mut state = self.state();
                (state.batch_rows, state.read_again) = (rows, true);
                return DataFusionError::External(
                    format!("{}: reading again in smaller batches", self.name).into(),
                );
            }
            Stop::Failed(error) => error,
        };
        let message = format!("reading {} stopped: {error}", self.name);
        let mut state = self.state();
        match error {
            Error::Decode { .. } if state.may_switch => {
                info!(file = %self.name, "{error}: reading the whole file as GB18030");
                state.encoding = GB18030;
                (state.may_switch, state.read_again) = (false, true);
                state.not_utf8 = Some(error);
            }
            // A file that is neither is reported where it stops being UTF-8, the encoding
            // it was read in the longest.
            Error::Decode { .. } if state.not_utf8.is_some() => {
                state.failure = state.not_utf8.take();
            }
            error => state.failure = Some(error),
        }
        DataFusionError::External(message.into())
    }

    /// After a plan over the file failed: `None` when its reader did not stop it; `Ok` when
    /// the plan is to run again (the reader met a byte that is not UTF-8 in an `auto` file,
    /// now read as GB18030, or a row too long for the plan's batches); the reader's error
    /// otherwise.
    fn after_failure(&self) -> Option<Result<()>> {
        let mut state = self.state();
        if std::mem::take(&mut state.read_again) {
            return Some(Ok(()));
        }
        state.failure.take().map(Err)
    }

    /// Checks that a read in another encoding than the first found the same header.
    fn check_header(&self, reader: &TextReader) -> Result<()> {
        match reader.header() {
            Some(header) if header != self.header => Err(Error::Header {
                file: self.name.clone(),
                message: format!(
                    "the header read as {} is not the one read first; the file mixes encodings",
                    encoding_name(reader.encoding())
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Reads `meta`'s object as `encoding` until its header is read.
async fn read_header(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    meta: &ObjectMeta,
    encoding: &'static Encoding,
    options: TextOptions,
) -> Result<TextReader> {
    let mut reader = TextReader::open(store.clone(), name.to_string(), meta, encoding, options);
    loop {
        let more = reader.advance().await?;
        if reader.header().is_some() {
            return Ok(reader);
        }
        if !more {
            return Err(Error::EmptyFile {
                file: name.to_string(),
            });
        }
    }
}

/// Whether `rows` rows of `row_bytes` each fit in a batch.
fn fits(row_bytes: usize, rows: usize) -> bool {
    row_bytes.saturating_mul(rows) <= BATCH_BYTES
}

/// The rows of a batch for rows eight times as long as `longest`, at most as long as
/// `max-line-bytes` allows.
fn narrow_batch_rows(longest: usize, options: TextOptions) -> usize {
    let row_bytes = longest.saturating_mul(8).min(options.max_line_bytes).max(1);
    (BATCH_BYTES / row_bytes).clamp(1, STAGED_BATCH_ROWS)
}

/// Why a read stopped.
enum Stop {
    /// The reader failed.
    Failed(Error),
    /// A row is too long for the plan's batches: the longest row read, in bytes.
    WideRows(usize),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Self::Failed(error)
    }
}

/// The one partition of a text input's table.
#[derive(Debug)]
struct TextPartition(Arc<TextSource>);

impl PartitionStream for TextPartition {
    fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let source = self.0.clone();
        let (encoding, batch_rows) = {
            let state = source.state();
            (state.encoding, state.batch_rows)
        };
        let reader = TextReader::open(
            source.store.clone(),
            source.name.clone(),
            &source.meta,
            encoding,
            source.options,
        );
        let checked = source.clone();
        let batches = futures::stream::try_unfold(
            (reader, VecDeque::new(), true),
            move |(mut reader, mut ready, mut more)| {
                let source = checked.clone();
                async move {
                    loop {
                        if let Some(batch) = ready.pop_front() {
                            return Ok(Some((batch, (reader, ready, more))));
                        }
                        if !more {
                            return Ok(None);
                        }
                        more = reader.advance().await?;
                        source.check_header(&reader)?;
                        if !fits(reader.longest_row(), batch_rows) {
                            return Err(Stop::WideRows(reader.longest_row()));
                        }
                        ready.extend(reader.take_batches());
                    }
                }
            },
        );
        let stopped = source.clone();
        Box::pin(RecordBatchStreamAdapter::new(
            source.schema(),
            batches.map_err(move |error| stopped.stopped(error)),
        ))
    }
}

/// The reads of one input file's records by the run's plans.
#[derive(Debug, Clone)]
pub struct Reading {
    /// A streamed text input's source.
    streamed: Option<Arc<TextSource>>,
    /// The rows of a batch otherwise.
    batch_rows: usize,
}

impl Reading {
    /// The reads of a streamed input, or of another whose batches hold `batch_rows`.
    pub(crate) fn of(streamed: Option<Arc<TextSource>>, batch_rows: usize) -> Self {
        Self {
            streamed,
            batch_rows,
        }
    }

    /// Runs `pass`, a plan over the file's records in a session derived from `ctx` (see
    /// [`exdep_engine::with_partitions`]) that plans in `partitions` partitions and in
    /// batches of at most the rows the file's reading allows, until it holds: once more when
    /// an `auto` file read as UTF-8 turned out not to be (it is then read as GB18030), or
    /// when a row is too long for the batches (they are then made smaller, see the module's
    /// docs). A failure of the file's reading is returned as the input problem it is, not
    /// as the plan's.
    pub async fn run<T, E, P, F, Fut>(
        &self,
        ctx: &SessionContext,
        config: &Config,
        partitions: usize,
        mut pass: F,
    ) -> std::result::Result<T, E>
    where
        F: FnMut(SessionContext) -> Fut,
        Fut: Future<Output = std::result::Result<T, P>>,
        E: From<P> + From<Error>,
    {
        loop {
            let batch_rows =
                (self.streamed.as_ref()).map_or(self.batch_rows, |source| source.batch_rows());
            let bounded = exdep_engine::with_partitions(ctx, config, partitions, batch_rows);
            let failed = match pass(bounded).await {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            match (self.streamed.as_ref()).and_then(|source| source.after_failure()) {
                Some(Ok(())) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => return Err(failed.into()),
            }
        }
    }
}
