//! The one Parquet writer: Hive-partitioned files under a table root, with exdep's
//! compression, statistics and row groups; and the run's scratch files, in Arrow IPC.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, Scalar, UInt32Array};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Schema, SchemaRef};
use arrow::row::{Row, RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use exdep_core::{DEFAULT_COMPRESSION, Location, parse_compression};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::objects::Objects;
use crate::statistics::FileStatistics;

/// Rows per Parquet row group: large enough for good compression and pruning statistics,
/// small enough that a writer's buffer stays in the tens of megabytes.
const ROW_GROUP_ROWS: usize = 512 * 1024;

/// The compression `ctx` is set to write Parquet with: its Parquet options, which a run sets
/// from the config's checked `parquet-compression`.
pub fn session_compression(ctx: &SessionContext) -> Compression {
    let name = ctx
        .copied_config()
        .options()
        .execution
        .parquet
        .compression
        .clone();
    parse_compression(name.as_deref().unwrap_or(DEFAULT_COMPRESSION))
        .unwrap_or(Compression::ZSTD(ZstdLevel::default()))
}

/// Parquet settings for every file exdep writes: the given compression, column statistics,
/// bounded row groups.
pub fn writer_properties(compression: Compression) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("exdep {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One Parquet file a [`PartitionedWriter`] produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WrittenFile {
    /// Hive partition values, in partition-column order.
    pub partition: Vec<(String, String)>,
    /// Where the file is.
    pub location: String,
    /// Rows in it.
    pub rows: u64,
    /// Its columns' bounds and null counts, from its footer; known to the run that wrote
    /// it (a Delta commit of its files records them), not kept in documents.
    #[serde(skip)]
    pub statistics: FileStatistics,
}

/// What was written for one table.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableReport {
    /// The table's name.
    pub name: String,
    /// Rows written.
    pub rows: u64,
    /// One file per partition, or per partition and value of the column that splits files
    /// (see [`PartitionedWriter::files_by`]).
    pub files: Vec<WrittenFile>,
}

/// Writes record batches into Hive-partitioned Parquet files (`col=value/.../FILE`) under a
/// table root. Partition columns are stored in the path, not in the files, as Spark, Trino,
/// DuckDB and Polars expect.
pub struct PartitionedWriter {
    ctx_store: Arc<dyn ObjectStore>,
    root: Location,
    partition_columns: Vec<String>,
    /// A column the files keep whose values split a partition's rows into files.
    file_column: Option<String>,
    file_name: String,
    file_schema: Option<SchemaRef>,
    compression: Compression,
    /// Whether columns' values are nearly all distinct (see [`Self::distinct_values`]).
    distinct_values: bool,
    writers: BTreeMap<Vec<String>, PartitionFile>,
    /// Rows come ordered by the partition columns (see [`Self::partitions_in_order`]).
    partitions_in_order: bool,
    /// Files the run reads back and removes (see [`Self::scratch`]).
    scratch: bool,
    /// Files already closed.
    written: Vec<WrittenFile>,
    /// The keys (partition values, then the file column's value) of the files closed.
    closed: BTreeSet<Vec<String>>,
}

/// How a partition's rows are encoded into its object.
enum Encoder {
    /// Parquet, for the warehouse and the output.
    Parquet(AsyncArrowWriter<BufWriter>),
    /// A scratch file (see [`PartitionedWriter::scratch`]): Arrow IPC, the engine's own
    /// layout, so writing copies the buffers and reading back decodes nothing. Each batch's
    /// bytes go to the object as soon as they are encoded.
    Scratch {
        object: BufWriter,
        encoder: arrow_ipc::writer::FileWriter<Vec<u8>>,
        /// The object's location, for errors.
        file: String,
    },
}

impl Encoder {
    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Encoder::Parquet(writer) => writer.write(batch).await?,
            Encoder::Scratch {
                object,
                encoder,
                file,
            } => {
                encoder.write(batch)?;
                let bytes = std::mem::take(encoder.get_mut());
                (object.write_all(&bytes).await).map_err(|source| Error::ScratchWrite {
                    file: file.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Finishes the object; a Parquet file's footer, from which its statistics are read.
    async fn close(self) -> Result<Option<parquet::file::metadata::ParquetMetaData>> {
        match self {
            Encoder::Parquet(writer) => Ok(Some(writer.close().await?)),
            Encoder::Scratch {
                mut object,
                mut encoder,
                file,
            } => {
                encoder.finish()?;
                let written = async {
                    object.write_all(encoder.get_ref()).await?;
                    object.shutdown().await
                };
                (written.await).map_err(|source| Error::ScratchWrite { file, source })?;
                Ok(None)
            }
        }
    }
}

struct PartitionFile {
    location: Location,
    writer: Encoder,
    schema: SchemaRef,
    rows: u64,
    /// The columns that hold a NaN (see [`FileStatistics::of`]).
    with_nan: BTreeSet<String>,
}

impl PartitionedWriter {
    /// A writer for the table at `root`, naming each partition's file `file_name`.
    pub fn new(
        ctx: &SessionContext,
        root: &Location,
        partition_columns: &[&str],
        file_name: &str,
    ) -> Result<Self> {
        Ok(Self {
            ctx_store: root.store(ctx)?,
            root: root.clone(),
            partition_columns: partition_columns.iter().map(|c| c.to_string()).collect(),
            file_column: None,
            file_name: file_name.to_string(),
            file_schema: None,
            compression: session_compression(ctx),
            distinct_values: false,
            writers: BTreeMap::new(),
            partitions_in_order: false,
            scratch: false,
            written: Vec::new(),
            closed: Default::default(),
        })
    }

    /// Declares that rows come ordered by the partition columns, so that a partition's file
    /// can be closed as soon as rows of another partition arrive, and one file is open at a
    /// time. Without it every partition's file stays open until [`Self::finish`].
    pub fn partitions_in_order(mut self) -> Self {
        self.partitions_in_order = true;
        self
    }

    /// Writes files that only the run reads, and removes: Arrow IPC files (name them
    /// `.arrow`), the engine's own layout, so writing them costs little more than copying
    /// their bytes. No statistics are taken.
    pub fn scratch(mut self) -> Self {
        self.scratch = true;
        self
    }

    /// Splits each partition's rows into one file per value of `column` (a column the files
    /// keep), named `STEM-VALUE.parquet` after the writer's file name: every file then holds
    /// one value, so readers that choose files by their statistics (a Delta table's) read
    /// only the files of the values a filter keeps. With [`Self::partitions_in_order`], rows
    /// come ordered by the partition columns and then by `column`.
    pub fn files_by(mut self, column: &str) -> Self {
        self.file_column = Some(column.to_string());
        self
    }

    /// Compresses the Parquet files with `compression` rather than the session's (the
    /// config's `parquet-compression`).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Writes files whose values are nearly all distinct (sums and the keys they are summed
    /// by): no dictionaries, which would cost CPU and save no bytes; every column split into
    /// byte streams (`BYTE_STREAM_SPLIT`: a value's first bytes in one stream, its second in
    /// the next, and so on), so that the high bytes, nearly all zero, come out as runs that
    /// compression shrinks at little cost; and decimal columns without statistics, which
    /// compare every 16-byte value as it is written, and which no reader of sums filters by.
    /// Byte streams take columns of fixed width only (integers, floats, decimals).
    pub fn distinct_values(mut self) -> Self {
        self.distinct_values = true;
        self
    }

    /// Casts every file's columns to `schema` (by name), so a layer's files always have the
    /// schema its readers declare, whatever string or integer types a plan produced.
    pub fn with_file_schema(mut self, schema: SchemaRef) -> Self {
        self.file_schema = Some(schema);
        self
    }

    /// Routes each row of `batch` to its partition's file.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let key_columns = (self.partition_columns.iter())
            .chain(&self.file_column)
            .map(|name| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| Error::MissingPartitionColumn {
                        root: self.root.to_string(),
                        column: name.clone(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows_by_key = rows_by_partition(&key_columns, batch.num_rows())?;
        let data_indices: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| {
                !self
                    .partition_columns
                    .contains(batch.schema().field(i).name())
            })
            .collect();
        let mut data = batch.project(&data_indices)?;
        if let Some(schema) = &self.file_schema {
            data = conform(&data, schema)?;
        }
        let last_row = data.num_rows() as u32 - 1;
        for (key, rows) in rows_by_key {
            // In order, only the last row's partition can have more rows to come.
            let complete = self.partitions_in_order && rows.last() != Some(&last_row);
            let part = if rows.len() == data.num_rows() {
                data.clone()
            } else {
                take_record_batch(&data, &UInt32Array::from(rows))?
            };
            let file = self.file_for(&key, data.schema())?;
            file.writer.write(&part).await?;
            file.rows += part.num_rows() as u64;
            file.with_nan.extend(columns_with_nan(&part));
            if complete {
                let file = self.writers.remove(&key).expect("written above");
                self.close(key, file).await?;
            }
        }
        Ok(())
    }

    async fn close(&mut self, key: Vec<String>, file: PartitionFile) -> Result<()> {
        let statistics = match file.writer.close().await? {
            Some(footer) => FileStatistics::of(&footer, &file.schema, &file.with_nan)?,
            None => FileStatistics::default(),
        };
        self.closed.insert(key.clone());
        self.written.push(WrittenFile {
            // The file column's value, last in the key, is not a partition's.
            partition: self.partition_columns.iter().cloned().zip(key).collect(),
            location: file.location.to_string(),
            rows: file.rows,
            statistics,
        });
        Ok(())
    }

    fn file_for(&mut self, key: &[String], schema: SchemaRef) -> Result<&mut PartitionFile> {
        if !self.writers.contains_key(key) {
            let mut segments = Vec::with_capacity(key.len());
            let columns = self.partition_columns.iter().chain(&self.file_column);
            for (column, value) in columns.zip(key) {
                if !is_safe_segment(value) {
                    return Err(Error::UnsafePartitionValue {
                        root: self.root.to_string(),
                        column: column.clone(),
                        value: value.clone(),
                    });
                }
                segments.push(format!("{column}={value}"));
            }
            // A new file would replace the closed one's rows.
            if self.closed.contains(key) {
                return Err(Error::PartitionOutOfOrder {
                    root: self.root.to_string(),
                    partition: segments.join("/"),
                });
            }
            let partition = key.len().min(self.partition_columns.len());
            let folder =
                (segments[..partition].iter()).fold(self.root.clone(), |folder, s| folder.join(s));
            let location = match key.get(partition) {
                Some(value) => {
                    let (stem, extension) =
                        (self.file_name.rsplit_once('.')).unwrap_or((&self.file_name, "parquet"));
                    folder.join(&format!("{stem}-{value}.{extension}"))
                }
                None => folder.join(&self.file_name),
            };
            let object = BufWriter::new(self.ctx_store.clone(), location.path()?);
            let schema = Arc::new(Schema::new(schema.fields().clone()));
            let writer = if self.scratch {
                // On the local file system a scratch file's bytes never leave the machine:
                // compressing them costs CPU for nothing (LZ4 frames took 0.3-0.5 s of user
                // CPU of a product run on the 20M set). In object storage they travel, and
                // LZ4 keeps them small.
                let compression = (location.url().scheme() != "file")
                    .then_some(arrow_ipc::CompressionType::LZ4_FRAME);
                let options = arrow_ipc::writer::IpcWriteOptions::default()
                    .try_with_compression(compression)?;
                let encoder = arrow_ipc::writer::FileWriter::try_new_with_options(
                    Vec::new(),
                    &schema,
                    options,
                )?;
                let file = location.to_string();
                Encoder::Scratch {
                    object,
                    encoder,
                    file,
                }
            } else {
                let mut properties = writer_properties(self.compression).into_builder();
                if self.distinct_values {
                    properties = properties
                        .set_dictionary_enabled(false)
                        .set_encoding(Encoding::BYTE_STREAM_SPLIT);
                    for field in schema.fields() {
                        if matches!(field.data_type(), DataType::Decimal128(..)) {
                            properties = properties.set_column_statistics_enabled(
                                ColumnPath::from(field.name().as_str()),
                                EnabledStatistics::None,
                            );
                        }
                    }
                }
                let properties = properties.build();
                Encoder::Parquet(AsyncArrowWriter::try_new(
                    object,
                    schema.clone(),
                    Some(properties),
                )?)
            };
            self.writers.insert(
                key.to_vec(),
                PartitionFile {
                    location,
                    writer,
                    schema,
                    rows: 0,
                    with_nan: BTreeSet::new(),
                },
            );
        }
        Ok(self.writers.get_mut(key).expect("inserted above"))
    }

    /// Writes a file of no rows, with the file schema (see [`Self::with_file_schema`]), in
    /// the partition `key` names, unless rows went there: readers that open a partition, or
    /// the whole table, find a file with the table's columns rather than nothing.
    pub async fn write_empty_partition(&mut self, key: &[String]) -> Result<()> {
        let schema = (self.file_schema.clone())
            .expect("a writer of empty partitions is given the file schema");
        let has_rows = |file_key: &Vec<String>| file_key.starts_with(key);
        if self.writers.keys().any(has_rows) || self.closed.iter().any(has_rows) {
            return Ok(());
        }
        self.file_for(key, schema)?;
        let file = self.writers.remove(key).expect("opened above");
        self.close(key.to_vec(), file).await
    }

    /// Closes every file and returns what was written, in partition order.
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        for (key, file) in std::mem::take(&mut self.writers) {
            self.close(key, file).await?;
        }
        (self.written)
            .sort_by(|a, b| (&a.partition, &a.location).cmp(&(&b.partition, &b.location)));
        Ok(self.written)
    }
}

/// The floating-point columns of `batch` that hold a NaN.
fn columns_with_nan(batch: &RecordBatch) -> impl Iterator<Item = String> + '_ {
    let schema = batch.schema_ref();
    (schema.fields().iter().zip(batch.columns()))
        .filter(|(_, column)| match column.data_type() {
            DataType::Float64 => {
                (column.as_primitive::<Float64Type>().values().iter()).any(|value| value.is_nan())
            }
            DataType::Float32 => {
                (column.as_primitive::<Float32Type>().values().iter()).any(|value| value.is_nan())
            }
            _ => false,
        })
        .map(|(field, _)| field.name().clone())
}

/// Casts the columns of `batch` named in `schema` to its types, in its order.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!(
                    "column `{}` is missing from the data",
                    field.name()
                ))
            })?;
            cast(column, field.data_type())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Partition values become path segments: only plain codes and numbers are allowed, so no
/// value can climb out of the table root or name a hidden file.
fn is_safe_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && !value.starts_with(['.', '_'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The rows of a batch by the partition their `key_columns` values (as text) name.
fn rows_by_partition(
    key_columns: &[&ArrayRef],
    rows: usize,
) -> Result<BTreeMap<Vec<String>, Vec<u32>>> {
    if key_columns.is_empty() {
        // An unpartitioned table without a file column: one file takes every row.
        return Ok(BTreeMap::from([(Vec::new(), (0..rows as u32).collect())]));
    }
    let options = FormatOptions::default();
    let formatters = key_columns
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let key_of = |row: usize| -> Vec<String> {
        (formatters.iter())
            .map(|formatter| formatter.value(row).to_string())
            .collect()
    };
    // Most batches hold one partition's rows (a file's records of one year): one
    // vectorised comparison per key column finds them.
    if key_columns.iter().all(|column| has_one_value(column)) {
        return Ok(BTreeMap::from([(key_of(0), (0..rows as u32).collect())]));
    }
    // Rows are grouped by their keys' bytes in the engine's row format, and only each
    // group's first row is formatted: the work per row is a hash, not a string.
    let sort_fields = (key_columns.iter())
        .map(|column| SortField::new(column.data_type().clone()))
        .collect();
    let converter = RowConverter::new(sort_fields)?;
    let columns: Vec<ArrayRef> = key_columns.iter().map(|column| (*column).clone()).collect();
    let keys = converter.convert_columns(&columns)?;
    let mut groups: HashMap<Row<'_>, Vec<u32>> = HashMap::new();
    for row in 0..rows {
        groups.entry(keys.row(row)).or_default().push(row as u32);
    }
    let mut rows_by_key: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for rows in groups.into_values() {
        let key = key_of(rows[0] as usize);
        // Two keys that differ in bytes but print alike (such as 0.0 and -0.0) share a
        // partition, their rows in their batch's order.
        let partition: &mut Vec<u32> = rows_by_key.entry(key).or_default();
        let merged = !partition.is_empty();
        partition.extend(rows);
        if merged {
            partition.sort_unstable();
        }
    }
    Ok(rows_by_key)
}

/// Whether every row of `column` holds its first row's value, none of them null. A column
/// the comparison kernel does not take reads as several values.
fn has_one_value(column: &ArrayRef) -> bool {
    if column.is_empty() {
        return false;
    }
    let first = Scalar::new(column.slice(0, 1));
    eq(column, &first).is_ok_and(|same| same.true_count() == column.len())
}

/// The name of a partition's file in a table [`write_partitioned`] writes: a fixed name, so
/// that a run writes the same paths every time (the stem of the files it splits by a
/// column's values).
const PARTITION_FILE: &str = "part-00000.parquet";

/// Writes the rows of `query` as Hive-partitioned Parquet files under `root`
/// (`col=value/.../part-00000.parquet`), columns cast to `file_schema`, the partition columns
/// in the path only; with `files_by`, one file per partition and value of that column
/// (`part-00000-VALUE.parquet`, see [`PartitionedWriter::files_by`]). The rows are ordered
/// by the partition columns, `files_by` and then every column, so a partition's bytes are
/// the same on every run, and each file is closed when the next file's rows arrive: one
/// file is open at a time, whatever the number of partitions. (The engine's `COPY ...
/// PARTITIONED BY` keeps a writer, with its encoders and compression contexts, open for
/// every partition until the end of its input.) On a cluster the executors compute and
/// order the rows, and this process writes them.
pub async fn write_partitioned(
    ctx: &SessionContext,
    query: &str,
    root: &Location,
    partition_columns: &[&str],
    files_by: Option<&str>,
    file_schema: &SchemaRef,
) -> Result<Vec<WrittenFile>> {
    let order = (partition_columns.iter().copied())
        .chain(files_by)
        .chain(file_schema.fields().iter().map(|f| f.name().as_str()))
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rows = ctx
        .sql(&format!("SELECT * FROM ({query}) ORDER BY {order}"))
        .await?
        .execute_stream()
        .await?;
    let mut writer = PartitionedWriter::new(ctx, root, partition_columns, PARTITION_FILE)?
        .with_file_schema(file_schema.clone())
        .partitions_in_order();
    if let Some(column) = files_by {
        writer = writer.files_by(column);
    }
    while let Some(batch) = rows.try_next().await? {
        writer.write(&batch).await?;
    }
    writer.finish().await
}

/// Writes a file of no rows (see [`PartitionedWriter::write_empty_partition`]) in each
/// partition `keys` names, under `root` and named as [`write_partitioned`] names its files.
pub async fn write_empty_partitions(
    ctx: &SessionContext,
    root: &Location,
    partition_columns: &[&str],
    file_schema: &SchemaRef,
    keys: &[Vec<String>],
) -> Result<Vec<WrittenFile>> {
    let mut writer = PartitionedWriter::new(ctx, root, partition_columns, PARTITION_FILE)?
        .with_file_schema(file_schema.clone());
    for key in keys {
        writer.write_empty_partition(key).await?;
    }
    writer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Float64Type};
    use exdep_core::schema::YEAR;
    use object_store::ObjectStoreExt;
    use std::path::Path;

    /// A session with the `memory://` store.
    fn test_session() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.register_object_store(
            &url::Url::parse("memory:///").expect("a constant URL"),
            Arc::new(object_store::memory::InMemory::new()),
        );
        ctx
    }

    fn years_and_names(years: &[i32], names: &[&str]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "year",
                Arc::new(Int32Array::from(years.to_vec())) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    /// The rows of the Parquet file at `location`.
    async fn read_file(ctx: &SessionContext, location: &str) -> Vec<RecordBatch> {
        let file = ctx.read_parquet(location, Default::default()).await;
        file.unwrap().collect().await.unwrap()
    }

    /// A writer of `year` partitions under `root`, told that rows come in partition order.
    fn writer_in_order(root: &str) -> PartitionedWriter {
        let root = Location::resolve(root, Path::new("/")).unwrap();
        PartitionedWriter::new(&test_session(), &root, &[YEAR], "part.parquet")
            .unwrap()
            .partitions_in_order()
    }

    #[tokio::test]
    async fn partitions_in_order_keep_one_file_open() {
        let mut writer = writer_in_order("memory:///ordered/");
        writer
            .write(&years_and_names(&[2020, 2020, 2021], &["a", "b", "c"]))
            .await
            .unwrap();
        assert_eq!(writer.writers.len(), 1, "2020 is complete; 2021 may go on");
        writer
            .write(&years_and_names(&[2021, 2022], &["d", "e"]))
            .await
            .unwrap();
        assert_eq!(writer.writers.len(), 1);
        let rows: Vec<(String, u64)> = writer
            .finish()
            .await
            .unwrap()
            .into_iter()
            .map(|file| (file.partition[0].1.clone(), file.rows))
            .collect();
        let expected = [("2020", 2), ("2021", 2), ("2022", 1)].map(|(y, n)| (y.to_string(), n));
        assert_eq!(rows, expected);
    }

    #[tokio::test]
    async fn a_partition_reopened_out_of_order_is_refused() {
        let mut writer = writer_in_order("memory:///unordered/");
        writer
            .write(&years_and_names(&[2020, 2021], &["a", "b"]))
            .await
            .unwrap();
        let error = writer
            .write(&years_and_names(&[2020], &["c"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::PartitionOutOfOrder { partition, .. } if partition == "year=2020"),
            "{error}"
        );
    }

    #[test]
    fn rows_go_to_the_partition_their_values_name() {
        let years: ArrayRef = Arc::new(Int32Array::from(vec![2020, 2020, 2020]));
        let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "a"]));
        let key = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rows_by_partition(&[&years], 3).unwrap(),
            BTreeMap::from([(key(&["2020"]), vec![0, 1, 2])])
        );
        assert_eq!(
            rows_by_partition(&[&years, &names], 3).unwrap(),
            BTreeMap::from([
                (key(&["2020", "a"]), vec![0, 2]),
                (key(&["2020", "b"]), vec![1])
            ])
        );
    }

    #[tokio::test]
    async fn written_partitions_hold_their_rows_in_order() {
        let ctx = test_session();
        let root = Location::resolve("memory:///table/", Path::new("/")).unwrap();
        let file_schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Float64,
            true,
        )]));
        let written = write_partitioned(
            &ctx,
            "SELECT * FROM (VALUES (2021, 3.0), (2020, 1.5), (2021, 2.0), (2020, 0.5), \
             (2021, 1.0)) AS t(year, value)",
            &root,
            &[YEAR],
            None,
            &file_schema,
        )
        .await
        .unwrap();
        let locations: Vec<&str> = written.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "memory:///table/year=2020/part-00000.parquet",
                "memory:///table/year=2021/part-00000.parquet"
            ]
        );
        let batches = read_file(&ctx, locations[1]).await;
        let values: Vec<f64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec())
            .collect();
        assert_eq!(values, [1.0, 2.0, 3.0]);
        assert_eq!(
            batches[0].schema().fields().len(),
            1,
            "year is in the path only"
        );
    }

    #[tokio::test]
    async fn files_split_by_a_column_hold_one_value_each() {
        let ctx = test_session();
        let root = Location::resolve("memory:///split/", Path::new("/")).unwrap();
        let file_schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Float64, false),
        ]));
        let written = write_partitioned(
            &ctx,
            "SELECT * FROM (VALUES (2021, 'b', 3.0), (2020, 'a', 1.5), (2021, 'a', 2.0), \
             (2021, 'b', 1.0)) AS t(year, name, value)",
            &root,
            &[YEAR],
            Some("name"),
            &file_schema,
        )
        .await
        .unwrap();
        let files: Vec<(&str, u64)> = (written.iter())
            .map(|f| (f.location.as_str(), f.rows))
            .collect();
        assert_eq!(
            files,
            [
                ("memory:///split/year=2020/part-00000-a.parquet", 1),
                ("memory:///split/year=2021/part-00000-a.parquet", 1),
                ("memory:///split/year=2021/part-00000-b.parquet", 2),
            ]
        );
        assert!(
            written
                .iter()
                .all(|f| f.partition.len() == 1 && f.partition[0].0 == YEAR),
            "the splitting column is no partition"
        );
        let batches = read_file(&ctx, files[2].0).await;
        assert_eq!(
            batches[0].schema().fields().len(),
            2,
            "the files keep `name`"
        );
        let names = cast(batches[0].column(0), &DataType::Utf8).unwrap();
        assert!(
            names
                .as_string::<i32>()
                .iter()
                .all(|name| name == Some("b"))
        );
    }

    #[tokio::test]
    async fn a_file_with_a_nan_has_no_bounds_on_that_column() {
        let ctx = test_session();
        let root = Location::resolve("memory:///nan/", Path::new("/")).unwrap();
        let file_schema = Arc::new(Schema::new(vec![
            Field::new("hhi", DataType::Float64, false),
            Field::new("theil", DataType::Float64, false),
        ]));
        let written = write_partitioned(
            &ctx,
            "SELECT * FROM (VALUES (2021, CAST('NaN' AS DOUBLE), 1.0), (2021, 0.5, 2.0), \
             (2022, 0.5, 3.0)) AS t(year, hhi, theil)",
            &root,
            &[YEAR],
            None,
            &file_schema,
        )
        .await
        .unwrap();
        let bounded = |file: &WrittenFile| -> Vec<String> {
            file.statistics.max_values.keys().cloned().collect()
        };
        assert_eq!(bounded(&written[0]), ["theil"], "2021 has a NaN hhi");
        assert_eq!(bounded(&written[1]), ["hhi", "theil"]);
    }

    #[test]
    fn unsafe_segments_are_refused() {
        for bad in ["..", "", "a/b", ".hidden", "x y", "_tmp", "a\\b"] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
        for good in ["2020", "44", "CN", "all"] {
            assert!(is_safe_segment(good), "{good:?}");
        }
    }

    #[tokio::test]
    async fn scratch_files_are_compressed_only_where_they_travel() {
        let ctx = test_session();
        let names = vec!["the same name, over and over"; 10_000];
        let batch = years_and_names(&vec![2020; names.len()], &names);
        let local = std::env::temp_dir().join(format!("exdep-scratch-{}", std::process::id()));
        let mut sizes = Vec::new();
        for root in ["memory:///scratch/", local.to_str().unwrap()] {
            let root = Location::resolve(root, Path::new("/")).unwrap();
            let mut writer = PartitionedWriter::new(&ctx, &root, &[], "rows.arrow")
                .unwrap()
                .scratch();
            writer.write(&batch).await.unwrap();
            writer.finish().await.unwrap();
            let file = root.join("rows.arrow");
            let bytes = (root.store(&ctx).unwrap().get(&file.path().unwrap()).await)
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let rows: Vec<RecordBatch> =
                arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.clone()), None)
                    .unwrap()
                    .collect::<std::result::Result<_, _>>()
                    .unwrap();
            assert_eq!(
                rows,
                std::slice::from_ref(&batch),
                "{file:?} reads back as written"
            );
            sizes.push(bytes.len());
        }
        std::fs::remove_dir_all(&local).unwrap();
        let [in_object_storage, on_local_disk] = sizes[..] else {
            unreachable!()
        };
        assert!(
            in_object_storage * 4 < on_local_disk,
            "LZ4 in object storage ({in_object_storage} bytes), none on the local file \
             system ({on_local_disk} bytes)"
        );
    }

    #[tokio::test]
    async fn distinct_values_are_split_into_byte_streams_and_sums_have_no_statistics() {
        use arrow::array::{Decimal128Array, Int64Array};
        use parquet::file::reader::{FileReader, SerializedFileReader};

        let keys: Vec<i64> = (0..5_000).map(|key| key * 7_919 + (1 << 40)).collect();
        let sums: Vec<i128> = (0..5_000).map(|key| key * 123_456_789_012).collect();
        let batch = RecordBatch::try_from_iter([
            ("key", Arc::new(Int64Array::from(keys)) as ArrayRef),
            (
                "exports_usd",
                Arc::new(
                    Decimal128Array::from(sums)
                        .with_precision_and_scale(38, 10)
                        .unwrap(),
                ) as ArrayRef,
            ),
        ])
        .unwrap();
        let local = std::env::temp_dir().join(format!("exdep-distinct-{}", std::process::id()));
        let root = Location::resolve(local.to_str().unwrap(), Path::new("/")).unwrap();
        let mut writer = PartitionedWriter::new(&test_session(), &root, &[], "sums.parquet")
            .unwrap()
            .distinct_values();
        writer.write(&batch).await.unwrap();
        writer.finish().await.unwrap();
        let path = local.join("sums.parquet");
        let ctx = test_session();
        let rows = read_file(&ctx, path.to_str().unwrap()).await;
        let file = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        std::fs::remove_dir_all(&local).unwrap();
        assert_eq!(rows, [batch], "the file reads back as written");
        let columns = file.metadata().row_group(0).columns();
        for column in columns {
            let encodings: Vec<_> = column.encodings().collect();
            assert!(
                encodings.contains(&Encoding::BYTE_STREAM_SPLIT)
                    && !encodings.contains(&Encoding::RLE_DICTIONARY),
                "{:?}: {encodings:?}",
                column.column_path()
            );
        }
        assert!(
            columns[0].statistics().is_some(),
            "keys keep their statistics"
        );
        assert!(columns[1].statistics().is_none(), "sums have none");
    }
}
