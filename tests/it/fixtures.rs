//! Hand-computed fixtures for every index of the three core tables.

use crate::support::{Scratch, assert_close, canonical_csv, read_table, select};

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
