//! What export knows of a table: its layout, and the files a publication moved into it.

use exdep_core::TableFormat;
use exdep_core::arrow::datatypes::SchemaRef;
use exdep_core::schema::{CATEGORY, REJECTS_FILE, YEAR};
use exdep_store::FileStatistics;
use exdep_store::layout::REJECTS;

/// How an output table is laid out: its name (the folder under the output root), its Hive
/// partition columns, outermost first, and the schema of its files (without them).
#[derive(Debug, Clone)]
pub struct TableLayout {
    /// Folder name under the output root.
    pub name: String,
    /// Hive partition columns, outermost first.
    pub partition_by: Vec<String>,
    /// Schema of the Parquet files.
    pub file_schema: SchemaRef,
}

impl TableLayout {
    /// The column whose values split each partition's rows into files in `format`, if any:
    /// `category` in Delta tables that have it. A Delta commit records each file's bounds,
    /// so with one category a file, engines that read the log (Spark, Trino, DuckDB,
    /// Polars, delta-rs) read only the files of the categories a query asks for. Plain
    /// Parquet keeps one file per partition: its readers open every file's footer anyway,
    /// and fewer files cost them less.
    pub fn files_by(&self, format: TableFormat) -> Option<&'static str> {
        let has_category = self.file_schema.field_with_name(CATEGORY).is_ok();
        (format == TableFormat::Delta && has_category).then_some(CATEGORY)
    }

    /// The quarantine's layout: rejected records by year.
    pub fn rejects() -> Self {
        Self {
            name: REJECTS.to_string(),
            partition_by: vec![YEAR.to_string()],
            file_schema: REJECTS_FILE.clone(),
        }
    }
}

/// A file moved into a published table.
#[derive(Debug, Clone)]
pub(crate) struct PublishedFile {
    /// Its path under the table's folder (`year=2021/province=44/part-...parquet`).
    pub relative_path: String,
    /// Its Hive partition values.
    pub partition: Vec<(String, String)>,
    /// Its rows.
    pub rows: u64,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, in milliseconds since 1970.
    pub modified_millis: i64,
    /// Its columns' bounds and null counts.
    pub statistics: FileStatistics,
}
