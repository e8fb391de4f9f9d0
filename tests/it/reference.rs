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

fn check(scratch: &Scratch, inputs: &[&Path], years: &str) {
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
        .args(inputs);
    let output = command.output().expect("python3 runs");
    assert!(
        output.status.success(),
        "the DuckDB reference disagrees:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn tables_match_an_independent_duckdb_computation() {
    if !reference_available() {
        return;
    }
    let scratch = Scratch::new();
    let generated = scratch.exdep(&[
        "generate",
        "--out",
        "inputs",
        "--from",
        "2019",
        "--to",
        "2021",
        "--records-per-year",
        "20000",
        "--dirty-every",
        "250",
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    let inputs: Vec<_> = (2019..=2021)
        .map(|y| scratch.path(&format!("inputs/exports-{y}.csv")))
        .collect();
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    check(&scratch, &inputs, "2019,2020,2021");
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
    );
}
