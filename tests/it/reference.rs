//! exdep's tables against an independent recomputation in DuckDB
//! (`tests/reference/check_outputs.py`), on synthetic data with defects mixed in.
//!
//! The check needs python3 with the `duckdb` package, so these tests are `#[ignore]`d: a plain
//! `cargo test` lists them as ignored, never as passed, and the test command in README
//! (`-- --include-ignored`, what `.ci/run` runs) runs them, failing where duckdb is missing.

use std::path::Path;
use std::process::Command;

use crate::support::{Scratch, Value, configs_dir, read_table, select};

fn require_reference() {
    let found = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the DuckDB reference check cannot run: python3 with duckdb not found \
         (python3 -m pip install duckdb)"
    );
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

fn csv_inputs(scratch: &Scratch, years: std::ops::RangeInclusive<i32>) -> Vec<std::path::PathBuf> {
    years
        .map(|y| scratch.path(&format!("inputs/exports-{y}.csv")))
        .collect()
}

/// The study's six years at a million records, every table, default settings.
#[test]
#[ignore = "needs python3 with duckdb"]
fn a_million_records_match_an_independent_duckdb_computation() {
    require_reference();
    let scratch = Scratch::new();
    scratch.generate_years(2017..=2022, 170_000, &["--dirty-every", "5000"]);
    scratch.config(&[2017, 2018, 2019, 2020, 2021, 2022], "");
    scratch.run_ok();
    let inputs = csv_inputs(&scratch, 2017..=2022);
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    check(&scratch, &inputs, "2017,2018,2019,2020,2021,2022", &[]);
}

/// Regions as destinations, another base year, top-n and threshold; product margins against
/// the rest of the nation; quadrants cut at the year's medians.
#[test]
#[ignore = "needs python3 with duckdb"]
fn region_level_settings_match_the_reference() {
    require_reference();
    let scratch = Scratch::new();
    scratch.generate_years(2018..=2021, 20_000, &["--dirty-every", "250"]);
    scratch.config(
        &[2018, 2019, 2020, 2021],
        "[indices]\ndestination-level = \"region\"\nbase-year = 2019\ntop-n = 5\n\
         destination-threshold-cny = 5e10\nproduct-margins = true\n\
         product-reference = \"rest-of-nation\"\nquadrant-cut = \"year-median\"\n",
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
            "--product-margins",
            "rest-of-nation",
            "--quadrant-cut",
            "year-median",
        ],
    );
}

#[test]
#[ignore = "needs python3 with duckdb"]
fn parquet_inputs_match_the_reference_too() {
    require_reference();
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

/// Generated data with the unusual paths: reporter countries mixed with provinces, a large
/// partner absent in 2021 (a `left` destination with no exports), partners entering and
/// leaving, records to China, zero values, and a run of non-consecutive years; product
/// margins against the nation; quadrants cut at the base year's means.
#[tokio::test]
#[ignore = "needs python3 with duckdb"]
async fn mixed_origins_vanished_partners_and_gaps_match_the_reference() {
    require_reference();
    let scratch = Scratch::new();
    scratch.generate_years(
        2017..=2022,
        30_000,
        &["--dirty-every", "500", "--country-origins", "0.03"],
    );
    let years = [2017, 2019, 2020, 2021];
    scratch.config(
        &years,
        "[indices]\nproduct-margins = true\nquadrant-cut = \"base-year-mean\"\n",
    );
    let summary = scratch.run_ok();
    assert!(
        summary.contains("origins: mixed: 31 provinces"),
        "{summary}"
    );
    let out = scratch.path("out");
    let destinations = read_table(&out, "destinations", "year, partner").await;
    let russia = select(&destinations, &[("year", "2021"), ("partner", "RUS")]);
    assert_eq!(russia[0]["status"], Value::Text("left".into()));
    assert_eq!(russia[0]["exports_usd"].float(), 0.0);
    let indices = read_table(&out, "indices", "year, province, category").await;
    assert!(!select(&indices, &[("province", "CHN")]).is_empty());
    let inputs = csv_inputs(&scratch, 2017..=2022);
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    check(
        &scratch,
        &inputs,
        "2017,2019,2020,2021",
        &[
            "--product-margins",
            "nation",
            "--quadrant-cut",
            "base-year-mean",
        ],
    );
}
