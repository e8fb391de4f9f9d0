//! Hand-computed fixtures for every index of the three core tables.

use crate::support::{Scratch, Value, assert_close, canonical_csv, read_table, select};

/// Four partners with equal shares give G = 1/N, V = ln N and a normalized HHI of 0.
#[tokio::test]
async fn equal_shares_give_one_over_n_and_ln_n() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2020, "44", "USA", "6109", 100.0, "USD"),
            (2020, "44", "JPN", "6110", 100.0, "USD"),
            (2020, "44", "DEU", "61", 100.0, "USD"),
            (2020, "44", "FRA", "620342", 100.0, "USD"),
        ],
        &[2020],
        "",
    );
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
    scratch.run_records(
        &[
            (2021, "32", "USA", "8517", 300.0, "USD"),
            (2021, "32", "USA", "851712", 200.0, "USD"),
        ],
        &[2021],
        "",
    );
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let row = select(&indices, &[("province", "32"), ("category", "technology")])[0];
    assert_eq!(row["destinations"].float(), 1.0);
    assert_close(row["exports_usd"].float(), 500.0, "exports_usd");
    assert_close(row["hhi"].float(), 1.0, "hhi");
    assert_eq!(
        row["hhi_norm"],
        Value::Null,
        "undefined with one destination"
    );
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
    scratch.run_records(&rows, &[2020], "");
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let labor = |province| select(&indices, &[("province", province), ("category", "labor")])[0];

    let row = labor("13");
    let ln10 = 10f64.ln();
    let expected = [
        ("exports_usd", 100.0),
        // At 2020's rate in configs/cny_per_usd.csv.
        ("exports_cny", 100.0 * 6.8976),
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
    assert_eq!(labor("11")["hhi_norm"], Value::Null, "one destination");
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

/// Product margins on a hand-built case. Guangdong (44) sends Vietnam one HS6 line in 2021
/// (850440, 100) and in 2022 more of it (150) and two new lines (851712, 30; 851762, 20):
/// Vietnam's growth of 100 is 50 from new products and 50 from the continuing one. Jiangsu
/// (32) sends Vietnam 851712 (70) and Germany 851762 (100) in 2022, so the nation's
/// technology exports in 2022 are 270 to Vietnam and 100 to Germany: Guangdong serves the
/// pairs worth 270 of 370 (extensive margin) and ships 200 of those 270 (intensive).
#[tokio::test]
async fn product_margins_split_a_destinations_growth_into_new_and_continuing_products() {
    let scratch = Scratch::new();
    scratch.run_records(
        &[
            (2021, "44", "VNM", "85044010", 100.0, "USD"),
            (2022, "44", "VNM", "85044090", 150.0, "USD"),
            (2022, "44", "VNM", "85171200", 30.0, "USD"),
            (2022, "44", "VNM", "851762", 20.0, "USD"),
            (2022, "32", "VNM", "851712", 70.0, "USD"),
            (2022, "32", "DEU", "851762", 100.0, "USD"),
        ],
        &[2021, 2022],
        "[indices]\nproduct-margins = true\n",
    );
    let margins = read_table(
        &scratch.path("out"),
        "product_margins",
        "year, province, category, region, partner",
    )
    .await;
    let row = |province: &str, category: &str, region: &str, partner: &str| {
        let rows = select(
            &margins,
            &[
                ("year", "2022"),
                ("province", province),
                ("category", category),
                ("region", region),
                ("partner", partner),
            ],
        );
        assert_eq!(rows.len(), 1, "{province} {category} {region} {partner}");
        rows[0].clone()
    };
    let (rate_2021, rate_2022) = (6.4515, 6.7261);
    for (region, partner) in [("southeast_asia", "VNM"), ("southeast_asia", "all")] {
        let vietnam = row("44", "technology", region, partner);
        assert_close(vietnam["delta_usd"].float(), 100.0, "delta");
        assert_close(vietnam["new_usd"].float(), 50.0, "new");
        assert_close(vietnam["lost_usd"].float(), 0.0, "lost");
        assert_close(vietnam["continuing_usd"].float(), 50.0, "continuing");
        assert_eq!(vietnam["new_products"], Value::Int(2));
        assert_eq!(vietnam["lost_products"], Value::Int(0));
        assert_eq!(vietnam["continuing_products"], Value::Int(1));
        assert_close(
            vietnam["continuing_cny"].float(),
            150.0 * rate_2022 - 100.0 * rate_2021,
            "continuing in CNY",
        );
        assert_close(vietnam["new_cny"].float(), 50.0 * rate_2022, "new in CNY");
        assert_close(
            vietnam["hk_extensive"].float(),
            1.0,
            "every pair to Vietnam",
        );
        assert_close(
            vietnam["hk_intensive"].float(),
            200.0 / 270.0,
            "hk_intensive",
        );
    }
    let everywhere = row("44", "all", "all", "all");
    assert_close(everywhere["delta_usd"].float(), 100.0, "delta over all");
    assert_close(
        everywhere["hk_extensive"].float(),
        270.0 / 370.0,
        "hk_extensive",
    );
    assert_close(
        everywhere["hk_intensive"].float(),
        200.0 / 270.0,
        "hk_intensive",
    );
    // Jiangsu's lines are all new; the nation's are the sum; no row for a year without
    // its previous year.
    let jiangsu = row("32", "technology", "western_europe", "DEU");
    assert_close(jiangsu["new_usd"].float(), 100.0, "new to Germany");
    assert_eq!(jiangsu["new_products"], Value::Int(1));
    let nation = row("CN", "technology", "southeast_asia", "VNM");
    assert_close(
        nation["new_usd"].float(),
        50.0 + 70.0,
        "the nation's new lines",
    );
    assert_eq!(nation["hk_extensive"], Value::Null);
    assert!(select(&margins, &[("year", "2021")]).is_empty());
    for row in &margins {
        let parts =
            row["new_usd"].float() - row["lost_usd"].float() + row["continuing_usd"].float();
        assert_close(parts, row["delta_usd"].float(), "new - lost + continuing");
    }
}

/// With `exchange-rates-monthly`, a month's USD records are converted to CNY at that month's
/// rate and annual records at the year's, as customs converts them; a year the monthly table
/// holds only in part is refused, naming the table and the missing months.
#[tokio::test]
async fn monthly_rates_convert_each_month_at_its_rate() {
    let scratch = Scratch::new();
    scratch.write(
        "inputs/a.csv",
        "year,month,province,partner,hs_code,value,currency\n\
         2021,1,44,VNM,610110,100,USD\n\
         2021,2,44,VNM,610110,100,USD\n\
         2021,,44,VNM,610110,50,USD\n\
         2021,2,44,VNM,610110,645,CNY\n\
         2020,,44,VNM,610120,10,USD\n",
    );
    let mut monthly = String::from("year,month,cny_per_usd\n");
    for month in 1..=12 {
        monthly.push_str(&format!(
            "2021,{month},{}\n",
            6.5 - 0.01 * f64::from(month - 1)
        ));
    }
    scratch.write("rates_monthly.csv", &monthly);
    scratch.config(&[2020, 2021], "");
    let config = std::fs::read_to_string(scratch.path("config.toml")).unwrap();
    scratch.write(
        "config.toml",
        &format!(
            "{config}exchange-rates-monthly = \"rates_monthly.csv\"\n\
             \n[indices]\nproduct-margins = true\n"
        ),
    );
    scratch.run_ok();
    let indices = read_table(&scratch.path("out"), "indices", "province, category").await;
    let labor = select(
        &indices,
        &[("year", "2021"), ("province", "44"), ("category", "labor")],
    )[0];
    // January at 6.50, February at 6.49, the annual record at 2021's 6.4515; the CNY
    // record of February is 645 / 6.49 USD.
    let annual = 6.4515;
    assert_close(
        labor["exports_cny"].float(),
        100.0 * 6.5 + 100.0 * 6.49 + 50.0 * annual + 645.0,
        "exports in CNY",
    );
    assert_close(
        labor["exports_usd"].float(),
        250.0 + 645.0 / 6.49,
        "exports in USD",
    );
    // The product cube converts each month's sums at its rate too: 2021's line is new at
    // Viet Nam (2020's, another line, is lost), with the year's exports.
    let margins = read_table(&scratch.path("out"), "product_margins", "partner").await;
    let line = select(
        &margins,
        &[
            ("year", "2021"),
            ("province", "44"),
            ("category", "labor"),
            ("partner", "VNM"),
        ],
    )[0];
    assert_close(
        line["new_cny"].float(),
        labor["exports_cny"].float(),
        "the new line's CNY",
    );
    assert_close(
        line["new_usd"].float(),
        labor["exports_usd"].float(),
        "the new line's USD",
    );

    monthly = monthly.replace("2021,12,6.39\n", "");
    scratch.write("rates_monthly.csv", &monthly);
    let output = scratch.exdep(&["run", "--config", "config.toml", "--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rates_monthly.csv") && stderr.contains("2021 (missing 12)"),
        "{stderr}"
    );
}
