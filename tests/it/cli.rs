//! The `exdep` binary end to end: summaries, reconciliation, overrides and bad configs.

use std::process::Command;

use crate::support::{Scratch, partition_file, read_table, select};

/// A small input with one record of every kind of trouble ingest and classification count.
const MIXED: &str = "\
year,month,province,partner,hs_code,value,currency
2020,1,44,USA,850440,1000,USD
2020,,44,JPN,6109,6897.6,CNY
2020,13,44,USA,8504,5,USD
2020,2,4X,USA,8504,5,USD
2020,3,44,usa,8504,5,usd
2020,3,44,US,8504,5,USD
2020,3,44,USA,8,5,USD
2020,3,44,USA,8504,,USD
2020,3,44,USA,8504,1e3x,USD
2020,3,44,USA,8504,-5,USD
2020,3,44,USA,8504,5,EUR
2019,3,44,USA,8504,5,USD
twenty,3,44,USA,8504,5,USD
2020,3,99,USA,8504,7,USD
2020,3,44,XXZ,8504,7,USD
2020,3,44,USA,7701,7,USD
2020,3,44,USA,9801,11,USD
2020,3,44,CHN,8504,13,USD
";

#[tokio::test]
async fn every_record_is_accounted_for_by_kind() {
    let scratch = Scratch::new();
    scratch.write("inputs/mixed.csv", MIXED);
    scratch.config(&[2020], "");
    let stdout = scratch.run_ok();
    // 18 records: 3 accepted (one lower-case partner and currency normalized), 13 rejected,
    // 2 excluded by rule.
    assert!(
        stdout.contains("read 18 = accepted 3 + rejected 13"),
        "summary was:\n{stdout}"
    );
    for reason in [
        "bad_month 1",
        "bad_province_code 1",
        "bad_partner_code 1",
        "bad_hs_code 1",
        "missing_value 1",
        "bad_value 1",
        "negative_value 1",
        "bad_currency 1",
        "year_outside_run 1",
        "bad_year 1",
        "unknown_province 1",
        "unknown_partner 1",
        "unknown_hs_chapter 1",
        "excluded_hs_chapter 1",
        "partner_is_china 1",
    ] {
        assert!(
            stdout.contains(reason),
            "`{reason}` missing from:\n{stdout}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("out/_manifest.json")).unwrap())
            .unwrap();
    let input = &manifest["inputs"][0];
    assert_eq!(input["read"], 18);
    assert_eq!(input["accepted"]["records"], 3);
    assert_eq!(input["balanced"], true);
    assert_eq!(input["excluded"]["excluded_hs_chapter"]["value"], 11.0);
    assert_eq!(input["rejected"]["unknown_partner"]["value"], 7.0);
    // 1000 + 5 USD and 6897.6 CNY = 1000 USD at 2020's 6.8976.
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let all = select(&indices, &[("province", "44"), ("category", "all")])[0];
    assert!((all["exports_usd"].float() - 2005.0).abs() < 1e-9);
}

#[tokio::test]
async fn outputs_are_hive_partitioned_by_year_and_province() {
    let scratch = Scratch::new();
    scratch.write("inputs/a.csv", "year,month,province,partner,hs_code,value,currency\n2020,,44,USA,8504,10,USD\n2021,,11,DEU,0101,20,USD\n");
    scratch.config(&[2020, 2021, 2022], "");
    let stdout = scratch.run_ok();
    assert!(
        stdout.contains("configured years without records: 2022"),
        "{stdout}"
    );
    for table in ["indices", "lq", "region_shares"] {
        for partition in [
            "year=2020/province=44",
            "year=2020/province=CN",
            "year=2021/province=11",
            "year=2021/province=CN",
        ] {
            partition_file(&scratch.path(&format!("out/{table}/{partition}")));
        }
        assert!(!scratch.path(&format!("out/{table}/year=2022")).exists());
    }
}

#[tokio::test]
async fn input_and_output_flags_replace_the_config() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n2020,,44,USA,8504,10,USD\n",
    );
    scratch.write(
        "elsewhere/b.csv",
        "year,month,province,partner,hs_code,value,currency\n2020,,11,DEU,0101,20,USD\n",
    );
    scratch.config(&[2020], "");
    let output = scratch.exdep(&[
        "run",
        "--config",
        "config.toml",
        "--input",
        "elsewhere/b.csv",
        "--output",
        "other",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !scratch.path("out").exists(),
        "the configured output was not used"
    );
    let indices = read_table(&scratch.path("other"), "indices", "province, category").await;
    assert!(
        select(&indices, &[("province", "44")]).is_empty(),
        "the configured input was not read"
    );
    assert_eq!(select(&indices, &[("province", "11")]).len(), 2);
}

/// Runs a config that must fail, and returns the error line.
fn failing(scratch: &Scratch) -> String {
    let output = scratch.exdep(&["run", "--config", "config.toml"]);
    assert_eq!(output.status.code(), Some(2), "exdep should have failed");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected in:\n{stderr}");
    assert!(
        !scratch.path("out").exists(),
        "nothing may be written on a bad config"
    );
    errors[0].to_string()
}

#[test]
fn an_unknown_key_is_named() {
    let scratch = Scratch::new();
    scratch.empty_input();
    scratch.config(&[2020], "[indices]\ntop-n = 5\ntop-m = 3\n");
    let error = failing(&scratch);
    assert!(error.contains("top-m"), "{error}");
    assert!(error.contains("config.toml"), "{error}");
}

#[test]
fn a_missing_table_file_is_named() {
    let scratch = Scratch::new();
    scratch.empty_input();
    let config = scratch.config(&[2020], "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("provinces.csv", "provinces-missing.csv");
    std::fs::write(&config, text).unwrap();
    let error = failing(&scratch);
    assert!(error.contains("provinces-missing.csv"), "{error}");
}

#[test]
fn a_year_without_an_exchange_rate_is_named() {
    let scratch = Scratch::new();
    scratch.empty_input();
    scratch.config(&[2021, 2031], "");
    let error = failing(&scratch);
    assert!(
        error.contains("2031") && error.contains("cny_per_usd.csv"),
        "{error}"
    );
}

#[test]
fn a_missing_input_column_is_named_and_published_outputs_stay() {
    let scratch = Scratch::new();
    let published = scratch.publish_one_record();
    let before = std::fs::read(&published).unwrap();
    scratch.write(
        "inputs/b.csv",
        "year,month,province,partner,hs_code,currency\n2020,,44,USA,8504,USD\n",
    );
    let output = scratch.exdep(&["run", "--config", "config.toml"]);
    assert_eq!(output.status.code(), Some(1), "a data problem");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("b.csv") && stderr.contains("`value`"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&published).unwrap(), before);
}

#[test]
fn a_base_year_outside_the_run_is_named() {
    let scratch = Scratch::new();
    scratch.empty_input();
    scratch.config(&[2020, 2021], "[indices]\nbase-year = 2019\n");
    let error = failing(&scratch);
    assert!(
        error.contains("indices.base-year") && error.contains("2019"),
        "{error}"
    );
}

#[test]
fn too_many_rejects_fail_the_run_before_anything_is_published() {
    let scratch = Scratch::new();
    scratch.write("inputs/mixed.csv", MIXED);
    let config = scratch.config(&[2020], "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("max-reject-ratio = 0.9\n{text}")).unwrap();
    // 13 of 18 records are rejected (0.72): under the config's 0.9, over the flag's 0.5.
    let output = scratch.exdep(&[
        "run",
        "--config",
        "config.toml",
        "--max-reject-ratio",
        "0.5",
    ]);
    assert_eq!(output.status.code(), Some(1), "a data problem");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("13 of 18 records were rejected"),
        "{stderr}"
    );
    // The run's lock was taken and removed under `out/`: no file is left there.
    let left: Vec<_> = walkdir(&scratch.path("out"));
    assert!(left.is_empty(), "nothing was published: {left:?}");
    scratch.run_ok();
    let published = std::fs::read_dir(scratch.path("out/rejects/year=2020"))
        .unwrap()
        .filter(|entry| {
            let path = entry.as_ref().unwrap().path();
            path.extension().is_some_and(|e| e == "parquet")
        })
        .count();
    assert!(published > 0, "the quarantine is published");
}

#[test]
fn an_unknown_storage_option_is_named() {
    let scratch = Scratch::new();
    scratch.empty_input();
    let config = scratch.config(&[2020], "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("output = \"out\"", "output = \"s3://bucket/out\"");
    std::fs::write(&config, format!("{text}\n[storage]\naws_endpoin = \"x\"\n")).unwrap();
    let output = scratch.exdep(&["run", "--config", "config.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("storage.aws_endpoin"), "{stderr}");
}

/// The config's `parquet-compression` is checked and compresses every table and layer but
/// the product cube, which is always LZ4 (see `exdep_store::layout::Layer::compression`).
#[test]
fn parquet_compression_is_configurable_and_checked() {
    use exdep_core::parquet::basic::Compression;
    use exdep_core::parquet::file::reader::{FileReader, SerializedFileReader};

    let scratch = Scratch::new();
    scratch.write("inputs/mixed.csv", MIXED);
    let config = scratch.config(&[2020], "\n[indices]\nproduct-margins = true\n");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("parquet-compression = \"brotli(4)\"\n{text}"),
    )
    .unwrap();
    let error = failing(&scratch);
    assert!(
        error.contains("parquet-compression") && error.contains("brotli(4)"),
        "{error}"
    );

    std::fs::write(&config, format!("parquet-compression = \"snappy\"\n{text}")).unwrap();
    scratch.run_ok();
    for (folder, compression) in [
        ("out/indices/year=2020/province=44", Compression::SNAPPY),
        ("warehouse/cube/year=2020", Compression::SNAPPY),
        ("warehouse/products/year=2020", Compression::LZ4_RAW),
    ] {
        let file = std::fs::File::open(partition_file(&scratch.path(folder))).unwrap();
        let metadata = SerializedFileReader::new(file).unwrap().metadata().clone();
        let column = metadata.row_group(0).column(0);
        assert_eq!(column.compression(), compression, "{folder}");
    }
}

#[test]
fn a_cluster_run_refuses_locations_its_executors_cannot_see() {
    let scratch = Scratch::new();
    scratch.empty_input();
    // A remote scheduler cannot see this machine's paths.
    scratch.config(
        &[2020],
        "[engine]\nkind = \"ballista\"\nscheduler = \"df://10.1.2.3:50050\"\n",
    );
    let error = failing(&scratch);
    assert!(
        error.contains("`inputs`") && error.contains("df://10.1.2.3:50050"),
        "{error}"
    );

    // Nor a run without its scheduler, nor a scheduler that is not a URL.
    scratch.config(&[2020], "[engine]\nkind = \"ballista\"\n");
    assert!(failing(&scratch).contains("engine.scheduler"));
    scratch.config(&[2020], "");
    let output = scratch.exdep(&["run", "--config", "config.toml", "--cluster", "10.1.2.3"]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--cluster") && stderr.contains("df://HOST:PORT"),
        "{stderr}"
    );

    // Store options stay with the client; the executors would not see them.
    let config = scratch.config(
        &[2020],
        "[engine]\nkind = \"ballista\"\nscheduler = \"df://127.0.0.1:50050\"\n",
    );
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[storage]\naws_region = \"x\"\n")).unwrap();
    let error = failing(&scratch);
    assert!(
        error.contains("`storage`") && error.contains("AWS_"),
        "{error}"
    );
}

#[test]
fn the_memory_limit_is_checked_and_a_spilling_run_gives_the_same_tables() {
    let scratch = Scratch::new();
    scratch.generate(&[
        "--records-per-year",
        "40000",
        "--from",
        "2021",
        "--to",
        "2022",
    ]);
    let config = scratch.config(&[2021, 2022], "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("memory-limit = \"12 parsecs\"\n{text}")).unwrap();
    let error = failing(&scratch);
    assert!(
        error.contains("memory-limit") && error.contains("parsecs"),
        "{error}"
    );
    std::fs::write(&config, format!("memory-limit = \"1MiB\"\n{text}")).unwrap();
    let error = failing(&scratch);
    assert!(
        error.contains("memory-limit") && error.contains("256MiB"),
        "{error}"
    );

    std::fs::write(&config, &text).unwrap();
    scratch.run_ok();
    let unlimited = crate::incremental::contents(&scratch.path("out"));
    std::fs::remove_dir_all(scratch.path("out")).unwrap();
    std::fs::remove_dir_all(scratch.path("warehouse")).unwrap();
    // The smallest limit the config takes (spilling at scale is measured in bench/).
    scratch.run_ok_with(&["--memory-limit", "256MiB"]);
    assert_eq!(
        crate::incremental::contents(&scratch.path("out")),
        unlimited,
        "a run within 256 MiB writes the same tables"
    );
}

/// Every file under `dir` (none when it does not exist).
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A secret planted in `[storage]` never reaches the terminal, the logs or a written file,
/// whether the config is broken on the secret's line in one of several ways or valid.
#[test]
fn a_planted_secret_is_never_printed_or_written() {
    const SECRET: &str = "pl4nted-s3cret-9f2c";
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n2021,,44,USA,8504,10,USD\n",
    );
    let variants = [
        (
            "unterminated string",
            format!("aws_secret_access_key = \"{SECRET}\n"),
        ),
        ("bare word", format!("aws_secret_access_key = {SECRET}\n")),
        (
            "wrong type",
            format!("aws_secret_access_key = [\"{SECRET}\"]\n"),
        ),
        (
            "duplicate key",
            format!("aws_secret_access_key = \"{SECRET}\"\naws_secret_access_key = \"{SECRET}\"\n"),
        ),
        ("unknown option", format!("not_an_option = \"{SECRET}\"\n")),
        ("valid", format!("aws_secret_access_key = \"{SECRET}\"\n")),
    ];
    // The first four are not TOML a config can hold; store options are checked only
    // against the stores a run uses (none here), so the last two may run.
    for (index, (what, storage)) in variants.into_iter().enumerate() {
        scratch.config(&[2021], &format!("[storage]\n{storage}"));
        for args in [
            &["run", "--config", "config.toml"][..],
            &["check", "--config", "config.toml"],
            &["status", "--config", "config.toml"],
        ] {
            let output = Command::new(env!("CARGO_BIN_EXE_exdep"))
                .args(args)
                .current_dir(scratch.dir.path())
                .env("EXDEP_LOG", "trace")
                .output()
                .unwrap();
            for stream in [&output.stdout, &output.stderr] {
                let text = String::from_utf8_lossy(stream);
                assert!(!text.contains(SECRET), "{what}, {args:?}: {text}");
            }
            if index < 4 {
                assert!(!output.status.success(), "{what}, {args:?}");
            }
        }
        for file in walkdir(scratch.dir.path()) {
            if file.ends_with("config.toml") {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{what}: {} holds the secret",
                file.display()
            );
        }
    }
}

/// `--output` and `--input` are checked as the config's locations are: an output inside the
/// warehouse, an input inside the output, or an input folder that holds the output fail
/// before anything is written, with one line naming the option.
#[test]
fn locations_given_as_options_are_checked_like_the_configs() {
    let scratch = Scratch::new();
    scratch.empty_input();
    scratch.config(&[2020], "");
    for (options, named, says) in [
        (
            &["--output", "warehouse/tables"][..],
            "option `--output`",
            "must not lie inside the warehouse",
        ),
        (
            &["--input", "out/indices"][..],
            "option `--input`",
            "lies inside the output",
        ),
        (
            &["--input", "."][..],
            "option `--input`",
            "lies inside the input folder",
        ),
        (
            &["--input", "inputs", "--output", "inputs/tables"][..],
            "option `--input`",
            "lies inside the input folder",
        ),
    ] {
        let mut args = vec!["run", "--config", "config.toml"];
        args.extend_from_slice(options);
        let output = scratch.exdep(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{options:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{options:?}: {stderr}");
        assert!(
            errors[0].contains(named) && errors[0].contains(says),
            "{options:?}: {}",
            errors[0]
        );
        for written in ["out", "warehouse", "inputs/tables"] {
            assert!(
                !scratch.path(written).exists(),
                "{options:?} wrote {written}"
            );
        }
    }
}

/// Replacing published files never deletes through a symbolic link: a link to a folder of
/// someone else's files, planted in a partition exdep replaces, is left alone with what it
/// points to.
#[cfg(unix)]
#[test]
fn deletes_never_follow_symbolic_links() {
    let scratch = Scratch::new();
    let published = scratch.publish_one_record();
    let precious = scratch.write("precious/keep.parquet", "not exdep's");
    let partition = published.parent().unwrap();
    std::os::unix::fs::symlink(scratch.path("precious"), partition.join("linked")).unwrap();
    std::os::unix::fs::symlink(&precious, partition.join("linked-file.parquet")).unwrap();
    scratch.run_ok_with(&["--force"]);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "not exdep's");
    // The partition was republished: one file of exdep's own beside what the links left.
    let republished: Vec<_> = std::fs::read_dir(partition)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "parquet") && !path.is_symlink())
        .collect();
    assert_eq!(republished.len(), 1, "{republished:?}");
}

/// `max-line-bytes`, `[retry]` and the timeout are checked at load, naming the key.
#[test]
fn the_line_cap_and_retry_settings_are_checked() {
    let scratch = Scratch::new();
    scratch.empty_input();
    for (top, table, named) in [
        ("max-line-bytes = \"100\"\n", "", "max-line-bytes"),
        ("max-line-bytes = \"2GiB\"\n", "", "max-line-bytes"),
        ("max-line-bytes = \"wide\"\n", "", "max-line-bytes"),
        ("", "[retry]\nmax-retries = -1\n", "max-retries"),
        ("", "[retry]\ntimeout-secs = 5\n", "timeout-secs"),
        (
            "",
            "[engine]\ntimeout-seconds = 0\n",
            "engine.timeout-seconds",
        ),
    ] {
        let config = scratch.config(&[2020], table);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{top}{text}")).unwrap();
        let error = failing(&scratch);
        assert!(error.contains(named), "{top}{table}: {error}");
    }
}

/// Log lines written to a file or a pipe carry no terminal escape codes unless
/// `--color always` asks for them.
#[test]
fn logs_off_a_terminal_have_no_escape_codes() {
    let scratch = Scratch::new();
    scratch.publish_one_record();
    for (color, escapes) in [
        (None, false),
        (Some("never"), false),
        (Some("always"), true),
    ] {
        let mut args = vec!["run", "--config", "config.toml", "--force"];
        if let Some(color) = color {
            args.extend(["--color", color]);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_exdep"))
            .args(&args)
            .current_dir(scratch.path(""))
            .env("EXDEP_LOG", "info")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert!(output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.lines().count() > 3, "{stderr}");
        assert_eq!(stderr.contains('\u{1b}'), escapes, "{color:?}: {stderr}");
    }
}

/// `--log-format json`: every line on standard error is one JSON object, the run's
/// progress and its final error included.
#[test]
fn json_logs_are_one_object_a_line() {
    let scratch = Scratch::new();
    scratch.publish_one_record();
    let json_lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let output = scratch.exdep(args);
        let stderr = String::from_utf8(output.stderr).unwrap();
        stderr
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"))
            })
            .collect()
    };
    let lines = json_lines(&[
        "run",
        "--config",
        "config.toml",
        "--force",
        "--log-format",
        "json",
    ]);
    let progress: Vec<_> = lines
        .iter()
        .filter(|l| l["target"] == "exdep::progress")
        .collect();
    assert!(progress.len() > 3, "{lines:?}");
    assert!(
        progress.iter().any(|l| l["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("read 1/1 input files")),
        "{lines:?}"
    );
    assert!(
        progress
            .iter()
            .all(|l| l["level"] == "INFO" && l["fields"]["message"].is_string())
    );

    let lines = json_lines(&["run", "--config", "missing.toml", "--log-format", "json"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert!(
        lines[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.toml")
    );
}

/// `exdep inspect` prints a published table's rows, of one year and one province if asked,
/// and names the published tables when asked for another.
#[test]
fn inspect_prints_a_published_tables_rows() {
    let scratch = Scratch::new();
    scratch.publish_one_record();
    let inspect = |args: &[&str]| {
        let mut all = vec!["inspect", "--config", "config.toml"];
        all.extend_from_slice(args);
        let output = scratch.exdep(&all);
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, rows, _) = inspect(&["indices", "--year", "2020", "--province", "44"]);
    assert_eq!(code, Some(0));
    let header = rows.lines().nth(1).unwrap();
    assert!(
        header.contains("exports_usd") && header.contains("hhi"),
        "{rows}"
    );
    // The province's two rows (its category and `all`) between the table's borders.
    let data: Vec<&str> = rows.lines().filter(|l| l.contains("| 44 ")).collect();
    assert_eq!(data.len(), 2, "{rows}");
    assert!(
        data.iter()
            .all(|l| l.contains("| 2020 ") && l.contains("10.0")),
        "{rows}"
    );

    let (_, rows, _) = inspect(&["indices", "--year", "2021"]);
    assert_eq!(rows.trim(), "no rows");
    let (code, _, stderr) = inspect(&["indicies"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("indicies") && stderr.contains("indices, "),
        "{stderr}"
    );
    let (code, _, stderr) = inspect(&["top_links", "--province", "44"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not partitioned by province"), "{stderr}");
}

/// Progress: off a terminal, one plain line a stage and an input file read; on a terminal
/// (here `script`'s), a bar of the files read and their bytes, left as one line when done.
#[test]
fn progress_is_plain_lines_off_a_terminal_and_a_bar_on_one() {
    let scratch = Scratch::new();
    scratch.publish_one_record();
    let output = scratch.exdep(&["run", "--config", "config.toml", "--force"]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("] reading 1 input files\n")
            && stderr.contains("] read 1/1 input files, ")
            && stderr.contains("] publishing\n"),
        "{stderr}"
    );

    let command = format!(
        "{} run --config config.toml --force",
        env!("CARGO_BIN_EXE_exdep")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(scratch.path(""))
        .env("EXDEP_LOG", "warn")
        .output()
        .expect("script (util-linux) runs");
    assert!(output.status.success());
    let terminal = String::from_utf8_lossy(&output.stdout);
    // The bar, then its last state as a line.
    let bar = terminal.find("1/1 files [").expect("a bar was drawn");
    let line = terminal
        .find("] read 1/1 input files, ")
        .expect("the bar's last line");
    assert!(bar < line, "{terminal}");
}

/// Small stumbles: an unknown origin in `inspect --province` is an error naming the code
/// tables, not "no rows"; a code table that is not there says where relative paths are
/// taken from.
#[test]
fn an_unknown_province_and_a_missing_code_table_say_what_is_wrong() {
    let scratch = Scratch::new();
    scratch.publish_one_record();
    let inspect = |province: &str| {
        scratch.exdep(&[
            "inspect",
            "indices",
            "--config",
            "config.toml",
            "--province",
            province,
        ])
    };
    let output = inspect("4");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--province 4: not CN, a province of the provinces table")
            && stderr.contains("provinces.csv"),
        "{stderr}"
    );
    for known in ["44", "CN"] {
        let output = inspect(known);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let config = std::fs::read_to_string(scratch.path("config.toml")).unwrap();
    let shipped = crate::support::configs_dir().join("hs_chapters.csv");
    let moved = config.replace(&shipped.display().to_string(), "hs_chapters.csv");
    assert_ne!(moved, config);
    std::fs::write(scratch.path("config.toml"), moved).unwrap();
    let output = scratch.exdep(&["check", "--config", "config.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hs_chapters.csv")
            && stderr
                .contains("relative path under [tables] is taken from the config file's folder"),
        "{stderr}"
    );
}
