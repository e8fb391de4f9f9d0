//! exdep's tables against an independent recomputation in DuckDB
//! (`tests/reference/check_outputs.py`), on synthetic data with defects mixed in.
//!
//! The check needs python3 with the `duckdb` package. Without them it is skipped with a
//! message, unless `EXDEP_REQUIRE_REFERENCE=1` (set by `.ci/run`), which makes it fail.

use std::path::Path;
use std::process::Command;

use crate::support::{Scratch, configs_dir};

fn reference_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("EXDEP_REQUIRE_REFERENCE").as_deref() != Ok("1"),
            "EXDEP_REQUIRE_REFERENCE=1 but python3 with duckdb is not available"
        );
        eprintln!("skipping the DuckDB reference check: python3 with duckdb not found");
    }
    found
}

fn check(scratch: &Scratch, inputs: &[&Path], years: &str, options: &[&str]) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/check_outputs.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg("--configs")
        .arg(configs_dir())
        .arg("--output")
        .arg(scratch.path("out"))
        .args(["--years", years])
        .args(options)
        .args(inputs);
    let output = command.output().expect("python3 runs");
    assert!(
        output.status.success(),
        "the DuckDB reference disagrees:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Generates `records_per_year` records (with defects) per year into `inputs/`.
fn generate(scratch: &Scratch, from: i32, to: i32, records_per_year: usize, extra: &[&str]) {
    let (from, to, records) = (
        from.to_string(),
        to.to_string(),
        records_per_year.to_string(),
    );
    let mut args = vec!["--from", &from, "--to", &to, "--records-per-year", &records];
    args.extend_from_slice(extra);
    scratch.generate(&args);
}

fn csv_inputs(scratch: &Scratch, years: std::ops::RangeInclusive<i32>) -> Vec<std::path::PathBuf> {
    years
        .map(|y| scratch.path(&format!("inputs/exports-{y}.csv")))
        .collect()
}

/// The study's six years at a million records, every table, default settings.
#[test]
fn a_million_records_match_an_independent_duckdb_computation() {
    if !reference_available() {
        return;
    }
    let scratch = Scratch::new();
    generate(&scratch, 2017, 2022, 170_000, &["--dirty-every", "5000"]);
    scratch.config(&[2017, 2018, 2019, 2020, 2021, 2022], "");
    scratch.run_ok();
    let inputs = csv_inputs(&scratch, 2017..=2022);
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    check(&scratch, &inputs, "2017,2018,2019,2020,2021,2022", &[]);
}

/// Regions as destinations, another base year, top-n and threshold.
#[test]
fn region_level_settings_match_the_reference() {
    if !reference_available() {
        return;
    }
    let scratch = Scratch::new();
    generate(&scratch, 2018, 2021, 20_000, &["--dirty-every", "250"]);
    scratch.config(
        &[2018, 2019, 2020, 2021],
        "[indices]\ndestination-level = \"region\"\nbase-year = 2019\ntop-n = 5\n\
         destination-threshold-cny = 5e10\n",
    );
    scratch.run_ok();
    let inputs = csv_inputs(&scratch, 2018..=2021);
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    check(
        &scratch,
        &inputs,
        "2018,2019,2020,2021",
        &[
            "--destination-level",
            "region",
            "--base-year",
            "2019",
            "--top-n",
            "5",
            "--threshold-cny",
            "5e10",
        ],
    );
}

#[test]
fn parquet_inputs_match_the_reference_too() {
    if !reference_available() {
        return;
    }
    let scratch = Scratch::new();
    let generated = scratch.exdep(&[
        "generate",
        "--out",
        "inputs",
        "--from",
        "2022",
        "--to",
        "2022",
        "--records-per-year",
        "5000",
        "--format",
        "parquet",
        "--dirty-every",
        "100",
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let config = scratch.config(&[2022], "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("inputs/*.csv", "inputs/*.parquet")
        .replace("canonical-csv", "canonical-parquet");
    std::fs::write(&config, text).unwrap();
    scratch.run_ok();
    check(
        &scratch,
        &[&scratch.path("inputs/exports-2022.parquet")],
        "2022",
        &[],
    );
}
