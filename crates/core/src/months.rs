//! The time dimension of the accepted records, which the cube sums away: each file's
//! records by year, origin and currency with the months they cover ([`Slice`]s, kept in the
//! run state), and what they say
//! across the files of a run. A year with monthly records for fewer than 12 months, annual
//! and monthly records of the same origin and year, and the same records delivered twice
//! each inflate or deflate a year without changing any record's validity, so they are
//! guarded here, over every file, rather than record by record.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The month of an annual record (one without a month).
pub const ANNUAL: u8 = 0;

/// The accepted records of one file in one year and origin, in one currency, with the
/// months they cover. Months are a set rather than a key of their own so that the file pass
/// sums records by their cell alone: a twelfth of the groups.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slice {
    /// The year.
    pub year: i32,
    /// The months with records: bit m for month m (1-12), bit 0 ([`ANNUAL`]) for records
    /// without a month.
    pub months: u16,
    /// The origin's code (a province, or a reporter).
    pub origin: String,
    /// The currency of the values.
    pub currency: String,
    /// Records.
    pub records: u64,
    /// The exact sum of their values in the currency's units, as decimal text.
    pub value: String,
}

impl Slice {
    /// The months with records, [`ANNUAL`] for records without a month.
    pub fn month_set(&self) -> BTreeSet<u8> {
        (ANNUAL..=12)
            .filter(|m| self.months & (1 << m) != 0)
            .collect()
    }

    /// The slice's period: `2021, months 1-12`, `2021, annual`.
    pub fn period(&self) -> String {
        let months = self.month_set();
        let monthly: BTreeSet<u8> = months.iter().copied().filter(|m| *m != ANNUAL).collect();
        match (months.contains(&ANNUAL), monthly.is_empty()) {
            (true, true) => format!("{}, annual", self.year),
            (false, _) => format!("{}, months {}", self.year, month_list(&monthly)),
            (true, false) => format!("{}, annual and months {}", self.year, month_list(&monthly)),
        }
    }
}

/// What one year's accepted records hold of its months, over every file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct YearMonths {
    /// The months (1-12) with monthly records.
    pub months: BTreeSet<u8>,
    /// Whether any record of the year is annual (has no month).
    pub annual: bool,
    /// Origins whose monthly records cover fewer of the months than the year's: origin ->
    /// its months.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub origins_missing_months: BTreeMap<String, BTreeSet<u8>>,
    /// Origins with both annual and monthly records in the year: summed together they would
    /// count the year twice.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub origins_annual_and_monthly: BTreeSet<String>,
    /// Each file's months in the year ([`ANNUAL`] for annual records).
    pub files: BTreeMap<String, BTreeSet<u8>>,
}

impl YearMonths {
    /// Whether the year has monthly records for fewer than 12 months.
    pub fn is_incomplete(&self) -> bool {
        !self.months.is_empty() && self.months.len() < 12
    }

    /// What a reader of the run's summary should know of the year, a line each: missing
    /// months, origins missing months the others have, origins with annual and monthly
    /// records. Empty when the year is whole.
    pub fn warnings(&self, year: i32) -> Vec<String> {
        let mut lines = Vec::new();
        if self.is_incomplete() {
            let missing: BTreeSet<u8> = (1..=12).filter(|m| !self.months.contains(m)).collect();
            lines.push(format!(
                "{year} has monthly records for {} of 12 months (missing {}): its totals are \
                 not a year's",
                self.months.len(),
                month_list(&missing)
            ));
        }
        for (origin, months) in &self.origins_missing_months {
            lines.push(format!(
                "{year}: origin {origin} has monthly records for months {} only, the year's \
                 other origins for {}",
                month_list(months),
                month_list(&self.months)
            ));
        }
        if !self.origins_annual_and_monthly.is_empty() {
            lines.push(format!(
                "{year}: origins {} have both annual records (no month) and monthly ones, which \
                 count the year twice if both are complete",
                self.origins_annual_and_monthly
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        lines
    }
}

/// Months as ranges: `1-9`, `3, 7, 10-12`.
pub fn month_list(months: &BTreeSet<u8>) -> String {
    let mut ranges: Vec<(u8, u8)> = Vec::new();
    for &month in months {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == month => *end = month,
            _ => ranges.push((month, month)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The months of each of `years` over every file's slices (file URL -> its slices).
pub fn months_by_year<'a>(
    files: impl IntoIterator<Item = (&'a String, &'a [Slice])>,
    years: &BTreeSet<i32>,
) -> BTreeMap<i32, YearMonths> {
    let mut by_year: BTreeMap<i32, YearMonths> = BTreeMap::new();
    let mut by_origin: BTreeMap<(i32, &str), BTreeSet<u8>> = BTreeMap::new();
    for (file, slices) in files {
        for slice in slices.iter().filter(|s| years.contains(&s.year)) {
            let months = slice.month_set();
            let year = by_year.entry(slice.year).or_default();
            year.files.entry(file.clone()).or_default().extend(&months);
            year.annual |= months.contains(&ANNUAL);
            year.months.extend(months.iter().filter(|m| **m != ANNUAL));
            by_origin
                .entry((slice.year, &slice.origin))
                .or_default()
                .extend(months);
        }
    }
    for ((year, origin), months) in by_origin {
        let year = by_year
            .get_mut(&year)
            .expect("every origin's year is counted");
        let monthly: BTreeSet<u8> = months.iter().copied().filter(|m| *m != ANNUAL).collect();
        if months.contains(&ANNUAL) && !monthly.is_empty() {
            year.origins_annual_and_monthly.insert(origin.to_string());
        }
        if !monthly.is_empty() && monthly.len() < year.months.len() {
            year.origins_missing_months
                .insert(origin.to_string(), monthly);
        }
    }
    by_year
}

/// Two files that hold the same records: the same record count, the same exact value sum
/// and the same months for the same year, origin and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateDelivery {
    /// The one file.
    pub first: String,
    /// The other.
    pub second: String,
    /// The slices they share.
    pub shared: Vec<Slice>,
}

/// The pairs of files among `files` (URL -> slices) that share a slice. Two deliveries of a
/// province's year (or of some of its months) with the same number of records, the same
/// months and the same total to the last digit are the same records, whatever the files are
/// called, however they are formatted.
pub fn duplicate_deliveries<'a>(
    files: impl IntoIterator<Item = (&'a String, &'a [Slice])>,
) -> Vec<DuplicateDelivery> {
    let mut first_holder: BTreeMap<&Slice, &String> = BTreeMap::new();
    let mut shared: BTreeMap<(&String, &String), Vec<Slice>> = BTreeMap::new();
    for (file, slices) in files {
        for slice in slices {
            match first_holder.get(slice) {
                Some(&first) if first != file => {
                    shared.entry((first, file)).or_default().push(slice.clone());
                }
                Some(_) => {}
                None => {
                    first_holder.insert(slice, file);
                }
            }
        }
    }
    shared
        .into_iter()
        .map(|((first, second), shared)| DuplicateDelivery {
            first: first.clone(),
            second: second.clone(),
            shared,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(year: i32, month: u8, origin: &str, records: u64, value: &str) -> Slice {
        Slice {
            year,
            months: 1 << month,
            origin: origin.to_string(),
            currency: "USD".to_string(),
            records,
            value: value.to_string(),
        }
    }

    #[test]
    fn months_are_written_as_ranges() {
        assert_eq!(month_list(&(1..=9).collect()), "1-9");
        assert_eq!(month_list(&[3, 7, 10, 11, 12].into()), "3, 7, 10-12");
        assert_eq!(month_list(&BTreeSet::new()), "");
    }

    #[test]
    fn a_year_of_nine_months_and_an_origin_short_of_them_are_flagged() {
        let a = "a.csv".to_string();
        let b = "b.csv".to_string();
        let first: Vec<Slice> = (1..=9).map(|m| slice(2021, m, "44", 3, "10")).collect();
        let second = [slice(2021, 1, "11", 1, "5"), slice(2021, 2, "11", 1, "5")];
        let years = [2021].into();
        let months = months_by_year([(&a, &first[..]), (&b, &second[..])], &years);
        let year = &months[&2021];
        assert!(year.is_incomplete());
        assert_eq!(year.months, (1..=9).collect());
        assert_eq!(year.origins_missing_months["11"], [1, 2].into());
        assert!(!year.origins_missing_months.contains_key("44"));
        let warnings = year.warnings(2021);
        assert!(
            warnings[0].contains("9 of 12 months (missing 10-12)"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("origin 11"), "{warnings:?}");
    }

    #[test]
    fn a_whole_year_and_years_outside_the_run_say_nothing() {
        let a = "a.csv".to_string();
        let whole: Vec<Slice> = (1..=12).map(|m| slice(2021, m, "44", 3, "10")).collect();
        let outside = [slice(2030, 1, "44", 1, "1")];
        let months = months_by_year([(&a, &whole[..]), (&a, &outside[..])], &[2021].into());
        assert_eq!(months.keys().collect::<Vec<_>>(), [&2021]);
        assert!(months[&2021].warnings(2021).is_empty());
    }

    #[test]
    fn annual_and_monthly_records_of_one_origin_are_flagged() {
        let a = "a.csv".to_string();
        let mut slices: Vec<Slice> = (1..=12).map(|m| slice(2021, m, "44", 3, "10")).collect();
        slices.push(slice(2021, ANNUAL, "44", 1, "120"));
        slices.push(slice(2021, ANNUAL, "11", 1, "120"));
        let months = months_by_year([(&a, &slices[..])], &[2021].into());
        assert_eq!(
            months[&2021].origins_annual_and_monthly,
            ["44".to_string()].into()
        );
        assert!(months[&2021].annual);
    }

    #[test]
    fn the_same_slice_in_two_files_is_a_duplicate_delivery() {
        let (a, b, c) = (
            "a.csv".to_string(),
            "b.csv".to_string(),
            "c.csv".to_string(),
        );
        let first = [
            slice(2021, 1, "44", 3, "10.5"),
            slice(2021, 2, "44", 3, "7"),
        ];
        let copy = first.clone();
        // Same period and origin, another total: split deliveries, not a copy.
        let other = [slice(2021, 1, "44", 3, "10.25")];
        let found = duplicate_deliveries([(&a, &first[..]), (&b, &copy[..]), (&c, &other[..])]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].first.as_str(), found[0].second.as_str()),
            ("a.csv", "b.csv")
        );
        assert_eq!(found[0].shared.len(), 2);
        assert_eq!(found[0].shared[0].period(), "2021, months 1");
    }
}
