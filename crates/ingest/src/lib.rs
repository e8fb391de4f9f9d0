//! Ingestion: reads export records from their inputs, checks every row, and writes the rows
//! that pass as canonical Parquet to the warehouse's raw layer, `raw/year=YYYY/`.
//!
//! Nothing is dropped without a count: each file's [`FileReport`] says how many records were
//! read, how many were accepted, and how many were rejected for which reason, with the sum
//! of their values. A problem with a whole file (missing column, empty file, undecodable
//! bytes) stops the run with an error that names the file.
//!
//! ```no_run
//! # async fn demo(config: exdep_core::Config) -> exdep_ingest::Result<()> {
//! let ctx = exdep_core::new_session();
//! let report = exdep_ingest::ingest(&ctx, &config.inputs, &config.years, &config.warehouse).await?;
//! println!("{} files, {} records read", report.files.len(), report.read());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod canonical;
mod error;

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::arrow::array::{Array, AsArray, RecordBatch};
use exdep_core::arrow::compute::{cast, filter_record_batch, is_null};
use exdep_core::arrow::datatypes::{DataType, Float64Type};
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::object_store::ObjectMeta;
use exdep_core::schema::{RAW_FILE, YEAR};
use exdep_core::{Input, InputFormat, Location, PartitionedWriter, Tally, TallyByReason};
use futures::StreamExt;
use serde::Serialize;
use tracing::{Instrument, info, info_span};

pub use canonical::COLUMNS as CANONICAL_COLUMNS;
pub use error::{Error, Result};

/// What ingestion did with one input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file's URL; raw records carry it in their `source` column.
    pub file: String,
    /// The format it was read as.
    pub format: InputFormat,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records read (data lines for CSV, rows for Parquet).
    pub read: u64,
    /// Records written to the raw layer.
    pub accepted: Tally,
    /// Records rejected, by reason code.
    pub rejected: TallyByReason,
    /// Accepted records by year.
    pub accepted_by_year: BTreeMap<i32, u64>,
}

/// What ingestion did with all inputs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// One entry per input file, in input order.
    pub files: Vec<FileReport>,
}

impl IngestReport {
    /// Records read over all files.
    pub fn read(&self) -> u64 {
        self.files.iter().map(|f| f.read).sum()
    }
}

/// Reads every input, writes accepted records to `WAREHOUSE/raw/year=YYYY/` for the run's
/// years (replacing what was there) and reports what happened to each record.
pub async fn ingest(
    ctx: &SessionContext,
    inputs: &[Input],
    years: &BTreeSet<i32>,
    warehouse: &Location,
) -> Result<IngestReport> {
    // Look at every file before touching the warehouse, so a bad input fails the run while
    // the previous raw layer is still intact.
    let mut files = Vec::new();
    for input in inputs {
        let listed = input
            .location
            .list_files(ctx, input.format.file_extension())
            .await?;
        if listed.is_empty() {
            return Err(Error::NoFiles {
                input: input.location.as_written().to_string(),
                extension: input.format.file_extension().to_string(),
            });
        }
        files.extend(
            listed
                .into_iter()
                .map(|(file, meta)| (file, meta, input.format)),
        );
    }
    let mut registered = Vec::with_capacity(files.len());
    for (index, (file, meta, format)) in files.iter().enumerate() {
        let table = format!("ingest_input_{index}");
        let texts = canonical::register(ctx, &table, file, meta, *format).await?;
        registered.push((table, texts));
    }

    let raw = warehouse.join("raw");
    for year in years {
        raw.join(&format!("{YEAR}={year}")).delete_all(ctx).await?;
    }
    let mut report = IngestReport::default();
    for (index, ((file, meta, format), (table, texts))) in files.iter().zip(&registered).enumerate()
    {
        let span = info_span!("ingest", file = %file, format = format.name());
        let file_report = ingest_file(ctx, index, file, meta, *format, table, texts, years, &raw)
            .instrument(span)
            .await?;
        ctx.deregister_table(table.as_str())?;
        report.files.push(file_report);
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn ingest_file(
    ctx: &SessionContext,
    index: usize,
    file: &Location,
    meta: &ObjectMeta,
    format: InputFormat,
    table: &str,
    texts: &[String],
    years: &BTreeSet<i32>,
    raw: &Location,
) -> Result<FileReport> {
    let source = file.to_string();
    let sql = canonical::validation_sql(table, texts, &source, years);
    let frame = ctx.sql(&sql).await?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|e| canonical::read_error(file, e))?;
    let mut writer =
        PartitionedWriter::new(ctx, raw, &[YEAR], &format!("part-{index:05}.parquet"))?
            .with_file_schema(RAW_FILE.clone());
    let mut report = FileReport {
        file: source,
        format,
        bytes: meta.size,
        read: 0,
        accepted: Tally::default(),
        rejected: TallyByReason::new(),
        accepted_by_year: BTreeMap::new(),
    };
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| canonical::read_error(file, e))?;
        let accepted = tally_batch(&batch, &mut report)?;
        writer.write(&accepted).await?;
    }
    let written = writer.finish().await?;
    for file in &written {
        let year = file.partition[0]
            .1
            .parse()
            .expect("year partitions are integers");
        report.accepted_by_year.insert(year, file.rows);
    }
    info!(
        read = report.read,
        accepted = report.accepted.records,
        rejected = report.read - report.accepted.records,
        "ingested"
    );
    Ok(report)
}

/// Counts a validated batch into the report and returns its accepted rows, without the
/// `reason` column.
fn tally_batch(batch: &RecordBatch, report: &mut FileReport) -> Result<RecordBatch> {
    let reason_index = batch.schema().index_of("reason")?;
    let reasons = cast(batch.column(reason_index), &DataType::Utf8)?;
    let reasons = reasons.as_string::<i32>();
    let values = batch
        .column_by_name("value")
        .expect("the validation projection has a value column")
        .as_primitive::<Float64Type>();
    report.read += batch.num_rows() as u64;
    for row in 0..batch.num_rows() {
        let value = if values.is_null(row) {
            0.0
        } else {
            values.value(row)
        };
        let tally = if reasons.is_null(row) {
            &mut report.accepted
        } else {
            report
                .rejected
                .entry(reasons.value(row).to_string())
                .or_default()
        };
        tally.records += 1;
        tally.value += value;
    }
    let accepted = filter_record_batch(batch, &is_null(reasons)?)?;
    let keep: Vec<usize> = (0..accepted.num_columns())
        .filter(|&i| i != reason_index)
        .collect();
    Ok(accepted.project(&keep)?)
}
