//! Hand-computed fixtures for every index of the three core tables.

use crate::support::{Scratch, Value, assert_close, canonical_csv, read_table, select};

/// Four partners with equal shares give G = 1/N, V = ln N and a normalized HHI of 0.
#[tokio::test]
async fn equal_shares_give_one_over_n_and_ln_n() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[
            (2020, "44", "USA", "6109", 100.0, "USD"),
            (2020, "44", "JPN", "6110", 100.0, "USD"),
            (2020, "44", "DEU", "61", 100.0, "USD"),
            (2020, "44", "FRA", "620342", 100.0, "USD"),
        ]),
    );
    scratch.config(&[2020], "");
    scratch.run_ok();
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    // labor, all, for Guangdong and for the nation: four rows, all alike.
    assert_eq!(indices.len(), 4);
    for row in &indices {
        assert_eq!(row["destinations"].float(), 4.0);
        assert_close(row["exports_usd"].float(), 400.0, "exports_usd");
        assert_close(row["hhi"].float(), 0.25, "hhi");
        assert_close(row["hhi_norm"].float(), 0.0, "hhi_norm");
        assert_close(row["entropy"].float(), 4f64.ln(), "entropy");
    }
    let shares = read_table(
        &scratch.path("out"),
        "region_shares",
        "province, category, region",
    )
    .await;
    let labor = select(&shares, &[("province", "44"), ("category", "labor")]);
    let western = select(
        &shares,
        &[
            ("province", "44"),
            ("category", "labor"),
            ("region", "western_europe"),
        ],
    );
    assert_eq!(labor.len(), 3, "north_america, east_asia, western_europe");
    assert_close(western[0]["share"].float(), 0.5, "western Europe's share");
}

/// One destination gives G = 1, V = 0 and a normalized HHI of 0.
#[tokio::test]
async fn a_single_destination_gives_full_concentration() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[
            (2021, "32", "USA", "8517", 300.0, "USD"),
            (2021, "32", "USA", "851712", 200.0, "USD"),
        ]),
    );
    scratch.config(&[2021], "");
    scratch.run_ok();
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let row = select(&indices, &[("province", "32"), ("category", "technology")])[0];
    assert_eq!(row["destinations"].float(), 1.0);
    assert_close(row["exports_usd"].float(), 500.0, "exports_usd");
    assert_close(row["hhi"].float(), 1.0, "hhi");
    assert_eq!(row["hhi_norm"].float(), 0.0);
    assert_eq!(
        row["entropy"].float().to_bits(),
        0f64.to_bits(),
        "entropy is +0"
    );
    let lq = read_table(&scratch.path("out"), "lq", "province, partner, category").await;
    let row = select(&lq, &[("province", "32")])[0];
    assert_close(row["lq"].float(), 1.0, "lq of the only cell");
}

/// A worked 3 x 3 example (partners x categories) of location quotients, with one value
/// given in CNY and converted at the year's rate.
///
/// ```text
///            resource  labor  capital | e_r
///   USA          10      20      70   | 100
///   JPN          30      30      40   | 100
///   DEU          60      10      30   | 100
///   e_m         100      60     140   | e_N = 300
/// ```
/// lq = (e_rm / e_r) / (e_m / e_N).
#[tokio::test]
async fn location_quotients_of_a_worked_three_by_three_example() {
    let scratch = Scratch::new();
    let deu_resource_cny = format!("{}", 60.0 * 6.8985);
    let mut csv = canonical_csv(&[
        (2019, "33", "USA", "0101", 10.0, "USD"),
        (2019, "33", "USA", "6101", 20.0, "USD"),
        (2019, "33", "USA", "8401", 70.0, "USD"),
        (2019, "33", "JPN", "0201", 30.0, "USD"),
        (2019, "33", "JPN", "6201", 30.0, "USD"),
        (2019, "33", "JPN", "8402", 40.0, "USD"),
        (2019, "33", "DEU", "6301", 10.0, "USD"),
        (2019, "33", "DEU", "8403", 30.0, "USD"),
    ]);
    csv.push_str(&format!("2019,7,33,DEU,0301,{deu_resource_cny},CNY\n"));
    scratch.write("inputs/a.csv", &csv);
    scratch.config(&[2019], "");
    scratch.run_ok();
    let lq = read_table(&scratch.path("out"), "lq", "province, partner, category").await;
    let expected = [
        ("USA", "resource", 0.3),
        ("USA", "labor", 1.0),
        ("USA", "capital", 0.7 / (140.0 / 300.0)),
        ("JPN", "resource", 0.9),
        ("JPN", "labor", 1.5),
        ("JPN", "capital", 0.4 / (140.0 / 300.0)),
        ("DEU", "resource", 1.8),
        ("DEU", "labor", 0.5),
        ("DEU", "capital", 0.3 / (140.0 / 300.0)),
    ];
    for province in ["33", "CN"] {
        let rows = select(&lq, &[("province", province)]);
        assert_eq!(rows.len(), 9, "nine cells for {province}");
        for (partner, category, value) in expected {
            let row = select(
                &lq,
                &[
                    ("province", province),
                    ("partner", partner),
                    ("category", category),
                ],
            );
            assert_close(
                row[0]["lq"].float(),
                value,
                &format!("lq {province} {partner} {category}"),
            );
        }
    }
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let all = select(&indices, &[("province", "33"), ("category", "all")])[0];
    assert_close(all["exports_usd"].float(), 300.0, "total exports");
    assert_close(all["hhi"].float(), 1.0 / 3.0, "equal partner totals");
    let resource = select(&indices, &[("province", "33"), ("category", "resource")])[0];
    // Shares 0.1, 0.3, 0.6.
    let hhi: f64 = 0.01 + 0.09 + 0.36;
    assert_close(resource["hhi"].float(), hhi, "hhi");
    assert_close(
        resource["hhi_norm"].float(),
        (hhi - 1.0 / 3.0) / (1.0 - 1.0 / 3.0),
        "hhi_norm",
    );
    let entropy = -(0.1f64 * 0.1f64.ln() + 0.3 * 0.3f64.ln() + 0.6 * 0.6f64.ln());
    assert_close(resource["entropy"].float(), entropy, "entropy");
}

/// The twenty partners after USA that the quadrant fixture spreads exports over.
const SMALL_PARTNERS: [&str; 20] = [
    "JPN", "CAN", "MEX", "DEU", "FRA", "GBR", "ITA", "ESP", "NLD", "BEL", "KOR", "BRA", "IND",
    "AUS", "RUS", "VNM", "THA", "SGP", "MYS", "IDN",
];

/// Labor goods (chapter 61), 100 USD per province, one province in each quadrant:
///
/// ```text
///   11  USA 100                          G = 1     V = 0        high G, low V   IV
///   12  USA 50, JPN 50                   G = 0.5   V = ln 2     low G, low V    III
///   13  USA and 9 partners, 10 each      G = 0.1   V = ln 10    low G, high V   II
///   14  USA 80, 20 partners 1 each       G = 0.642 V = 1.0995   high G, high V  I
///   means                                G = 0.5605  V = 1.0238
/// ```
/// Every column of `indices` for 13, whose ten equal shares give closed forms; evenness is
/// null for 11's single destination. The nation sells USA 240, JPN 61 and each other of
/// 13's partners 11, so 13 serves 389 of the nation's 400.
#[tokio::test]
async fn every_index_column_and_each_quadrant() {
    let scratch = Scratch::new();
    let mut rows = vec![
        (2020, "11", "USA", "6101", 100.0, "USD"),
        (2020, "12", "USA", "6101", 50.0, "USD"),
        (2020, "12", "JPN", "6101", 50.0, "USD"),
        (2020, "14", "USA", "6101", 80.0, "USD"),
    ];
    for partner in ["USA"].iter().chain(&SMALL_PARTNERS[..9]) {
        rows.push((2020, "13", partner, "6101", 10.0, "USD"));
    }
    for partner in SMALL_PARTNERS {
        rows.push((2020, "14", partner, "6101", 1.0, "USD"));
    }
    scratch.write("inputs/a.csv", &canonical_csv(&rows));
    scratch.config(&[2020], "");
    scratch.run_ok();
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let labor = |province| select(&indices, &[("province", province), ("category", "labor")])[0];

    let row = labor("13");
    let ln10 = 10f64.ln();
    let expected = [
        ("exports_usd", 100.0),
        ("destinations", 10.0),
        ("hhi", 0.1),
        ("hhi_norm", 0.0),
        ("entropy", ln10),
        ("evenness", 1.0),
        ("equivalent_markets", 10.0),
        ("equivalent_markets_entropy", 10.0),
        ("theil", 0.0),
        ("theil_between", 0.0),
        ("theil_within", 0.0),
        ("specialization", 0.0),
        ("hk_extensive", 389.0 / 400.0),
        ("hk_intensive", 100.0 / 389.0),
    ];
    for (column, value) in expected {
        assert_close(row[column].float(), value, column);
    }
    let columns: Vec<&str> = row.keys().map(String::as_str).collect();
    for column in columns {
        assert!(
            ["year", "province", "category", "quadrant"].contains(&column)
                || expected.iter().any(|(name, _)| *name == column),
            "column {column} has no fixture"
        );
    }
    assert_eq!(labor("11")["evenness"], Value::Null, "one destination");
    assert_close(
        labor("11")["equivalent_markets_entropy"].float(),
        1.0,
        "e^0",
    );
    let entropy_14 = -(0.8f64 * 0.8f64.ln() + 20.0 * 0.01 * 0.01f64.ln());
    assert_close(labor("14")["entropy"].float(), entropy_14, "entropy 14");
    assert_close(labor("14")["hhi"].float(), 0.64 + 20.0 * 1e-4, "hhi 14");
    for (province, quadrant) in [("11", "IV"), ("12", "III"), ("13", "II"), ("14", "I")] {
        assert_eq!(
            labor(province)["quadrant"],
            Value::Text(quadrant.into()),
            "quadrant of {province}"
        );
    }
    assert_eq!(labor("CN")["quadrant"], Value::Null);
}

/// A run mixing provinces with a reporter country: CHN's own record (1000 to USA, as a
/// Comtrade file gives China's total) is its own origin, never added into `CN`; it has no
/// Hummels-Klenow margins, is placed against the other countries (here itself: quadrant
/// I), and is not a province-partner link. The summary says the run mixes origins.
#[tokio::test]
async fn a_reporter_country_is_its_own_origin_and_not_part_of_the_nation() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        &canonical_csv(&[
            (2020, "44", "USA", "6101", 60.0, "USD"),
            (2020, "32", "JPN", "6101", 40.0, "USD"),
            (2020, "CHN", "USA", "6101", 1000.0, "USD"),
            (2020, "VNM", "CHN", "6101", 7.0, "USD"),
        ]),
    );
    scratch.config(&[2020], "");
    let summary = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    assert!(summary.status.success());
    let summary = String::from_utf8_lossy(&summary.stdout);
    assert!(
        summary.contains("origins: mixed: 2 provinces") && summary.contains("(CHN, VNM)"),
        "{summary}"
    );
    let out = scratch.path("out");
    let indices = read_table(&out, "indices", "province, category").await;
    let labor = |province| select(&indices, &[("province", province), ("category", "labor")])[0];
    assert_close(
        labor("CN")["exports_usd"].float(),
        100.0,
        "CN over provinces",
    );
    assert_close(
        labor("CHN")["exports_usd"].float(),
        1000.0,
        "CHN its own row",
    );
    assert_close(
        labor("VNM")["exports_usd"].float(),
        7.0,
        "VNM to China is kept",
    );
    assert_eq!(labor("CHN")["hk_extensive"], Value::Null);
    assert_eq!(labor("CHN")["hk_intensive"], Value::Null);
    assert_close(labor("44")["hk_extensive"].float(), 0.6, "EM 44 against CN");
    assert_eq!(labor("CHN")["quadrant"], Value::Text("I".into()));
    // Provinces 44 (G = 1) and 32 (G = 1) sit at their own mean, not pulled by CHN.
    assert_eq!(labor("44")["quadrant"], Value::Text("I".into()));
    let links = read_table(&out, "top_links", "year, category, rank").await;
    let labor_links = select(&links, &[("category", "labor")]);
    assert_eq!(labor_links.len(), 2, "two province links");
    assert_eq!(labor_links[0]["province"], Value::Text("44".into()));
    assert_close(labor_links[0]["share_of_category"].float(), 0.6, "share");
    let destinations = read_table(&out, "destinations", "year, partner").await;
    let usa = select(&destinations, &[("partner", "USA")])[0];
    assert_close(usa["exports_usd"].float(), 60.0, "national exports to USA");
}
