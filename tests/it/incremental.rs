//! Incremental reruns on the local filesystem: a changed input redoes its year and the
//! tables that read it, `--years` redoes a year by hand, a year dropped from the config
//! keeps its published tables until `--prune`, and every incremental result equals a
//! `--force` run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::support::{Scratch, Unlistable, files_under, without_run_id};

/// Every file under `dir` (the output root), by relative path without the run id, with its
/// modification time and bytes.
fn files(dir: &Path) -> BTreeMap<String, (SystemTime, Vec<u8>)> {
    (files_under(dir, Unlistable::Fail, |_| true).into_iter())
        .map(|path| {
            let relative = without_run_id(&path.strip_prefix(dir).unwrap().display().to_string());
            // The entry's own time, as the folder lists it: a link is not followed.
            let modified = std::fs::symlink_metadata(&path)
                .unwrap()
                .modified()
                .unwrap();
            (relative, (modified, std::fs::read(&path).unwrap()))
        })
        .collect()
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

/// Writes `config.toml` (output `out/`) and `fresh.toml` (output `fresh/out/`, warehouse
/// `fresh/warehouse/`) for the same years, base year and inputs, with the product cube and
/// `product_margins`, whose years read their previous year's products.
fn configs(scratch: &Scratch, years: &[i32], base_year: i32) {
    let config = scratch.config(
        years,
        &format!("[indices]\nbase-year = {base_year}\nproduct-margins = true\n"),
    );
    let fresh = std::fs::read_to_string(config)
        .unwrap()
        .replace("output = \"out\"", "output = \"fresh/out\"")
        .replace(
            "warehouse = \"warehouse\"",
            "warehouse = \"fresh/warehouse\"",
        );
    scratch.write("fresh.toml", &fresh);
}

/// Runs `config.toml` incrementally, then `fresh.toml` from nothing, and asserts that the
/// partitions of the configured years (and the quarantine's year 0) are the same files
/// with the same bytes; published years no longer configured stay until `--prune` and are
/// left out. `what` names the step for the failure message.
fn assert_incremental_equals_fresh(scratch: &Scratch, years: &[i32], what: &str) {
    // An edit may leave a published year without records (its file removed): meant here.
    scratch.run_ok_with(&["--allow-empty-years"]);
    let _ = std::fs::remove_dir_all(scratch.path("fresh"));
    let output = scratch.exdep(&["run", "--config", "fresh.toml", "--quiet"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let configured = |path: &String| {
        years
            .iter()
            .chain(&[0])
            .any(|y| path.contains(&format!("/year={y}/")))
    };
    let incremental: BTreeMap<String, Vec<u8>> = contents(&scratch.path("out"))
        .into_iter()
        .filter(|(path, _)| configured(path))
        .collect();
    let fresh = contents(&scratch.path("fresh/out"));
    let differing: std::collections::BTreeSet<&String> = incremental
        .keys()
        .chain(fresh.keys())
        .filter(|path| incremental.get(*path) != fresh.get(*path))
        .collect();
    assert!(
        differing.is_empty(),
        "after {what}: incremental and fresh runs differ in {differing:?}"
    );
}

/// A middle year leaves the config: the next year's margins and changes lose their
/// previous year and are recomputed (here: margins of 2020 have no rows any more).
#[test]
fn dropping_a_middle_year_recomputes_the_years_that_read_it() {
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", "400"]);
    configs(&scratch, &YEARS, 2017);
    scratch.run_ok();
    assert!(scratch.path("out/margins/year=2020").is_dir());
    let without_2019 = [2017, 2018, 2020, 2021, 2022];
    configs(&scratch, &without_2019, 2017);
    assert_incremental_equals_fresh(&scratch, &without_2019, "dropping 2019");
    assert!(!scratch.path("out/margins/year=2020").exists());
    assert!(!scratch.path("out/product_margins/year=2020").exists());
    assert!(scratch.path("out/product_margins/year=2021").is_dir());
}

/// An edit of the inputs or of the config between two runs.
#[derive(Debug, Clone)]
enum Edit {
    /// Appends a record to the year's file (of that year, or of the next).
    ChangeFile { year: i32, next_year: bool },
    /// Writes the year's file anew from another seed (creates it when missing).
    WriteFile { year: i32, seed: u64 },
    /// Deletes the year's file.
    RemoveFile { year: i32 },
    /// Adds the year to the config, or drops it (keeping at least two years).
    ToggleYear { year: i32 },
    /// Moves the base year to the n-th configured year.
    MoveBase { nth: usize },
}

fn edit() -> impl proptest::strategy::Strategy<Value = Edit> {
    use proptest::prelude::*;
    let year = || 2017..=2022i32;
    prop_oneof![
        (year(), any::<bool>()).prop_map(|(year, next_year)| Edit::ChangeFile { year, next_year }),
        (year(), 1..1000u64).prop_map(|(year, seed)| Edit::WriteFile { year, seed }),
        year().prop_map(|year| Edit::RemoveFile { year }),
        year().prop_map(|year| Edit::ToggleYear { year }),
        year().prop_map(|year| Edit::ToggleYear { year }),
        (0..6usize).prop_map(|nth| Edit::MoveBase { nth }),
    ]
}

/// Applies `edit` to the inputs, `years` and `base_year`.
fn apply(scratch: &Scratch, edit: &Edit, years: &mut Vec<i32>, base_year: &mut i32) {
    let file = |year: i32| scratch.path(&format!("inputs/exports-{year}.csv"));
    match *edit {
        Edit::ChangeFile { year, next_year } => {
            let mut text = std::fs::read_to_string(file(year))
                .unwrap_or_else(|_| "year,month,province,partner,hs_code,value,currency\n".into());
            let record_year = if next_year { year + 1 } else { year };
            text.push_str(&format!("{record_year},,65,KAZ,8504,{},USD\n", 1000 + year));
            std::fs::write(file(year), text).unwrap();
        }
        Edit::WriteFile { year, seed } => {
            let seed = seed.to_string();
            scratch.generate_years(year..=year, 150, &["--seed", &seed, "--dirty-every", "40"]);
        }
        Edit::RemoveFile { year } => {
            let _ = std::fs::remove_file(file(year));
        }
        Edit::ToggleYear { year } => {
            if let Some(at) = years.iter().position(|y| *y == year) {
                if years.len() > 2 {
                    years.remove(at);
                }
            } else {
                years.push(year);
                years.sort();
            }
        }
        Edit::MoveBase { nth } => *base_year = years[nth % years.len()],
    }
    if !years.contains(base_year) {
        *base_year = years[0];
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 4,
        max_shrink_iters: 16,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Random sequences of edits of inputs and config; after each, the incremental run
    /// equals a fresh run of the same config and inputs, byte for byte.
    #[test]
    fn any_sequence_of_edits_gives_what_a_fresh_run_gives(
        edits in proptest::collection::vec(edit(), 3..6)
    ) {
        let scratch = Scratch::new();
        scratch.generate(&["--records-per-year", "150", "--dirty-every", "40"]);
        let (mut years, mut base_year) = (vec![2017, 2018, 2019, 2020, 2021], 2017);
        configs(&scratch, &years, base_year);
        scratch.run_ok();
        for (step, edit) in edits.iter().enumerate() {
            apply(&scratch, edit, &mut years, &mut base_year);
            configs(&scratch, &years, base_year);
            assert_incremental_equals_fresh(
                &scratch,
                &years,
                &format!("edit {step} ({edit:?}) of {edits:?}"),
            );
        }
    }
}
