//! Safe publication: a run killed while it computes leaves every published partition as it
//! was and readable, and the next run repairs what the killed one left.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Scratch, Unlistable, assert_one_refused_on_the_lock, config_text, files_under, read_table,
    without_run_id,
};

/// Every Parquet file under `dir` (skipping `skip`), by path relative to `dir` without the
/// run id, with its bytes.
fn parquet_files(dir: &Path, skip: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for path in files_under(dir, Unlistable::Fail, |_| true) {
        let relative = path.strip_prefix(dir).unwrap().display().to_string();
        if !relative.starts_with(skip) && relative.ends_with(".parquet") {
            files.insert(without_run_id(&relative), std::fs::read(&path).unwrap());
        }
    }
    files
}

fn generate(scratch: &Scratch, seed: &str) {
    scratch.generate(&["--records-per-year", "80000", "--seed", seed]);
}

fn any_parquet_under(dir: &Path) -> bool {
    dir.exists() && !parquet_files(dir, "\u{0}").is_empty()
}

#[tokio::test]
async fn a_run_killed_while_writing_leaves_published_tables_whole() {
    let scratch = Scratch::new();
    generate(&scratch, "1");
    scratch.config(&[2017, 2018, 2019, 2020, 2021, 2022], "");
    scratch.run_ok();
    let out = scratch.path("out");
    let before = parquet_files(&out, "_");
    assert!(before.len() > 100);

    // New data, and a run killed once it has started writing its tables.
    generate(&scratch, "2");
    let mut child = Command::new(env!("CARGO_BIN_EXE_exdep"))
        .args(["run", "--config", "config.toml", "--quiet"])
        .current_dir(scratch.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !any_parquet_under(&out.join("_staging")) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(Instant::now() < deadline, "the run never started writing");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(
        parquet_files(&out, "_"),
        before,
        "published partitions changed"
    );
    for table in [
        "indices",
        "lq",
        "region_shares",
        "margins",
        "indices_change",
        "top_links",
    ] {
        assert!(
            !read_table(&out, table, "year").await.is_empty(),
            "{table} reads"
        );
    }

    // The next run completes and matches a clean run on the same inputs.
    scratch.run_ok();
    assert!(!any_parquet_under(&out.join("_staging")), "staging cleared");
    let clean = Scratch::new();
    std::fs::create_dir_all(clean.path("inputs")).unwrap();
    for year in 2017..=2022 {
        let name = format!("inputs/exports-{year}.csv");
        std::fs::copy(scratch.path(&name), clean.path(&name)).unwrap();
    }
    clean.config(&[2017, 2018, 2019, 2020, 2021, 2022], "");
    clean.run_ok();
    let repaired = parquet_files(&out, "_");
    assert_eq!(
        repaired,
        parquet_files(&clean.path("out"), "_"),
        "repaired = clean run"
    );
    assert_ne!(repaired, before, "the new data was published");
}

/// Starts `exdep run --config CONFIG --quiet` in the scratch folder.
fn spawn_run(scratch: &Scratch, config: &str) -> std::process::Child {
    (scratch.exdep_command(&["run", "--config", config, "--quiet"], &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the exdep binary runs")
}

/// Two runs started together on the same output and warehouse, at several offsets: one
/// fails at once with one line naming the lock's holder, the other publishes; the tables
/// equal a clean run's, and the next run works and changes nothing.
#[test]
fn two_runs_at_once_one_publishes_the_other_fails_naming_the_holder() {
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", "20000"]);
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    let expected = parquet_files(&scratch.path("out"), "_");
    for offset_ms in [0, 40, 250] {
        let _ = std::fs::remove_dir_all(scratch.path("out"));
        let _ = std::fs::remove_dir_all(scratch.path("warehouse"));
        let refused = assert_one_refused_on_the_lock(
            || spawn_run(&scratch, "config.toml"),
            offset_ms,
            "_exdep.lock is held by the run on host",
        );
        let message = refused.trim();
        assert!(
            message.contains("pid")
                && message.contains("--break-lock")
                && message.lines().count() == 1,
            "offset {offset_ms} ms: {message}"
        );
        assert_eq!(
            parquet_files(&scratch.path("out"), "_"),
            expected,
            "offset {offset_ms} ms: the published tables are a clean run's"
        );
        assert!(!scratch.path("out/_exdep.lock").exists());
        assert!(!scratch.path("warehouse/_exdep.lock").exists());
        assert!(scratch.run_ok().contains("nothing changed"));
    }
}

/// A lock left by a dead run on this host is taken over; one from another host stops the
/// run, naming the holder, until `--break-lock`.
#[test]
fn a_stale_lock_is_taken_over_and_a_foreign_one_needs_break_lock() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n2021,,44,USA,8504,10,USD\n",
    );
    scratch.config(&[2021], "");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let lock = |host: &str, pid: u32| {
        format!(
            "{{\"host\": \"{host}\", \"pid\": {pid}, \"started\": \"2026-01-01T00:00:00Z\", \
             \"run_id\": \"old\"}}"
        )
    };
    // No process has pid 4194304 (above Linux's largest).
    scratch.write("out/_exdep.lock", &lock(&host, 4_194_304));
    scratch.run_ok();
    assert!(!scratch.path("out/_exdep.lock").exists());

    scratch.write("warehouse/_exdep.lock", &lock("elsewhere", 1));
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet", "--force"]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("held by the run on host elsewhere (pid 1) started at 2026-01-01"),
        "{message}"
    );
    scratch.run_ok_with(&["--force", "--break-lock"]);
    assert!(!scratch.path("warehouse/_exdep.lock").exists());
}

/// An input set with no records for published years (here a header-only file) fails the
/// run, naming the years, and leaves the outputs as they were, unless
/// `--allow-empty-years`.
#[test]
fn published_years_are_not_erased_by_an_empty_input_unless_allowed() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n\
         2020,,44,USA,8504,10,USD\n2021,,44,USA,8504,10,USD\n",
    );
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    let before = parquet_files(&scratch.path("out"), "_");
    let manifest = std::fs::read(scratch.path("out/_manifest.json")).unwrap();
    scratch.empty_input();
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "a data problem: {message}");
    assert!(
        message.contains("this run has no records for published years 2020-2021")
            && message.contains("--allow-empty-years"),
        "{message}"
    );
    assert_eq!(parquet_files(&scratch.path("out"), "_"), before);
    assert_eq!(
        std::fs::read(scratch.path("out/_manifest.json")).unwrap(),
        manifest
    );
    assert!(scratch.path("out/_SUCCESS").exists());
    scratch.run_ok_with(&["--allow-empty-years"]);
    assert!(parquet_files(&scratch.path("out/indices"), "_").is_empty());
}

/// A run whose records are all accepted still publishes `rejects`: a file of no rows, with
/// the table's columns, in every year, so that a job reading the table finds it (plain
/// Parquet; a Delta table is a table whatever its files).
#[tokio::test]
async fn rejects_is_a_table_even_without_rejected_records() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n\
         2020,1,44,USA,8504,10,USD\n\
         2021,1,44,DEU,8504,20,USD\n",
    );
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    for year in [2020, 2021] {
        let folder = scratch.path(&format!("out/rejects/year={year}"));
        let files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "{}", folder.display());
    }
    let ctx = exdep_engine::datafusion::prelude::SessionContext::new();
    let rejects = ctx
        .read_parquet(
            scratch.path("out/rejects").to_str().unwrap(),
            exdep_engine::datafusion::prelude::ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    let columns: Vec<String> = (rejects.schema().fields().iter())
        .map(|field| field.name().clone())
        .collect();
    // The year is the partition folder's.
    assert_eq!(columns, ["source", "line", "reason", "raw"]);
    assert_eq!(rejects.count().await.unwrap(), 0);
    assert!(
        read_table(&scratch.path("out"), "rejects", "line")
            .await
            .is_empty()
    );

    // As a Delta table: committed, with no rows.
    scratch.write(
        "delta.toml",
        &config_text(
            &[2020, 2021],
            "output = \"delta-out\"\nwarehouse = \"delta-warehouse\"\ntable-format = \"delta\"\n",
            &[],
        ),
    );
    assert!(
        scratch.run_ok_with_config("delta.toml").contains("rejects"),
        "listed in the summary"
    );
    assert!(scratch.path("delta-out/rejects/_delta_log").is_dir());
    let inspected = scratch.exdep(&["inspect", "rejects", "--config", "delta.toml"]);
    assert!(
        inspected.status.success()
            && String::from_utf8_lossy(&inspected.stdout).contains("no rows"),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
}
