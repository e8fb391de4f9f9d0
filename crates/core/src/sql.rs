//! SQL fragments the stages' plans share.

use std::collections::BTreeSet;

/// Digits after the point when money is summed exactly: 1e-10 of a dollar or yuan.
const MONEY_SCALE: u8 = 10;

/// Digits after the point when shares and their logarithmic terms are summed exactly. Such
/// terms are below 100 in magnitude, so 30 digits still fit a 38-digit decimal.
const SHARE_SCALE: u8 = 30;

/// A sum of money (doubles) that does not depend on the order the engine adds the terms in:
/// each is rounded to 1e-10 and added as a 128-bit decimal, which is exact. Tables then
/// have the same bits in every run, however a scan was split between threads or executors.
pub fn exact_sum(expr: &str) -> String {
    exact(expr, MONEY_SCALE)
}

/// Like [`exact_sum`] for terms of magnitude below 100, such as shares, their squares and
/// `s ln s`: rounded to 1e-30, so even a share of 1e-12 keeps 18 significant digits.
pub fn exact_share_sum(expr: &str) -> String {
    exact(expr, SHARE_SCALE)
}

/// [`exact_sum`] as a window function over `window` (a window name or specification).
pub fn exact_sum_over(expr: &str, window: &str) -> String {
    format!("CAST(sum(CAST({expr} AS DECIMAL(38, {MONEY_SCALE}))) OVER {window} AS DOUBLE)")
}

fn exact(expr: &str, scale: u8) -> String {
    format!("CAST(sum(CAST({expr} AS DECIMAL(38, {scale}))) AS DOUBLE)")
}

/// The SQL type exact money sums are kept in: per-file partial cubes store their sums in
/// it, so that a year's cube, the sum of its files' partials, is exact as well.
pub const MONEY_DECIMAL: &str = "DECIMAL(38, 10)";

/// A string as an SQL text literal.
pub fn text_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Strings as the contents of an SQL `IN (...)` list of text literals; an impossible value
/// when empty.
pub fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(text_literal).collect();
    if quoted.is_empty() {
        return "NULL".into();
    }
    quoted.join(", ")
}

/// The years as the contents of an SQL `IN (...)` list; an impossible year when empty,
/// since `IN ()` is not SQL.
pub fn year_list(years: &BTreeSet<i32>) -> String {
    if years.is_empty() {
        return "-1".into();
    }
    years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
