//! Hand-computed fixtures for the study's further views: the Theil decomposition,
//! specialization, quadrants, Hummels-Klenow margins, growth margins, strongest links,
//! destination lists and index changes.

use crate::support::{Scratch, Value, assert_close, read_table, select};

/// Three partners in two regions: shares 0.5 and 0.3 in north_america, 0.2 in western_europe.
#[tokio::test]
async fn theil_decomposes_into_between_and_within_regions() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "44", "USA", "8504", 50.0, "USD"),
            (2020, "44", "CAN", "8504", 30.0, "USD"),
            (2020, "44", "DEU", "8504", 20.0, "USD"),
        ],
        &[2020],
        "",
    );
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let row = select(&indices, &[("province", "44"), ("category", "technology")])[0];
    let entropy = -(0.5f64 * 0.5f64.ln() + 0.3 * 0.3f64.ln() + 0.2 * 0.2f64.ln());
    let between = 0.8 * (0.8f64 * 3.0 / 2.0).ln() + 0.2 * (0.2f64 * 3.0 / 1.0).ln();
    let within_north_america = 2f64.ln() + (0.625 * 0.625f64.ln() + 0.375 * 0.375f64.ln());
    assert_close(row["theil"].float(), 3f64.ln() - entropy, "theil");
    assert_close(row["theil_between"].float(), between, "theil_between");
    assert_close(
        row["theil_within"].float(),
        0.8 * within_north_america,
        "theil_within",
    );
    assert_close(row["evenness"].float(), entropy / 3f64.ln(), "evenness");
    assert_close(
        row["equivalent_markets"].float(),
        1.0 / 0.38,
        "equivalent_markets",
    );
}

/// Partner A takes resource goods only (10); B takes resource 10 and labor 20. So e_N = 40,
/// e_A/e_N = 0.25, e_B/e_N = 0.75; resource shares 0.5/0.5, labor shares 0/1. Both
/// categories have specialization |0.5-0.25| + |0.5-0.75| = |0-0.25| + |1-0.75| = 0.5; the
/// labor case counts partner A, to which no labor goods go.
#[tokio::test]
async fn specialization_counts_partners_without_the_category() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "11", "USA", "0101", 10.0, "USD"),
            (2020, "11", "JPN", "0201", 10.0, "USD"),
            (2020, "11", "JPN", "6101", 20.0, "USD"),
        ],
        &[2020],
        "",
    );
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    for category in ["resource", "labor"] {
        let row = select(&indices, &[("province", "11"), ("category", category)])[0];
        assert_close(row["specialization"].float(), 0.5, category);
    }
    let all = select(&indices, &[("province", "11"), ("category", "all")])[0];
    assert_eq!(all["specialization"], Value::Null);
}

/// Capital goods: province 11 sells USA 100, JPN 50; province 12 sells USA 50, DEU 100.
/// The nation sells USA 150, JPN 50, DEU 100 (300). For 11: served = 200, so EM = 2/3 and
/// IM = 150/200; for 12: served = 250, EM = 5/6, IM = 150/250. EM x IM = 1/2 for both.
/// Labor goods place three provinces in the G-V plane: 11 and 12 at G = 5/9, V = ln 3 - 2/3
/// ln 2, 13 with one destination (G = 1, V = 0); the means are G = 19/27, V = 2/3 of theirs.
#[tokio::test]
async fn hummels_klenow_margins_and_quadrants() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "11", "USA", "8401", 100.0, "USD"),
            (2020, "11", "JPN", "8401", 50.0, "USD"),
            (2020, "12", "USA", "8401", 50.0, "USD"),
            (2020, "12", "DEU", "8401", 100.0, "USD"),
            (2020, "11", "USA", "6101", 20.0, "USD"),
            (2020, "11", "JPN", "6101", 10.0, "USD"),
            (2020, "12", "USA", "6101", 10.0, "USD"),
            (2020, "12", "JPN", "6101", 20.0, "USD"),
            (2020, "13", "USA", "6101", 5.0, "USD"),
        ],
        &[2020],
        "",
    );
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let capital =
        |province| select(&indices, &[("province", province), ("category", "capital")])[0].clone();
    assert_close(capital("11")["hk_extensive"].float(), 2.0 / 3.0, "EM 11");
    assert_close(capital("11")["hk_intensive"].float(), 0.75, "IM 11");
    assert_close(capital("12")["hk_extensive"].float(), 5.0 / 6.0, "EM 12");
    assert_close(capital("12")["hk_intensive"].float(), 0.6, "IM 12");
    assert_close(capital("CN")["hk_extensive"].float(), 1.0, "EM CN");
    assert_close(capital("CN")["hk_intensive"].float(), 1.0, "IM CN");
    let quadrant = |province| {
        select(&indices, &[("province", province), ("category", "labor")])[0]["quadrant"].clone()
    };
    assert_eq!(quadrant("11"), Value::Text("II".into()), "low G, high V");
    assert_eq!(quadrant("12"), Value::Text("II".into()), "low G, high V");
    assert_eq!(quadrant("13"), Value::Text("IV".into()), "high G, low V");
    assert_eq!(quadrant("CN"), Value::Null);
    // Capital: 11 and 12 share G and V exactly, which is the mean: both count as high.
    assert_eq!(capital("11")["quadrant"], Value::Text("I".into()));
}

/// 2020: USA 100, JPN 50, DEU 30. 2021: USA 120, JPN 50, BRA 40, DEU 1. So new = 40 (BRA),
/// lost = 0, intensive = 20 - 29 = -9, delta = 211 - 180 = 31. With DEU gone in 2022
/// (USA 120, JPN 50, BRA 40): lost = 1, delta = -1.
#[tokio::test]
async fn growth_margins_destinations_links_and_changes() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "44", "USA", "8504", 100.0, "USD"),
            (2020, "44", "JPN", "8504", 50.0, "USD"),
            (2020, "44", "DEU", "8504", 30.0, "USD"),
            (2021, "44", "USA", "8504", 120.0, "USD"),
            (2021, "44", "JPN", "8504", 50.0, "USD"),
            (2021, "44", "BRA", "8504", 40.0, "USD"),
            (2021, "44", "DEU", "8504", 1.0, "USD"),
            (2021, "32", "USA", "8504", 120.0, "USD"),
            (2021, "32", "KOR", "8504", 10.0, "USD"),
            (2022, "44", "USA", "8504", 120.0, "USD"),
            (2022, "44", "JPN", "8504", 50.0, "USD"),
            (2022, "44", "BRA", "8504", 40.0, "USD"),
        ],
        // Threshold 200 CNY: USA, JPN and DEU (30 USD = 207 CNY in 2020) pass in 2020, the base.
        &[2020, 2021, 2022],
        "[indices]\ndestination-threshold-cny = 200.0\ntop-n = 2\n",
    );
    let out = scratch.path("out");

    let margins = read_table(&out, "margins", "year, province, category, region").await;
    assert!(
        select(&margins, &[("year", "2020")]).is_empty(),
        "no previous year for 2020"
    );
    let all = select(
        &margins,
        &[
            ("year", "2021"),
            ("province", "44"),
            ("category", "technology"),
            ("region", "all"),
        ],
    )[0];
    assert_close(all["delta"].float(), 31.0, "delta");
    assert_close(all["new"].float(), 40.0, "new");
    assert_close(all["lost"].float(), 0.0, "lost");
    assert_close(all["intensive"].float(), -9.0, "intensive");
    let latin = select(
        &margins,
        &[
            ("year", "2021"),
            ("province", "44"),
            ("category", "technology"),
            ("region", "latin_america"),
        ],
    )[0];
    assert_close(latin["new"].float(), 40.0, "BRA is new");
    let lost = select(
        &margins,
        &[
            ("year", "2022"),
            ("province", "44"),
            ("category", "all"),
            ("region", "western_europe"),
        ],
    )[0];
    assert_close(lost["lost"].float(), 1.0, "DEU is lost");
    assert_close(lost["delta"].float(), -1.0, "DEU's delta");
    // Province 32 starts in 2021: all of it is new, in every region row and in `all`.
    let newcomer = select(
        &margins,
        &[
            ("year", "2021"),
            ("province", "32"),
            ("category", "all"),
            ("region", "all"),
        ],
    )[0];
    assert_close(
        newcomer["new"].float(),
        130.0,
        "a new origin's exports are new",
    );

    let links = read_table(&out, "top_links", "year, category, rank").await;
    let links_2021: Vec<_> = select(&links, &[("year", "2021"), ("category", "technology")]);
    assert_eq!(links_2021.len(), 2, "top-n = 2");
    // 32-USA and 44-USA tie at 120: province 32 comes first.
    assert_eq!(links_2021[0]["province"], Value::Text("32".into()));
    assert_eq!(links_2021[1]["province"], Value::Text("44".into()));
    assert_close(
        links_2021[0]["share_of_category"].float(),
        120.0 / 341.0,
        "share",
    );

    let destinations = read_table(&out, "destinations", "year, partner").await;
    let status = |year: &str, partner: &str| {
        select(&destinations, &[("year", year), ("partner", partner)])[0]["status"].clone()
    };
    assert_eq!(status("2020", "USA"), Value::Text("stayed".into()));
    assert_eq!(
        status("2020", "JPN"),
        Value::Text("stayed".into()),
        "345 CNY"
    );
    assert_eq!(status("2021", "KOR"), Value::Text("never".into()), "65 CNY");
    assert_eq!(status("2021", "BRA"), Value::Text("entered".into()));
    assert_eq!(
        status("2021", "DEU"),
        Value::Text("left".into()),
        "1 USD is below the line"
    );
    assert_eq!(status("2020", "DEU"), Value::Text("stayed".into()));
    // DEU, above the line in the base year, buys nothing at all in 2022: still listed.
    let gone = select(&destinations, &[("year", "2022"), ("partner", "DEU")]);
    assert_eq!(gone.len(), 1, "a vanished partner has a row");
    assert_eq!(gone[0]["status"], Value::Text("left".into()));
    assert_eq!(gone[0]["exports_usd"].float(), 0.0);
    assert_eq!(gone[0]["exports_cny"].float(), 0.0);
    assert_eq!(gone[0]["region"], Value::Text("western_europe".into()));
    assert_eq!(gone[0]["above_threshold"], Value::Text("false".into()));
    // KOR was never above the line: its absence in 2022 is no row.
    assert!(select(&destinations, &[("year", "2022"), ("partner", "KOR")]).is_empty());

    let changes = read_table(&out, "indices_change", "year, province, category, index").await;
    let exports = select(
        &changes,
        &[
            ("year", "2022"),
            ("province", "44"),
            ("category", "all"),
            ("index", "exports_usd"),
        ],
    )[0];
    assert_close(
        exports["change_from_previous"].float(),
        -1.0,
        "exports change",
    );
    assert_close(
        exports["change_from_base"].float(),
        30.0,
        "exports change since 2020",
    );
    assert_close(
        exports["exports_cagr"].float(),
        (210.0f64 / 180.0).sqrt() - 1.0,
        "CAGR",
    );
    let destinations_change = select(
        &changes,
        &[
            ("year", "2021"),
            ("province", "44"),
            ("category", "all"),
            ("index", "destinations"),
        ],
    )[0];
    assert_close(
        destinations_change["change_from_previous"].float(),
        1.0,
        "one more destination",
    );
    let base = select(
        &changes,
        &[
            ("year", "2020"),
            ("province", "44"),
            ("category", "all"),
            ("index", "hhi"),
        ],
    )[0];
    assert_eq!(
        base["change_from_previous"],
        Value::Null,
        "2019 is not in the warehouse"
    );
    assert_close(
        base["change_from_base"].float(),
        0.0,
        "the base year against itself",
    );
    assert_eq!(base["exports_cagr"], Value::Null);
}

/// With `destination-level = "region"`, hhi, entropy and margins count regions: USA and CAN
/// merge into north_america.
#[tokio::test]
async fn the_destination_level_switch_counts_regions() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "44", "USA", "8504", 50.0, "USD"),
            (2020, "44", "CAN", "8504", 30.0, "USD"),
            (2020, "44", "DEU", "8504", 20.0, "USD"),
            (2021, "44", "USA", "8504", 50.0, "USD"),
            (2021, "44", "MEX", "8504", 30.0, "USD"),
        ],
        &[2020, 2021],
        "[indices]\ndestination-level = \"region\"\n",
    );
    let out = scratch.path("out");
    let indices = read_table(&out, "indices", "year, province, category").await;
    let row = select(
        &indices,
        &[("year", "2020"), ("province", "44"), ("category", "all")],
    )[0];
    assert_eq!(row["destinations"].float(), 2.0);
    assert_close(
        row["hhi"].float(),
        0.8 * 0.8 + 0.2 * 0.2,
        "hhi over regions",
    );
    assert_close(row["theil_within"].float(), 0.0, "one unit per region");
    let margins = read_table(&out, "margins", "year, province, category, region").await;
    let all = select(
        &margins,
        &[
            ("year", "2021"),
            ("province", "44"),
            ("category", "all"),
            ("region", "all"),
        ],
    )[0];
    // north_america 80 -> 50 (intensive -30), western_europe lost 20, latin_america new 30.
    assert_close(all["intensive"].float(), -30.0, "intensive over regions");
    assert_close(all["lost"].float(), 20.0, "lost");
    assert_close(all["new"].float(), 30.0, "new");
}
