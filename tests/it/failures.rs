//! Ordinary operational faults (README's "Failure modes"): a run stopped by its scheduler,
//! killed, refused, or racing another for an expired lease leaves nothing that later runs
//! count or trip over; types that would silently re-classify records are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Scratch, Unlistable, assert_one_refused_on_the_lock, canonical_csv, config_text, files_under,
    read_table, select, table_files,
};

/// Writes `config.toml` for `years` reading `inputs/*.csv`, with the top-level keys `top`.
fn config_with(scratch: &Scratch, years: &[i32], top: &str) {
    let top = format!("output = \"out\"\nwarehouse = \"warehouse\"\n{top}");
    scratch.write("config.toml", &config_text(years, &top, &[]));
}

/// Every file under `dir` (the warehouse's state and locks included) with its bytes.
fn every_file(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    (files_under(dir, Unlistable::Fail, |_| true).into_iter())
        .map(|path| {
            let relative = path.strip_prefix(dir).unwrap().display().to_string();
            (relative, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The paths of the files under `dir` as a running process leaves them: folders that come
/// and go while they are listed are passed over.
fn names_under(dir: &Path) -> Vec<String> {
    (files_under(dir, Unlistable::Skip, |_| true).iter())
        .map(|path| path.display().to_string())
        .collect()
}

/// The files left under the warehouse's staging folder.
fn staged_files(scratch: &Scratch) -> BTreeMap<String, Vec<u8>> {
    let staging = scratch.path("warehouse/_staging");
    if staging.exists() {
        every_file(&staging)
    } else {
        BTreeMap::new()
    }
}

/// Starts `exdep run --config config.toml --quiet ARGS` in `scratch`, in a UTS namespace of
/// its own whose host name is `host` (a pod's), so that its lease names another host.
fn spawn_on_host(scratch: &Scratch, host: &str, args: &[&str]) -> Child {
    let exdep = env!("CARGO_BIN_EXE_exdep");
    let mut command = format!("hostname {host} && exec {exdep} run --config config.toml --quiet");
    for arg in args {
        command.push(' ');
        command.push_str(arg);
    }
    Command::new("unshare")
        .args(["--uts", "sh", "-c", &command])
        .current_dir(scratch.dir.path())
        .env("EXDEP_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs (the tests run as root, as CI does)")
}

/// Waits until `child` has taken its lease and is reading its inputs (the warehouse holds a
/// decoded input or a partial cube), then sends it `signal`.
fn signal_while_reading(scratch: &Scratch, child: &mut Child, signal: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reading = scratch.path("warehouse/_exdep.lock").exists()
            && names_under(&scratch.path("warehouse"))
                .iter()
                .any(|f| f.contains(".csv") || f.contains("/cube/"));
        if reading {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be stopped while reading");
        }
        assert!(Instant::now() < deadline, "the run never started reading");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Four years of inputs, one file each: a run signalled once it has read the first is
/// still reading the other three when the signal lands, however loaded the machine.
fn four_years(scratch: &Scratch) {
    scratch.generate_years(2018..=2021, 250_000, &[]);
    scratch.config(&[2018, 2019, 2020, 2021], "");
}

/// A run stopped with SIGTERM (Kubernetes stopping a pod) on another host releases its
/// lease, exits 143 and leaves no staging behind: the next run, on this host, works without
/// `--break-lock` and publishes what a clean run publishes.
#[test]
fn a_run_stopped_by_sigterm_releases_its_lease() {
    let scratch = Scratch::new();
    four_years(&scratch);
    let mut child = spawn_on_host(&scratch, "pod-terminated", &[]);
    signal_while_reading(&scratch, &mut child, "-TERM");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert!(!scratch.path("warehouse/_exdep.lock").exists());
    assert!(!scratch.path("out/_exdep.lock").exists());
    assert!(
        !scratch.path("warehouse/cube").exists(),
        "nothing committed"
    );
    scratch.run_ok();
    assert!(staged_files(&scratch).is_empty());

    let clean = Scratch::new();
    four_years(&clean);
    clean.run_ok();
    assert_eq!(
        table_files(&scratch.path("out")),
        table_files(&clean.path("out"))
    );
}

/// A run killed with SIGKILL on another host (an OOM kill) cannot release its lease: the next
/// run is refused while the lease lasts and takes it over once it has expired.
#[test]
fn a_killed_runs_lease_is_taken_over_once_it_expires() {
    let scratch = Scratch::new();
    scratch.generate_years(2020..=2021, 400_000, &[]);
    config_with(&scratch, &[2020, 2021], "lease-seconds = 3\n");
    let mut child = spawn_on_host(&scratch, "pod-killed", &[]);
    signal_while_reading(&scratch, &mut child, "-KILL");
    child.wait().unwrap();
    let killed_at = Instant::now();
    assert!(scratch.path("warehouse/_exdep.lock").exists());

    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if killed_at.elapsed() < Duration::from_secs(2) {
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("held by the run on host pod-killed"),
            "{stderr}"
        );
    }
    std::thread::sleep(Duration::from_secs(4).saturating_sub(killed_at.elapsed()));
    scratch.run_ok();
    assert!(!scratch.path("warehouse/_exdep.lock").exists());
    let left = staged_files(&scratch);
    assert!(left.is_empty(), "{:?}", left.keys());
}

/// Two runs taking over the same expired lease at once: exactly one publishes, the other
/// fails naming the holder; the tables are a clean run's.
#[test]
fn of_two_takeovers_of_an_expired_lease_exactly_one_wins() {
    let scratch = Scratch::new();
    scratch.generate_years(2020..=2021, 20_000, &[]);
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    let expected = table_files(&scratch.path("out"));
    let expired = "{\"host\": \"pod-gone\", \"pid\": 7, \"started\": \"2026-01-01T00:00:00Z\", \
                   \"run_id\": \"old\", \"expires\": \"2026-01-01T00:02:00.000Z\"}";
    for offset_ms in [0, 10, 60] {
        scratch.write("warehouse/_exdep.lock", expired);
        scratch.write("out/_exdep.lock", expired);
        let spawn = || {
            let args = ["run", "--config", "config.toml", "--quiet", "--force"];
            (scratch.exdep_command(&args, &[("EXDEP_LOG", "error")]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        assert_one_refused_on_the_lock(spawn, offset_ms, "is held by");
        assert_eq!(table_files(&scratch.path("out")), expected);
        assert!(!scratch.path("warehouse/_exdep.lock").exists());
        assert!(!scratch.path("out/_exdep.lock").exists());
    }
}

/// A run refused for too many rejects commits nothing: after the supplier redelivers the
/// fixed file under a new name and the bad one is gone, the year counts the fixed file once
/// and the quarantine holds the listed files' rejects only.
#[tokio::test]
async fn a_refused_runs_file_is_not_counted_after_a_redelivery() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[(2021, "44", "USA", "8504", 10.0, "USD")]),
    );
    config_with(&scratch, &[2021], "max-reject-ratio = 0.2\n");
    scratch.run_ok();
    let warehouse = every_file(&scratch.path("warehouse"));
    let out = every_file(&scratch.path("out"));
    // The bad delivery: one good record and three without a partner.
    scratch.write(
        "inputs/b.csv",
        "year,month,province,partner,hs_code,value,currency\n\
         2021,,44,USA,8504,5,USD\n2021,,44,,8504,1,USD\n2021,,44,,8504,1,USD\n\
         2021,,44,,8504,1,USD\n",
    );
    let stderr = refused_on_the_data(&scratch);
    assert_eq!(every_file(&scratch.path("warehouse")), warehouse);
    assert_eq!(every_file(&scratch.path("out")), out);
    assert!(
        stderr.contains("b.csv (3 of 4)"),
        "names the file: {stderr}"
    );

    std::fs::remove_file(scratch.path("inputs/b.csv")).unwrap();
    scratch.write(
        "inputs/b-fixed.csv",
        &canonical_csv(&[(2021, "44", "DEU", "8504", 5.0, "USD")]),
    );
    scratch.run_ok();
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let national = select(&indices, &[("province", "CN"), ("category", "all")]);
    assert_eq!(national[0]["exports_usd"].float(), 15.0);
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    assert!(rejects.is_empty(), "{rejects:?}");
}

/// A scratch folder whose run published 2020 (from `inputs/a.csv`) and 2021 (from
/// `inputs/b.csv`: coffee, chapter 09).
fn two_published_years() -> Scratch {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[(2020, "44", "USA", "8504", 10.0, "USD")]),
    );
    scratch.write(
        "inputs/b.csv",
        &canonical_csv(&[(2021, "44", "USA", "0901", 7.0, "USD")]),
    );
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    scratch
}

/// Runs `exdep run` in `scratch`, insists it is refused on the data (exit 1), and returns
/// what it printed on standard error.
fn refused_on_the_data(scratch: &Scratch) -> String {
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

/// A full rebuild (the index settings changed) refused because a published year lost its
/// input leaves the warehouse and the outputs byte for byte as they were.
#[test]
fn a_refused_full_rebuild_leaves_the_warehouse_as_it_was() {
    let scratch = two_published_years();
    let warehouse = every_file(&scratch.path("warehouse"));
    let out = every_file(&scratch.path("out"));
    let config = std::fs::read_to_string(scratch.path("config.toml")).unwrap();
    std::fs::write(
        scratch.path("config.toml"),
        format!("{config}\n[indices]\ntop-n = 3\n"),
    )
    .unwrap();
    std::fs::remove_file(scratch.path("inputs/b.csv")).unwrap();
    let stderr = refused_on_the_data(&scratch);
    assert_eq!(every_file(&scratch.path("warehouse")), warehouse);
    assert_eq!(every_file(&scratch.path("out")), out);
    assert!(
        stderr.contains("published years 2021") && stderr.contains("b.csv: gone"),
        "{stderr}"
    );
}

/// The published-years guard reads the published tables, not only the manifest: with the
/// manifest withdrawn (as a run killed while publishing leaves it), a run whose inputs no
/// longer hold 2021 is refused, naming the year and the input, and 2021 stays published.
#[test]
fn the_published_years_guard_holds_without_a_manifest() {
    let scratch = two_published_years();
    std::fs::remove_file(scratch.path("out/_manifest.json")).unwrap();
    std::fs::remove_file(scratch.path("out/_SUCCESS")).unwrap();
    scratch.write("inputs/b.csv", &canonical_csv(&[]));
    let published = table_files(&scratch.path("out/indices/year=2021"));
    let stderr = refused_on_the_data(&scratch);
    assert!(
        stderr.contains("published years 2021")
            && stderr.contains("b.csv: 0 records read, 0 accepted"),
        "{stderr}"
    );
    assert_eq!(
        table_files(&scratch.path("out/indices/year=2021")),
        published
    );
}

/// An HS code that lost its leading zero is never re-classified: an integer `hs_code`
/// column (coffee, 0901, stored as 901) is a file error naming the column and its type, a
/// float `year` column likewise, and a text code with an odd number of digits is rejected
/// as `bad_hs_code`.
#[tokio::test]
async fn hs_codes_that_lost_their_leading_zero_are_refused() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("inputs")).unwrap();
    let ctx = exdep_engine::datafusion::prelude::SessionContext::new();
    let write = |name: &str, hs: &str, year: &str| {
        format!(
            "COPY (SELECT {year} AS year, CAST(NULL AS INT) AS month, '44' AS province, \
             'USA' AS partner, {hs} AS hs_code, 10.0 AS value, 'USD' AS currency) \
             TO '{}' STORED AS PARQUET",
            scratch.path(name).display()
        )
    };
    for (name, hs, year, column, found) in [
        (
            "inputs/int.parquet",
            "CAST(901 AS BIGINT)",
            "2021",
            "hs_code",
            "Int64",
        ),
        (
            "inputs/float.parquet",
            "'0901'",
            "CAST(2021.0 AS DOUBLE)",
            "year",
            "Float64",
        ),
    ] {
        ctx.sql(&write(name, hs, year))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let config = scratch.config(&[2021], "");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "location = \"inputs/*.csv\"\nformat = \"canonical-csv\"",
            &format!("location = \"{name}\"\nformat = \"canonical-parquet\""),
        );
        std::fs::write(&config, text).unwrap();
        let stderr = refused_on_the_data(&scratch);
        assert!(
            stderr.contains(&format!("column `{column}` is {found}")) && stderr.contains(name),
            "{stderr}"
        );
    }

    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2021, "44", "USA", "901", 10.0, "USD"),
            (2021, "44", "USA", "09011", 10.0, "USD"),
            (2021, "44", "USA", "0901", 3.0, "USD"),
        ],
        &[2021],
        "",
    );
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    let reasons: Vec<String> = rejects
        .iter()
        .map(|row| format!("{:?}", row["reason"]))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.contains("bad_hs_code")),
        "{reasons:?}"
    );
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let national = select(&indices, &[("province", "CN"), ("category", "all")]);
    assert_eq!(national[0]["exports_usd"].float(), 3.0);
}

/// Memory is bounded by the memory limit whatever the text: a `.csv.zst` of 2,000 lines of
/// 900 KB each (1.8 GB of text, under the line cap, a few KB compressed) is read under
/// `--memory-limit 1GiB` in under 1.5 GiB of peak RSS (GNU time's count) when its ratio is
/// allowed, and refused as a decompression bomb, naming the file, by default.
#[test]
fn long_lines_in_a_compressed_file_stay_within_the_memory_limit() {
    use std::io::Write as _;
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("inputs")).unwrap();
    let file = std::fs::File::create(scratch.path("inputs/long.csv.zst")).unwrap();
    let mut encoder = zstd::stream::Encoder::new(file, 3).unwrap();
    encoder
        .write_all(b"year,month,province,partner,hs_code,value,currency,note\n")
        .unwrap();
    let note = "x".repeat(900_000);
    for _ in 0..2000 {
        writeln!(encoder, "2021,,44,USA,8504,1,USD,{note}").unwrap();
    }
    encoder.finish().unwrap();
    let config = scratch.config(&[2021], "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("inputs/*.csv", "inputs/*.csv.zst");
    std::fs::write(&config, &text).unwrap();

    let stderr = refused_on_the_data(&scratch);
    assert!(
        stderr.contains("long.csv.zst") && stderr.contains("max-compression-ratio"),
        "{stderr}"
    );

    std::fs::write(&config, format!("max-compression-ratio = 1000000\n{text}")).unwrap();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_exdep"))
        .args([
            "run",
            "--config",
            "config.toml",
            "--quiet",
            "--memory-limit",
            "1GiB",
        ])
        .current_dir(scratch.dir.path())
        .env("EXDEP_LOG", "warn")
        .output()
        .expect("GNU time runs (.ci/run installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in GNU time's report: {stderr}"));
    assert!(
        peak_kib < 1536 * 1024,
        "peak RSS {} MiB under --memory-limit 1GiB",
        peak_kib / 1024
    );
    let staging = scratch.path("warehouse/_staging");
    assert!(!staging.exists() || every_file(&staging).is_empty());
}

/// Switching `table-format` from delta to parquet under the same output is refused, naming
/// the table and saying how, and leaves the Delta tables as they were (no plain files beside
/// their log); the same the other way round.
#[test]
fn a_switch_of_table_format_is_refused_and_changes_nothing() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[(2021, "44", "USA", "8504", 10.0, "USD")]),
    );
    for (first, second, found) in [
        ("delta", "parquet", "a Delta table"),
        ("parquet", "delta", "plain Parquet files"),
    ] {
        let _ = std::fs::remove_dir_all(scratch.path("out"));
        let _ = std::fs::remove_dir_all(scratch.path("warehouse"));
        config_with(&scratch, &[2021], &format!("table-format = \"{first}\"\n"));
        scratch.run_ok();
        let before = every_file(&scratch.path("out"));
        config_with(&scratch, &[2021], &format!("table-format = \"{second}\"\n"));
        let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("is published as {found}"))
                && stderr.contains(&format!("`table-format` is \"{second}\""))
                && stderr.contains("new `output` root"),
            "{stderr}"
        );
        assert_eq!(
            every_file(&scratch.path("out")),
            before,
            "{first} -> {second}"
        );
    }
}

/// A Parquet input whose row group is too large to read within the memory limit (the reader
/// fetches a row group whole) is refused before it is read, naming the file and the row
/// group; the same file runs under a limit it fits in.
#[tokio::test]
async fn a_row_group_larger_than_the_memory_limit_allows_is_refused() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("inputs")).unwrap();
    let ctx = exdep_engine::datafusion::prelude::SessionContext::new();
    // 500,000 rows in one row group, a note of about 96 distinct bytes each: about 48 MiB
    // uncompressed, over the 32 MiB an eighth of 256 MiB allows.
    let copy = format!(
        "COPY (SELECT 2021 AS year, CAST(NULL AS INT) AS month, '44' AS province, \
         'USA' AS partner, '8504' AS hs_code, 1.0 AS value, 'USD' AS currency, \
         concat(repeat('x', 90), CAST(t.value AS VARCHAR)) AS note \
         FROM generate_series(1, 500000) t) \
         TO '{}' STORED AS PARQUET OPTIONS ('format.max_row_group_size' '1000000')",
        scratch.path("inputs/big.parquet").display()
    );
    ctx.sql(&copy).await.unwrap().collect().await.unwrap();
    let config = scratch.config(&[2021], "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "location = \"inputs/*.csv\"\nformat = \"canonical-csv\"",
        "location = \"inputs/big.parquet\"\nformat = \"canonical-parquet\"",
    );
    std::fs::write(&config, text).unwrap();
    let args = [
        "run",
        "--config",
        "config.toml",
        "--quiet",
        "--memory-limit",
    ];
    let output = scratch.exdep(&[&args[..], &["256MiB"]].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("big.parquet: row group 0 holds") && stderr.contains("memory-limit"),
        "{stderr}"
    );
    let output = scratch.exdep(&[&args[..], &["1GiB"]].concat());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Parquet input whose schema nests 100,000 levels deep (a hostile footer of under a
/// megabyte) is refused, naming the file, before the engine's reader, which recurses once
/// per level, would exhaust its stack.
#[test]
fn a_parquet_schema_nested_too_deep_is_refused() {
    use exdep_core::parquet::basic::{Repetition, Type as PhysicalType};
    use exdep_core::parquet::file::properties::WriterProperties;
    use exdep_core::parquet::file::writer::SerializedFileWriter;
    use exdep_core::parquet::schema::types::Type;
    use std::sync::Arc;

    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("inputs")).unwrap();
    let path = scratch.path("inputs/deep.parquet");
    // Built, written and dropped on a thread with room for the recursion it takes.
    let writer = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || {
            let mut node = Type::primitive_type_builder("leaf", PhysicalType::INT32)
                .with_repetition(Repetition::OPTIONAL)
                .build()
                .unwrap();
            for level in 0..100_000 {
                node = Type::group_type_builder(&format!("g{level}"))
                    .with_repetition(Repetition::REQUIRED)
                    .with_fields(vec![Arc::new(node)])
                    .build()
                    .unwrap();
            }
            let schema = Type::group_type_builder("schema")
                .with_fields(vec![Arc::new(node)])
                .build()
                .unwrap();
            let file = std::fs::File::create(path).unwrap();
            let properties = Arc::new(WriterProperties::builder().build());
            SerializedFileWriter::new(file, Arc::new(schema), properties)
                .unwrap()
                .close()
                .unwrap();
        })
        .unwrap();
    writer.join().unwrap();
    let config = scratch.config(&[2021], "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "location = \"inputs/*.csv\"\nformat = \"canonical-csv\"",
        "location = \"inputs/deep.parquet\"\nformat = \"canonical-parquet\"",
    );
    std::fs::write(&config, text).unwrap();
    let stderr = refused_on_the_data(&scratch);
    assert!(
        stderr.contains("deep.parquet: its schema nests 100001 levels deep"),
        "{stderr}"
    );
}

/// Runs the pipeline in this process over `scratch`'s `config.toml`, cancelling its stop
/// token when `stop_at` says so of a progress report.
async fn run_stopped_at(
    scratch: &Scratch,
    stop_at: impl Fn(&exdep_pipeline::Progress<'_>) -> bool,
) -> Result<exdep_pipeline::RunOutcome, exdep_pipeline::Error> {
    let config = exdep_core::Config::load(&scratch.path("config.toml")).unwrap();
    let ctx = exdep_engine::new_session();
    let options = exdep_pipeline::RunOptions::default();
    let stop = options.stop.clone();
    exdep_pipeline::run_pipeline(&ctx, &config, &options, |progress| {
        if stop_at(&progress) {
            stop.cancel();
        }
    })
    .await
}

/// A stop (SIGTERM, or the time limit) that comes once the run has begun to publish waits
/// for the publication to finish: a run dropped between its moves would leave some
/// partitions new and others old. The run completes, its tables are a clean run's, and the
/// next run finds nothing to do.
#[tokio::test]
async fn a_stop_while_publishing_lets_the_publication_finish() {
    let scratch = Scratch::new();
    scratch.generate_years(2020..=2021, 20_000, &[]);
    scratch.config(&[2020, 2021], "");
    let outcome = run_stopped_at(&scratch, |progress| {
        matches!(progress, exdep_pipeline::Progress::Stage("publishing"))
    })
    .await
    .expect("a run stopped while publishing finishes");
    assert_eq!(outcome.manifest.published_years, [2020, 2021].into());
    assert!(scratch.path("out/_SUCCESS").exists());
    assert!(!scratch.path("out/_exdep.lock").exists());

    let clean = Scratch::new();
    clean.generate_years(2020..=2021, 20_000, &[]);
    clean.config(&[2020, 2021], "");
    clean.run_ok();
    assert_eq!(
        table_files(&scratch.path("out")),
        table_files(&clean.path("out"))
    );
    let rerun = scratch.exdep(&["run", "--config", "config.toml"]);
    let rerun = String::from_utf8_lossy(&rerun.stdout);
    assert!(rerun.contains("nothing changed since the run"), "{rerun}");
}

/// A stop that comes before the run publishes stops it: nothing is published or committed
/// and its lease is released.
#[tokio::test]
async fn a_stop_before_publishing_stops_the_run() {
    let scratch = Scratch::new();
    scratch.generate_years(2020..=2021, 20_000, &[]);
    scratch.config(&[2020, 2021], "");
    let stopped = run_stopped_at(&scratch, |progress| {
        matches!(
            progress,
            exdep_pipeline::Progress::Stage("summing the cube's cells")
        )
    })
    .await;
    assert!(
        matches!(stopped, Err(exdep_pipeline::Error::Stopped)),
        "{stopped:?}"
    );
    assert!(!scratch.path("out/_SUCCESS").exists());
    assert!(!scratch.path("out/_exdep.lock").exists());
    assert!(!scratch.path("warehouse/_exdep.lock").exists());
}

/// An HTTP endpoint on 127.0.0.1 that answers its first `answered` requests with 200 (and
/// closes each connection) and holds every later connection open without a word, as a
/// lineage server that hangs does. Sends the number of each connection it accepts.
fn stalling_endpoint(answered: usize) -> (u16, std::sync::mpsc::Receiver<usize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, connections) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (number, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            if accepted.send(number).is_err() {
                return;
            }
            if number >= answered {
                held.push(stream);
                continue;
            }
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, connections)
}

/// Starts `exdep run` on 2020's records, its lineage events POSTed to `port`.
fn run_reporting_to(scratch: &Scratch, port: u16) -> Child {
    scratch.generate_years(2020..=2020, 2000, &[]);
    scratch.config(
        &[2020],
        &format!("\n[lineage]\ntarget = \"http://127.0.0.1:{port}/api/v1/lineage\"\n"),
    );
    (scratch.exdep_command(&["run", "--config", "config.toml", "--quiet"], &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for connection `number` to the endpoint, then sends SIGTERM to `child`.
fn terminate_at_connection(
    connections: &std::sync::mpsc::Receiver<usize>,
    number: usize,
    child: &Child,
) {
    loop {
        let accepted = connections.recv_timeout(Duration::from_secs(120));
        if accepted.expect("the run reports to the endpoint") == number {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM while a run reports its start to a lineage endpoint that does not answer: the
/// run stops before it begins (exit 143, nothing written), rather than the signal being
/// swallowed while the report waits.
#[test]
fn a_signal_while_the_start_is_reported_stops_the_run_before_it_begins() {
    let scratch = Scratch::new();
    let (port, connections) = stalling_endpoint(0);
    let child = run_reporting_to(&scratch, port);
    terminate_at_connection(&connections, 0, &child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert!(!scratch.path("warehouse/cube").exists(), "nothing read");
    assert!(!scratch.path("out/_SUCCESS").exists(), "nothing published");
}

/// SIGTERM while a run that published reports its end to a lineage endpoint that stopped
/// answering: the report is cut short with a warning, and the run's outcome stands (exit
/// 0, its tables published).
#[test]
fn a_signal_while_the_end_is_reported_cuts_the_report_short() {
    let scratch = Scratch::new();
    let (port, connections) = stalling_endpoint(1);
    let child = run_reporting_to(&scratch, port);
    terminate_at_connection(&connections, 1, &child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SIGTERM came while the run's end was being reported"),
        "{stderr}"
    );
    assert!(scratch.path("out/_SUCCESS").exists());
}
