//! Shared helpers: a scratch workspace with a config, the binary, and reading tables back.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use exdep_core::arrow::array::{Array, AsArray, RecordBatch};
use exdep_core::arrow::compute::cast;
use exdep_core::arrow::datatypes::DataType;
use exdep_engine::datafusion::prelude::{ParquetReadOptions, SessionContext};

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
        let text = config_text(years, "output = \"out\"\nwarehouse = \"warehouse\"\n", &[]);
        self.write("config.toml", &format!("{text}{extra}"))
    }

    /// Runs `exdep ARGS` in this folder.
    pub fn exdep(&self, args: &[&str]) -> Output {
        self.exdep_command(args, &[])
            .output()
            .expect("the exdep binary runs")
    }

    /// The command `exdep ARGS` in this folder, logging warnings, with the environment
    /// variables `env` (a server's address and credentials, another `EXDEP_LOG`) on top.
    pub fn exdep_command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_exdep"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("EXDEP_LOG", "warn")
            .envs(env.iter().copied());
        command
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

    /// Runs `exdep generate --out inputs` for the years `years`, `records_per_year` records
    /// each, with the further arguments `extra`, and insists it succeeds.
    pub fn generate_years(
        &self,
        years: RangeInclusive<i32>,
        records_per_year: usize,
        extra: &[&str],
    ) {
        let (from, to) = (years.start().to_string(), years.end().to_string());
        let records = records_per_year.to_string();
        let mut args = vec!["--from", &from, "--to", &to, "--records-per-year", &records];
        args.extend_from_slice(extra);
        self.generate(&args);
    }

    /// Writes `inputs/a.csv` with the canonical header and no records.
    pub fn empty_input(&self) {
        self.write("inputs/a.csv", &canonical_csv(&[]));
    }

    /// Publishes a run of 2020 over one record (province 44, USA) and returns its `indices`
    /// file of province 44.
    pub fn publish_one_record(&self) -> PathBuf {
        self.run_records(&[(2020, "44", "USA", "8504", 10.0, "USD")], &[2020], "");
        partition_file(&self.path("out/indices/year=2020/province=44"))
    }

    /// Writes `records` as `inputs/a.csv` (see [`canonical_csv`]) and `config.toml` for
    /// `years` with `extra` (see [`Scratch::config`]), runs it and insists it succeeds;
    /// returns what it printed.
    pub fn run_records(
        &self,
        records: &[(i32, &str, &str, &str, f64, &str)],
        years: &[i32],
        extra: &str,
    ) -> String {
        self.write("inputs/a.csv", &canonical_csv(records));
        self.config(years, extra);
        self.run_ok()
    }

    /// Runs `exdep run --config config.toml --quiet` and insists it succeeds.
    pub fn run_ok(&self) -> String {
        self.run_ok_with(&[])
    }

    /// [`Scratch::run_ok`] with more arguments.
    pub fn run_ok_with(&self, extra: &[&str]) -> String {
        self.run_config_ok_with_env("config.toml", extra, &[])
    }

    /// [`Scratch::run_ok`] with another config file of this folder.
    pub fn run_ok_with_config(&self, config: &str) -> String {
        self.run_config_ok_with_env(config, &[], &[])
    }

    /// Runs `exdep run --config CONFIG --quiet EXTRA` in this folder with the environment
    /// variables `env` (see [`Scratch::exdep_command`]) and insists it succeeds; returns what
    /// it printed.
    pub fn run_config_ok_with_env(
        &self,
        config: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> String {
        let mut args = vec!["run", "--config", config, "--quiet"];
        args.extend_from_slice(extra);
        let output = self
            .exdep_command(&args, env)
            .output()
            .expect("the exdep binary runs");
        assert!(
            output.status.success(),
            "exdep run failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// A config for `years` reading `inputs/*.csv` in the canonical format: `top` holds its
/// top-level keys (`output`, `warehouse`, ...), and each code table is the shipped one unless
/// `tables` names another for its key.
pub fn config_text(years: &[i32], top: &str, tables: &[(&str, &str)]) -> String {
    let shipped = configs_dir();
    let years: Vec<String> = years.iter().map(|y| y.to_string()).collect();
    let mut text = format!(
        "years = [{}]\n{top}\n[[inputs]]\nlocation = \"inputs/*.csv\"\n\
         format = \"canonical-csv\"\n\n[tables]\n",
        years.join(", ")
    );
    for (key, file) in [
        ("hs-chapters", "hs_chapters.csv"),
        ("partner-regions", "partner_regions.csv"),
        ("provinces", "provinces.csv"),
        ("province-tiles", "province_tiles.csv"),
        ("exchange-rates", "cny_per_usd.csv"),
    ] {
        let location = tables.iter().find(|(k, _)| *k == key).map_or_else(
            || shipped.join(file).display().to_string(),
            |(_, l)| l.to_string(),
        );
        text.push_str(&format!("{key} = \"{location}\"\n"));
    }
    text
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

/// A published file's path with the run's id taken out of its name
/// (`indices/year=2020/province=44/part-00000-RUN.parquet` becomes `.../part-00000.parquet`):
/// each run names its files uniquely, so outputs are compared by partition and file index.
pub fn without_run_id(relative: &str) -> String {
    let (folder, name) = relative.rsplit_once('/').unwrap_or(("", relative));
    let name = match name
        .strip_prefix("part-")
        .and_then(|rest| rest.split_once('-'))
    {
        Some((index, _)) if name.ends_with(".parquet") => format!("part-{index}.parquet"),
        _ => name.to_string(),
    };
    if folder.is_empty() {
        name
    } else {
        format!("{folder}/{name}")
    }
}

/// Every Parquet file under `dir`, but those in folders whose names start with `_` (the
/// staging folder, a Delta log), by path relative to `dir` without the run id, with its
/// bytes.
pub fn table_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for path in files_under(dir, Unlistable::Skip, |folder| !folder.starts_with('_')) {
        if path.extension().is_some_and(|e| e == "parquet") {
            let relative = path.strip_prefix(dir).unwrap().display().to_string();
            files.insert(without_run_id(&relative), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// What [`files_under`] does with a folder it cannot list.
#[derive(Clone, Copy)]
pub enum Unlistable {
    /// Fails the test: the tree is expected to be there and to hold still while it is listed.
    Fail,
    /// Passes it over: the folder may not exist, or a running process may remove it while
    /// it is listed.
    Skip,
}

/// The paths of the files under `dir`, at any depth, but those in folders whose names
/// `enter` refuses; `unlistable` says what becomes of a folder that cannot be listed.
pub fn files_under(
    dir: &Path,
    unlistable: Unlistable,
    enter: impl Fn(&str) -> bool,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = match (std::fs::read_dir(&folder), unlistable) {
            (Ok(entries), _) => entries,
            (Err(_), Unlistable::Skip) => continue,
            (Err(e), Unlistable::Fail) => panic!("{}: {e}", folder.display()),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                files.push(path);
            } else if enter(&entry.file_name().to_string_lossy()) {
                pending.push(path);
            }
        }
    }
    files
}

/// The one Parquet file of a partition folder.
pub fn partition_file(folder: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{}: {files:?}", folder.display());
    files[0].clone()
}

/// Starts two exdep runs on the same output with `start` (which pipes their standard error),
/// the second `offset_ms` milliseconds after the first, and asserts that the run lease
/// refused exactly one of them, saying `refusal` (how it names the lock's holder). Returns
/// what the refused run printed on standard error.
#[track_caller]
pub fn assert_one_refused_on_the_lock(
    start: impl Fn() -> Child,
    offset_ms: u64,
    refusal: &str,
) -> String {
    let first = start();
    std::thread::sleep(std::time::Duration::from_millis(offset_ms));
    let second = start();
    let outcomes: Vec<(bool, String)> = [first, second]
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            (output.status.success(), stderr)
        })
        .collect();
    let failed: Vec<&String> = outcomes.iter().filter(|o| !o.0).map(|o| &o.1).collect();
    assert_eq!(failed.len(), 1, "offset {offset_ms} ms: {outcomes:?}");
    assert!(
        failed[0].contains(refusal),
        "offset {offset_ms} ms: {}",
        failed[0]
    );
    failed[0].clone()
}

/// Runs `python3 tests/reference/SCRIPT ARGS`, in the folder `dir` if given (else the
/// test's own), and insists it succeeds; returns its output. A failure names the script,
/// its arguments and `install_hint` (what it needs installed), and shows what the script
/// printed, then `context`.
#[track_caller]
pub fn reference_script(
    script: &str,
    args: &[impl AsRef<OsStr>],
    dir: Option<&Path>,
    install_hint: &str,
    context: &str,
) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/reference")
        .join(script);
    let mut command = Command::new("python3");
    command.arg(path).args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().expect("python3 runs");
    let args: Vec<String> = (args.iter())
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        output.status.success(),
        "{script} {} failed ({install_hint}):\n{}\n{}\n{context}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn run_ids_are_taken_out_of_file_names() {
    assert_eq!(
        without_run_id("lq/year=2020/part-00003-20261201T052300123Z-4242.parquet"),
        "lq/year=2020/part-00003.parquet"
    );
    assert_eq!(without_run_id("_manifest.json"), "_manifest.json");
}

/// A server a test starts on a free loopback port, killed and waited for on drop.
pub struct LocalServer {
    child: Child,
    pub port: u16,
}

impl LocalServer {
    /// Starts `program` with `args`, in which `{port}` stands for a free loopback port, and
    /// waits until the port accepts connections. Fails, naming `install`, when the program
    /// is not found.
    pub fn start(program: &str, args: &[&str], install: &str) -> Self {
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args: Vec<String> = (args.iter())
            .map(|arg| arg.replace("{port}", &port.to_string()))
            .collect();
        let child = Command::new(program)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} cannot start ({install}): {e}"));
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{program} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
