//! `exdep status`: published years, their inputs, and what makes them stale.

use crate::support::Scratch;

fn status(scratch: &Scratch) -> String {
    let output = scratch.exdep(&["status", "--config", "config.toml"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn line(status: &str, year: i32) -> String {
    status
        .lines()
        .find(|l| l.starts_with(&year.to_string()))
        .unwrap_or_else(|| panic!("no line for {year} in:\n{status}"))
        .to_string()
}

#[test]
fn status_tells_what_is_published_and_what_is_stale() {
    let scratch = Scratch::new();
    scratch.config(&[2020, 2021], "");
    assert!(status(&scratch).contains("nothing is published"));

    scratch.generate_years(2020..=2021, 300, &[]);
    scratch.run_ok();
    let fresh = status(&scratch);
    for year in [2020, 2021] {
        assert!(line(&fresh, year).ends_with("current"), "{fresh}");
        assert!(line(&fresh, year).contains("yes"), "{fresh}");
    }

    // One more record in the 2021 file makes 2021 stale, and only 2021.
    let file = scratch.path("inputs/exports-2021.csv");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("2021,,44,USA,8504,10,USD\n");
    std::fs::write(&file, text).unwrap();
    let changed = status(&scratch);
    assert!(line(&changed, 2020).ends_with("current"), "{changed}");
    assert!(
        line(&changed, 2021).contains("exports-2021.csv changed"),
        "{changed}"
    );

    // A new configured year is not published yet; adding it leaves the other years alone,
    // while a change of the index settings touches every year.
    scratch.config(&[2020, 2021, 2022], "");
    let extended = status(&scratch);
    assert!(
        line(&extended, 2022).contains("configured but not published"),
        "{extended}"
    );
    assert!(line(&extended, 2020).ends_with("current"), "{extended}");
    scratch.config(&[2020, 2021, 2022], "[indices]\ntop-n = 3\n");
    let resettled = status(&scratch);
    assert!(
        line(&resettled, 2020).contains("the index settings changed"),
        "{resettled}"
    );
}
