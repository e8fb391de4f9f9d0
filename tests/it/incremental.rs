//! Incremental reruns on the local filesystem: a changed input redoes its year and the
//! tables that read it, `--years` redoes a year by hand, a year dropped from the config
//! keeps its published tables until `--prune`, and every incremental result equals a
//! `--force` run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::support::Scratch;

/// Every file under `dir` (the output root), by relative path, with its modification time
/// and bytes.
fn files(dir: &Path) -> BTreeMap<String, (SystemTime, Vec<u8>)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                let modified = entry.metadata().unwrap().modified().unwrap();
                found.insert(relative, (modified, std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

/// The files written (new or with a new modification time) between two listings.
fn written(
    before: &BTreeMap<String, (SystemTime, Vec<u8>)>,
    after: &BTreeMap<String, (SystemTime, Vec<u8>)>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(path, (modified, _))| before.get(*path).is_none_or(|b| b.0 != *modified))
        .map(|(path, _)| path.clone())
        .filter(|path| !path.starts_with('_'))
        .collect()
}

/// The table files' bytes, without the manifest and markers.
pub(crate) fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .filter(|(path, _)| path.ends_with(".parquet"))
        .map(|(path, (_, bytes))| (path, bytes))
        .collect()
}

/// Whether every written file is in a partition of one of `years` for one of `tables`
/// (every table when `tables` is empty).
fn only_in(written: &[String], tables: &[&str], year: i32) -> bool {
    written.iter().all(|path| {
        path.contains(&format!("/year={year}/"))
            && (tables.is_empty() || tables.iter().any(|t| path.starts_with(&format!("{t}/"))))
    })
}

const YEARS: [i32; 6] = [2017, 2018, 2019, 2020, 2021, 2022];

#[test]
fn reruns_redo_what_changed_and_equal_a_forced_run() {
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", "3000", "--dirty-every", "250"]);
    scratch.config(&YEARS, "");
    scratch.run_ok();
    let out = scratch.path("out");

    // One more 2019 record: 2019 is redone, and 2020's margins and changes, which read it.
    let first = files(&out);
    let file = scratch.path("inputs/exports-2019.csv");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("2019,,44,USA,8504,12345,USD\n");
    std::fs::write(&file, text).unwrap();
    let summary = scratch.run_ok();
    assert!(summary.contains("2019  recomputed: input"), "{summary}");
    assert!(
        summary.contains("2020  tables indices_change, margins"),
        "{summary}"
    );
    assert!(summary.contains("2018  skipped: current"), "{summary}");
    let second = files(&out);
    // The 2019 file's records of no run year are in the quarantine's year 0.
    let changed: Vec<String> = written(&first, &second)
        .into_iter()
        .filter(|p| !p.starts_with("rejects/year=0/"))
        .collect();
    let (in_2019, in_2020): (Vec<String>, Vec<String>) =
        changed.into_iter().partition(|p| p.contains("/year=2019/"));
    assert!(
        in_2019.iter().any(|p| p.starts_with("indices/")),
        "{in_2019:?}"
    );
    assert!(
        only_in(&in_2020, &["margins", "indices_change"], 2020),
        "{in_2020:?}"
    );
    assert!(
        in_2020.iter().any(|p| p.starts_with("margins/")),
        "{in_2020:?}"
    );

    let incremental = contents(&out);
    let summary = scratch.run_ok_with(&["--force"]);
    assert!(summary.contains("rebuilt every year: --force"), "{summary}");
    assert_eq!(contents(&out), incremental, "incremental = forced");

    // A year redone by hand.
    let before = files(&out);
    let summary = scratch.run_ok_with(&["--years", "2021"]);
    assert!(
        summary.contains("2021  recomputed: named by --years"),
        "{summary}"
    );
    let changed: Vec<String> = written(&before, &files(&out))
        .into_iter()
        .filter(|p| !p.starts_with("rejects/year=0/"))
        .collect();
    let (in_2021, in_2022): (Vec<String>, Vec<String>) =
        changed.into_iter().partition(|p| p.contains("/year=2021/"));
    assert!(!in_2021.is_empty());
    assert!(
        only_in(&in_2022, &["margins", "indices_change"], 2022),
        "{in_2022:?}"
    );
    assert_eq!(contents(&out), incremental, "a redone year is the same");

    // 2022 leaves the config: its tables stay published until --prune.
    scratch.config(&YEARS[..5], "");
    let summary = scratch.run_ok();
    assert!(
        summary.contains("removed from the warehouse: 2022"),
        "{summary}"
    );
    assert!(out.join("indices/year=2022").is_dir());
    assert!(!scratch.path("warehouse/cube/year=2022").exists());
    let status = scratch.exdep(&["status", "--config", "config.toml"]);
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("published but no longer configured"),
        "{status}"
    );
    let summary = scratch.run_ok_with(&["--prune"]);
    assert!(
        summary.contains("pruned from the output: 2022"),
        "{summary}"
    );
    let left: Vec<String> = contents(&out)
        .into_keys()
        .filter(|p| p.contains("year=2022"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(scratch.run_ok().contains("nothing changed"));
}
