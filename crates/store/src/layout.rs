//! The one layout of the warehouse and the output: every layer, table folder, document,
//! marker and staging folder exdep writes is named here, and nowhere else. Names that start
//! with `_` are kept out of lake readers' way (Spark, Hive, DuckDB and Polars skip them).

use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use exdep_core::schema::YEAR;
use exdep_core::{Config, Location};
use parquet::basic::Compression;

use crate::{PartitionedWriter, Result};

/// The folder of runs' staging folders, under the warehouse and under the output.
const STAGING: &str = "_staging";
/// The run lease, under the warehouse and under the output.
const LEASE: &str = "_exdep.lock";
/// The warehouse's run state: what each input file contributed.
const STATE: &str = "_state.json";
/// The output's run manifest: what the last run read, did and wrote.
const MANIFEST: &str = "_manifest.json";
/// The output's marker of a complete publication, written last.
const SUCCESS: &str = "_SUCCESS";
/// A run's staged text inputs, decoded to UTF-8 CSV.
const STAGED_TEXT: &str = "text";
/// A run's Parquet copies of its code tables.
const STAGED_TABLES: &str = "tables";
/// A run's input files' records grouped by cell and product, each file's read by its cube
/// and product plans (with `product-margins = true`).
const STAGED_GROUPED: &str = "_grouped";
/// The cells a run's index plans read, computed once, beside its staged tables (never
/// published: only tables are).
const STAGED_CELLS: &str = "_cells";

/// A Delta table's transaction log, under the table's folder.
pub const DELTA_LOG: &str = "_delta_log";

/// The quarantine table's name: rejected records, by year.
pub const REJECTS: &str = "rejects";

/// A warehouse layer that holds one object per input file in each year partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Accepted records, summed by cell.
    Cube,
    /// Accepted records, summed by cell and HS6 product (`product-margins = true`).
    Products,
    /// Rejected records, with their reason.
    Rejects,
    /// Every accepted record as read (the audit layer, `raw-layer = true`).
    Raw,
}

impl Layer {
    /// Every layer, in the order a file's objects are written.
    pub const ALL: [Layer; 4] = [Layer::Cube, Layer::Products, Layer::Rejects, Layer::Raw];

    /// The layer's folder name.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Cube => "cube",
            Layer::Products => "products",
            Layer::Rejects => REJECTS,
            Layer::Raw => "raw",
        }
    }

    /// The compression of the layer's files where it is not the config's
    /// `parquet-compression`: the product cube, the warehouse's largest layer, written for
    /// every file read and read by every run that computes product margins, is LZ4, which
    /// compresses and decompresses it several times faster than zstd, for files about a
    /// quarter larger.
    pub fn compression(self) -> Option<Compression> {
        match self {
            Layer::Products => Some(Compression::LZ4_RAW),
            Layer::Cube | Layer::Rejects | Layer::Raw => None,
        }
    }

    /// Whether the layer's values are nearly all distinct, so its files are written as
    /// [`PartitionedWriter::distinct_values`] says: the product cube's keys and sums. Its
    /// dictionaries took about 0.25 s of CPU of a 20M product run and saved 4% of its bytes;
    /// split into byte streams its files are 30% smaller (14 MB instead of 20 MB a year of
    /// the 20M set), compressed in a quarter of the time, and decoded in more (about
    /// 0.3 s less CPU to write, 0.15 s more to read).
    pub fn distinct_values(self) -> bool {
        matches!(self, Layer::Products)
    }
}

/// The warehouse: the per-file layers, the run state, the lease and runs' staging folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    root: Location,
}

impl Warehouse {
    /// The warehouse at `root`.
    pub fn new(root: Location) -> Self {
        Self { root }
    }

    /// The warehouse `config` names.
    pub fn of(config: &Config) -> Self {
        Self::new(config.warehouse.clone())
    }

    /// Its root folder.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// A layer's folder.
    pub fn layer(&self, layer: Layer) -> Location {
        self.root.join(layer.name())
    }

    /// The run state document.
    pub fn state(&self) -> Location {
        self.root.join(STATE)
    }

    /// The run lease.
    pub fn lease(&self) -> Location {
        self.root.join(LEASE)
    }

    /// The folder holding every run's staging folder.
    pub fn staging_root(&self) -> Location {
        self.root.join(STAGING)
    }

    /// Where run `run_id` stages what it writes before committing it.
    pub fn staging(&self, run_id: &str) -> Staging {
        Staging {
            root: self.staging_root().join(run_id),
        }
    }
}

/// One run's staging folder in the warehouse: its layers' new objects, its decoded text
/// inputs and its copies of the code tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    root: Location,
}

impl Staging {
    /// Its root folder.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// A layer's staged objects, laid out as in the warehouse.
    pub fn layer(&self, layer: Layer) -> Location {
        self.root.join(layer.name())
    }

    /// A writer of an input file's object `part` in each year partition of `layer`'s staged
    /// objects, of columns `schema`, compressed as the layer's files are.
    pub fn layer_writer(
        &self,
        ctx: &SessionContext,
        layer: Layer,
        part: &str,
        schema: &SchemaRef,
    ) -> Result<PartitionedWriter> {
        let mut writer = PartitionedWriter::new(ctx, &self.layer(layer), &[YEAR], part)?
            .with_file_schema(schema.clone());
        if let Some(compression) = layer.compression() {
            writer = writer.with_compression(compression);
        }
        if layer.distinct_values() {
            writer = writer.distinct_values();
        }
        Ok(writer)
    }

    /// The decoded text inputs.
    pub fn text(&self) -> Location {
        self.root.join(STAGED_TEXT)
    }

    /// The Parquet copies of the code tables.
    pub fn tables(&self) -> Location {
        self.root.join(STAGED_TABLES)
    }

    /// The input files' records grouped by cell and product: a scratch file per input
    /// file, which its cube and product plans read instead of the file.
    pub fn grouped_records(&self) -> Location {
        self.root.join(STAGED_GROUPED)
    }
}

/// The output: the published tables, the manifest, the `_SUCCESS` marker, the lease and
/// runs' staged tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    root: Location,
}

impl Output {
    /// The output at `root`.
    pub fn new(root: Location) -> Self {
        Self { root }
    }

    /// The output `config` names.
    pub fn of(config: &Config) -> Self {
        Self::new(config.output.clone())
    }

    /// Its root folder.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// A published table's folder.
    pub fn table(&self, name: &str) -> Location {
        self.root.join(name)
    }

    /// The run manifest document.
    pub fn manifest(&self) -> Location {
        self.root.join(MANIFEST)
    }

    /// The marker of a complete publication.
    pub fn success_marker(&self) -> Location {
        self.root.join(SUCCESS)
    }

    /// The run lease.
    pub fn lease(&self) -> Location {
        self.root.join(LEASE)
    }

    /// The folder holding every run's staged tables.
    pub fn staging_root(&self) -> Location {
        self.root.join(STAGING)
    }

    /// Where run `run_id` stages its tables before publishing them: one folder per table.
    pub fn staging(&self, run_id: &str) -> Location {
        self.staging_root().join(run_id)
    }

    /// Where run `run_id` keeps the cells its index plans read, computed once per run;
    /// removed with its staging.
    pub fn staged_cells(&self, run_id: &str) -> Location {
        self.staging(run_id).join(STAGED_CELLS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn documents_and_staging_stay_out_of_readers_way() {
        let root = Location::resolve("memory:///lake", Path::new("/")).unwrap();
        let warehouse = Warehouse::new(root.join("wh"));
        let output = Output::new(root.join("out"));
        for hidden in [
            warehouse.state(),
            warehouse.lease(),
            warehouse.staging_root(),
            output.manifest(),
            output.success_marker(),
            output.lease(),
            output.staging_root(),
        ] {
            let name = hidden.url().path_segments().unwrap().next_back().unwrap();
            assert!(name.starts_with('_'), "{hidden}");
        }
        assert_eq!(
            warehouse.staging("r1").layer(Layer::Cube).to_string(),
            "memory:///lake/wh/_staging/r1/cube"
        );
        assert_eq!(
            output.table(REJECTS).to_string(),
            "memory:///lake/out/rejects"
        );
    }

    /// The product's sources outside this crate, with their paths.
    fn other_crates_sources() -> Vec<(std::path::PathBuf, String)> {
        fn walk(dir: &Path, found: &mut Vec<(std::path::PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&crates).unwrap().flatten() {
            let name = entry.file_name();
            if name != "store" {
                walk(&entry.path().join("src"), &mut found);
            }
        }
        assert!(found.len() > 20, "found the workspace's sources");
        found
    }

    #[test]
    fn no_other_crate_spells_a_layout_name() {
        let documents = [
            STAGING,
            LEASE,
            STATE,
            MANIFEST,
            SUCCESS,
            STAGED_GROUPED,
            STAGED_CELLS,
            DELTA_LOG,
        ]
        .map(|name| format!("\"{name}\""));
        let folders = [
            Layer::Cube.name(),
            Layer::Rejects.name(),
            Layer::Raw.name(),
            STAGED_TEXT,
            STAGED_TABLES,
        ]
        .map(|name| format!("join(\"{name}\")"));
        let mut spelled = Vec::new();
        for (path, text) in other_crates_sources() {
            for name in documents.iter().chain(&folders) {
                if text.contains(name.as_str()) {
                    spelled.push(format!("{} spells {name}", path.display()));
                }
            }
        }
        assert!(
            spelled.is_empty(),
            "layout names belong to exdep_store::layout: {spelled:#?}"
        );
    }
}
