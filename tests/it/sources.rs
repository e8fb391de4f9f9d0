//! The real sources — China Customs exports, UN Comtrade, CEPII BACI — on hand-made samples
//! with every trap (tests/data/README.md), and a corpus of broken inputs.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::support::{Row, Scratch, Value, canonical_csv, partition_file, read_table, select};

pub(crate) fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(relative)
}

/// A config for run year 2021 reading one input of `format` (with BACI's country codes).
pub(crate) fn config_for(scratch: &Scratch, location: &Path, format: &str, codes: Option<&Path>) {
    let codes = codes.map_or(String::new(), |c| {
        format!("country-codes = {:?}\n", c.display().to_string())
    });
    let config = scratch.config(&[2021], "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[[inputs]]\nlocation = \"inputs/*.csv\"\nformat = \"canonical-csv\"\n",
        &format!(
            "[[inputs]]\nlocation = {:?}\nformat = \"{format}\"\n{codes}",
            location.display().to_string()
        ),
    );
    // The audit layer keeps the records that passed, for the record-by-record comparison.
    let text = format!("raw-layer = true\n{text}");
    let tables = crate::support::configs_dir();
    let text = text.replace(
        "[tables]\n",
        &format!(
            "[tables]\ncustoms-partner-codes = \"{0}/customs_partner_codes.csv\"\n\
             comtrade-partner-aliases = \"{0}/comtrade_partner_aliases.csv\"\n",
            tables.display()
        ),
    );
    std::fs::write(&config, text).unwrap();
}

pub(crate) fn manifest(scratch: &Scratch) -> Json {
    serde_json::from_str(&std::fs::read_to_string(scratch.path("out/_manifest.json")).unwrap())
        .unwrap()
}

fn counts(tallies: &Json) -> Vec<(String, u64)> {
    tallies
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["records"].as_u64().unwrap()))
        .collect()
}

fn expected_counts(tallies: &Json) -> Vec<(String, u64)> {
    tallies
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn text(row: &Row, column: &str) -> String {
    match &row[column] {
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        Value::Null => "null".into(),
        Value::Float(f) => f.to_string(),
    }
}

/// Ingests one sample and checks the reconciliation and the canonical records against its
/// `.expected.json`.
async fn check_sample(sample: &str, codes: Option<&str>) {
    let path = data(sample);
    let expected: Json = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.expected.json", path.display())).unwrap(),
    )
    .unwrap();
    let scratch = Scratch::new();
    let codes = codes.map(data);
    config_for(
        &scratch,
        &path,
        expected["format"].as_str().unwrap(),
        codes.as_deref(),
    );
    scratch.run_ok();
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(input["balanced"], true, "{input:#}");
    assert_eq!(input["read"], expected["read"], "read: {input:#}");
    assert_eq!(
        input["accepted"]["records"], expected["accepted"],
        "accepted: {input:#}"
    );
    assert_eq!(
        counts(&input["rejected"]),
        expected_counts(&expected["rejected"]),
        "rejected"
    );
    assert_eq!(
        counts(&input["excluded"]),
        expected_counts(&expected["excluded"]),
        "excluded"
    );
    let (value, expected_value) = (
        input["accepted"]["value"].as_f64().unwrap(),
        expected["value_sum"].as_f64().unwrap(),
    );
    assert!(
        (value - expected_value).abs() <= 1e-12 * expected_value,
        "value {value} vs {expected_value}"
    );

    // The audit layer holds the accepted records, and those classification then excluded.
    let raw = read_table(
        &scratch.path("warehouse"),
        "raw",
        "province, partner, hs_code, value",
    )
    .await;
    let mut actual: Vec<String> = raw
        .iter()
        .filter(|r| {
            let province = text(r, "province");
            let chapter = &text(r, "hs_code")[..2];
            let to_china = province.len() == 2 && text(r, "partner") == "CHN";
            !(to_china || chapter == "98" || chapter == "99")
        })
        .map(|r| {
            format!(
                "{} {} {} {} {} {:.6e} {}",
                text(r, "year"),
                text(r, "month"),
                text(r, "province"),
                text(r, "partner"),
                text(r, "hs_code"),
                r["value"].float(),
                text(r, "currency")
            )
        })
        .collect();
    let mut wanted: Vec<String> = expected["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let month = if r[1].is_null() {
                "null".to_string()
            } else {
                r[1].to_string()
            };
            format!(
                "{} {month} {} {} {} {:.6e} {}",
                r[0],
                r[2].as_str().unwrap(),
                r[3].as_str().unwrap(),
                r[4].as_str().unwrap(),
                r[5].as_f64().unwrap(),
                r[6].as_str().unwrap()
            )
        })
        .collect();
    actual.sort();
    wanted.sort();
    assert_eq!(actual, wanted, "canonical records of {sample}");
    assert_eq!(
        input["origin_column"].as_str(),
        expected["origin_column"].as_str(),
        "origin column"
    );
}

#[tokio::test]
async fn a_gbk_customs_export_in_cny() {
    check_sample("customs/exports-2021-cny-gbk.csv", None).await;
}

#[tokio::test]
async fn a_utf8_bom_customs_export_in_usd_by_domestic_origin() {
    check_sample("customs/exports-2021-usd-utf8bom.csv", None).await;
}

#[tokio::test]
async fn a_comtrade_file_with_breakdowns_and_world_rows() {
    check_sample("comtrade/comtrade-2021.csv", None).await;
}

/// A Comtrade export row (China to `partner`, 2021) of `cmd` at HS level `level`.
fn comtrade_row(partner: &str, cmd: &str, level: usize, value: f64) -> String {
    format!(
        "C,A,20210101,2021,52,2021,156,CHN,China,X,Export,999,{partner},Partner,0,W00,World,H5,HS,\
         True,{cmd},Goods,{level},True,C00,TOTAL CPC,0,0,TOTAL MOT,8,kg,1,False,-1,N/A,0,False,\
         1,False,0,False,,{value},{value},0,True,False\n"
    )
}

/// A Comtrade file listing the same trade at 2, 4 and 6 digits: 100 to USA in chapter 85
/// (85: 100; 8517: 100; 851712: 60 and 851713: 40), and 7 to Taiwan at 6 digits, coded S19.
fn comtrade_levels_file(scratch: &Scratch) -> PathBuf {
    let header = std::fs::read_to_string(data("comtrade/comtrade-2021.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let rows = [
        comtrade_row("USA", "85", 2, 107.0),
        comtrade_row("USA", "8517", 4, 100.0),
        comtrade_row("USA", "851712", 6, 60.0),
        comtrade_row("USA", "851713", 6, 40.0),
        comtrade_row("S19", "851712", 6, 7.0),
    ];
    scratch.write(
        "levels/comtrade-2021.csv",
        &format!("{header}\n{}", rows.concat()),
    )
}

/// Runs the levels file with `settings` added to its input; the run's stdout, stderr and
/// whether it succeeded.
fn run_levels(settings: &str) -> (Scratch, String, bool) {
    let scratch = Scratch::new();
    let file = comtrade_levels_file(&scratch);
    config_for(&scratch, &file, "comtrade-csv", None);
    let config = scratch.path("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "format = \"comtrade-csv\"\n",
        &format!("format = \"comtrade-csv\"\n{settings}"),
    );
    std::fs::write(&config, text).unwrap();
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (scratch, text, output.status.success())
}

/// Without a choice, a file mixing HS levels is an error naming the file and the key; a
/// level or `finest` keeps one level, the others excluded by rule `other_hs_level`.
#[tokio::test]
async fn comtrade_keeps_one_hs_level_per_file() {
    let (_scratch, text, ok) = run_levels("");
    assert!(!ok, "{text}");
    assert!(
        text.contains("comtrade-2021.csv")
            && text.contains("mixes HS levels 2, 4, 6")
            && text.contains("inputs[0].hs-level"),
        "{text}"
    );
    for (setting, accepted, usd, excluded) in [
        ("hs-level = \"finest\"\n", 3, 107.0, 2),
        ("hs-level = 6\n", 3, 107.0, 2),
        ("hs-level = 4\n", 1, 100.0, 4),
        ("hs-level = 2\n", 1, 107.0, 4),
    ] {
        let (scratch, text, ok) = run_levels(setting);
        assert!(ok, "{setting}: {text}");
        let input = &manifest(&scratch)["inputs"][0];
        assert_eq!(
            input["accepted"]["records"], accepted,
            "{setting}: {input:#}"
        );
        assert_eq!(
            input["excluded"]["other_hs_level"]["records"], excluded,
            "{setting}: {input:#}"
        );
        let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
        let chn = select(&indices, &[("province", "CHN"), ("category", "all")]);
        assert_eq!(chn[0]["exports_usd"].float(), usd, "{setting}");
    }
    let (_scratch, text, ok) = run_levels("hs-level = 3\n");
    assert!(!ok && text.contains("inputs[0].hs-level"), "{text}");
}

/// Comtrade's S19 ("Other Asia, nes") is Taiwan's trade through the alias table; with
/// `partner-aliases = false` it is rejected, as S19 is no ISO3 code.
#[tokio::test]
async fn comtrade_s19_is_taiwan_unless_aliases_are_off() {
    let (scratch, text, ok) = run_levels("hs-level = 6\n");
    assert!(ok, "{text}");
    let lq = read_table(&scratch.path("out"), "lq", "province, partner, category").await;
    let taiwan = select(&lq, &[("province", "CHN"), ("partner", "TWN")]);
    assert_eq!(taiwan[0]["exports_usd"].float(), 7.0);
    let (scratch, text, ok) = run_levels("hs-level = 6\npartner-aliases = false\n");
    assert!(ok, "{text}");
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(
        input["rejected"]["bad_partner_code"]["records"], 1,
        "{input:#}"
    );
}

#[tokio::test]
async fn a_baci_file_with_leading_zeros_and_missing_quantities() {
    check_sample(
        "baci/BACI_HS17_Y2021_V202401.csv",
        Some("baci/country_codes_V202401.csv"),
    )
    .await;
}

/// The same customs records, once GBK in CNY and once UTF-8 in USD (at 2021's rate), give the
/// same indices.
#[tokio::test]
async fn gbk_cny_and_utf8_usd_give_the_same_indices() {
    let mut tables = Vec::new();
    for sample in [
        "customs/exports-2021-cny-gbk.csv",
        "customs/exports-2021-usd-utf8bom.csv",
    ] {
        let scratch = Scratch::new();
        config_for(&scratch, &data(sample), "auto", None);
        scratch.run_ok();
        tables.push(read_table(&scratch.path("out"), "indices", "year, province, category").await);
    }
    let (cny, usd) = (&tables[0], &tables[1]);
    assert_eq!(cny.len(), usd.len());
    assert!(!cny.is_empty());
    for (a, b) in cny.iter().zip(usd) {
        for (column, value) in a {
            match (value, &b[column]) {
                (Value::Float(x), Value::Float(y)) => assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) + 1e-15,
                    "{column}: {x} vs {y} in {a:?}"
                ),
                (x, y) => assert_eq!(x, y, "{column}"),
            }
        }
    }
}

/// Every broken input: no panic; a file-level problem names the file and the place and
/// leaves published outputs as they were; a row-level problem is a counted, located reject.
#[tokio::test]
async fn broken_inputs_are_named_counted_and_never_lose_outputs() {
    let cases: Json =
        serde_json::from_str(&std::fs::read_to_string(data("broken/cases.json")).unwrap()).unwrap();
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 15, "at least 15 distinct broken inputs");

    // A good run first, whose outputs every failed run must leave alone.
    let published = Scratch::new();
    published.write(
        "inputs/good.csv",
        "year,month,province,partner,hs_code,value,currency\n2021,,44,USA,8504,10,USD\n",
    );
    published.config(&[2021], "");
    published.run_ok();
    let published_file = partition_file(&published.path("out/indices/year=2021/province=44"));
    let before = std::fs::read(&published_file).unwrap();

    for case in cases {
        let name = case["file"].as_str().unwrap();
        let format = case["format"].as_str().unwrap();
        let codes = case["country_codes"]
            .as_str()
            .map(|c| data("broken").join(c));
        let scratch = if case["kind"] == "file" {
            &published
        } else {
            &Scratch::new()
        };
        config_for(
            scratch,
            &data("broken").join(name),
            format,
            codes.as_deref(),
        );
        let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        if case["kind"] == "file" {
            assert_eq!(
                output.status.code(),
                Some(1),
                "{name} must fail on its data: {stderr}"
            );
            let expect = case["expect"].as_str().unwrap();
            assert!(
                stderr.contains(name) && stderr.contains(expect),
                "{name}: `{expect}` not in {stderr}"
            );
            assert_eq!(
                std::fs::read(&published_file).unwrap(),
                before,
                "{name} touched the outputs"
            );
            continue;
        }
        assert!(output.status.success(), "{name}: {stderr}");
        let input = &manifest(scratch)["inputs"][0];
        assert_eq!(input["balanced"], true, "{name}: {input:#}");
        if let Some(records) = case["expect"]["records"].as_u64() {
            assert_eq!(input["read"].as_u64(), Some(records), "{name}");
            continue;
        }
        if let Some(read) = case["expect"]["read"].as_u64() {
            assert_eq!(input["read"].as_u64(), Some(read), "{name}: records read");
        }
        let expected: Vec<(&str, i64)> = match case["expect"]["rejects"].as_array() {
            Some(rejects) => rejects
                .iter()
                .map(|r| (r[0].as_str().unwrap(), r[1].as_i64().unwrap()))
                .collect(),
            None => vec![(
                case["expect"]["reason"].as_str().unwrap(),
                case["expect"]["line"].as_i64().unwrap(),
            )],
        };
        let rejects = read_table(&scratch.path("out"), "rejects", "source, line").await;
        assert_eq!(rejects.len(), expected.len(), "{name}: {rejects:?}");
        for (reason, line) in expected {
            let found = rejects.iter().any(|r| {
                text(r, "reason") == reason
                    && r["line"] == Value::Int(line)
                    && text(r, "source").ends_with(name)
            });
            assert!(
                found,
                "{name}: no `{reason}` reject on line {line} in {rejects:?}"
            );
        }
        if let Some(usd) = case["expect"]["exports_usd"].as_f64() {
            // Over every origin: BACI's is China as a reporter country, not CN's provinces.
            let indices = read_table(&scratch.path("out"), "indices", "province").await;
            let origins: f64 = indices
                .iter()
                .filter(|r| text(r, "category") == "all" && text(r, "province") != "CN")
                .map(|r| r["exports_usd"].float())
                .sum();
            assert_eq!(origins, usd, "{name}: the good rows' exports");
        }
    }
}

/// A landing folder as a data team's holds it: besides the data, a `_SUCCESS` marker, a
/// `.DS_Store`, a zero-byte file and a writer's `_temporary/` folder. The files are skipped
/// and listed, as Spark and Hive skip them (subfolders are not read at all); a folder
/// holding nothing else is an error naming it.
#[tokio::test]
async fn a_landing_folder_skips_hidden_and_empty_files_and_lists_them() {
    let scratch = Scratch::new();
    let good = "year,month,province,partner,hs_code,value,currency\n2021,,44,USA,8504,10,USD\n";
    scratch.write("landing/a.csv", good);
    scratch.write("landing/_SUCCESS", "");
    scratch.write("landing/.DS_Store", "\u{0}\u{0}\u{0}\u{1}Bud1 binary");
    scratch.write("landing/empty.csv", "");
    scratch.write("landing/_temporary/0/part-0.csv", good);
    config_for(&scratch, &scratch.path("landing"), "auto", None);
    let summary = scratch.run_ok();
    for (file, reason) in [
        ("landing/_SUCCESS", "hidden name"),
        ("landing/.DS_Store", "hidden name"),
        ("landing/empty.csv", "empty (0 bytes)"),
    ] {
        let line = summary
            .lines()
            .position(|l| l.ends_with(file))
            .unwrap_or_else(|| panic!("{file} not listed in:\n{summary}"));
        let next = summary.lines().nth(line + 1).unwrap();
        assert!(next.contains("skipped:") && next.contains(reason), "{next}");
    }
    let manifest = manifest(&scratch);
    assert_eq!(manifest["skipped_inputs"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 1);
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let all = select(&indices, &[("province", "CN"), ("category", "all")]);
    assert_eq!(all[0]["exports_usd"].float(), 10.0, "read once, not twice");

    std::fs::remove_file(scratch.path("landing/a.csv")).unwrap();
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.contains("landing") && message.contains("has nothing readable"),
        "{message}"
    );
}

/// Records rejected for any reason, from a manifest's input.
fn rejected_records(input: &Json) -> u64 {
    let by_reason = input["rejected"].as_object().unwrap();
    by_reason
        .values()
        .map(|t| t["records"].as_u64().unwrap())
        .sum()
}

/// The national exports of 2021 in USD, from the published `indices`.
async fn national_usd(scratch: &Scratch) -> f64 {
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    select(&indices, &[("province", "CN"), ("category", "all")])[0]["exports_usd"].float()
}

/// One encoding for the whole file: a GB18030 file whose first 1.1 MB are ASCII (more than
/// one read of the file: an embedded run's plan has summed them when the first Chinese
/// character comes) is read as GB18030 from its first line, not as UTF-8 until its first
/// Chinese character, and each record is counted once; the choice is in the manifest.
#[tokio::test]
async fn the_encoding_is_chosen_for_the_whole_file() {
    let mut text = b"year,month,province,partner,hs_code,value,currency,note\n".to_vec();
    for _ in 0..20_000 {
        text.extend_from_slice(b"2021,,44,USA,8504,1,USD,ascii padding of the first lines\n");
    }
    // 东莞 (Dongguan) in GB18030.
    text.extend_from_slice(b"2021,,44,USA,8504,2,USD,\xb6\xab\xdd\xb8\n");
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("landing")).unwrap();
    std::fs::write(scratch.path("landing/gb.csv"), &text).unwrap();
    config_for(
        &scratch,
        &scratch.path("landing/gb.csv"),
        "canonical-csv",
        None,
    );
    scratch.run_ok();
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(input["encoding"], "gb18030", "{input:#}");
    assert_eq!(input["read"], 20_001, "{input:#}");
    assert_eq!(rejected_records(input), 0, "{input:#}");
    assert_eq!(national_usd(&scratch).await, 20_002.0);
}

/// Long records after 1.1 MB of short ones: an embedded run's plan, reading in the engine's
/// batches, meets them part-way and is run again in smaller batches; every record is
/// counted once, the long ones' raw text kept as far as rejects keep it.
#[tokio::test]
async fn long_records_late_in_a_file_are_counted_once() {
    let mut csv = "year,month,province,partner,hs_code,value,currency,note\n".to_string();
    for _ in 0..20_000 {
        csv.push_str("2021,,44,USA,8504,1,USD,short records before the long ones\n");
    }
    let note = "x".repeat(100_000);
    csv.push_str(&format!("2021,,44,USA,8504,2,USD,{note}\n"));
    csv.push_str(&format!("2021,,44,USA,8504,-3,USD,{note}\n"));
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("landing")).unwrap();
    std::fs::write(scratch.path("landing/long.csv"), &csv).unwrap();
    config_for(
        &scratch,
        &scratch.path("landing/long.csv"),
        "canonical-csv",
        None,
    );
    scratch.run_ok();
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(input["read"], 20_002, "{input:#}");
    assert_eq!(rejected_records(input), 1, "{input:#}");
    assert_eq!(national_usd(&scratch).await, 20_002.0);
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(text(&rejects[0], "line"), "20003");
    assert!(
        text(&rejects[0], "raw").starts_with("2021,,44,USA,8504,-3,USD,xxx"),
        "{rejects:?}"
    );
}

/// Downloads often come compressed: `.gz` and `.zst` text files are read as their text, in
/// a folder of canonical CSV as under `auto`.
#[tokio::test]
async fn gzip_and_zstd_inputs_are_read_as_their_text() {
    use std::io::Write as _;
    let mut text = canonical_csv(&[
        (2021, "44", "USA", "8504", 10.0, "USD"),
        (2021, "32", "DEU", "8471", 5.5, "USD"),
    ]);
    text.push_str("2021,,44,USA,8504,not-a-number,USD\n");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(text.as_bytes()).unwrap();
    let gzip = gzip.finish().unwrap();
    let zstd = zstd::encode_all(text.as_bytes(), 3).unwrap();
    for format in ["canonical-csv", "auto"] {
        for (name, bytes) in [("x.csv.gz", &gzip), ("x.CSV.ZST", &zstd)] {
            let scratch = Scratch::new();
            std::fs::create_dir_all(scratch.path("landing")).unwrap();
            std::fs::write(scratch.path("landing").join(name), bytes).unwrap();
            config_for(&scratch, &scratch.path("landing"), format, None);
            scratch.run_ok();
            let input = &manifest(&scratch)["inputs"][0];
            assert_eq!(input["read"], 3, "{name}, {format}: {input:#}");
            assert_eq!(rejected_records(input), 1, "{name}, {format}");
            assert_eq!(national_usd(&scratch).await, 15.5, "{name}, {format}");
        }
    }
}

/// `max-line-bytes` caps a record: a longer line is rejected as `line_too_long` and the
/// lines around it are read.
#[tokio::test]
async fn the_line_cap_is_a_setting() {
    let scratch = Scratch::new();
    let mut csv = canonical_csv(&[(2021, "44", "USA", "8504", 10.0, "USD")]);
    csv.push_str(&format!("2021,,44,USA,8504,1,USD{}\n", " ".repeat(2000)));
    csv.push_str("2021,,44,USA,8504,5,USD\n");
    scratch.write("landing/long.csv", &csv);
    config_for(&scratch, &scratch.path("landing"), "canonical-csv", None);
    let config = scratch.path("config.toml");
    let with_cap = format!(
        "max-line-bytes = \"1KiB\"\n{}",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, with_cap).unwrap();
    scratch.run_ok();
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(input["read"], 3, "{input:#}");
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(
        (text(&rejects[0], "reason"), &rejects[0]["line"]),
        ("line_too_long".to_string(), &Value::Int(3))
    );
    assert_eq!(national_usd(&scratch).await, 15.0);
}

/// Column names go into SQL quoted: a Parquet input whose names differ in case from the
/// contract and that carries a column named like an injection, and a CSV header with a quote
/// in a name, are read as any other.
#[tokio::test]
async fn odd_column_names_are_quoted_in_sql() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("landing")).unwrap();
    let parquet = scratch.path("landing/odd.parquet");
    let ctx = exdep_engine::datafusion::prelude::SessionContext::new();
    let copy = format!(
        "COPY (SELECT 2021 AS \"YEAR\", CAST(NULL AS INT) AS month, '44' AS \"Province\", \
         'USA' AS partner, '8504' AS hs_code, 10.5 AS \"Value\", 'USD' AS currency, \
         'x' AS \"note\"\"; DROP TABLE t; --\") TO '{}' STORED AS PARQUET",
        parquet.display()
    );
    ctx.sql(&copy).await.unwrap().collect().await.unwrap();
    config_for(&scratch, &parquet, "canonical-parquet", None);
    scratch.run_ok();
    assert_eq!(national_usd(&scratch).await, 10.5);

    let scratch = Scratch::new();
    scratch.write(
        "landing/odd.csv",
        "year,month,province,partner,hs_code,value,currency,\"a\"\"b\"\n\
         2021,,44,USA,8504,7,USD,x\n",
    );
    config_for(
        &scratch,
        &scratch.path("landing/odd.csv"),
        "canonical-csv",
        None,
    );
    scratch.run_ok();
    assert_eq!(national_usd(&scratch).await, 7.0);
}

/// A file without line breaks (here over 2 MiB after the header) is one record over the cap:
/// rejected as `line_too_long`, never held whole, and the run succeeds.
#[tokio::test]
async fn a_file_without_line_breaks_is_one_rejected_record() {
    let scratch = Scratch::new();
    let mut flat = canonical_csv(&[(2021, "44", "USA", "8504", 10.0, "USD")]);
    flat.push_str(&"2021,,44,USA,8504,1,USD,".repeat(3 << 20 >> 5));
    scratch.write("landing/flat.csv", &flat);
    config_for(&scratch, &scratch.path("landing"), "canonical-csv", None);
    scratch.run_ok();
    let input = &manifest(&scratch)["inputs"][0];
    assert_eq!(input["read"], 2, "{input:#}");
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(text(&rejects[0], "reason"), "line_too_long");
    assert!(text(&rejects[0], "raw").len() <= 256);
    assert_eq!(national_usd(&scratch).await, 10.0);
}

/// A rejected record keeps its text as the file has it, whether the staging copy stores it
/// (quotes, a line break inside quotes, a field too many for a header with a trailing comma,
/// the wrong number of fields) or rebuilds it from the fields (a plain record, empty fields
/// and spaces included).
#[tokio::test]
async fn rejected_records_keep_their_text_as_written() {
    let scratch = Scratch::new();
    let lines = [
        "year,month,province,partner,hs_code,value,currency,",
        "2021,,44,USA,8504,10,USD,",
        "2021,, 44 ,XXX,8504,1,USD",
        "2021,,44,USA,85x4,2,USD,",
        "2021,,44,\"US\"\"A\",8504,3,USD",
        "2021,,44,\"U\nSA\",8504,4,USD",
        "2021,,44,USA,8504,5",
        "1999,,44,USA,8504,6,USD,,",
    ];
    scratch.write("landing/text.csv", &format!("{}\n", lines.join("\n")));
    config_for(&scratch, &scratch.path("landing"), "canonical-csv", None);
    scratch.run_ok();
    let rejects = read_table(&scratch.path("out"), "rejects", "line").await;
    let found: Vec<(i64, String)> = rejects
        .iter()
        .map(|r| (r["line"].float() as i64, text(r, "raw")))
        .collect();
    let expected: Vec<(i64, String)> = [
        (3, "2021,, 44 ,XXX,8504,1,USD"),
        (4, "2021,,44,USA,85x4,2,USD,"),
        (5, "2021,,44,\"US\"\"A\",8504,3,USD"),
        (6, "2021,,44,\"U SA\",8504,4,USD"),
        (8, "2021,,44,USA,8504,5"),
        (9, "1999,,44,USA,8504,6,USD,,"),
    ]
    .into_iter()
    .map(|(line, raw)| (line, raw.to_string()))
    .collect();
    assert_eq!(found, expected);
    assert_eq!(national_usd(&scratch).await, 10.0);
}
