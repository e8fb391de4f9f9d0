//! Deterministic synthetic export records in exdep's canonical format, calibrated to the
//! public figures in shared/DOMAIN.md: yearly totals of China's exports, the shares of the
//! main provinces and destinations, and the weight of machinery and electronics.
//!
//! The same [`Spec`] always yields the same records, on every machine, so tests and
//! benchmarks can regenerate their data instead of shipping it. A year's records depend on
//! the spec's seed, size and options and on the year alone, not on the other years asked for,
//! so a year's file is the same whichever range it was generated with.
//!
//! # The model
//!
//! The indices are sensitive to which partners buy which goods, to how persistent flows are
//! from year to year and to how few flows hold much of the value; the model is built for
//! those three. Its structure is fixed by hashes of the codes, not by the seed: two seeds are
//! two samples of the same economy.
//!
//! - **Gravity-like destinations.** An origin's propensity to ship to a partner is the
//!   partner's size, times a boost for its neighbours, times a fixed lognormal affinity of the
//!   origin for the partner. Each partner has a fixed lognormal taste for each HS section and
//!   each chapter, so what an origin ships depends on where it ships it: location quotients
//!   are structural, not sampling noise. Large partners buy broad baskets, so their tastes
//!   spread less than small partners'.
//! - **Fewer destinations for small origins.** A province trades with its top partners by
//!   propensity, from 25 for the smallest to every partner for the largest.
//! - **Persistent cells.** A cell is an origin's flow to a partner of one HS6 line. Each
//!   origin has a fixed list of cells, longer the more records a year has. A cell's level is
//!   a fixed heavy-tailed base (lognormal) times `exp(z_t)`, where `z` follows an AR(1)
//!   across years whose shocks are hashes of the cell and the year, so that any year is
//!   computed without the others.
//! - **Records.** Each year, an origin's first records walk its cells in order, so every cell
//!   toward a partner in the market has a record every year and flows do not blink in and out;
//!   the origin's later records pick cells with a probability that grows with their level,
//!   and a record's value is such that a cell's year is in proportion to its level, times
//!   a lognormal shipment factor whose spread is customs data's at full detail (10M records
//!   a year: the top 1% of records hold most of the value) and less for a smaller sample,
//!   whose records each stand for a sum of customs records; so no cell and no few records
//!   make a province (large provinces' HHI stays near customs data's).
//! - **Calibration.** The expected values are raked to the shares of the provinces, partners
//!   and chapters, then the year's values are scaled so that they sum to the calibrated total
//!   exactly (a first pass over the same draws finds the raw total).
//!
//! The data reaches the paths real data takes: provinces differ in their commodity mix, some
//! partners enter or leave between years and one large partner is absent for a year
//! ([`trades_in`]), a few records go to China itself (re-imports, excluded) and a few have a
//! zero value; every record is monthly; on request, some records come from reporter
//! countries instead of provinces ([`Spec::country_origin_fraction`]).
//!
//! ```
//! let spec = exdep_synth::Spec { years: vec![2020], records_per_year: 100, ..Default::default() };
//! let mut csv = Vec::new();
//! exdep_synth::write_csv(&spec, &mut csv).unwrap();
//! assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 101);
//! ```
#![warn(missing_docs)]

use std::f64::consts::TAU;
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
const ZERO_VALUE_FRACTION: f64 = 0.003;
/// The k-th HS6 line of a chapter is (k+1)^-LINE_SIZE_EXPONENT times the size of its first.
const LINE_SIZE_EXPONENT: f64 = 0.6;
/// HS6 lines per chapter, the same every year: the products of a chapter's cells.
const LINES_PER_CHAPTER: usize = 40;
/// The first records of a year: every province in every month.
const FIRST_VISITS: usize = PROVINCES.len() * 12;

/// Spread (log scale) of an origin's fixed affinity for a partner: beyond size and
/// proximity, provinces favour different partners (their firms, diasporas and routes). Not
/// more: at 1, a large province's affinity for the largest partner could send it most of
/// its exports (Jiangsu's HHI reached 0.4, where customs data show about 0.1).
const ORIGIN_AFFINITY_SIGMA: f64 = 0.5;
/// Spread (log scale) of a partner's fixed taste for an HS section and, on top of it, for a
/// chapter. Most of it is by section, so that it survives the sum over a category's
/// chapters: location quotients by category spread far beyond sampling noise.
const SECTION_TASTE_SIGMA: f64 = 1.6;
/// The partner size (percent of national exports) at which tastes by section spread
/// 1/sqrt(2) as much as a small partner's.
const TASTE_BREADTH_SIZE: f64 = 12.0;
const CHAPTER_TASTE_SIGMA: f64 = 0.5;
/// How much more a province ships to its neighbours (`neighbours`) than their size says.
const NEIGHBOUR_BOOST: f64 = 3.0;
/// Destinations of the smallest province; the largest trades with every partner.
const FEWEST_DESTINATIONS: usize = 25;
/// An origin's cells per record it expects in a year. Below one, so that its first records
/// can give every cell a record each year and the rest go to the larger cells.
const CELLS_PER_RECORD: f64 = 0.5;
/// At most this many cells per origin, about the (partner, HS6) pairs of a large province
/// in customs data: larger samples put more records on each cell, not more cells.
const MAX_CELLS_PER_ORIGIN: usize = 200_000;
/// The part of the propensity (an exponent) carried by how many cells an origin has toward
/// a partner; the rest is carried by their levels. Larger partners buy more products and
/// more of each; mostly more of each, so that the largest records go to large partners,
/// where they move location quotients least.
const PROPENSITY_IN_CELL_COUNT: f64 = 0.25;
/// Spread (log scale) of a cell's fixed base level, on top of the partner's size, the
/// chapter's weight and the line's Zipf size. Not more: at 2.5 one cell (Jiangsu's largest
/// machinery line to the United States) made half of its province's exports.
const BASE_LEVEL_SIGMA: f64 = 1.0;
/// The AR(1) of a cell's log level across years: persistence and the spread of a year's
/// shock. The stationary spread, 0.3 / sqrt(1 - 0.8^2) = 0.5, moves cells by tens of
/// percent a year and rarely by more.
const PERSISTENCE: f64 = 0.8;
const SHOCK_SIGMA: f64 = 0.3;
/// Years of shocks a level remembers; older ones weigh less than 0.8^16 < 3% and are dropped.
const MEMORY_YEARS: i32 = 16;
/// An origin's records beyond its walk pick a cell with probability proportional to the
/// cell's level to this power: larger cells have more records (months, tariff lines), but
/// fewer than in proportion, so that values stay heavy-tailed across records.
const SAMPLING_EXPONENT: f64 = 0.3;
/// A record's value before calibration, from its cell's level: the level to the power its
/// records' count does not carry, so that a cell's yearly value is in proportion to its
/// level (its records come in proportion to level^SAMPLING_EXPONENT). Were each record
/// worth the whole level, a cell's year would grow as level^1.3 and one cell would make a
/// province's exports.
fn shipment_value(level: f64) -> f64 {
    level.powf(1.0 - SAMPLING_EXPONENT)
}

/// Records a year of China's customs data at full detail (province x partner x HS8 x
/// month): what a generated record stands for a share of.
const CUSTOMS_RECORDS_PER_YEAR: f64 = 10e6;
/// How much a customs record's value differs from its cell's (log-scale spread of a
/// lognormal factor with mean 1): shipments of one flow differ from month to month and
/// from one tariff line to the next, a few large ones among many small. This, more than
/// the cells' levels, gives the few records that hold most of a year's value; a wider
/// spread of levels would instead let one cell make a province.
const SHIPMENT_SPREAD_AT_FULL_DETAIL: f64 = 2.3;

/// The spread of a record's value around its cell's in a year of `records`: a record of a
/// smaller sample stands for the sum of `k` customs records, which spreads less (a sum of
/// `k` independent factors with mean 1 has the variance of one over `k`; the lognormal
/// with that variance). So the whole of a year's detail is heavy-tailed as customs data
/// are, and a small sample is not made of a few records' chance.
fn shipment_spread(records: usize) -> f64 {
    let k = (CUSTOMS_RECORDS_PER_YEAR / records.max(1) as f64).max(1.0);
    let variance = (SHIPMENT_SPREAD_AT_FULL_DETAIL.powi(2).exp() - 1.0) / k;
    (1.0 + variance).ln().sqrt()
}
/// Rounds of raking of the expected values to the shares of provinces, partners and
/// chapters; each round fits the three in turn, and the shares settle within a few.
const RAKING_ROUNDS: usize = 8;

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
        "44" => &["HKG", "MAC"],
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

/// The HS chapters: 1 to 99 but 77, which does not exist.
fn chapters() -> impl Iterator<Item = u32> {
    (1..=99).filter(|&chapter| chapter != 77)
}

/// A chapter's weight in national exports, relative to 1 for most chapters; the special
/// chapters 98 and 99 are light.
fn national_weight(chapter: u32) -> f64 {
    match chapter {
        98 | 99 => 0.1,
        _ => HEAVY_CHAPTERS
            .iter()
            .find(|(heavy, _)| *heavy == chapter)
            .map_or(1.0, |(_, weight)| *weight),
    }
}

/// The first chapter of each HS section (live animals, vegetables, ..., works of art, then
/// the special chapters). Partners' tastes run by section, a grouping of the nomenclature
/// itself, not of a run's category table: textiles go with clothing, machinery with
/// electrical machinery.
const SECTION_STARTS: [u32; 22] = [
    1, 6, 15, 16, 25, 28, 39, 41, 44, 47, 50, 64, 68, 71, 72, 84, 86, 90, 93, 94, 97, 98,
];

fn section(chapter: u32) -> usize {
    SECTION_STARTS.partition_point(|&start| start <= chapter) - 1
}

/// A standard normal draw decided by `seed` (Box-Muller).
fn standard_normal(seed: u64) -> f64 {
    let mut random = Random(seed);
    let radius = (-2.0 * (1.0 - random.unit()).ln()).sqrt();
    radius * (TAU * random.unit()).cos()
}

/// A fixed lognormal factor with median 1 and log-scale spread `sigma`, decided by `parts`.
fn lognormal(parts: &[&str], sigma: f64) -> f64 {
    (sigma * standard_normal(code_hash(parts))).exp()
}

/// A partner's demand for each chapter (indexed by chapter number): the chapter's national
/// weight times the partner's fixed taste for the chapter's section and for the chapter.
fn partner_demand(partner: &str, size: f64) -> Vec<f64> {
    // A large economy buys a broad basket, a small one what its industries and consumers
    // lack: tastes spread less the larger the partner.
    let breadth = (1.0 + size / TASTE_BREADTH_SIZE).sqrt();
    let by_section: Vec<f64> = (0..SECTION_STARTS.len())
        .map(|s| {
            let sigma = SECTION_TASTE_SIGMA / breadth;
            lognormal(&[partner, "section", &s.to_string()], sigma)
        })
        .collect();
    let mut demand = vec![0.0; 100];
    for chapter in chapters() {
        let taste = lognormal(
            &[partner, "chapter", &chapter.to_string()],
            CHAPTER_TASTE_SIGMA / breadth,
        );
        demand[chapter as usize] = national_weight(chapter) * by_section[section(chapter)] * taste;
    }
    demand
}

/// An origin's chapters toward one partner: the partner's demand tilted by the origin's mix.
fn chapter_mix(tilt: &[f64], demand: &[f64]) -> Weighted<u32> {
    Weighted::new(chapters().map(|c| (c, tilt[c as usize] * demand[c as usize])))
}

/// What stays the same from year to year: the partners, their demand, the origins and
/// their cells.
struct World {
    /// Every partner that trades in some year: ISO3 and size (percent of national exports).
    partners: Vec<(&'static str, f64)>,
    /// Each partner's demand by chapter (`partner_demand`).
    demand: Vec<Vec<f64>>,
    /// The provinces, then the reporter countries if the spec asks for some.
    origins: Vec<Origin>,
    /// The 4-digit HS subheading of each chapter's lines, by chapter number and line.
    subheadings: Vec<Vec<u32>>,
}

/// A province or reporter country, and its persistent trade.
struct Origin {
    code: &'static str,
    /// Its share of national exports (the origins' shares sum to 1).
    share: f64,
    /// Its propensity to ship to each partner (by index in `World::partners`), whether the
    /// partner is among its destinations or not.
    propensity: Vec<f64>,
    /// How much more or less than nationally it exports of each chapter (by number).
    tilt: Vec<f64>,
    /// Its cells, in the order its records walk them each year.
    cells: Vec<Cell>,
}

/// An origin's flow to one partner of one HS6 line, the same every year.
#[derive(Clone, Copy)]
struct Cell {
    partner: usize,
    chapter: u32,
    line: usize,
    /// The level before the year's shocks.
    level: f64,
    /// Decides the cell's base level and its yearly shocks.
    key: u64,
}

impl World {
    fn new(spec: &Spec) -> Self {
        let minor_share = 100.0 - MAJOR_PARTNERS.iter().map(|(_, w)| w).sum::<f64>();
        let partners: Vec<(&'static str, f64)> = MAJOR_PARTNERS
            .iter()
            .copied()
            .chain(
                // A Zipf-like tail: earlier minor partners are larger.
                MINOR_PARTNERS
                    .iter()
                    .enumerate()
                    .map(|(i, &code)| (code, minor_share / (i as f64 + 8.0) / 3.2)),
            )
            .collect();
        let demand: Vec<Vec<f64>> = partners
            .iter()
            .map(|&(code, size)| partner_demand(code, size))
            .collect();
        let province_total: f64 = PROVINCES.iter().map(|(_, w)| w).sum();
        let (smallest, largest) = PROVINCES
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(low, high), &(_, w)| {
                (low.min(w), high.max(w))
            });
        let first_visits = spec.records_per_year.min(FIRST_VISITS);
        let later_records = (spec.records_per_year - first_visits) as f64;
        let country_fraction = spec.country_origin_fraction;
        let mut origins: Vec<Origin> = PROVINCES
            .iter()
            .enumerate()
            .map(|(index, &(code, weight))| {
                let share = (1.0 - country_fraction) * weight / province_total;
                let first = (index..first_visits).step_by(PROVINCES.len()).count();
                // Destinations grow with the log of a province's weight.
                let reach = (weight / smallest).ln() / (largest / smallest).ln();
                let spare = (partners.len() - FEWEST_DESTINATIONS) as f64;
                let destinations = FEWEST_DESTINATIONS + (spare * reach).round() as usize;
                let records = first as f64 + later_records * share;
                Origin::new(code, share, destinations, records, &partners, &demand)
            })
            .collect();
        if country_fraction > 0.0 {
            let share = country_fraction / REPORTER_COUNTRIES.len() as f64;
            origins.extend(REPORTER_COUNTRIES.iter().map(|&code| {
                let records = later_records * share;
                Origin::new(code, share, partners.len(), records, &partners, &demand)
            }));
        }
        let subheadings: Vec<Vec<u32>> = (0..100u32)
            .map(|chapter| {
                (0..LINES_PER_CHAPTER)
                    .map(|line| {
                        let hash = code_hash(&[&chapter.to_string(), &line.to_string()]);
                        (hash % 10_000) as u32
                    })
                    .collect()
            })
            .collect();
        Self {
            partners,
            demand,
            origins,
            subheadings,
        }
    }

    /// The fixed cell of `origin` toward `partner` for a first visit that its own cells do
    /// not cover: the same product whenever the visit recurs.
    fn first_visit_cell(&self, origin: &Origin, partner: usize) -> Cell {
        let parts = [origin.code, "first visit to", self.partners[partner].0];
        let mut stream = Random(code_hash(&parts));
        let chapter = chapter_mix(&origin.tilt, &self.demand[partner]).sample(&mut stream);
        let line = stream.below(LINES_PER_CHAPTER);
        Cell::new(
            partner,
            chapter,
            line,
            stream.next_u64(),
            origin.propensity[partner],
        )
    }
}

impl Origin {
    /// `code`'s destinations (its top `destinations` partners by propensity) and its cells,
    /// as many as `records` (the records it expects in a year) call for.
    fn new(
        code: &'static str,
        share: f64,
        destinations: usize,
        records: f64,
        partners: &[(&'static str, f64)],
        demand: &[Vec<f64>],
    ) -> Self {
        let local = neighbours(code);
        let propensity: Vec<f64> = partners
            .iter()
            .map(|&(partner, size)| {
                if partner == code {
                    // A reporter country does not export to itself.
                    return 0.0;
                }
                let proximity = if local.contains(&partner) {
                    NEIGHBOUR_BOOST
                } else {
                    1.0
                };
                let affinity = lognormal(&[code, "ships to", partner], ORIGIN_AFFINITY_SIGMA);
                size * proximity * affinity
            })
            .collect();
        let mut tilt = vec![0.0; 100];
        for chapter in chapters() {
            tilt[chapter as usize] = chapter_tilt(code, chapter);
        }
        let mut ranked: Vec<usize> = (0..partners.len())
            .filter(|&j| propensity[j] > 0.0)
            .collect();
        ranked.sort_by(|&a, &b| propensity[b].total_cmp(&propensity[a]));
        ranked.truncate(destinations);
        let destinations = Weighted::new(
            ranked
                .iter()
                .map(|&j| (j, propensity[j].powf(PROPENSITY_IN_CELL_COUNT))),
        );
        // A cell is drawn toward a destination, then a chapter that the destination demands
        // and the origin makes, then a line. The list only grows with `records` (each cell
        // is the next draw of the origin's own stream), so a larger sample keeps the cells
        // of a smaller one.
        let mut mixes: Vec<Option<Weighted<u32>>> = partners.iter().map(|_| None).collect();
        let mut stream = Random(code_hash(&[code, "cells"]));
        let count = ((CELLS_PER_RECORD * records).ceil() as usize).clamp(1, MAX_CELLS_PER_ORIGIN);
        let cells: Vec<Cell> = (0..count)
            .map(|_| {
                let partner = destinations.sample(&mut stream);
                let mix =
                    mixes[partner].get_or_insert_with(|| chapter_mix(&tilt, &demand[partner]));
                let chapter = mix.sample(&mut stream);
                let line = stream.below(LINES_PER_CHAPTER);
                Cell::new(
                    partner,
                    chapter,
                    line,
                    stream.next_u64(),
                    propensity[partner],
                )
            })
            .collect();
        Self {
            code,
            share,
            propensity,
            tilt,
            cells,
        }
    }
}

impl Cell {
    fn new(partner: usize, chapter: u32, line: usize, key: u64, propensity: f64) -> Self {
        let base = (BASE_LEVEL_SIGMA * standard_normal(key)).exp();
        // The k-th line of a chapter is 1/(k+1) the size of its first: a few products
        // dominate each chapter, as phones and computers do.
        let line_size = (line as f64 + 1.0).powf(-LINE_SIZE_EXPONENT);
        let level = base * propensity.powf(1.0 - PROPENSITY_IN_CELL_COUNT) * line_size;
        Self {
            partner,
            chapter,
            line,
            level,
            key,
        }
    }

    /// The cell's level in the year whose shock salts (this year's first, then the years
    /// before) are `shock_salts`: `z_t = sum over k of rho^k eps_{t-k}` is the AR(1)
    /// `z_t = rho z_{t-1} + eps_t`, computed from the year alone.
    fn level_in(&self, shock_salts: &[u64]) -> f64 {
        let mut z: f64 = 0.0;
        let mut weight = 1.0;
        for salt in shock_salts {
            z += weight * SHOCK_SIGMA * standard_normal(self.key ^ salt);
            weight *= PERSISTENCE;
        }
        self.level * z.exp()
    }
}

/// A cell as a year's records see it: its partner, its product and the raw value of a
/// record (before the year's scaling to the calibrated total).
#[derive(Clone, Copy)]
struct Placed {
    partner: usize,
    chapter: u32,
    line: usize,
    value: f64,
}

/// A cell's expected raw value in a year and the origin, partner and chapter it counts
/// toward, for raking.
struct Expected {
    keys: [usize; 3],
    value: f64,
}

/// Factors by origin, partner and chapter (in `keys` order) that bring the totals of the
/// expected values to the `targets` shares: iterative proportional fitting. The factors
/// keep what makes the data interesting, which partner buys what from whom; they only
/// restore the calibrated shares that heavy-tailed levels scatter.
fn rake(expected: &[Expected], targets: &[Vec<f64>; 3]) -> [Vec<f64>; 3] {
    let mut factors: [Vec<f64>; 3] = std::array::from_fn(|margin| vec![1.0; targets[margin].len()]);
    for _ in 0..RAKING_ROUNDS {
        for (margin, target) in targets.iter().enumerate() {
            let mut totals: Vec<f64> = vec![0.0; target.len()];
            for cell in expected {
                let [origin, partner, chapter] = cell.keys;
                let value =
                    cell.value * factors[0][origin] * factors[1][partner] * factors[2][chapter];
                totals[cell.keys[margin]] += value;
            }
            let grand_total: f64 = totals.iter().sum();
            for ((factor, share), total) in factors[margin].iter_mut().zip(target).zip(&totals) {
                // A margin no cell reaches (too few records) is left to the others.
                if *total > 0.0 {
                    *factor *= share * grand_total / total;
                }
            }
        }
    }
    factors
}

/// What one record draws, before its value is scaled and written.
struct Draw {
    /// Index in `World::origins`.
    origin: usize,
    /// Index in `World::partners`; `None` for China itself (a re-import).
    partner: Option<usize>,
    chapter: u32,
    line: usize,
    month: usize,
    tariff_line: usize,
    /// Raw value, before the year's scaling.
    usd: f64,
    in_cny: bool,
}

/// One year: each origin's cells toward partners in the market with their values, and
/// the draws that turn them into records.
struct YearPlan {
    /// The cells of the first visits to the partners in the market: record `i` visits the
    /// `i`-th partner from province `i % 31`.
    first_partner_visits: Vec<Placed>,
    /// Each origin's cells in the market, in walking order, weighted for the later draws.
    cells: Vec<Weighted<Placed>>,
    provinces: Weighted<usize>,
    seed: u64,
    records: usize,
    /// `shipment_spread(records)`.
    shipment_spread: f64,
    cny_fraction: f64,
    country_origin_fraction: f64,
}

impl YearPlan {
    fn new(world: &World, spec: &Spec, year: i32) -> Self {
        let in_market: Vec<bool> = world
            .partners
            .iter()
            .map(|(code, _)| trades_in(code, year))
            .collect();
        let trading: Vec<usize> = (0..world.partners.len())
            .filter(|&j| in_market[j])
            .collect();
        let shock_salts: Vec<u64> = (0..MEMORY_YEARS)
            .map(|age| code_hash(&["shock", &(year - age).to_string()]))
            .collect();
        // Each origin's cells toward partners in the market, with their levels this year.
        // A partner out of the market this year takes its cells with it; they come back
        // when it does.
        let levels: Vec<Vec<(Cell, f64)>> = world
            .origins
            .iter()
            .map(|origin| {
                let mut cells: Vec<(Cell, f64)> = origin
                    .cells
                    .iter()
                    .filter(|cell| in_market[cell.partner])
                    .map(|cell| (*cell, cell.level_in(&shock_salts)))
                    .collect();
                // Too few records for the origin's cells to reach a partner in the market:
                // it ships to its likeliest one.
                if cells.is_empty()
                    && let Some(&partner) = trading
                        .iter()
                        .max_by(|&&a, &&b| origin.propensity[a].total_cmp(&origin.propensity[b]))
                {
                    let cell = world.first_visit_cell(origin, partner);
                    cells.push((cell, cell.level_in(&shock_salts)));
                }
                cells
            })
            .collect();

        // The records each origin is expected to walk its cells with; re-imports and first
        // visits to partners do not walk.
        let records = spec.records_per_year;
        let first_visits = records.min(FIRST_VISITS);
        let walking = 1.0 - TO_CHINA_FRACTION;
        let mut walks: Vec<f64> = world
            .origins
            .iter()
            .map(|origin| (records - first_visits) as f64 * walking * origin.share)
            .collect();
        for i in trading.len().min(first_visits)..first_visits {
            walks[i % PROVINCES.len()] += walking;
        }
        let mut expected = Vec::new();
        for (origin, (cells, &walk)) in levels.iter().zip(&walks).enumerate() {
            let weight_total: f64 = cells
                .iter()
                .map(|(_, level)| level.powf(SAMPLING_EXPONENT))
                .sum();
            let drawn = (walk - cells.len() as f64).max(0.0);
            for (position, (cell, level)) in cells.iter().enumerate() {
                let walked = if (position as f64) < walk { 1.0 } else { 0.0 };
                let visits = walked + drawn * level.powf(SAMPLING_EXPONENT) / weight_total;
                expected.push(Expected {
                    keys: [origin, cell.partner, cell.chapter as usize],
                    value: visits * shipment_value(*level),
                });
            }
        }
        let trading_size: f64 = trading.iter().map(|&j| world.partners[j].1).sum();
        let chapter_weight: f64 = chapters().map(national_weight).sum();
        let mut chapter_shares = vec![0.0; 100];
        for chapter in chapters() {
            chapter_shares[chapter as usize] = national_weight(chapter) / chapter_weight;
        }
        let targets: [Vec<f64>; 3] = [
            world.origins.iter().map(|origin| origin.share).collect(),
            world
                .partners
                .iter()
                .zip(&in_market)
                .map(|(&(_, size), &open)| if open { size / trading_size } else { 0.0 })
                .collect(),
            chapter_shares,
        ];
        let [by_origin, by_partner, by_chapter] = rake(&expected, &targets);
        let placed = |origin: usize, cell: &Cell, level: f64| Placed {
            partner: cell.partner,
            chapter: cell.chapter,
            line: cell.line,
            value: shipment_value(level)
                * by_origin[origin]
                * by_partner[cell.partner]
                * by_chapter[cell.chapter as usize],
        };

        let cells: Vec<Weighted<Placed>> = levels
            .iter()
            .enumerate()
            .map(|(origin, cells)| {
                Weighted::new(cells.iter().map(|(cell, level)| {
                    (placed(origin, cell, *level), level.powf(SAMPLING_EXPONENT))
                }))
            })
            .collect();
        // A first visit to a partner uses one of the province's own cells toward it, so that
        // it adds no cell of its own when the province already ships there.
        let first_partner_visits: Vec<Placed> = trading
            .iter()
            .take(first_visits)
            .enumerate()
            .map(|(i, &partner)| {
                let origin = i % PROVINCES.len();
                match cells[origin]
                    .items
                    .iter()
                    .find(|cell| cell.partner == partner)
                {
                    Some(&cell) => cell,
                    None => {
                        let cell = world.first_visit_cell(&world.origins[origin], partner);
                        placed(origin, &cell, cell.level_in(&shock_salts))
                    }
                }
            })
            .collect();
        Self {
            first_partner_visits,
            cells,
            provinces: Weighted::new(
                PROVINCES
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, weight))| (i, weight)),
            ),
            // One stream per year: a year's records do not depend on the other years.
            seed: spec.seed ^ code_hash(&[&year.to_string()]),
            records,
            shipment_spread: shipment_spread(records),
            cny_fraction: spec.cny_fraction,
            country_origin_fraction: spec.country_origin_fraction,
        }
    }

    /// Calls `each` with every record's index and draw, the same every time.
    fn for_each_draw(&self, mut each: impl FnMut(usize, &Draw)) {
        let mut random = Random(self.seed);
        let mut walked = vec![0; self.cells.len()];
        for i in 0..self.records {
            let draw = self.draw(i, &mut random, &mut walked);
            each(i, &draw);
        }
    }

    /// The `i`-th record's draw; `walked` counts how far each origin's records have walked
    /// its cells.
    fn draw(&self, i: usize, random: &mut Random, walked: &mut [usize]) -> Draw {
        // The first records of a year visit every province in every month, and every
        // partner once, so small samples still show the whole structure and every
        // province's year is whole (see `exdep_core::months`).
        let first_visit = i < FIRST_VISITS;
        let first_partner_visit = self.first_partner_visits.get(i).copied();
        let reimport = first_partner_visit.is_none() && random.unit() < TO_CHINA_FRACTION;
        let origin = if first_visit {
            i % PROVINCES.len()
        } else if !reimport && random.unit() < self.country_origin_fraction {
            PROVINCES.len() + random.below(REPORTER_COUNTRIES.len())
        } else {
            self.provinces.sample(random)
        };
        let cells = &self.cells[origin];
        // Records that walk the origin's cells come first, so every cell has a record each
        // year; the rest, and re-imports, are drawn by level.
        let (cell, walking) = if let Some(cell) = first_partner_visit {
            (cell, true)
        } else if reimport {
            (cells.sample(random), false)
        } else {
            let position = walked[origin];
            walked[origin] += 1;
            match cells.items.get(position) {
                Some(&cell) => (cell, true),
                None => (cells.sample(random), false),
            }
        };
        // A zero value on a walking record would take its cell out of the year.
        let zero = !walking && random.unit() < ZERO_VALUE_FRACTION;
        // Monthly records, as customs publishes them.
        let month = if first_visit {
            i / PROVINCES.len() + 1
        } else {
            1 + random.below(12)
        };
        let tariff_line = random.below(100);
        let spread = self.shipment_spread;
        let shipment = (spread * standard_normal(random.next_u64()) - spread * spread / 2.0).exp();
        Draw {
            origin,
            partner: (!reimport).then_some(cell.partner),
            chapter: cell.chapter,
            line: cell.line,
            month,
            tariff_line,
            usd: if zero { 0.0 } else { cell.value * shipment },
            in_cny: random.unit() < self.cny_fraction,
        }
    }
}

/// Calls `emit` for every record of `spec`, year by year.
pub fn generate(spec: &Spec, mut emit: impl FnMut(&Record)) {
    let world = World::new(spec);
    for &year in &spec.years {
        let plan = YearPlan::new(&world, spec, year);
        let (billions, rate) = calibration(year);
        // Heavy-tailed values are scaled so that the year's total is exactly the calibrated
        // one; a first pass over the same draws finds their raw total.
        let mut raw_total = 0.0;
        plan.for_each_draw(|_, draw| raw_total += draw.usd);
        let scale = if raw_total > 0.0 {
            billions * 1e9 / raw_total
        } else {
            0.0
        };
        plan.for_each_draw(|i, draw| {
            let usd = draw.usd * scale;
            let partner = draw.partner.map_or("CHN", |j| world.partners[j].0);
            let subheading = world.subheadings[draw.chapter as usize][draw.line];
            let record = Record {
                year: year.to_string(),
                month: draw.month.to_string(),
                province: world.origins[draw.origin].code.to_string(),
                partner: partner.to_string(),
                hs_code: format!("{:02}{subheading:04}{:02}", draw.chapter, draw.tariff_line),
                value: format!("{:.2}", if draw.in_cny { usd * rate } else { usd }),
                currency: if draw.in_cny { "CNY" } else { "USD" }.to_string(),
            };
            emit(&record);
            if let Some(every) = spec.dirty_every
                && i % every == every - 1
            {
                emit(&spoil(&record, i / every));
            }
        });
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

    #[test]
    fn a_years_records_do_not_depend_on_the_other_years_generated() {
        let records_of = |years: Vec<i32>| {
            let spec = Spec {
                years,
                records_per_year: 2_000,
                ..Default::default()
            };
            let mut records = Vec::new();
            generate(&spec, |r| {
                if r.year == "2020" {
                    records.push(r.clone());
                }
            });
            records
        };
        assert_eq!(records_of(vec![2020]), records_of(vec![2018, 2020, 2021]));
    }

    /// The default factor-intensity category of a record's chapter (configs/hs_chapters.csv):
    /// resource, labor, capital, technology; `None` for the excluded chapters.
    fn category_of(hs_code: &str) -> Option<usize> {
        match hs_code[..2].parse::<u32>().unwrap() {
            1..=27 => Some(0),
            41..=71 | 94..=97 => Some(1),
            30 | 85 | 88 | 90..=93 => Some(3),
            98 | 99 => None,
            _ => Some(2),
        }
    }

    /// Province 44's exports by partner and category in a year of `records` records drawn
    /// from the stream `seed`.
    fn guangdong_by_partner_and_category(
        records: usize,
        seed: u64,
    ) -> BTreeMap<(String, usize), f64> {
        let spec = Spec {
            years: vec![2020],
            records_per_year: records,
            cny_fraction: 0.0,
            seed,
            ..Default::default()
        };
        let mut values = BTreeMap::new();
        generate(&spec, |r| {
            if r.province == "44"
                && let Some(category) = category_of(&r.hs_code)
            {
                *values.entry((r.partner.clone(), category)).or_default() +=
                    r.value.parse::<f64>().unwrap();
            }
        });
        values
    }

    /// Location quotients of a partner x category table, and the weight of each (its
    /// partner's share times its category's), for the partners with exports.
    fn quotients(values: &BTreeMap<(String, usize), f64>) -> BTreeMap<(String, usize), (f64, f64)> {
        let mut by_partner: BTreeMap<&str, f64> = BTreeMap::new();
        let mut by_category = [0.0; 4];
        for ((partner, category), value) in values {
            *by_partner.entry(partner).or_default() += value;
            by_category[*category] += value;
        }
        let total: f64 = by_category.iter().sum();
        let mut quotients = BTreeMap::new();
        for (partner, partner_total) in &by_partner {
            for (category, category_total) in by_category.iter().enumerate() {
                let value = values
                    .get(&(partner.to_string(), category))
                    .copied()
                    .unwrap_or(0.0);
                let lq = value * total / (partner_total * category_total);
                let weight = partner_total / total * category_total / total;
                quotients.insert((partner.to_string(), category), (lq, weight));
            }
        }
        quotients
    }

    /// The structure and the sampling noise of a province's location quotients, from two
    /// samples of the same world with independent streams: each sample's quotient is the
    /// structural one plus its own noise, so the weighted mean of (LQ1 - 1)(LQ2 - 1) has
    /// the structure's spread for its expectation (the noises cancel) and the weighted
    /// mean of (LQ1 - LQ2)^2 / 2 the noise's (the structure cancels). The weights are
    /// phi squared's: the partner's share times the category's.
    fn structure_and_noise(
        first: &BTreeMap<(String, usize), f64>,
        second: &BTreeMap<(String, usize), f64>,
    ) -> (f64, f64) {
        let (first, second) = (quotients(first), quotients(second));
        let (mut structure, mut noise) = (0.0, 0.0);
        for (key, (lq1, w1)) in &first {
            if let Some((lq2, w2)) = second.get(key) {
                let weight = (w1 + w2) / 2.0;
                structure += weight * (lq1 - 1.0) * (lq2 - 1.0);
                noise += weight * (lq1 - lq2).powi(2) / 2.0;
            }
        }
        (structure, noise)
    }

    #[test]
    fn a_large_provinces_location_quotients_are_structural_not_sampling_noise() {
        // Under the old generator a record's destination did not depend on its commodity:
        // its quotients were sampling noise alone, their structure about 0. This model
        // gives about 11 times the noise at 50,000 records (9 at 10,000, 11 at 200,000).
        let records = 50_000;
        let (structure, noise) = structure_and_noise(
            &guangdong_by_partner_and_category(records, 1),
            &guangdong_by_partner_and_category(records, 2),
        );
        assert!(
            structure > 8.0 * noise,
            "structure {structure:.4}, sampling noise {noise:.4}"
        );
    }

    #[test]
    fn a_large_provinces_cells_persist_and_small_provinces_reach_few_partners() {
        let spec = Spec {
            years: vec![2020, 2021],
            records_per_year: 100_000,
            ..Default::default()
        };
        let mut cells: BTreeMap<String, BTreeSet<(String, usize)>> = BTreeMap::new();
        let mut partners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        generate(&spec, |r| {
            if r.year == "2020" {
                partners
                    .entry(r.province.clone())
                    .or_default()
                    .insert(r.partner.clone());
            }
            if r.province == "44"
                && r.value != "0.00"
                && let Some(category) = category_of(&r.hs_code)
            {
                cells
                    .entry(r.year.clone())
                    .or_default()
                    .insert((r.partner.clone(), category));
            }
        });
        let (before, after) = (&cells["2020"], &cells["2021"]);
        let (mut continuing, mut blinking) = (0, 0);
        for cell in before.union(after) {
            // Partners entering or leaving the market take their cells with them, and
            // re-imports are not exports: neither is a cell blinking.
            if cell.0 != "CHN" && trades_in(&cell.0, 2020) && trades_in(&cell.0, 2021) {
                continuing += 1;
                blinking += usize::from(!(before.contains(cell) && after.contains(cell)));
            }
        }
        assert!(
            continuing > 400 && blinking * 20 < continuing,
            "{blinking} of the {continuing} partner x category cells of 44 blink"
        );
        let ships_to_russia = |year_cells: &BTreeSet<(String, usize)>| {
            year_cells.iter().any(|(partner, _)| partner == "RUS")
        };
        assert!(ships_to_russia(before) && !ships_to_russia(after));
        let (smallest, largest) = (partners["63"].len(), partners["44"].len());
        assert!(
            smallest < 40 && largest > 120,
            "partners of 63: {smallest}, of 44: {largest}"
        );
    }

    /// A clean record's value in USD, at its year's calibrated rate.
    fn usd(r: &Record) -> f64 {
        let value: f64 = r.value.parse().unwrap();
        if r.currency == "CNY" {
            value / calibration(r.year.parse().unwrap()).1
        } else {
            value
        }
    }

    /// Heavy tails stop short of making a province out of a few records: the large
    /// provinces and the nation spread their exports over partners about as much as in
    /// customs data (HHI 0.05-0.15), small provinces less.
    #[test]
    fn large_provinces_spread_their_exports_over_partners_as_in_customs_data() {
        let spec = Spec {
            years: vec![2021],
            records_per_year: 20_000,
            ..Default::default()
        };
        let mut by_partner: BTreeMap<(String, String), f64> = BTreeMap::new();
        generate(&spec, |r| {
            let usd = usd(r);
            for origin in [r.province.clone(), "CN".to_string()] {
                *by_partner.entry((origin, r.partner.clone())).or_default() += usd;
            }
        });
        let hhi = |origin: &str| {
            let values: Vec<f64> = (by_partner.iter())
                .filter(|((o, _), _)| o == origin)
                .map(|(_, v)| *v)
                .collect();
            let total: f64 = values.iter().sum();
            values.iter().map(|v| (v / total).powi(2)).sum::<f64>()
        };
        assert!(hhi("CN") < 0.1, "CN: {}", hhi("CN"));
        for province in ["44", "32", "33", "37", "31"] {
            assert!(hhi(province) < 0.25, "{province}: {}", hhi(province));
        }
    }

    #[test]
    fn a_few_records_hold_most_of_the_value_and_every_year_matches_its_calibration() {
        let spec = Spec {
            years: vec![2021],
            records_per_year: 2_000_000,
            ..Default::default()
        };
        let mut values = Vec::new();
        generate(&spec, |r| values.push(usd(r)));
        values.sort_by(|a, b| b.total_cmp(a));
        let total: f64 = values.iter().sum();
        let top: f64 = values[..values.len() / 100].iter().sum();
        // Exponential values, as the old generator drew, give the top 1% about 6%. Here a
        // year in a fifth of customs' detail gives them more than half (53%); a smaller
        // sample, whose records each sum more customs records, less (a third at 200,000).
        assert!(
            top > 0.5 * total,
            "the top 1% of records hold {:.1}% of the value",
            100.0 * top / total
        );

        let spec = Spec {
            years: (2017..=2022).collect(),
            records_per_year: 5_000,
            ..Default::default()
        };
        let mut totals: BTreeMap<i32, f64> = BTreeMap::new();
        generate(&spec, |r| {
            *totals.entry(r.year.parse().unwrap()).or_default() += usd(r);
        });
        assert_eq!(totals.len(), 6);
        for (year, total) in totals {
            let target = calibration(year).0 * 1e9;
            assert!(
                ((total - target) / target).abs() < 1e-6,
                "{year}: {total} USD, calibrated {target}"
            );
        }
    }
}
