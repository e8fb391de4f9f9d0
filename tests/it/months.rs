//! The time guards (`exdep_core::months`): a year missing months, the same records delivered
//! twice, annual and monthly records of one origin, and customs year-to-date downloads. The
//! cube sums months away, so each of these would change a year's totals without a trace.

use crate::support::{Scratch, config_text, configs_dir};

/// Canonical CSV of 2021 records of `origin` to the USA, one per month in `months` (0 for
/// an annual record), each of `value` USD.
fn months_csv(origin: &str, months: impl IntoIterator<Item = u32>, value: f64) -> String {
    let mut text = String::from("year,month,province,partner,hs_code,value,currency\n");
    for month in months {
        let month = if month == 0 {
            String::new()
        } else {
            month.to_string()
        };
        text.push_str(&format!(
            "2021,{month},{origin},USA,850440,{value},USD\n2021,{month},{origin},JPN,090111,{value},USD\n"
        ));
    }
    text
}

/// The manifest of the run in `scratch`.
fn manifest(scratch: &Scratch) -> serde_json::Value {
    let text = std::fs::read_to_string(scratch.path("out/_manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn run(scratch: &Scratch) -> (std::process::Output, String, String) {
    let output = scratch.exdep(&["run", "--config", "config.toml"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output, stdout, stderr)
}

/// A year with monthly records for 9 of 12 months is published, flagged in the summary and
/// the manifest; with `require-complete-years = true` the run is refused, naming the year,
/// the missing months and the file, and nothing is published.
#[test]
fn a_nine_month_year_is_flagged_and_refused_when_complete_years_are_required() {
    let scratch = Scratch::new();
    scratch.write("inputs/a.csv", &months_csv("44", 1..=9, 100.0));
    scratch.write("inputs/b.csv", &months_csv("11", 1..=9, 50.0));
    scratch.config(&[2021], "");
    let (output, stdout, stderr) = run(&scratch);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("warning: 2021 has monthly records for 9 of 12 months (missing 10-12)"),
        "{stdout}"
    );
    let months = &manifest(&scratch)["months_by_year"]["2021"];
    assert_eq!(
        months["months"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    assert_eq!(months["annual"], false);
    let files = months["files"].as_object().unwrap();
    assert_eq!(files.len(), 2, "{months}");

    let strict = Scratch::new();
    strict.write("inputs/a.csv", &months_csv("44", 1..=9, 100.0));
    let top = "output = \"out\"\nwarehouse = \"warehouse\"\nrequire-complete-years = true\n";
    strict.write("config.toml", &config_text(&[2021], top, &[]));
    let (output, _, stderr) = run(&strict);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("2021 misses months 10-12") && stderr.contains("inputs/a.csv"),
        "{stderr}"
    );
    assert!(!strict.path("out/_SUCCESS").exists());
    assert!(!strict.path("out/indices").exists());

    // A whole year passes the strict run.
    strict.write("inputs/a.csv", &months_csv("44", 1..=12, 100.0));
    strict.run_ok();
}

/// One province's year short of the months the others have is flagged by origin.
#[test]
fn an_origin_missing_months_the_others_have_is_flagged() {
    let scratch = Scratch::new();
    scratch.write("inputs/a.csv", &months_csv("44", 1..=12, 100.0));
    scratch.write("inputs/b.csv", &months_csv("11", 1..=10, 50.0));
    scratch.config(&[2021], "");
    let (output, stdout, stderr) = run(&scratch);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("2021: origin 11 has monthly records for months 1-10 only"),
        "{stdout}"
    );
    let months = &manifest(&scratch)["months_by_year"]["2021"];
    assert_eq!(
        months["origins_missing_months"]["11"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    );
}

/// The same records under two names (in another order, so not the same bytes) are refused
/// with both names, whether they arrive together or the copy arrives in a later run; the
/// warehouse and the output stay as they were.
#[test]
fn the_same_records_delivered_twice_are_refused_with_both_names() {
    let scratch = Scratch::new();
    let original = months_csv("44", 1..=12, 100.0);
    scratch.write("inputs/exports-2021.csv", &original);
    scratch.config(&[2021], "");
    scratch.run_ok();
    let before = crate::support::table_files(&scratch.path("out"));
    let state = std::fs::read(scratch.path("warehouse/_state.json")).unwrap();

    let mut lines: Vec<&str> = original.lines().collect();
    lines[1..].reverse();
    scratch.write("inputs/exports-2021 (1).csv", &(lines.join("\n") + "\n"));
    let (output, _, stderr) = run(&scratch);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exports-2021.csv")
            && stderr.contains("exports-2021%20(1).csv")
            && stderr.contains("hold the same records")
            && stderr.contains("for 1 year(s) of an origin")
            && stderr.contains("2021, months 1-12 origin 44: 24 records"),
        "{stderr}"
    );
    assert_eq!(crate::support::table_files(&scratch.path("out")), before);
    assert_eq!(
        std::fs::read(scratch.path("warehouse/_state.json")).unwrap(),
        state
    );

    // Split deliveries of one province-month (other records) are not copies.
    std::fs::remove_file(scratch.path("inputs/exports-2021 (1).csv")).unwrap();
    scratch.write("inputs/exports-2021-late.csv", &months_csv("44", [12], 7.0));
    scratch.run_ok();
}

/// Annual and monthly records of one origin in one year are flagged: summed, a complete
/// set of both counts the year twice.
#[test]
fn annual_and_monthly_records_of_one_origin_are_flagged() {
    let scratch = Scratch::new();
    scratch.write("inputs/monthly.csv", &months_csv("44", 1..=12, 100.0));
    scratch.write("inputs/annual.csv", &months_csv("44", [0], 1200.0));
    scratch.write("inputs/other.csv", &months_csv("11", [0], 10.0));
    scratch.config(&[2021], "");
    let (output, stdout, stderr) = run(&scratch);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("2021: origins 44 have both annual records (no month) and monthly ones"),
        "{stdout}"
    );
    let months = &manifest(&scratch)["months_by_year"]["2021"];
    assert_eq!(
        months["origins_annual_and_monthly"],
        serde_json::json!(["44"])
    );
    assert_eq!(months["annual"], true);
}

/// A customs download of year-to-date (累计) totals is refused, saying what to download.
#[test]
fn a_customs_year_to_date_download_is_refused() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/customs-ytd.csv",
        "数据年月,商品编码,商品名称,贸易伙伴编码,贸易伙伴名称,注册地编码,注册地名称,累计人民币\n\
         202101,85044090,静止式变流器,502,美国,44190,东莞,1000\n\
         202102,85044090,静止式变流器,502,美国,44190,东莞,2500\n",
    );
    scratch.config(&[2021], "");
    let partner_codes = configs_dir().join("customs_partner_codes.csv");
    let config = std::fs::read_to_string(scratch.path("config.toml"))
        .unwrap()
        .replace("canonical-csv", "customs-csv")
        + &format!("customs-partner-codes = \"{}\"\n", partner_codes.display());
    scratch.write("config.toml", &config);
    let (output, _, stderr) = run(&scratch);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "customs-ytd.csv: line 1: column `累计人民币` holds year-to-date (累计) totals"
        ) && stderr.contains("当月"),
        "{stderr}"
    );
    assert!(!scratch.path("out/_SUCCESS").exists());
}
