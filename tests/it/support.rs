//! Shared helpers: a scratch workspace with a config, the binary, and reading tables back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use exdep_core::arrow::array::{Array, AsArray, RecordBatch};
use exdep_core::arrow::compute::cast;
use exdep_core::arrow::datatypes::DataType;
use exdep_core::datafusion::prelude::{ParquetReadOptions, SessionContext};

/// The repository's shipped code tables.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// A temporary folder with inputs, a config and an output root; removed on drop.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `config.toml` for `years` reading `inputs/*.csv`, with the shipped code tables;
    /// `extra` is appended verbatim.
    pub fn config(&self, years: &[i32], extra: &str) -> PathBuf {
        let tables = configs_dir();
        let tables = tables.display();
        let years: Vec<String> = years.iter().map(|y| y.to_string()).collect();
        self.write(
            "config.toml",
            &format!(
                "years = [{}]\noutput = \"out\"\nwarehouse = \"warehouse\"\n\n\
                 [[inputs]]\nlocation = \"inputs/*.csv\"\nformat = \"canonical-csv\"\n\n\
                 [tables]\nhs-chapters = \"{tables}/hs_chapters.csv\"\n\
                 partner-regions = \"{tables}/partner_regions.csv\"\n\
                 provinces = \"{tables}/provinces.csv\"\n\
                 exchange-rates = \"{tables}/cny_per_usd.csv\"\n{extra}",
                years.join(", ")
            ),
        )
    }

    /// Runs `exdep ARGS` in this folder.
    pub fn exdep(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_exdep"))
            .args(args)
            .current_dir(self.dir.path())
            .env("EXDEP_LOG", "warn")
            .output()
            .expect("the exdep binary runs")
    }

    /// Runs `exdep generate --out inputs ARGS` and insists it succeeds.
    pub fn generate(&self, args: &[&str]) {
        let mut all = vec!["generate", "--out", "inputs"];
        all.extend_from_slice(args);
        let output = self.exdep(&all);
        assert!(
            output.status.success(),
            "exdep generate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Writes `inputs/a.csv` with the canonical header and no records.
    pub fn empty_input(&self) {
        self.write("inputs/a.csv", &canonical_csv(&[]));
    }

    /// Publishes a run of 2020 over one record (province 44, USA) and returns its `indices`
    /// file of province 44.
    pub fn publish_one_record(&self) -> PathBuf {
        self.write(
            "inputs/a.csv",
            &canonical_csv(&[(2020, "44", "USA", "8504", 10.0, "USD")]),
        );
        self.config(&[2020], "");
        self.run_ok();
        self.path("out/indices/year=2020/province=44/part-00000.parquet")
    }

    /// Runs `exdep run --config config.toml --quiet` and insists it succeeds.
    pub fn run_ok(&self) -> String {
        self.run_ok_with(&[])
    }

    /// [`Scratch::run_ok`] with more arguments.
    pub fn run_ok_with(&self, extra: &[&str]) -> String {
        let mut args = vec!["run", "--config", "config.toml", "--quiet"];
        args.extend_from_slice(extra);
        let output = self.exdep(&args);
        assert!(
            output.status.success(),
            "exdep run failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// A value read back from a table: text, integer, float or null.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

impl Value {
    pub fn float(&self) -> f64 {
        match self {
            Value::Float(f) => *f,
            Value::Int(i) => *i as f64,
            other => panic!("expected a number, got {other:?}"),
        }
    }
}

/// One output row, column name -> value.
pub type Row = BTreeMap<String, Value>;

/// Reads `OUT/TABLE/**` (Hive-partitioned by year, and by province where the table is)
/// ordered by `order_by`.
pub async fn read_table(out: &Path, table: &str, order_by: &str) -> Vec<Row> {
    let ctx = SessionContext::new();
    if !out.join(table).exists() {
        // exdep writes no files for a table without rows.
        return Vec::new();
    }
    let by_province = std::fs::read_dir(out.join(table))
        .unwrap()
        .filter_map(|year| std::fs::read_dir(year.ok()?.path()).ok())
        .flatten()
        .any(|entry| entry.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("province=")));
    let mut partition_cols = vec![("year".to_string(), DataType::Int32)];
    if by_province {
        partition_cols.push(("province".to_string(), DataType::Utf8));
    }
    let options = ParquetReadOptions::default().table_partition_cols(partition_cols);
    let url = format!("{}/", out.join(table).display());
    ctx.register_parquet("t", &url, options).await.unwrap();
    let batches = ctx
        .sql(&format!("SELECT * FROM t ORDER BY {order_by}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    rows(&batches)
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut map = Row::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = if column.is_null(row) {
                    Value::Null
                } else {
                    match column.data_type() {
                        DataType::Float64 => Value::Float(
                            column
                                .as_primitive::<exdep_core::arrow::datatypes::Float64Type>()
                                .value(row),
                        ),
                        DataType::Int32 | DataType::Int64 => {
                            let as_i64 = cast(column, &DataType::Int64).unwrap();
                            Value::Int(
                                as_i64
                                    .as_primitive::<exdep_core::arrow::datatypes::Int64Type>()
                                    .value(row),
                            )
                        }
                        _ => {
                            let text = cast(column, &DataType::Utf8).unwrap();
                            Value::Text(text.as_string::<i32>().value(row).to_string())
                        }
                    }
                };
                map.insert(field.name().clone(), value);
            }
            out.push(map);
        }
    }
    out
}

/// The rows of `rows` whose columns equal the given text values.
pub fn select<'a>(rows: &'a [Row], filters: &[(&str, &str)]) -> Vec<&'a Row> {
    rows.iter()
        .filter(|row| {
            filters
                .iter()
                .all(|(column, value)| match row.get(*column) {
                    Some(Value::Text(text)) => text == value,
                    Some(Value::Int(i)) => i.to_string() == *value,
                    _ => false,
                })
        })
        .collect()
}

/// Asserts two floats agree to 1e-12 relative (hand-computed fixtures are exact up to
/// rounding).
#[track_caller]
pub fn assert_close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-12 * actual.abs().max(expected.abs()) + 1e-15;
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected}"
    );
}

/// Canonical CSV text from (year, province, partner, hs_code, value, currency) tuples.
pub fn canonical_csv(rows: &[(i32, &str, &str, &str, f64, &str)]) -> String {
    let mut text = String::from("year,month,province,partner,hs_code,value,currency\n");
    for (year, province, partner, hs, value, currency) in rows {
        text.push_str(&format!(
            "{year},,{province},{partner},{hs},{value},{currency}\n"
        ));
    }
    text
}
