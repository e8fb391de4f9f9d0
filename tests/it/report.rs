//! `exdep report` opened in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) renders every figure with marks, with no error and no request; a
//! rerun that adds a year shows it without any change to the report.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Scratch, config_text, configs_dir, read_table, select};

/// The figures the report draws, by element id (`product-margins` with `product_margins`
/// published, which the tests' config asks for).
const FIGURES: [&str; 9] = [
    "region-shares",
    "destinations",
    "top-links",
    "concentration-diversification",
    "specialization",
    "location-quotients",
    "margins",
    "product-margins",
    "tile-map",
];

fn chromium() -> &'static str {
    let found = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "chromium not found (apt-get install chromium)");
    "chromium"
}

/// Runs headless Chromium on `page` with `args`, in a profile folder of its own.
fn headless(page: &Path, args: &[&str], profile: &Path) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Any host name resolves nowhere: a request could not leave even if the page's
            // policy let it.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

/// The page's DOM once its scripts have run.
fn rendered_dom(page: &Path, profile: &Path) -> String {
    let output = headless(page, &["--dump-dom"], profile);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The markup of figure `id`: from its element to the end of its section.
fn figure_markup<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let end = dom[start..].find("</section>").unwrap();
    &dom[start..start + end]
}

/// Writes a config for `years` whose exchange-rate table has 2023 too (the shipped one
/// stops at the study's last year).
fn config(scratch: &Scratch, years: &[i32]) {
    let mut rates = std::fs::read_to_string(configs_dir().join("cny_per_usd.csv")).unwrap();
    rates.push_str("2023,7.0467\n");
    scratch.write("cny_per_usd.csv", &rates);
    let top = "output = \"out\"\nwarehouse = \"warehouse\"\n";
    let text = config_text(years, top, &[("exchange-rates", "cny_per_usd.csv")]);
    scratch.write(
        "config.toml",
        &format!("{text}\n[indices]\nproduct-margins = true\n"),
    );
}

fn report(scratch: &Scratch, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "report",
        "--config",
        "config.toml",
        "--output",
        "report.html",
    ];
    args.extend_from_slice(extra);
    let output = scratch.exdep(&args);
    assert!(
        output.status.success(),
        "exdep report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    scratch.path("report.html")
}

#[tokio::test]
#[ignore = "needs chromium"]
async fn the_report_renders_every_figure_in_a_browser_without_requests() {
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", "30000", "--to", "2023"]);
    config(&scratch, &[2017, 2018, 2019, 2020, 2021, 2022]);
    scratch.run_ok();
    let page = report(&scratch, &["--province", "33"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));

    let dom = rendered_dom(&page, &scratch.path("chromium-profile"));
    let errors = dom
        .split("id=\"report-errors\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap();
    assert!(errors.trim().is_empty(), "the page reported: {errors}");
    assert!(
        dom.contains("data-rendered=\"true\""),
        "the page never finished"
    );
    for id in FIGURES {
        let markup = figure_markup(&dom, id);
        assert!(
            markup.contains("data-rendered=\"true\""),
            "figure {id} did not render"
        );
        let marks = markup.matches("role-mark").count();
        let shapes = markup.matches("<path").count();
        assert!(
            marks > 0 && shapes > 10,
            "figure {id}: {marks} marks, {shapes} shapes"
        );
        assert!(
            markup.contains("role-legend") || id == "top-links",
            "figure {id}: no legend"
        );
        assert!(
            markup.contains("role-axis-title") || id == "tile-map",
            "figure {id}: no axis titles"
        );
    }

    // The national G of 2022, all goods, as the table has it, rounded to 4 digits.
    let indices = read_table(&scratch.path("out"), "indices", "year").await;
    let national = select(
        &indices,
        &[("year", "2022"), ("province", "CN"), ("category", "all")],
    );
    let hhi = format!("{:.4}", national[0]["hhi"].float());
    assert!(
        dom.contains(&format!(
            "<td>2022</td><td class=\"text\">all</td><td>{hhi}</td>"
        )),
        "the summary lacks the national HHI {hhi}"
    );
    assert!(
        dom.contains("Zhejiang (33)"),
        "the chosen province is shown"
    );

    // A screenshot at 1400 px, kept for a person to look at.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exdep-report.png");
    let output = headless(
        &page,
        &[
            "--window-size=1400,7000",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
        ],
        &scratch.path("chromium-profile"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 50_000,
        "an empty screenshot"
    );
    eprintln!("screenshot: {}", shot.display());

    // 2023 arrives: the same report code shows it.
    config(&scratch, &[2017, 2018, 2019, 2020, 2021, 2022, 2023]);
    scratch.run_ok();
    let dom = rendered_dom(&report(&scratch, &[]), &scratch.path("chromium-profile"));
    assert!(dom.contains("<td>2023</td><td class=\"text\">all</td>"));
    assert!(
        dom.contains("<option value=\"2023\""),
        "2023 in the year selectors"
    );
    for id in FIGURES {
        assert!(
            figure_markup(&dom, id).contains("data-rendered=\"true\""),
            "{id}"
        );
    }
}
