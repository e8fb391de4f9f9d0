//! `exdep ddl`: the statements it prints run in DuckDB and in Spark (local pyspark on the
//! machine's JRE, in Spark SQL and in HiveQL through Spark's Hive metastore), and every
//! table they declare reads the rows DuckDB's Hive reader reads from the files
//! (`tests/reference/read_published.py`), with `year` an integer and `province` a string,
//! also over a copy of the output holding only numeric province codes, where a reader left
//! to infer the partition types would make it an integer (`tests/reference/check_ddl.py`).
//!
//! They need python3 with duckdb and pyspark, and a JRE, so they are `#[ignore]`d; the
//! README's test command runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;

use serde_json::{Value, json};

use crate::delta::read_published;
use crate::support::{Scratch, reference_script};

/// The provinces the copy of the output keeps: numeric codes only, no `CN`.
const SUBSET: [&str; 2] = ["11", "44"];

/// What `check_ddl.py` expects of each table published under the manifest's files, but
/// those of the tables partitioned by province whose province `keep` refuses: its rows, and
/// the provinces of a table partitioned by province.
fn expected(manifest: &Value, keep: impl Fn(&str) -> bool) -> Value {
    let mut tables = BTreeMap::new();
    for table in manifest["tables"].as_array().unwrap() {
        let mut rows = 0;
        let mut provinces = BTreeSet::new();
        for file in table["files"].as_array().unwrap() {
            let partition = file["partition"].as_array().unwrap();
            let province = (partition.iter())
                .find(|p| p[0] == "province")
                .map(|p| p[1].as_str().unwrap());
            if province.is_none_or(&keep) {
                rows += file["rows"].as_u64().unwrap();
                provinces.extend(province.map(str::to_string));
            }
        }
        let name = format!("exdep.{}", table["name"].as_str().unwrap());
        let mut expect = json!({ "rows": rows });
        if !provinces.is_empty() {
            expect["provinces"] = json!(provinces);
        }
        tables.insert(name, expect);
    }
    json!(tables)
}

/// Copies the output folder `from` to `to`, leaving out the partitions of provinces not in
/// [`SUBSET`].
fn copy_subset(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let target = to.join(&name);
        if let Some(province) = name.strip_prefix("province=")
            && !SUBSET.contains(&province)
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_subset(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Prints `exdep ddl --engine ENGINE` over `output`, then runs `check_ddl.py` with it,
/// expecting `expect`.
fn check(scratch: &Scratch, engine: &str, ddl_engine: &str, output: &str, expect: &Value) {
    let printed = scratch.exdep(&[
        "ddl",
        "--engine",
        ddl_engine,
        "--config",
        "config.toml",
        "--output",
        output,
    ]);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let rows_out = scratch.path(&format!("{engine}-{output}-rows.json"));
    let ddl = scratch.path(&format!("{engine}-{output}.sql"));
    std::fs::write(&ddl, &printed.stdout).unwrap();
    let expect_file = scratch.path(&format!("{engine}-{output}.json"));
    std::fs::write(&expect_file, expect.to_string()).unwrap();
    reference_script(
        "check_ddl.py",
        &[
            OsStr::new("--engine"),
            OsStr::new(engine),
            OsStr::new("--ddl"),
            ddl.as_os_str(),
            OsStr::new("--expect"),
            expect_file.as_os_str(),
            OsStr::new("--rows-out"),
            rows_out.as_os_str(),
        ],
        Some(scratch.path("").as_path()),
        "python3 -m pip install duckdb pyspark; a JRE",
        &format!(
            "{engine} over {output}, the DDL:\n{}",
            String::from_utf8_lossy(&printed.stdout)
        ),
    );
    // The rows the declared tables read are those another reader reads from the files.
    let declared: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(&rows_out).unwrap()).unwrap();
    let read = read_published("rows", &scratch.path(output));
    assert_eq!(
        declared.len(),
        read.len(),
        "{engine} over {output}: every table"
    );
    for (table, rows) in declared {
        let folder = table.strip_prefix("exdep.").unwrap();
        assert!(
            rows == read[folder],
            "{engine} over {output}: `{folder}` reads other rows through the DDL"
        );
    }
}

#[test]
#[ignore = "needs python3 with duckdb and pyspark, and a JRE"]
fn the_ddl_declares_tables_that_read_what_exdep_published() {
    let scratch = Scratch::new();
    scratch.generate(&[
        "--records-per-year",
        "3000",
        "--from",
        "2020",
        "--to",
        "2021",
    ]);
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(scratch.path("out/_manifest.json")).unwrap())
            .unwrap();
    copy_subset(&scratch.path("out"), &scratch.path("subset"));
    let everything = expected(&manifest, |_| true);
    let subset = expected(&manifest, |province| SUBSET.contains(&province));
    assert!(
        everything["exdep.indices"]["provinces"]
            .as_array()
            .unwrap()
            .contains(&json!("CN"))
    );

    check(&scratch, "duckdb", "duckdb", "out", &everything);
    check(&scratch, "duckdb", "duckdb", "subset", &subset);
    check(&scratch, "spark", "spark", "subset", &subset);
    check(&scratch, "hive", "hive", "subset", &subset);
}
