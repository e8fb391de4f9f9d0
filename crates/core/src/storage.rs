//! Locations in object storage and the Parquet writer every stage shares.
//!
//! Every place exdep reads or writes is a URL: `file://`, `memory://`, or a plain path, which
//! becomes a `file://` URL. The stores behind the URLs live in the DataFusion session's
//! runtime, so the plans and exdep's own writers always talk to the same store instance.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tracing::warn;
use url::Url;

use crate::error::{Error, Result};

/// Rows per Parquet row group: large enough for good compression and pruning statistics,
/// small enough that a writer's buffer stays in the tens of megabytes.
const ROW_GROUP_ROWS: usize = 512 * 1024;

/// A folder or file in object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
}

impl Location {
    /// Resolves a URL (`file://`, `memory://`, ...) or a local path; relative paths are taken
    /// relative to `base`.
    pub fn resolve(text: &str, base: &Path) -> Result<Self> {
        let error = |message: String| Error::Location {
            location: text.to_string(),
            message,
        };
        if text.trim().is_empty() {
            return Err(error("empty location".into()));
        }
        if has_scheme(text) {
            let mut url = Url::parse(text).map_err(|e| error(e.to_string()))?;
            if url.path().ends_with('/') && url.path().len() > 1 {
                let trimmed = url.path().trim_end_matches('/').to_string();
                url.set_path(&trimmed);
            }
            return Ok(Self { url });
        }
        let path = normalize(&base.join(text));
        let url = Url::from_file_path(&path)
            .map_err(|()| error(format!("{} is not an absolute path", path.display())))?;
        Ok(Self { url })
    }

    /// The location as a URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of the store that holds this location (scheme and authority).
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::parse(&self.url[..url::Position::BeforePath])
            .expect("scheme and authority of a parsed URL form a valid store URL")
    }

    /// The path inside the store.
    pub fn path(&self) -> Result<ObjectPath> {
        ObjectPath::from_url_path(self.url.path()).map_err(|e| Error::Location {
            location: self.url.to_string(),
            message: e.to_string(),
        })
    }

    /// A child of this folder.
    pub fn join(&self, segment: &str) -> Self {
        let mut url = self.url.clone();
        url.path_segments_mut()
            .expect("object store URLs have a path")
            .pop_if_empty()
            .extend(segment.split('/'));
        Self { url }
    }

    /// Whether this location is `other` or lies below it.
    pub fn is_within(&self, other: &Location) -> bool {
        url_within(self.url.as_str(), other.url.as_str())
    }

    /// The location as a string DataFusion's listing tables accept (a folder, with a slash).
    pub fn as_table_url(&self) -> String {
        format!("{}/", self.url.as_str().trim_end_matches('/'))
    }

    /// The store that holds this location, from the session's registry.
    pub fn store(&self, ctx: &SessionContext) -> Result<Arc<dyn ObjectStore>> {
        Ok(ctx.runtime_env().object_store(self.object_store_url())?)
    }

    /// A location from a URL string exdep itself produced (no relative paths).
    pub fn parse_url(url: &str) -> Result<Self> {
        Url::parse(url)
            .map(|url| Self { url })
            .map_err(|e| Error::Location {
                location: url.to_string(),
                message: e.to_string(),
            })
    }

    /// The years of the `year=YYYY` partitions directly under this folder.
    pub async fn partition_years(&self, ctx: &SessionContext) -> Result<BTreeSet<i32>> {
        let listing = self
            .store(ctx)?
            .list_with_delimiter(Some(&self.path()?))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| {
                prefix
                    .filename()?
                    .strip_prefix(crate::schema::YEAR)?
                    .strip_prefix('=')?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Deletes every object under this folder.
    pub async fn delete_all(&self, ctx: &SessionContext) -> Result<usize> {
        self.delete_all_except(ctx, &std::collections::HashSet::new())
            .await
    }

    /// Deletes every object under this folder but those in `keep`.
    pub async fn delete_all_except(
        &self,
        ctx: &SessionContext,
        keep: &std::collections::HashSet<ObjectPath>,
    ) -> Result<usize> {
        self.delete_where(ctx, |path| !keep.contains(path)).await
    }

    /// Deletes the objects under this folder whose path `doomed` picks.
    pub async fn delete_where(
        &self,
        ctx: &SessionContext,
        doomed: impl Fn(&ObjectPath) -> bool,
    ) -> Result<usize> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        let mut deleted = 0;
        for meta in objects.iter().filter(|m| doomed(&m.location)) {
            if let Some(link) = self.linked_folder(&meta.location) {
                warn!(
                    link = %link.display(),
                    "not deleting {}: it lies behind a symbolic link, outside exdep's folders",
                    meta.location
                );
                continue;
            }
            store.delete(&meta.location).await?;
            deleted += 1;
        }
        self.remove_empty_folders();
        Ok(deleted)
    }

    /// On a local filesystem, the symbolic link to a folder that `object` (listed below this
    /// location) is reached through, if any: listings follow such links, and a delete
    /// through one would delete what it points to.
    fn linked_folder(&self, object: &ObjectPath) -> Option<PathBuf> {
        let root = self
            .url
            .to_file_path()
            .ok()
            .filter(|_| self.url.scheme() == "file")?;
        let file = Path::new("/").join(object.as_ref());
        let below = file.strip_prefix(&root).ok()?.parent()?;
        let mut folder = root;
        for part in below.components() {
            folder.push(part);
            if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.file_type().is_symlink()) {
                return Some(folder);
            }
        }
        None
    }

    /// On a local filesystem, deleting objects leaves their folders behind (object stores
    /// have no folders): remove the ones left empty under this location, with the partial
    /// uploads of killed processes, so that staging and emptied partitions do not linger.
    fn remove_empty_folders(&self) {
        fn prune(dir: &Path) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            let mut empty = true;
            for entry in entries.flatten() {
                // A link is left alone, and keeps its folder: never followed.
                let Ok(file_type) = entry.file_type() else {
                    empty = false;
                    continue;
                };
                if file_type.is_dir() {
                    empty &= prune(&entry.path());
                    continue;
                }
                // An upload the local store had under way when its process was killed
                // (`NAME#N`): no listing shows it, and it never becomes an object.
                let upload = entry.file_name().to_string_lossy().contains('#');
                empty &=
                    file_type.is_file() && upload && std::fs::remove_file(entry.path()).is_ok();
            }
            // Best effort: a folder that cannot be removed is only untidy.
            empty && std::fs::remove_dir(dir).is_ok()
        }
        if self.url.scheme() == "file"
            && let Ok(path) = self.url.to_file_path()
        {
            prune(&path);
        }
    }

    /// Moves every object under this folder to the same place under `target`, replacing an
    /// object already there; returns how many moved. A rename where the store has one (a
    /// local disk), a copy and a delete elsewhere.
    pub async fn move_into(&self, ctx: &SessionContext, target: &Location) -> Result<usize> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        for meta in &objects {
            let relative: Vec<_> = meta
                .location
                .prefix_match(&prefix)
                .into_iter()
                .flatten()
                .collect();
            let relative = relative
                .iter()
                .map(|part| part.as_ref())
                .collect::<Vec<_>>()
                .join("/");
            store
                .rename(&meta.location, &target.join(&relative).path()?)
                .await?;
        }
        self.remove_empty_folders();
        Ok(objects.len())
    }

    /// Deletes the object at this location; one that is not there is already deleted.
    pub async fn delete_if_exists(&self, ctx: &SessionContext) -> Result<()> {
        match self.store(ctx)?.delete(&self.path()?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads the whole object at this location.
    pub async fn read_all(&self, ctx: &SessionContext) -> Result<Vec<u8>> {
        let store = self.store(ctx)?;
        let bytes = store.get(&self.path()?).await?.bytes().await?;
        Ok(bytes.to_vec())
    }

    /// Whether any object lies under this folder.
    pub async fn has_objects(&self, ctx: &SessionContext) -> Result<bool> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let mut listing = store.list(Some(&prefix));
        Ok(listing.try_next().await?.is_some())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Whether the URL `mine` is `theirs` or lies below it.
fn url_within(mine: &str, theirs: &str) -> bool {
    let theirs = theirs.trim_end_matches('/');
    let mine = mine.trim_end_matches('/');
    mine == theirs
        || mine
            .strip_prefix(theirs)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An input location: a file, a folder, or a glob over file names.
#[derive(Debug, Clone)]
pub struct InputLocation {
    text: String,
    url: ListingTableUrl,
}

impl InputLocation {
    /// Resolves a URL or local path, either possibly ending in a glob such as `*.csv`.
    pub fn resolve(text: &str, base: &Path) -> Result<Self> {
        let error = |message: String| Error::Location {
            location: text.to_string(),
            message,
        };
        if text.trim().is_empty() {
            return Err(error("empty location".into()));
        }
        let url = if has_scheme(text) {
            match text.find(['*', '?', '[']) {
                Some(glob_start) => {
                    let split = text[..glob_start].rfind('/').map_or(0, |i| i + 1);
                    let (prefix, pattern) = text.split_at(split);
                    let prefix = Url::parse(prefix).map_err(|e| error(e.to_string()))?;
                    let pattern = glob::Pattern::new(pattern).map_err(|e| error(e.to_string()))?;
                    ListingTableUrl::try_new(prefix, Some(pattern))
                }
                None => ListingTableUrl::parse(text),
            }
        } else {
            let absolute = normalize(&base.join(text));
            ListingTableUrl::parse(absolute.to_string_lossy())
        }
        .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            text: text.to_string(),
            url,
        })
    }

    /// The store that holds the files.
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        self.url.object_store()
    }

    /// The location as the user wrote it.
    pub fn as_written(&self) -> &str {
        &self.text
    }

    /// Whether every file this location names lies in `folder` (or is it).
    pub fn is_within(&self, folder: &Location) -> bool {
        url_within(self.url.as_str(), folder.url.as_str())
    }

    /// Whether `location` lies in the folder this location lists (a folder input, not a
    /// single file or a glob over file names).
    pub fn lists(&self, location: &Location) -> bool {
        !self.text.contains(['*', '?', '['])
            && url_within(location.url.as_str(), self.url.as_str())
            && location.url.as_str() != self.url.as_str().trim_end_matches('/')
    }

    /// Whether a listed file is hidden, as Spark and Hive see it: a folder or file name
    /// below this location's prefix starts with `_` or `.` (`_SUCCESS`, `.DS_Store`,
    /// `_temporary/`). A file the location names itself is never hidden.
    pub fn is_hidden(&self, path: &ObjectPath) -> bool {
        path.prefix_match(self.url.prefix())
            .is_some_and(|mut parts| {
                parts.any(|part| part.as_ref().starts_with('_') || part.as_ref().starts_with('.'))
            })
    }

    /// Lists the files this location names, in path order.
    pub async fn list_files(
        &self,
        ctx: &SessionContext,
        file_extension: &str,
    ) -> Result<Vec<(Location, object_store::ObjectMeta)>> {
        let store = ctx.runtime_env().object_store(self.url.object_store())?;
        let state = ctx.state();
        let mut files: Vec<_> = self
            .url
            .list_all_files(&state, store.as_ref(), file_extension)
            .await?
            .try_collect()
            .await?;
        files.sort_by(|a, b| a.location.cmp(&b.location));
        let store_url = self.url.object_store();
        Ok(files
            .into_iter()
            .map(|meta| {
                let url = Url::parse(store_url.as_str())
                    .and_then(|base| base.join(meta.location.as_ref()))
                    .expect("an object path joined to its store URL is a URL");
                (Location { url }, meta)
            })
            .collect())
    }
}

impl fmt::Display for InputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn has_scheme(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// Removes `.` and `..` without touching the filesystem, so paths that do not exist yet
/// (an output root) resolve the same as those that do.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The compression of the Parquet files exdep writes unless a config says otherwise.
pub const DEFAULT_COMPRESSION: &str = "zstd(3)";

/// Reads a compression as DataFusion and the config name it: `uncompressed`, `snappy`,
/// `gzip(LEVEL)`, `lz4_raw` or `zstd(LEVEL)`.
pub fn parse_compression(text: &str) -> std::result::Result<Compression, String> {
    let compression: Compression = text.parse().map_err(|e| format!("`{text}`: {e}"))?;
    match compression {
        Compression::UNCOMPRESSED
        | Compression::SNAPPY
        | Compression::GZIP(_)
        | Compression::LZ4_RAW
        | Compression::ZSTD(_) => Ok(compression),
        _ => Err(format!(
            "`{text}` is not one of uncompressed, snappy, gzip(LEVEL), lz4_raw, zstd(LEVEL)"
        )),
    }
}

/// The compression `ctx` is set to write Parquet with (see `Config::prepare_session`, which
/// checked it).
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
}

/// Writes record batches into Hive-partitioned Parquet files (`col=value/.../FILE`) under a
/// table root. Partition columns are stored in the path, not in the files, as Spark, Trino,
/// DuckDB and Polars expect.
pub struct PartitionedWriter {
    ctx_store: Arc<dyn ObjectStore>,
    root: Location,
    partition_columns: Vec<String>,
    file_name: String,
    file_schema: Option<SchemaRef>,
    compression: Compression,
    writers: BTreeMap<Vec<String>, PartitionFile>,
    /// Rows come ordered by the partition columns (see [`Self::partitions_in_order`]).
    partitions_in_order: bool,
    /// Files already closed.
    written: Vec<WrittenFile>,
}

struct PartitionFile {
    location: Location,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
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
            file_name: file_name.to_string(),
            file_schema: None,
            compression: session_compression(ctx),
            writers: BTreeMap::new(),
            partitions_in_order: false,
            written: Vec::new(),
        })
    }

    /// Declares that rows come ordered by the partition columns, so that a partition's file
    /// can be closed as soon as rows of another partition arrive, and one file is open at a
    /// time. Without it every partition's file stays open until [`Self::finish`].
    pub fn partitions_in_order(mut self) -> Self {
        self.partitions_in_order = true;
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
        let key_columns = self
            .partition_columns
            .iter()
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
            if complete {
                let file = self.writers.remove(&key).expect("written above");
                self.close(key, file).await?;
            }
        }
        Ok(())
    }

    async fn close(&mut self, key: Vec<String>, file: PartitionFile) -> Result<()> {
        file.writer.close().await?;
        self.written.push(WrittenFile {
            partition: self.partition_columns.iter().cloned().zip(key).collect(),
            location: file.location.to_string(),
            rows: file.rows,
        });
        Ok(())
    }

    fn file_for(&mut self, key: &[String], schema: SchemaRef) -> Result<&mut PartitionFile> {
        if !self.writers.contains_key(key) {
            let mut segments = Vec::with_capacity(key.len());
            for (column, value) in self.partition_columns.iter().zip(key) {
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
            let closed = |file: &WrittenFile| file.partition.iter().map(|(_, v)| v).eq(key);
            if self.written.iter().any(closed) {
                return Err(Error::PartitionOutOfOrder {
                    root: self.root.to_string(),
                    partition: segments.join("/"),
                });
            }
            let folder = (segments.iter()).fold(self.root.clone(), |folder, s| folder.join(s));
            let location = folder.join(&self.file_name);
            let object = BufWriter::new(self.ctx_store.clone(), location.path()?);
            let writer = AsyncArrowWriter::try_new(
                object,
                Arc::new(Schema::new(schema.fields().clone())),
                Some(writer_properties(self.compression)),
            )?;
            self.writers.insert(
                key.to_vec(),
                PartitionFile {
                    location,
                    writer,
                    rows: 0,
                },
            );
        }
        Ok(self.writers.get_mut(key).expect("inserted above"))
    }

    /// Closes every file and returns what was written, in partition order.
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        for (key, file) in std::mem::take(&mut self.writers) {
            self.close(key, file).await?;
        }
        self.written.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(self.written)
    }
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
    let options = FormatOptions::default();
    let formatters = key_columns
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows_by_key: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for row in 0..rows {
        let key = formatters
            .iter()
            .map(|f| f.value(row).to_string())
            .collect();
        rows_by_key.entry(key).or_default().push(row as u32);
    }
    Ok(rows_by_key)
}

/// The name of a partition's file in a table [`write_partitioned`] writes: one file per
/// partition, under a fixed name, so that a partition is one object, replaced whole.
const PARTITION_FILE: &str = "part-00000.parquet";

/// Writes the rows of `query` as Hive-partitioned Parquet files under `root`
/// (`col=value/.../part-00000.parquet`), columns cast to `file_schema`, the partition columns
/// in the path only. The rows are ordered by the partition columns and then by every column,
/// so a partition's bytes are the same on every run, and each partition's file is closed
/// when the next partition's rows arrive: one file is open at a time, whatever the number of
/// partitions. (The engine's `COPY ... PARTITIONED BY` keeps a writer, with its encoders and
/// compression contexts, open for every partition until the end of its input.) On a cluster
/// the executors compute and order the rows, and this process writes them.
pub async fn write_partitioned(
    ctx: &SessionContext,
    query: &str,
    root: &Location,
    partition_columns: &[&str],
    file_schema: &SchemaRef,
) -> Result<Vec<WrittenFile>> {
    let order = partition_columns
        .iter()
        .copied()
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
    while let Some(batch) = rows.try_next().await? {
        writer.write(&batch).await?;
    }
    writer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::YEAR;
    use arrow::array::{AsArray, Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Float64Type};

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

    /// A writer of `year` partitions under `root`, told that rows come in partition order.
    fn writer_in_order(root: &str) -> PartitionedWriter {
        let root = Location::resolve(root, Path::new("/")).unwrap();
        PartitionedWriter::new(&crate::new_session(), &root, &[YEAR], "part.parquet")
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

    #[tokio::test]
    async fn written_partitions_hold_their_rows_in_order() {
        let ctx = crate::new_session();
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
        let batches = ctx
            .read_parquet(locations[1], Default::default())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
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

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let loc = Location::resolve("../out/x", Path::new("/a/b/configs")).unwrap();
        assert_eq!(loc.url().as_str(), "file:///a/b/out/x");
        assert_eq!(
            loc.join("year=2020").url().as_str(),
            "file:///a/b/out/x/year=2020"
        );
    }

    #[test]
    fn urls_keep_their_scheme() {
        let loc = Location::resolve("memory:///wh/", Path::new("/x")).unwrap();
        assert_eq!(loc.object_store_url().as_str(), "memory:///");
        assert_eq!(loc.path().unwrap().as_ref(), "wh");
    }

    #[test]
    fn within() {
        let root = Location::resolve("/a/out", Path::new("/")).unwrap();
        assert!(
            Location::resolve("/a/out/_wh", Path::new("/"))
                .unwrap()
                .is_within(&root)
        );
        assert!(
            !Location::resolve("/a/output", Path::new("/"))
                .unwrap()
                .is_within(&root)
        );
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
}
