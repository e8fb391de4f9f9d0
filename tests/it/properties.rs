//! Properties the formulas must have on any input (shared/DOMAIN.md section 2).

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::support::{Row, Scratch, Value, read_table};

const PROVINCES: [&str; 4] = ["11", "44", "65", "54"];
const PARTNERS: [&str; 6] = ["USA", "HKG", "KAZ", "DEU", "BRA", "NGA"];
const CHAPTERS: [&str; 6] = ["01", "27", "61", "84", "85", "90"];

fn record(
    years: std::ops::RangeInclusive<i32>,
) -> impl Strategy<Value = (i32, usize, usize, usize, f64)> {
    (
        years,
        0..PROVINCES.len(),
        0..PARTNERS.len(),
        0..CHAPTERS.len(),
        // Values over eight orders of magnitude, some tiny next to others.
        (0.0f64..8.0).prop_map(|e| 10f64.powf(e)),
    )
}

fn text(row: &Row, column: &str) -> String {
    match &row[column] {
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        other => panic!("{column}: {other:?}"),
    }
}

fn sums_by(rows: &[Row], keys: &[&str], value: impl Fn(&Row) -> f64) -> BTreeMap<Vec<String>, f64> {
    let mut sums = BTreeMap::new();
    for row in rows {
        let key = keys.iter().map(|k| text(row, k)).collect();
        *sums.entry(key).or_insert(0.0) += value(row);
    }
    sums
}

fn check(records: &[(i32, usize, usize, usize, f64)]) -> Result<(), TestCaseError> {
    let scratch = Scratch::new();
    let mut csv = String::from("year,month,province,partner,hs_code,value,currency\n");
    for &(year, p, r, c, value) in records {
        csv.push_str(&format!(
            "{year},,{},{},{}10,{value},USD\n",
            PROVINCES[p], PARTNERS[r], CHAPTERS[c]
        ));
    }
    scratch.write("inputs/random.csv", &csv);
    scratch.config(&[2020, 2021], "");
    scratch.run_ok();
    let out = scratch.path("out");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (indices, lq, shares, margins) = runtime.block_on(async {
        (
            read_table(&out, "indices", "year, province, category").await,
            read_table(&out, "lq", "year, province, partner, category").await,
            read_table(&out, "region_shares", "year, province, category, region").await,
            read_table(&out, "margins", "year, province, category, region").await,
        )
    });
    let eps = 1e-12;
    // Every input has records in both years: each table has rows, and margins have 2021.
    for (name, rows) in [
        ("indices", &indices),
        ("lq", &lq),
        ("region_shares", &shares),
        ("margins", &margins),
    ] {
        prop_assert!(!rows.is_empty(), "{} is empty", name);
    }

    for row in &indices {
        let n = row["destinations"].float();
        let (hhi, entropy) = (row["hhi"].float(), row["entropy"].float());
        // Undefined (null) with one destination, in [0, 1] otherwise.
        let norm = match &row["hhi_norm"] {
            Value::Null => {
                prop_assert_eq!(n, 1.0, "hhi_norm null with {} destinations", n);
                0.0
            }
            value => value.float(),
        };
        prop_assert!(
            hhi >= 1.0 / n - eps && hhi <= 1.0 + eps,
            "hhi {hhi} outside [1/{n}, 1]"
        );
        prop_assert!((-eps..=1.0 + eps).contains(&norm), "hhi_norm {norm}");
        prop_assert!(
            entropy >= -eps && entropy <= n.ln() + eps,
            "entropy {entropy} outside [0, ln {n}]"
        );
    }

    // Theil: between + within = theil = ln N - entropy.
    for row in &indices {
        let n = row["destinations"].float();
        let theil = row["theil"].float();
        let parts = row["theil_between"].float() + row["theil_within"].float();
        prop_assert!(
            (theil - (n.ln() - row["entropy"].float())).abs() < 1e-9,
            "theil {row:?}"
        );
        prop_assert!(
            (theil - parts).abs() < 1e-9,
            "between + within = {parts}, theil = {theil}"
        );
    }

    // Specialization in [0, 2], null only for `all`; quadrants for every province, not CN.
    for row in &indices {
        let all = text(row, "category") == "all";
        match &row["specialization"] {
            Value::Null => prop_assert!(all, "specialization missing: {row:?}"),
            value => {
                let value = value.float();
                prop_assert!(
                    !all && (-eps..=2.0 + eps).contains(&value),
                    "specialization {value}"
                );
            }
        }
        let national = text(row, "province") == "CN";
        prop_assert_eq!(
            national,
            row["quadrant"] == Value::Null,
            "quadrant of {:?}",
            row
        );
    }

    // Hummels-Klenow: EM x IM = the origin's share of national exports of the category.
    let national_exports = sums_by(
        &indices
            .iter()
            .filter(|r| text(r, "province") == "CN")
            .cloned()
            .collect::<Vec<_>>(),
        &["year", "category"],
        |r| r["exports_usd"].float(),
    );
    for row in &indices {
        let key = vec![text(row, "year"), text(row, "category")];
        let share = row["exports_usd"].float() / national_exports[&key];
        let product = row["hk_extensive"].float() * row["hk_intensive"].float();
        prop_assert!(
            (product - share).abs() <= 1e-9 * share,
            "EM x IM {product} vs share {share}"
        );
    }

    // Growth margins: delta = new - lost + intensive, and the regions add up to `all`.
    for row in &margins {
        let identity = row["new"].float() - row["lost"].float() + row["intensive"].float();
        let scale = row["new"].float() + row["lost"].float() + row["intensive"].float().abs() + 1.0;
        prop_assert!(
            (row["delta"].float() - identity).abs() <= 1e-9 * scale,
            "margins {row:?}"
        );
    }
    let (regional, total): (Vec<Row>, Vec<Row>) = margins
        .iter()
        .cloned()
        .partition(|r| text(r, "region") != "all");
    for measure in ["delta", "new", "lost", "intensive"] {
        let by_region = sums_by(&regional, &["year", "province", "category"], |r| {
            r[measure].float()
        });
        for (key, value) in sums_by(&total, &["year", "province", "category"], |r| {
            r[measure].float()
        }) {
            let scale = value.abs().max(1.0);
            prop_assert!(
                (by_region[&key] - value).abs() <= 1e-9 * scale,
                "{measure} of {key:?}"
            );
        }
    }
    prop_assert!(
        margins.iter().all(|r| text(r, "year") == "2021"),
        "margins only where 2020 exists"
    );

    // Region shares sum to one for every origin and category.
    for (key, sum) in sums_by(&shares, &["year", "province", "category"], |r| {
        r["share"].float()
    }) {
        prop_assert!((sum - 1.0).abs() < 1e-9, "shares of {key:?} sum to {sum}");
    }

    // National exports = sum of provincial exports; `all` = sum of the four categories.
    let provincial: Vec<Row> = indices
        .iter()
        .filter(|r| text(r, "province") != "CN")
        .cloned()
        .collect();
    let national: Vec<Row> = indices
        .iter()
        .filter(|r| text(r, "province") == "CN")
        .cloned()
        .collect();
    let by_category = sums_by(&provincial, &["year", "category"], |r| {
        r["exports_usd"].float()
    });
    for (key, value) in sums_by(&national, &["year", "category"], |r| {
        r["exports_usd"].float()
    }) {
        let provinces = by_category[&key];
        prop_assert!(
            (value - provinces).abs() <= 1e-9 * value,
            "national {key:?}: {value} vs {provinces}"
        );
    }
    let four: Vec<Row> = indices
        .iter()
        .filter(|r| text(r, "category") != "all")
        .cloned()
        .collect();
    let all: Vec<Row> = indices
        .iter()
        .filter(|r| text(r, "category") == "all")
        .cloned()
        .collect();
    let four = sums_by(&four, &["year", "province"], |r| r["exports_usd"].float());
    for (key, value) in sums_by(&all, &["year", "province"], |r| r["exports_usd"].float()) {
        prop_assert!(
            (value - four[&key]).abs() <= 1e-9 * value,
            "`all` of {key:?}"
        );
    }

    // sum over partners r of (e_r / e_N) lq_rm = 1 for every origin and category.
    let e_r = sums_by(&lq, &["year", "province", "partner"], |r| {
        r["exports_usd"].float()
    });
    let e_n = sums_by(&lq, &["year", "province"], |r| r["exports_usd"].float());
    let weighted = sums_by(&lq, &["year", "province", "category"], |r| {
        let origin = vec![text(r, "year"), text(r, "province")];
        let partner = vec![text(r, "year"), text(r, "province"), text(r, "partner")];
        e_r[&partner] / e_n[&origin] * r["lq"].float()
    });
    for (key, sum) in weighted {
        prop_assert!(
            (sum - 1.0).abs() < 1e-9,
            "weighted lq of {key:?} sums to {sum}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn indices_keep_their_bounds_and_identities(
        first in record(2020..=2020),
        second in record(2021..=2021),
        more in prop::collection::vec(record(2020..=2021), 0..60),
    ) {
        let records: Vec<_> = [first, second].into_iter().chain(more).collect();
        check(&records)?;
    }
}
