//! Safe publication: a run killed while it computes leaves every published partition as it
//! was and readable, and the next run repairs what the killed one left.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Scratch, read_table};

/// Every Parquet file under `dir` (skipping `skip`), by path relative to `dir`, with its bytes.
fn parquet_files(dir: &Path, skip: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(dir).unwrap().display().to_string();
            if relative.starts_with(skip) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if relative.ends_with(".parquet") {
                files.insert(relative, std::fs::read(&path).unwrap());
            }
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
