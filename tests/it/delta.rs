//! Publication as Delta Lake tables, read back by other engines (the delta-rs Python reader
//! and Polars, `tests/reference/read_published.py`): the same rows as the plain Parquet
//! output of the same inputs, one commit per table per run, commits that remove only the
//! files of the years a run replaced, and a run killed while it publishes leaves every table
//! at its old version or its new one.
//!
//! These need python3 with `deltalake`, `polars` and `duckdb`, so they are `#[ignore]`d
//! (see README's test command, which `.ci/run` runs with those packages installed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Scratch, config_text, reference_script};

/// Runs `read_published.py COMMAND OUTPUT` and parses what it prints.
pub fn read_published(command: &str, output: &Path) -> BTreeMap<String, Value> {
    read_published_with(&[command, &output.display().to_string()])
}

/// Runs `read_published.py ARGS` and parses what it prints.
fn read_published_with(args: &[&str]) -> BTreeMap<String, Value> {
    let result = reference_script(
        "read_published.py",
        args,
        None,
        "python3 -m pip install deltalake polars duckdb",
        "",
    );
    serde_json::from_slice(&result.stdout).expect("JSON")
}

/// Every table's rows at Delta version `version`.
fn read_published_at(output: &Path, version: u64) -> BTreeMap<String, Value> {
    read_published_with(&["rows", &output.display().to_string(), &version.to_string()])
}

/// Writes config `NAME.toml` for `years` over `inputs/*.csv`, publishing to `NAME-out` with
/// its own warehouse, in `format`.
fn config(scratch: &Scratch, name: &str, years: &[i32], format: &str) {
    let top = format!(
        "output = \"{name}-out\"\nwarehouse = \"{name}-warehouse\"\ntable-format = \"{format}\"\n"
    );
    scratch.write(&format!("{name}.toml"), &config_text(years, &top, &[]));
}

fn run(scratch: &Scratch, name: &str) -> String {
    let output = scratch.exdep(&["run", "--config", &format!("{name}.toml"), "--quiet"]);
    assert!(
        output.status.success(),
        "exdep run --config {name}.toml failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The number of commits of each Delta table under `output`.
fn commits(output: &Path) -> BTreeMap<String, usize> {
    read_published("history", output)
        .into_iter()
        .map(|(table, history)| (table, history.as_array().unwrap().len()))
        .collect()
}

/// The files of each Delta table's latest version, by path under the table.
fn files(output: &Path) -> BTreeMap<String, BTreeSet<String>> {
    read_published("files", output)
        .into_iter()
        .map(|(table, files)| {
            let files = files
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (table, files)
        })
        .collect()
}

/// The years of the files `before` had and `after` no longer has, by table.
fn removed_years(
    before: &BTreeMap<String, BTreeSet<String>>,
    after: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeSet<i32>> {
    let year = |path: &str| -> i32 {
        let folder = path.split('/').next().unwrap();
        folder.strip_prefix("year=").unwrap().parse().unwrap()
    };
    before
        .iter()
        .map(|(table, files)| {
            let gone = files
                .difference(&after[table])
                .map(|path| year(path))
                .collect();
            (table.clone(), gone)
        })
        .filter(|(_, years): &(String, BTreeSet<i32>)| !years.is_empty())
        .collect()
}

/// Whether the rows of every table equal between two outputs.
fn assert_same_rows(delta: &Path, parquet: &Path, when: &str) {
    let (delta, parquet) = (
        read_published("rows", delta),
        read_published("rows", parquet),
    );
    assert_eq!(
        delta.keys().collect::<Vec<_>>(),
        parquet.keys().collect::<Vec<_>>(),
        "{when}: the tables"
    );
    for (table, rows) in &delta {
        assert!(
            rows.as_array().unwrap().len() == parquet[table].as_array().unwrap().len()
                && rows == &parquet[table],
            "{when}: `{table}` differs between the Delta and the Parquet output"
        );
    }
}

const TABLES: [&str; 8] = [
    "destinations",
    "indices",
    "indices_change",
    "lq",
    "margins",
    "region_shares",
    "rejects",
    "top_links",
];

#[test]
#[ignore = "needs python3 with deltalake, polars and duckdb"]
fn delta_tables_equal_the_parquet_output_and_commit_only_what_changed() {
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", "8000", "--dirty-every", "400"]);
    std::fs::remove_file(scratch.path("inputs/exports-2022.csv")).unwrap();
    let years: Vec<i32> = (2017..=2021).collect();
    config(&scratch, "delta", &years, "delta");
    config(&scratch, "parquet", &years, "parquet");
    run(&scratch, "delta");
    run(&scratch, "parquet");
    let (delta, parquet) = (scratch.path("delta-out"), scratch.path("parquet-out"));
    assert_same_rows(&delta, &parquet, "first run");
    let first_rows = read_published("rows", &delta);
    let first = commits(&delta);
    assert_eq!(
        first.keys().map(String::as_str).collect::<Vec<_>>(),
        TABLES,
        "every table is a Delta table"
    );
    assert!(
        first.values().all(|&n| n == 1),
        "one commit each: {first:?}"
    );

    // 2022 is added: one more commit per table, which removes no file of 2017-2021 (the
    // quarantine's year 0, records without a year, is replaced as a whole).
    let before = files(&delta);
    scratch.generate(&[
        "--records-per-year",
        "8000",
        "--dirty-every",
        "400",
        "--from",
        "2022",
        "--to",
        "2022",
    ]);
    let years: Vec<i32> = (2017..=2022).collect();
    config(&scratch, "delta", &years, "delta");
    config(&scratch, "parquet", &years, "parquet");
    run(&scratch, "delta");
    run(&scratch, "parquet");
    assert_same_rows(&delta, &parquet, "2022 added");
    let second = commits(&delta);
    assert!(second.values().all(|&n| n == 2), "{second:?}");
    // Time travel: version 0 is the first run's tables.
    assert!(
        read_published_at(&delta, 0) == first_rows,
        "version 0 differs from what the first run published"
    );
    let after = files(&delta);
    for (table, years) in removed_years(&before, &after) {
        assert!(
            table == "rejects" && years == BTreeSet::from([0]),
            "adding 2022 removed files of {years:?} from `{table}`"
        );
    }
    for table in TABLES.iter().filter(|t| **t != "rejects") {
        assert!(
            after[*table].iter().any(|f| f.starts_with("year=2022/")),
            "{table} has 2022"
        );
    }

    // 2019's input changes: only the files of the years that read 2019 (2019 itself, and
    // 2020's margins and changes) are removed.
    let before = after;
    let file = scratch.path("inputs/exports-2019.csv");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("2019,,44,USA,8504,12345,USD\n");
    std::fs::write(&file, text).unwrap();
    run(&scratch, "delta");
    run(&scratch, "parquet");
    assert_same_rows(&delta, &parquet, "2019 changed");
    let removed = removed_years(&before, &files(&delta));
    assert!(removed["indices"].contains(&2019), "{removed:?}");
    for (table, years) in &removed {
        let allowed: BTreeSet<i32> = match table.as_str() {
            "margins" | "indices_change" => BTreeSet::from([2019, 2020]),
            "rejects" => BTreeSet::from([0, 2019]),
            _ => BTreeSet::from([2019]),
        };
        assert!(
            years.is_subset(&allowed),
            "changing 2019 removed files of {years:?} from `{table}`"
        );
    }
    let third = commits(&delta);
    for (table, count) in &third {
        let expected = if removed.contains_key(table) { 3 } else { 2 };
        assert_eq!(*count, expected, "commits of `{table}`: {third:?}");
    }

    // Every file's statistics, as delta-rs reads them, are its data's bounds and null
    // counts, on the columns readers filter on; each commit's metrics count its actions.
    let statistics = read_published("statistics", &delta);
    for (table, read) in &statistics {
        assert_eq!(read["mismatches"], serde_json::json!([]), "{table}");
    }
    let bounded = |table: &str| -> Vec<String> {
        serde_json::from_value(statistics[table]["bounded"].clone()).unwrap()
    };
    for (table, columns) in [
        ("indices", &["category", "exports_usd"][..]),
        ("lq", &["partner", "category"]),
        ("top_links", &["province", "partner"]),
    ] {
        for column in columns {
            assert!(
                bounded(table).iter().any(|c| c == column),
                "{table} has bounds of {column}: {:?}",
                bounded(table)
            );
        }
    }
    // Readers skip files by them: a Delta table's files hold one category each, so a query
    // of one category (of the four and `all`) opens about a fifth of `indices`' files, in
    // delta-rs and in Polars (not every origin ships every category every year).
    let pruning = &statistics["indices"]["pruning"];
    let of = pruning["of"].as_u64().unwrap();
    for reader in ["delta_rs_files", "polars_files"] {
        let files = pruning[reader].as_u64().unwrap();
        assert!(files > 0 && files * 4 < of, "{reader}: {pruning}");
    }
    let metrics = &statistics["indices"]["metrics"];
    assert!(
        metrics["num_removed_files"].as_u64() > Some(0)
            && metrics["num_added_rows"].as_u64() > Some(0),
        "replacing 2019 adds and removes files: {metrics}"
    );

    // The manifest records each table's version, and vacuum keeps what the retention keeps.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(delta.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["table_format"], "delta");
    for (table, count) in &third {
        assert_eq!(
            manifest["delta_versions"][table].as_u64(),
            Some(*count as u64 - 1),
            "{table}"
        );
    }
    let vacuum = |config: &str| -> usize {
        let output = scratch.exdep(&["vacuum", "--config", config]);
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{printed}");
        let line = printed
            .lines()
            .find(|l| l.starts_with("indices: "))
            .unwrap_or_else(|| panic!("{printed}"));
        line["indices: ".len()..line.find(" files").unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(vacuum("delta.toml"), 0, "within the default retention");
    let mut text = std::fs::read_to_string(scratch.path("delta.toml")).unwrap();
    text.insert_str(
        0,
        "vacuum-retention-hours = 0\nvacuum-retention-check = false\n",
    );
    std::fs::write(scratch.path("delta.toml"), text).unwrap();
    assert!(
        vacuum("delta.toml") > 0,
        "removed files are deleted past the retention"
    );
    assert_same_rows(&delta, &parquet, "after vacuum");
    let inspect = scratch.exdep(&[
        "inspect",
        "indices",
        "--config",
        "delta.toml",
        "--year",
        "2019",
        "--province",
        "44",
    ]);
    let printed = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        inspect.status.success() && printed.contains("| 2019 ") && printed.contains("| 44 "),
        "{printed}{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

/// Copies the folder `from` to `to`, replacing `to`.
fn copy_folder(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts `exdep run --config NAME.toml` and kills it `delay` after it says it publishes;
/// returns whether it was still running then.
fn kill_while_publishing(scratch: &Scratch, name: &str, delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exdep"))
        .args(["run", "--config", &format!("{name}.toml")])
        .current_dir(scratch.dir.path())
        .env("EXDEP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("publishing") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never published");
    }
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// A run killed at several moments of its publishing: every Delta table is read, by
/// delta-rs and Polars, at its old version or its new one; in plain Parquet the manifest,
/// when there is one, lists only files that exist. The next run in either publishes what a
/// clean run on the same inputs publishes.
#[test]
#[ignore = "needs python3 with deltalake, polars and duckdb"]
fn a_run_killed_while_publishing_leaves_old_or_new_versions() {
    let scratch = Scratch::new();
    let years = [2019, 2020, 2021];
    let generate = |seed: &str| {
        scratch.generate(&[
            "--records-per-year",
            "6000",
            "--from",
            "2019",
            "--to",
            "2021",
            "--seed",
            seed,
        ]);
    };
    generate("1");
    for format in ["delta", "parquet"] {
        config(&scratch, format, &years, format);
        run(&scratch, format);
        copy_folder(
            &scratch.path(&format!("{format}-out")),
            &scratch.path(&format!("{format}-old-out")),
        );
        copy_folder(
            &scratch.path(&format!("{format}-warehouse")),
            &scratch.path(&format!("{format}-old-warehouse")),
        );
    }
    let old = read_published("rows", &scratch.path("delta-out"));
    // The new inputs, published by a clean run in each format.
    generate("2");
    let mut clean = BTreeMap::new();
    for format in ["delta", "parquet"] {
        let name = format!("clean-{format}");
        config(&scratch, &name, &years, format);
        run(&scratch, &name);
        clean.insert(
            format,
            read_published("rows", &scratch.path(&format!("{name}-out"))),
        );
    }
    let new = &clean["delta"];
    assert_ne!(&old, new);

    let mut killed_in_time = 0;
    for delay_ms in [0, 1, 3, 8, 15, 30, 60] {
        for format in ["delta", "parquet"] {
            for layer in ["out", "warehouse"] {
                copy_folder(
                    &scratch.path(&format!("{format}-old-{layer}")),
                    &scratch.path(&format!("{format}-{layer}")),
                );
            }
            let running = kill_while_publishing(&scratch, format, Duration::from_millis(delay_ms));
            killed_in_time += usize::from(running);
            let out = scratch.path(&format!("{format}-out"));
            if format == "delta" {
                let now = read_published("rows", &out);
                for (table, rows) in &now {
                    assert!(
                        rows == &old[table] || rows == &new[table],
                        "killed {delay_ms} ms into publishing: `{table}` is neither its old \
                         nor its new version"
                    );
                }
            } else if let Ok(bytes) = std::fs::read(out.join("_manifest.json")) {
                let manifest: Value = serde_json::from_slice(&bytes).unwrap();
                for table in manifest["tables"].as_array().unwrap() {
                    for file in table["files"].as_array().unwrap() {
                        let location = file["location"].as_str().unwrap();
                        let path = location.strip_prefix("file://").unwrap();
                        assert!(
                            Path::new(path).is_file(),
                            "killed {delay_ms} ms into publishing: the manifest lists \
                             {location}, which is gone"
                        );
                    }
                }
            }
            // The next run repairs: the tables are the clean run's.
            run(&scratch, format);
            let repaired = read_published("rows", &out);
            let expected = &clean[format];
            let differing: Vec<&String> = expected
                .keys()
                .chain(repaired.keys())
                .filter(|table| repaired.get(*table) != expected.get(*table))
                .collect();
            assert!(
                differing.is_empty(),
                "killed {delay_ms} ms into publishing: after the next {format} run, \
                 {differing:?} differ from a clean run's"
            );
        }
    }
    assert!(
        killed_in_time >= 4,
        "only {killed_in_time} runs were still publishing when killed"
    );
}
