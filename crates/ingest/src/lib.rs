//! Ingestion: reads export records from their sources — exdep's canonical CSV or Parquet,
//! China Customs query exports, UN Comtrade and CEPII BACI — checks every row, and writes
//! the rows that pass as canonical Parquet to the warehouse's raw layer, `raw/year=YYYY/`.
//!
//! Nothing is dropped without a count: each file's [`FileReport`] says how many records were
//! read, accepted, rejected (by reason) and excluded by a rule, with the sum of their values;
//! every rejected row is kept in `rejects/year=YYYY/` with its file, line and text. A problem
//! with a whole file (missing column, empty file, undecodable bytes) stops the run with an
//! error that names the file, before the warehouse is touched.
//!
//! ```no_run
//! # async fn demo(config: exdep_core::Config) -> exdep_ingest::Result<()> {
//! let ctx = exdep_core::new_session();
//! let files = exdep_ingest::list_inputs(&ctx, &config).await?;
//! let report = exdep_ingest::ingest(&ctx, &config, &config.warehouse, &files, &[]).await?;
//! println!("{} files, {} records read", report.files.len(), report.read());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod formats;
mod normalize;
mod tables;

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::arrow::array::{Array, AsArray, RecordBatch};
use exdep_core::arrow::compute::{and, cast, filter_record_batch, is_not_null, is_null};
use exdep_core::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema};
use exdep_core::datafusion::prelude::{
    CsvReadOptions, DataFrame, ParquetReadOptions, SessionContext,
};
use exdep_core::object_store::ObjectMeta;
use exdep_core::schema::{RAW_FILE, REJECTS_FILE, UNKNOWN_YEAR, YEAR};
use exdep_core::{Config, Input, InputFormat, Location, PartitionedWriter, Tally, TallyByReason};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info, info_span};

pub use error::{Error, Result};
pub use formats::CANONICAL_COLUMNS;

/// What ingestion did with one input file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileReport {
    /// The file's URL; raw records carry it in their `source` column.
    pub file: String,
    /// The format it was read as (told from the header when configured as `auto`).
    pub format: InputFormat,
    /// The text encoding it was decoded from, for text formats.
    pub encoding: Option<String>,
    /// The column the origin (province or reporter) was taken from, where the format has a
    /// choice: customs exports give the firm's registered location (注册地编码) or the goods'
    /// domestic origin (境内货源地编码), whose totals differ.
    pub origin_column: Option<String>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its entity tag, where the store gives one: with the size and modification time, the
    /// file's fingerprint.
    pub e_tag: Option<String>,
    /// When it was last modified (RFC 3339).
    pub last_modified: String,
    /// Records read (data lines for text, rows for Parquet; blank lines are not records).
    pub read: u64,
    /// Records written to the raw layer.
    pub accepted: Tally,
    /// Records rejected, by reason code.
    pub rejected: TallyByReason,
    /// Records left out by a rule of the source format, by rule code.
    pub excluded: TallyByReason,
    /// Accepted records by year.
    pub accepted_by_year: BTreeMap<i32, u64>,
    /// Every year its records name, in the run's years or not: when the run's years change,
    /// a file that names an added or removed year is read again.
    pub years_seen: BTreeSet<i32>,
    /// Rejected records filed under year 0 in the quarantine: no usable year, or one
    /// outside the run.
    pub rejected_without_year: u64,
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

/// Lists the files of every configured input, in input order; an input that names no file
/// is an error.
pub async fn list_inputs(ctx: &SessionContext, config: &Config) -> Result<Vec<InputFile>> {
    let mut files = Vec::new();
    for (input_index, input) in config.inputs.iter().enumerate() {
        let listed = input
            .location
            .list_files(ctx, input.format.file_extension())
            .await?;
        if listed.is_empty() {
            return Err(Error::NoFiles {
                input: input.location.as_written().to_string(),
                extension: match input.format {
                    InputFormat::Auto => ".csv or .parquet".to_string(),
                    format => format.file_extension().to_string(),
                },
            });
        }
        files.extend(listed.into_iter().map(|(location, meta)| InputFile {
            input_index,
            location,
            meta,
        }));
    }
    Ok(files)
}

/// The name of the objects a file's records take in each `raw/` and `rejects/` partition:
/// named after the file's URL, so reading one file again replaces exactly its own objects.
pub fn part_name(file: &str) -> String {
    let digest = exdep_core::hex_sha256(file.as_bytes());
    format!("part-{}.parquet", &digest[..16])
}

/// One input file, looked at and registered, ready to be read.
struct Prepared {
    file: Location,
    meta: ObjectMeta,
    format: InputFormat,
    encoding: Option<String>,
    origin_column: Option<String>,
    /// The validation plan, made once while looking at the file.
    frame: DataFrame,
    tables: Vec<String>,
}

/// Reads `files` (from [`list_inputs`]), writes their accepted records to
/// `WAREHOUSE/raw/year=YYYY/` and rejected ones to `WAREHOUSE/rejects/year=YYYY/`, each file
/// to its own object per partition (see [`part_name`]), replacing what an earlier read of
/// the file left; removes what the files in `gone` left; and reports what happened to each
/// record read. Other files' objects are untouched.
pub async fn ingest(
    ctx: &SessionContext,
    config: &Config,
    warehouse: &Location,
    files: &[InputFile],
    gone: &[String],
) -> Result<IngestReport> {
    let staging = warehouse.join("_staging");
    staging.delete_all(ctx).await?;
    let result = ingest_inputs(ctx, config, warehouse, &staging, files, gone).await;
    // The staging copies are scratch, whether the run went well or not.
    staging.delete_all(ctx).await?;
    result
}

async fn ingest_inputs(
    ctx: &SessionContext,
    config: &Config,
    warehouse: &Location,
    staging: &Location,
    files: &[InputFile],
    gone: &[String],
) -> Result<IngestReport> {
    // Look at every file before touching the warehouse, so a bad input fails the run while
    // the previous raw layer is still intact.
    let mut prepared = Vec::new();
    let mut customs_registered = false;
    for (index, file) in files.iter().enumerate() {
        let ready = prepare(ctx, config, file, index, staging, &mut customs_registered).await?;
        prepared.push(ready);
    }

    let raw = warehouse.join("raw");
    let rejects = warehouse.join("rejects");
    let replaced: BTreeSet<String> = files
        .iter()
        .map(|f| f.location.to_string())
        .chain(gone.iter().cloned())
        .map(|file| part_name(&file))
        .collect();
    for layer in [&raw, &rejects] {
        layer
            .delete_where(ctx, |path| {
                path.filename().is_some_and(|name| replaced.contains(name))
            })
            .await?;
    }
    let mut report = IngestReport::default();
    for file in &prepared {
        let span = info_span!("ingest", file = %file.file, format = file.format.name());
        let file_report = read_file(ctx, file, &raw, &rejects)
            .instrument(span)
            .await?;
        for table in &file.tables {
            ctx.deregister_table(table.as_str())?;
        }
        report.files.push(file_report);
    }
    // Its Parquet copy lives in the staging folder, which goes when ingest ends.
    if customs_registered {
        ctx.deregister_table(formats::CUSTOMS_PARTNERS)?;
    }
    Ok(report)
}

async fn prepare(
    ctx: &SessionContext,
    config: &Config,
    listed: &InputFile,
    index: usize,
    staging: &Location,
    customs_registered: &mut bool,
) -> Result<Prepared> {
    let (input_index, file, meta) = (listed.input_index, listed.location.clone(), &listed.meta);
    let input: &Input = &config.inputs[input_index];
    let table = format!("ingest_input_{index}");
    let parquet = match input.format {
        InputFormat::CanonicalParquet => true,
        InputFormat::Auto => meta
            .location
            .as_ref()
            .to_ascii_lowercase()
            .ends_with(".parquet"),
        _ => false,
    };
    let read_error = |e| Error::Read {
        file: file.to_string(),
        source: Box::new(e),
    };
    let mut tables = vec![table.clone()];
    let (format, columns, encoding) = if parquet {
        if meta.size == 0 {
            return Err(Error::EmptyFile {
                file: file.to_string(),
            });
        }
        ctx.register_parquet(
            &table,
            file.url().as_str(),
            ParquetReadOptions::default().file_extension(""),
        )
        .await
        .map_err(read_error)?;
        let schema = ctx.table_provider(table.as_str()).await?.schema();
        let columns = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        (InputFormat::CanonicalParquet, columns, None)
    } else {
        let staged = staging.join(&format!("{index:05}.csv"));
        let normalized = normalize::normalize(ctx, &file, meta, input.encoding, &staged).await?;
        let format = match input.format {
            InputFormat::Auto => {
                let format =
                    formats::infer(&normalized.header).ok_or_else(|| Error::UnknownFormat {
                        file: file.to_string(),
                        found: normalized.header.join(", "),
                    })?;
                info!(file = %file, format = format.name(), "format told from the header");
                format
            }
            format => format,
        };
        let names: Vec<String> = [normalize::LINE, normalize::RAW, normalize::FIELDS_OK]
            .iter()
            .map(|s| s.to_string())
            .chain(normalized.header.iter().cloned())
            .collect();
        let schema = Schema::new(
            names
                .iter()
                .map(|name| Field::new(name, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        let options = CsvReadOptions::new()
            .has_header(true)
            .schema(&schema)
            .file_extension(".csv");
        ctx.register_csv(&table, normalized.staging.url().as_str(), options)
            .await
            .map_err(read_error)?;
        let columns = names.into_iter().map(|n| (n, DataType::Utf8)).collect();
        (format, columns, Some(normalized.encoding.to_string()))
    };
    let codes = match format {
        InputFormat::CustomsCsv if !*customs_registered => {
            tables::register_customs_partners(
                ctx,
                &config.tables.customs_partner_codes,
                &staging.join("tables"),
            )
            .await?;
            *customs_registered = true;
            None
        }
        InputFormat::BaciCsv => {
            let location =
                input
                    .country_codes
                    .as_ref()
                    .ok_or_else(|| exdep_core::Error::ConfigValue {
                        key: format!("inputs[{input_index}].country-codes"),
                        message: format!("{file} is a BACI file; give BACI's country_codes file"),
                    })?;
            let name = format!("baci_country_codes_{index}");
            tables::register_baci_codes(ctx, &name, location, &staging.join("tables")).await?;
            tables.push(name.clone());
            Some(format!(
                "(SELECT country_code AS code, country_iso3 AS iso3 FROM {name})"
            ))
        }
        _ => None,
    };
    let columns = formats::Columns {
        file: file.to_string(),
        columns,
    };
    let projection = formats::projection(format, &table, &columns, !parquet, codes.as_deref())?;
    let sql = formats::validation_sql(&projection.select, &file.to_string(), &config.years);
    // Plan now, so a mistake in a file's shape surfaces before any data moves.
    let frame = ctx.sql(&sql).await.map_err(read_error)?;
    Ok(Prepared {
        file,
        meta: meta.clone(),
        format,
        encoding,
        origin_column: projection.origin_column,
        frame,
        tables,
    })
}

async fn read_file(
    ctx: &SessionContext,
    prepared: &Prepared,
    raw: &Location,
    rejects: &Location,
) -> Result<FileReport> {
    let file = &prepared.file;
    let frame = prepared.frame.clone();
    let read_error = |e| Error::Read {
        file: file.to_string(),
        source: Box::new(e),
    };
    let mut stream = frame.execute_stream().await.map_err(read_error)?;
    let part = part_name(&file.to_string());
    let mut accepted_writer =
        PartitionedWriter::new(ctx, raw, &[YEAR], &part)?.with_file_schema(RAW_FILE.clone());
    let mut rejected_writer = PartitionedWriter::new(ctx, rejects, &[YEAR], &part)?
        .with_file_schema(REJECTS_FILE.clone());
    let mut report = FileReport {
        file: file.to_string(),
        format: prepared.format,
        encoding: prepared.encoding.clone(),
        origin_column: prepared.origin_column.clone(),
        bytes: prepared.meta.size,
        e_tag: prepared.meta.e_tag.clone(),
        last_modified: prepared.meta.last_modified.to_rfc3339(),
        read: 0,
        accepted: Tally::default(),
        rejected: TallyByReason::new(),
        excluded: TallyByReason::new(),
        accepted_by_year: BTreeMap::new(),
        years_seen: BTreeSet::new(),
        rejected_without_year: 0,
    };
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(read_error)?;
        let (accepted, rejected) = tally_batch(&batch, &mut report)?;
        accepted_writer.write(&accepted).await?;
        rejected_writer.write(&rejected).await?;
    }
    for written in accepted_writer.finish().await? {
        let year = written.partition[0]
            .1
            .parse()
            .expect("year partitions are integers");
        report.accepted_by_year.insert(year, written.rows);
    }
    rejected_writer.finish().await?;
    info!(
        read = report.read,
        accepted = report.accepted.records,
        rejected = exdep_core::total(&report.rejected).records,
        excluded = exdep_core::total(&report.excluded).records,
        "ingested"
    );
    Ok(report)
}

fn column_of<'a>(batch: &'a RecordBatch, name: &str) -> &'a exdep_core::arrow::array::ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("the validation projection has a `{name}` column"))
}

/// Counts a validated batch into the report; returns its accepted rows and its rejected
/// rows (with the year a reject is filed under).
fn tally_batch(batch: &RecordBatch, report: &mut FileReport) -> Result<(RecordBatch, RecordBatch)> {
    let column = |name: &str| column_of(batch, name);
    let reasons = cast(column("reason"), &DataType::Utf8)?;
    let rules = cast(column("rule"), &DataType::Utf8)?;
    let (reasons, rules) = (reasons.as_string::<i32>(), rules.as_string::<i32>());
    let values = column("value").as_primitive::<Float64Type>();
    report.read += batch.num_rows() as u64;
    let years = column("year").as_primitive::<Int32Type>();
    report.years_seen.extend(years.iter().flatten());
    for row in 0..batch.num_rows() {
        let value = if values.is_null(row) {
            0.0
        } else {
            values.value(row)
        };
        let tally = if !rules.is_null(row) {
            report
                .excluded
                .entry(rules.value(row).to_string())
                .or_default()
        } else if !reasons.is_null(row) {
            report
                .rejected
                .entry(reasons.value(row).to_string())
                .or_default()
        } else {
            &mut report.accepted
        };
        tally.add(Tally { records: 1, value });
    }
    let accepted = filter_record_batch(batch, &and(&is_null(reasons)?, &is_null(rules)?)?)?;
    let rejected = filter_record_batch(batch, &is_not_null(reasons)?)?;
    // The quarantine's partition column is the reject's filing year (see `validation_sql`).
    let reject_years = cast(column_of(&rejected, "reject_year"), &DataType::Int32)?;
    report.rejected_without_year += reject_years
        .as_primitive::<Int32Type>()
        .iter()
        .filter(|year| *year == Some(UNKNOWN_YEAR))
        .count() as u64;
    let rejected = RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(vec![
            Field::new(YEAR, DataType::Int32, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("line", DataType::Int64, true),
            Field::new("reason", DataType::Utf8, false),
            Field::new("raw", DataType::Utf8, true),
        ])),
        vec![
            reject_years,
            cast(column_of(&rejected, "source"), &DataType::Utf8)?,
            cast(column_of(&rejected, "line"), &DataType::Int64)?,
            cast(column_of(&rejected, "reason"), &DataType::Utf8)?,
            cast(column_of(&rejected, "raw"), &DataType::Utf8)?,
        ],
    )?;
    Ok((accepted, rejected))
}
