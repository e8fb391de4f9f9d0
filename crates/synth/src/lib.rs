//! Deterministic synthetic export records in exdep's canonical format, calibrated to the
//! public figures in shared/DOMAIN.md: yearly totals of China's exports, the shares of the
//! main provinces and destinations, and the weight of machinery and electronics.
//!
//! The same [`Spec`] always yields the same records, on every machine, so tests and
//! benchmarks can regenerate their data instead of shipping it.
//!
//! The data reaches the paths real data takes: each province has its own commodity mix (so
//! location quotients spread), some partners enter or leave between years and one large
//! partner is absent for a year ([`trades_in`]), a few records go to China itself (re-imports,
//! excluded) and a few have a zero value; every record is monthly; on request, some records come from reporter
//! countries instead of provinces ([`Spec::country_origin_fraction`]).
//!
//! ```
//! let spec = exdep_synth::Spec { years: vec![2020], records_per_year: 100, ..Default::default() };
//! let mut csv = Vec::new();
//! exdep_synth::write_csv(&spec, &mut csv).unwrap();
//! assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 101);
//! ```
#![warn(missing_docs)]

use std::io::{self, Write};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Years to generate, in order.
    pub years: Vec<i32>,
    /// Records per year.
    pub records_per_year: usize,
    /// Seed of the random stream.
    pub seed: u64,
    /// Fraction of records whose value is given in CNY instead of USD.
    pub cny_fraction: f64,
    /// Every this many records, one malformed or unmappable record is emitted as well
    /// (bad number, negative value, unknown partner, ...); `None` for clean data.
    pub dirty_every: Option<usize>,
    /// Fraction of records whose origin is a reporter country (ISO3, as Comtrade or BACI
    /// give it) instead of a province, for runs that mix the two kinds.
    pub country_origin_fraction: f64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            years: (2017..=2022).collect(),
            records_per_year: 10_000,
            seed: 2025,
            cny_fraction: 0.2,
            dirty_every: None,
            country_origin_fraction: 0.0,
        }
    }
}

/// The canonical header.
pub const HEADER: &str = "year,month,province,partner,hs_code,value,currency";

/// China's exports in billions of USD and the average CNY per USD (shared/DOMAIN.md).
fn calibration(year: i32) -> (f64, f64) {
    match year {
        2017 => (2263.0, 6.7518),
        2018 => (2487.0, 6.6174),
        2019 => (2499.0, 6.8985),
        2020 => (2590.0, 6.8976),
        2021 => (3364.0, 6.4515),
        2022 => (3594.0, 6.7261),
        // Outside the calibrated years: hold 2022's level.
        _ => (3594.0, 6.7261),
    }
}

/// GB/T 2260 codes with approximate shares of national exports (percent).
const PROVINCES: [(&str, f64); 31] = [
    ("44", 23.0),
    ("32", 15.0),
    ("33", 13.5),
    ("37", 7.5),
    ("31", 8.0),
    ("35", 5.0),
    ("11", 2.0),
    ("12", 1.5),
    ("13", 1.3),
    ("21", 1.5),
    ("34", 1.4),
    ("36", 1.2),
    ("41", 1.6),
    ("42", 1.2),
    ("43", 1.1),
    ("50", 1.7),
    ("51", 2.1),
    ("45", 1.0),
    ("53", 0.6),
    ("61", 0.8),
    ("22", 0.2),
    ("23", 0.2),
    ("14", 0.4),
    ("15", 0.2),
    ("46", 0.2),
    ("52", 0.2),
    ("65", 0.5),
    ("62", 0.05),
    ("63", 0.01),
    ("64", 0.04),
    ("54", 0.02),
];

/// Destinations with approximate shares (percent); the tail shares the remainder.
const MAJOR_PARTNERS: [(&str, f64); 10] = [
    ("USA", 18.0),
    ("HKG", 11.0),
    ("JPN", 5.5),
    ("KOR", 4.5),
    ("VNM", 3.6),
    ("DEU", 3.1),
    ("IND", 3.1),
    ("NLD", 3.1),
    ("GBR", 2.5),
    ("SGP", 2.0),
];

const MINOR_PARTNERS: [&str; 140] = [
    "AUS", "MYS", "THA", "IDN", "PHL", "RUS", "MEX", "CAN", "BRA", "FRA", "ITA", "ESP", "TWN",
    "ARE", "SAU", "TUR", "POL", "BEL", "BGD", "PAK", "CHL", "NGA", "ZAF", "EGY", "IRN", "IRQ",
    "ISR", "KAZ", "KGZ", "UZB", "TJK", "TKM", "AFG", "MNG", "MMR", "LAO", "KHM", "LKA", "NPL",
    "MAC", "NZL", "PNG", "FJI", "ARG", "PER", "COL", "ECU", "VEN", "PAN", "CRI", "GTM", "DOM",
    "CUB", "URY", "PRY", "BOL", "SWE", "NOR", "DNK", "FIN", "IRL", "PRT", "GRC", "AUT", "CHE",
    "CZE", "HUN", "ROU", "BGR", "SVK", "SVN", "HRV", "SRB", "UKR", "BLR", "LTU", "LVA", "EST",
    "GEO", "ARM", "AZE", "KWT", "QAT", "OMN", "BHR", "JOR", "LBN", "SYR", "YEM", "DZA", "MAR",
    "TUN", "LBY", "ETH", "KEN", "TZA", "UGA", "GHA", "CIV", "SEN", "CMR", "AGO", "MOZ", "ZMB",
    "ZWE", "SDN", "COD", "MDG", "BEN", "TGO", "LBR", "SLE", "GIN", "MLI", "NER", "BFA", "MRT",
    "DJI", "SOM", "RWA", "NAM", "BWA", "MUS", "LUX", "ISL", "MLT", "CYP", "BRN", "TLS", "MDV",
    "BTN", "PRK", "HND", "SLV", "NIC", "JAM", "TTO", "HTI", "BHS", "GUY",
];

/// Reporter countries that origins are drawn from when a spec asks for some.
const REPORTER_COUNTRIES: [&str; 3] = ["CHN", "VNM", "DEU"];

/// A large partner that buys nothing for one year, as under sanctions or a closed border.
const ABSENT_FOR_A_YEAR: (&str, i32) = ("RUS", 2021);

/// Fractions of records that go to China itself (re-imports) and that have a zero value.
const TO_CHINA_FRACTION: f64 = 0.005;
/// HS6 lines per chapter (see `generate`).
const LINES_PER_CHAPTER: usize = 40;
const ZERO_VALUE_FRACTION: f64 = 0.003;

/// A fixed hash of a code, the same on every machine: it decides the traits of a partner
/// or of a province's commodity mix, independent of the seed and of the years generated,
/// so every yearly file agrees on them.
fn code_hash(parts: &[&str]) -> u64 {
    let mut random = Random(0x5eed);
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            random.0 ^= u64::from(byte);
            random.next_u64();
        }
    }
    random.next_u64()
}

/// Whether `partner` buys anything in `year`. The major partners always do; one partner in
/// eight of the others enters the market in a year between 2018 and 2023, one in eight
/// leaves in such a year, and one large partner (RUS) skips one year (2021).
pub fn trades_in(partner: &str, year: i32) -> bool {
    if partner == ABSENT_FOR_A_YEAR.0 {
        return year != ABSENT_FOR_A_YEAR.1;
    }
    if MAJOR_PARTNERS.iter().any(|(code, _)| *code == partner) {
        return true;
    }
    let hash = code_hash(&[partner]);
    let switch_year = 2018 + ((hash >> 8) % 6) as i32;
    match hash % 8 {
        0 => year >= switch_year,
        1 => year < switch_year,
        _ => true,
    }
}

/// How much more (or less) than nationally a province exports of a chapter: a fixed
/// factor between e^-1.5 and e^1.5 per province and chapter.
fn chapter_tilt(province: &str, chapter: u32) -> f64 {
    let unit = (code_hash(&[province, &chapter.to_string()]) >> 11) as f64 / (1u64 << 53) as f64;
    (3.0 * unit - 1.5).exp()
}

/// Destinations a province trades with more than the national pattern suggests.
fn neighbours(province: &str) -> &'static [&'static str] {
    match province {
        "44" => &["HKG", "MAC", "USA"],
        "65" => &["KAZ", "KGZ", "TJK", "UZB"],
        "53" => &["MMR", "VNM", "LAO", "THA"],
        "45" => &["VNM", "THA", "MYS"],
        "23" => &["RUS", "MNG"],
        "22" | "21" => &["KOR", "JPN", "RUS"],
        "15" => &["MNG", "RUS"],
        "54" => &["NPL", "IND"],
        _ => &[],
    }
}

/// HS chapters that weigh more than the rest (weight relative to 1 for other chapters).
const HEAVY_CHAPTERS: [(u32, f64); 20] = [
    (85, 60.0),
    (84, 40.0),
    (94, 10.0),
    (95, 8.0),
    (61, 7.0),
    (62, 6.0),
    (39, 9.0),
    (73, 7.0),
    (87, 8.0),
    (90, 7.0),
    (64, 4.0),
    (63, 4.0),
    (42, 3.0),
    (29, 5.0),
    (72, 4.0),
    (76, 3.0),
    (40, 3.0),
    (89, 2.0),
    (28, 2.0),
    (3, 2.0),
];

/// A splitmix64 stream: tiny, fast and the same everywhere.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
}

/// Cumulative weights for sampling by binary search.
struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<f64>,
}

impl<T: Copy> Weighted<T> {
    fn new(pairs: impl IntoIterator<Item = (T, f64)>) -> Self {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut sum = 0.0;
        for (item, weight) in pairs {
            sum += weight;
            items.push(item);
            cumulative.push(sum);
        }
        Self { items, cumulative }
    }

    fn sample(&self, random: &mut Random) -> T {
        let target = random.unit() * self.cumulative.last().copied().unwrap_or(0.0);
        let index = self.cumulative.partition_point(|&c| c <= target);
        self.items[index.min(self.items.len() - 1)]
    }
}

/// One canonical record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Year (as text, so malformed records can be expressed).
    pub year: String,
    /// Month 1-12, or empty.
    pub month: String,
    /// Province code.
    pub province: String,
    /// Partner ISO3.
    pub partner: String,
    /// HS code.
    pub hs_code: String,
    /// Value as text.
    pub value: String,
    /// USD or CNY.
    pub currency: String,
}

/// Calls `emit` for every record of `spec`, year by year.
pub fn generate(spec: &Spec, mut emit: impl FnMut(&Record)) {
    let mut random = Random(spec.seed);
    let provinces = Weighted::new(PROVINCES.iter().enumerate().map(|(i, &(_, w))| (i, w)));
    let minor_share = 100.0 - MAJOR_PARTNERS.iter().map(|(_, w)| w).sum::<f64>();
    let partners = Weighted::new(
        MAJOR_PARTNERS.iter().map(|&(code, w)| (code, w)).chain(
            // A Zipf-like tail: earlier minor partners are larger.
            MINOR_PARTNERS
                .iter()
                .enumerate()
                .map(|(i, &code)| (code, minor_share / (i as f64 + 8.0) / 3.2)),
        ),
    );
    let national_weight = |c: u32| match c {
        98 | 99 => 0.1,
        _ => HEAVY_CHAPTERS
            .iter()
            .find(|(h, _)| *h == c)
            .map_or(1.0, |(_, w)| *w),
    };
    // Each origin's commodity mix: the national weights tilted per origin and chapter.
    let chapter_mix = |origin: &str| {
        Weighted::new(
            (1..=99u32)
                .filter(|&c| c != 77)
                .map(|c| (c, national_weight(c) * chapter_tilt(origin, c))),
        )
    };
    let mixes: Vec<Weighted<u32>> = PROVINCES
        .iter()
        .map(|(code, _)| chapter_mix(code))
        .collect();
    let country_mixes: Vec<Weighted<u32>> =
        REPORTER_COUNTRIES.iter().map(|c| chapter_mix(c)).collect();
    let all_partners: Vec<&str> = MAJOR_PARTNERS
        .iter()
        .map(|(c, _)| *c)
        .chain(MINOR_PARTNERS)
        .collect();
    // A chapter's HS6 lines, the same every year, each taking its Zipf share of the
    // chapter's records: a destination's products persist from year to year, as in customs
    // data, and product margins are not all new and lost lines.
    let line_names: Vec<String> = (0..LINES_PER_CHAPTER).map(|k| k.to_string()).collect();
    let lines = Weighted::new(
        (line_names.iter().enumerate()).map(|(k, name)| (name.as_str(), 1.0 / (k as f64 + 1.0))),
    );
    for &year in &spec.years {
        let (billions, rate) = calibration(year);
        let mean_usd = billions * 1e9 / spec.records_per_year as f64;
        let trading: Vec<&str> = all_partners
            .iter()
            .copied()
            .filter(|p| trades_in(p, year))
            .collect();
        for i in 0..spec.records_per_year {
            // The first records of a year visit every province in every month, and every
            // partner once, so small samples still show the whole structure and every
            // province's year is whole (see `exdep_core::months`).
            let first_visits = i < PROVINCES.len() * 12;
            let province_index = if first_visits {
                i % PROVINCES.len()
            } else {
                provinces.sample(&mut random)
            };
            let province = PROVINCES[province_index].0;
            let local = neighbours(province);
            let mut partner = if i < trading.len() {
                trading[i]
            } else if !local.is_empty() && random.unit() < 0.3 {
                local[random.below(local.len())]
            } else {
                partners.sample(&mut random)
            };
            // A partner out of the market this year: its share goes to the others.
            while !trades_in(partner, year) {
                partner = partners.sample(&mut random);
            }
            // Not a first visit: every partner in the market keeps at least one record.
            if i >= trading.len() && random.unit() < TO_CHINA_FRACTION {
                partner = "CHN";
            }
            let (origin, mix) = if random.unit() < spec.country_origin_fraction {
                let reporter = random.below(REPORTER_COUNTRIES.len());
                if partner == REPORTER_COUNTRIES[reporter] {
                    partner = "USA";
                }
                (REPORTER_COUNTRIES[reporter], &country_mixes[reporter])
            } else {
                (province, &mixes[province_index])
            };
            let chapter = mix.sample(&mut random);
            let subheading = code_hash(&[&chapter.to_string(), lines.sample(&mut random)]) % 10_000;
            let tariff_line = random.below(100);
            let usd = if random.unit() < ZERO_VALUE_FRACTION {
                0.0
            } else {
                mean_usd * -(1.0 - random.unit()).ln()
            };
            let in_cny = random.unit() < spec.cny_fraction;
            // Monthly records, as customs publishes them.
            let month = if first_visits {
                i / PROVINCES.len() + 1
            } else {
                1 + random.below(12)
            };
            let record = Record {
                year: year.to_string(),
                month: month.to_string(),
                province: origin.to_string(),
                partner: partner.to_string(),
                hs_code: format!("{chapter:02}{subheading:04}{tariff_line:02}"),
                value: format!("{:.2}", if in_cny { usd * rate } else { usd }),
                currency: if in_cny { "CNY" } else { "USD" }.to_string(),
            };
            emit(&record);
            if let Some(every) = spec.dirty_every
                && i % every == every - 1
            {
                emit(&spoil(&record, i / every));
            }
        }
    }
}

/// A copy of `record` with one defect, cycling through the defects by `n`.
fn spoil(record: &Record, n: usize) -> Record {
    let mut bad = record.clone();
    match n % 8 {
        0 => bad.value = "12,5x".into(),
        1 => bad.value = format!("-{}", record.value),
        2 => bad.partner = "XXZ".into(),
        3 => bad.province = "99".into(),
        4 => bad.hs_code = "7701".into(),
        5 => bad.hs_code = "9801".into(),
        6 => bad.year = "1999".into(),
        _ => bad.currency = "EUR".into(),
    }
    bad
}

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes `spec`'s records as canonical CSV, header first.
pub fn write_csv(spec: &Spec, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    let mut result = Ok(());
    generate(spec, |r| {
        if result.is_ok() {
            let fields = [
                &r.year,
                &r.month,
                &r.province,
                &r.partner,
                &r.hs_code,
                &r.value,
                &r.currency,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            result = writeln!(out, "{}", line.join(","));
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_spec_gives_the_same_records() {
        let spec = Spec {
            years: vec![2019],
            records_per_year: 500,
            ..Default::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_csv(&spec, &mut a).unwrap();
        write_csv(&spec, &mut b).unwrap();
        assert_eq!(a, b);
    }

    use std::collections::{BTreeMap, BTreeSet};

    fn partners_of(year: i32) -> BTreeSet<String> {
        let spec = Spec {
            years: vec![year],
            records_per_year: 300,
            ..Default::default()
        };
        let mut partners = BTreeSet::new();
        generate(&spec, |r| {
            partners.insert(r.partner.clone());
        });
        partners
    }

    #[test]
    fn every_province_and_every_partner_in_the_market_appears() {
        let spec = Spec {
            years: vec![2020],
            records_per_year: 200,
            ..Default::default()
        };
        let mut provinces = BTreeSet::new();
        generate(&spec, |r| {
            provinces.insert(r.province.clone());
        });
        assert_eq!(provinces.len(), 31);
        let expected: BTreeSet<String> = MAJOR_PARTNERS
            .iter()
            .map(|(c, _)| *c)
            .chain(MINOR_PARTNERS)
            .filter(|p| trades_in(p, 2020))
            .map(String::from)
            .collect();
        let mut partners = partners_of(2020);
        partners.remove("CHN");
        assert_eq!(partners, expected);
    }

    #[test]
    fn partners_enter_and_leave_between_years() {
        let (y2017, y2021, y2022) = (partners_of(2017), partners_of(2021), partners_of(2022));
        assert!(y2017.contains("RUS") && !y2021.contains("RUS") && y2022.contains("RUS"));
        assert!(y2017.difference(&y2022).count() >= 3, "some partners leave");
        assert!(y2022.difference(&y2017).count() >= 3, "some partners enter");
    }

    #[test]
    fn provinces_have_their_own_commodity_mix_and_some_records_are_unusual() {
        let spec = Spec {
            years: vec![2020],
            records_per_year: 40_000,
            country_origin_fraction: 0.05,
            ..Default::default()
        };
        let mut chapter_counts: BTreeMap<(String, String), f64> = BTreeMap::new();
        let (mut to_china, mut zero, mut from_countries) = (0, 0, 0);
        generate(&spec, |r| {
            *chapter_counts
                .entry((r.province.clone(), r.hs_code[..2].to_string()))
                .or_default() += 1.0;
            to_china += usize::from(r.partner == "CHN");
            zero += usize::from(r.value == "0.00");
            from_countries += usize::from(REPORTER_COUNTRIES.contains(&r.province.as_str()));
        });
        let share = |province: &str, chapter: &str| {
            let total: f64 = chapter_counts
                .iter()
                .filter(|((p, _), _)| p == province)
                .map(|(_, n)| n)
                .sum();
            chapter_counts
                .get(&(province.to_string(), chapter.to_string()))
                .copied()
                .unwrap_or(0.0)
                / total
        };
        let ratios: Vec<f64> = ["85", "84", "61", "39", "87"]
            .iter()
            .map(|c| share("44", c) / share("32", c))
            .collect();
        assert!(
            ratios.iter().any(|r| !(0.8..1.25).contains(r)),
            "two large provinces' mixes differ: {ratios:?}"
        );
        assert!(
            to_china > 50 && zero > 30,
            "to China {to_china}, zero {zero}"
        );
        assert!(
            (1500..2500).contains(&from_countries),
            "from reporter countries {from_countries}"
        );
    }

    #[test]
    fn dirty_records_are_added_not_substituted() {
        let spec = Spec {
            years: vec![2020],
            records_per_year: 80,
            dirty_every: Some(10),
            ..Default::default()
        };
        let mut count = 0;
        generate(&spec, |_| count += 1);
        assert_eq!(count, 88);
    }
}
