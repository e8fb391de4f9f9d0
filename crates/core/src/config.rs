//! The pipeline configuration: one TOML file says what a run does.
//!
//! The file is parsed into [`ConfigFile`]-shaped serde structs that reject unknown keys, then
//! checked once into [`Config`], which the rest of exdep passes around. Relative paths in the
//! file are resolved against the directory that holds the file, so a config can be run from
//! anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use parquet::basic::Compression;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::location::{InputLocation, Location};
use crate::telemetry::{LineageFile, MetricsFile, Telemetry};
use url::Url;

/// The earliest and latest years exdep accepts; anything else is a typo.
const YEAR_RANGE: std::ops::RangeInclusive<i32> = 1950..=2100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    /// The years this run covers; records of any other year are rejected.
    years: Vec<i32>,
    /// Root of the published index tables.
    output: String,
    /// Root of exdep's intermediate layers (raw records and the classified cube).
    warehouse: String,
    /// Where the export records come from. May be empty when `--input` is given.
    #[serde(default)]
    inputs: Vec<InputFile>,
    /// Code tables; each defaults to the file of the same name beside the config.
    #[serde(default)]
    tables: TablesFile,
    /// Settings of the index views.
    #[serde(default)]
    indices: IndicesFile,
    /// Fail the run when more than this fraction of the records read is rejected. Default:
    /// no limit.
    #[serde(default)]
    max_reject_ratio: Option<f64>,
    /// Options of the cloud object stores (`aws_endpoint`, `aws_region`, ...), on top of the
    /// environment's `AWS_*`, `GOOGLE_*` and `AZURE_*` variables. Default: none.
    #[serde(default)]
    storage: StorageOptions,
    /// Compression of the Parquet files exdep writes. Default `zstd(3)`.
    #[serde(default)]
    parquet_compression: Option<String>,
    /// Where the plans execute. Default: embedded, in this process.
    #[serde(default)]
    engine: EngineFile,
    /// Keep the records that passed every check in `WAREHOUSE/raw/` as an audit copy.
    /// Default: false (the run reads each input once and keeps only sums and rejects).
    #[serde(default)]
    raw_layer: bool,
    /// Refuse a run when a year's monthly records cover fewer than 12 months. Default:
    /// false (the year is published and flagged in the summary and the manifest).
    #[serde(default)]
    require_complete_years: bool,
    /// The memory the engine may use before it spills to disk (`2GiB`, `512MiB`, ...).
    /// Default: half of this machine's memory.
    #[serde(default)]
    memory_limit: Option<String>,
    /// The longest record of a text input (`1MiB`, `64KiB`, ...): a longer line is rejected
    /// as `line_too_long` without being held in memory. Default 1MiB.
    #[serde(default)]
    max_line_bytes: Option<String>,
    /// How this process's object stores retry a failed request.
    #[serde(default)]
    retry: RetryFile,
    /// The published tables' format: `parquet` (default) or `delta`.
    #[serde(default)]
    table_format: TableFormat,
    /// Hours a Delta table keeps the files its later versions removed, for readers of old
    /// versions, before `exdep vacuum` deletes them. Default 168 (Delta's 7 days).
    #[serde(default)]
    vacuum_retention_hours: Option<u64>,
    /// Whether a `vacuum-retention-hours` under the floor is refused. Default true.
    #[serde(default)]
    vacuum_retention_check: Option<bool>,
    /// Seconds a run's lease on the warehouse and output lasts unless renewed; a run renews
    /// it every quarter of that, and a run that died leaves it to be taken over once it
    /// expires. Default 120.
    #[serde(default)]
    lease_seconds: Option<u64>,
    /// The scheduler guarantees one run at a time per warehouse and output: on a store
    /// without conditional replaces, the lease is renewed and taken over with plain
    /// writes. Default false (such a store is refused).
    #[serde(default)]
    serialized_runs: bool,
    /// How many times its compressed size a `.gz` or `.zst` input may inflate to before it
    /// is refused as a decompression bomb. Default 1000.
    #[serde(default)]
    max_compression_ratio: Option<u64>,
    /// The job's name in lineage events and metrics. Default: the config file's name
    /// without its extension.
    #[serde(default)]
    name: Option<String>,
    /// OpenLineage events of each run. Default: none.
    #[serde(default)]
    lineage: Option<LineageFile>,
    /// Prometheus metrics of each run. Default: none.
    #[serde(default)]
    metrics: MetricsFile,
}

/// The format of the published tables.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableFormat {
    /// Hive-partitioned Parquet files, replaced partition by partition, with `_SUCCESS`
    /// written last; any Parquet reader reads them.
    #[default]
    Parquet,
    /// Delta Lake tables: each run's change to a table is one atomic commit, with history,
    /// time travel and vacuum; readers need Delta support.
    Delta,
}

/// How long a run's lease lasts unless `lease-seconds` says otherwise: a CronJob's next run
/// waits at most this long after a killed one.
const DEFAULT_LEASE_SECONDS: u64 = 120;

/// How far a compressed input may inflate unless `max-compression-ratio` says otherwise:
/// gzip cannot exceed about 1030, and CSV export records compress 5-20 times.
const DEFAULT_MAX_COMPRESSION_RATIO: u64 = 1000;

/// The shortest lease: renewals every quarter of it must outpace a busy store.
const MIN_LEASE_SECONDS: u64 = 2;

/// The shortest `vacuum-retention-hours` unless `vacuum-retention-check = false`: a reader in
/// the middle of reading a version must not lose its files to a vacuum.
const MIN_VACUUM_RETENTION_HOURS: u64 = 1;

/// How long vacuum keeps removed files unless `vacuum-retention-hours` says otherwise.
const DEFAULT_VACUUM_RETENTION_HOURS: u64 = 168;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RetryFile {
    /// Retries of one request at most. Default 10 (object_store's).
    #[serde(default)]
    max_retries: Option<usize>,
    /// Seconds after a request's first try in which retries may start. Default 180
    /// (object_store's).
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EngineFile {
    /// `embedded` (default) or `ballista`.
    #[serde(default)]
    kind: EngineKind,
    /// The Ballista scheduler, `df://HOST:PORT`; required for, and only for, `ballista`.
    #[serde(default)]
    scheduler: Option<String>,
    /// Whether local paths name a filesystem every node of the cluster mounts at the same
    /// place. Default `false`: local paths are refused unless the scheduler is on this host.
    #[serde(default)]
    shared_local_paths: bool,
    /// Seconds a run may take before it is cancelled. Default 3600 on a cluster, no limit
    /// embedded.
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// How long a cluster run may take unless `[engine] timeout-seconds` says otherwise.
const DEFAULT_CLUSTER_TIMEOUT_SECONDS: u64 = 3600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum EngineKind {
    #[default]
    Embedded,
    Ballista,
}

/// Where a run's plans execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// In this process, with DataFusion.
    Embedded,
    /// On an Apache DataFusion Ballista cluster.
    Ballista {
        /// The scheduler, `df://HOST:PORT`.
        scheduler: String,
        /// Whether local paths are on a filesystem every node mounts at the same place.
        shared_local_paths: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct InputFile {
    /// A file, folder or glob.
    location: String,
    /// Default `auto`: told from the header (or `.parquet` for canonical Parquet).
    #[serde(default)]
    format: InputFormat,
    /// Default `auto`. Text formats only.
    #[serde(default)]
    encoding: TextEncoding,
    /// BACI's `country_codes_V*.csv`; required for, and only for, `baci-csv`.
    #[serde(default)]
    country_codes: Option<String>,
    /// Comtrade: the HS level to keep, 2, 4 or 6 digits, or "finest" (the finest level in
    /// each file). Without it, a file that mixes levels is an error.
    #[serde(default)]
    hs_level: Option<HsLevelText>,
    /// Comtrade: map partner codes through `tables.comtrade-partner-aliases` (S19, "Other
    /// Asia, nes", to TWN). Default true.
    #[serde(default)]
    partner_aliases: Option<bool>,
}

/// `hs-level` as written: a number of digits or a word.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HsLevelText {
    Digits(i64),
    Word(String),
}

/// The HS level a Comtrade input keeps: Comtrade lists the same trade at 2, 4 and 6 digits
/// (`aggrLevel`), and summing levels would count it more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsLevel {
    /// Records of this many digits.
    Digits(u8),
    /// Each file's finest level.
    Finest,
}

/// How to decode a text input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// A UTF-8 byte order mark means UTF-8; otherwise UTF-8 if the start of the file is valid
    /// UTF-8, else GB18030 (a superset of GBK).
    #[default]
    Auto,
    /// UTF-8, with or without a byte order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// GBK or GB18030 (the same decoder: GB18030 extends GBK).
    #[serde(alias = "gbk")]
    Gb18030,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TablesFile {
    /// HS chapter -> factor-intensity category. Default `hs_chapters.csv`.
    #[serde(default = "default_hs_chapters")]
    hs_chapters: String,
    /// ISO 3166-1 alpha-3 partner -> world region. Default `partner_regions.csv`.
    #[serde(default = "default_partner_regions")]
    partner_regions: String,
    /// GB/T 2260 province code -> name and macro-region. Default `provinces.csv`.
    #[serde(default = "default_provinces")]
    provinces: String,
    /// CNY per USD, annual average, by year. Default `cny_per_usd.csv`.
    #[serde(default = "default_exchange_rates")]
    exchange_rates: String,
    /// CNY per USD, monthly average, by year and month. Default: none (every record is
    /// converted at its year's rate).
    #[serde(default)]
    exchange_rates_monthly: Option<String>,
    /// China Customs 3-digit partner code -> ISO3. Default `customs_partner_codes.csv`; read
    /// only when an input is a customs export.
    #[serde(default = "default_customs_partner_codes")]
    customs_partner_codes: String,
    /// Comtrade partner code -> ISO3 for codes that are not ISO3. Default
    /// `comtrade_partner_aliases.csv`; read only for Comtrade inputs with partner aliases on.
    #[serde(default = "default_comtrade_partner_aliases")]
    comtrade_partner_aliases: String,
    /// Province code -> tile-grid row and column, for the report's map. Default
    /// `province_tiles.csv`; read only by `exdep report`.
    #[serde(default = "default_province_tiles")]
    province_tiles: String,
}

fn default_hs_chapters() -> String {
    "hs_chapters.csv".into()
}
fn default_partner_regions() -> String {
    "partner_regions.csv".into()
}
fn default_provinces() -> String {
    "provinces.csv".into()
}
fn default_exchange_rates() -> String {
    "cny_per_usd.csv".into()
}
fn default_customs_partner_codes() -> String {
    "customs_partner_codes.csv".into()
}
fn default_comtrade_partner_aliases() -> String {
    "comtrade_partner_aliases.csv".into()
}
fn default_province_tiles() -> String {
    "province_tiles.csv".into()
}

impl Default for TablesFile {
    fn default() -> Self {
        Self {
            hs_chapters: default_hs_chapters(),
            partner_regions: default_partner_regions(),
            provinces: default_provinces(),
            exchange_rates: default_exchange_rates(),
            exchange_rates_monthly: None,
            customs_partner_codes: default_customs_partner_codes(),
            comtrade_partner_aliases: default_comtrade_partner_aliases(),
            province_tiles: default_province_tiles(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct IndicesFile {
    /// National exports (CNY) a destination must reach to be listed. Default 1e11
    /// (1000 x 10^8 yuan, the study's line).
    #[serde(default = "default_threshold")]
    destination_threshold_cny: f64,
    /// How many province-partner links to keep per category. Default 10.
    #[serde(default = "default_top_n")]
    top_n: u32,
    /// The year destination statuses and index changes are measured against. Default: the
    /// first year of the run.
    #[serde(default)]
    base_year: Option<i32>,
    /// Whether concentration, entropy and growth margins count partner countries or world
    /// regions as destinations. Default `country`.
    #[serde(default)]
    destination_level: DestinationLevel,
    /// Keep each file's exports by HS6 product beside the cube and publish
    /// `product_margins`. Default false: the plain job stays lean.
    #[serde(default)]
    product_margins: bool,
    /// The reference of the product-level Hummels-Klenow margins. Default `nation`.
    #[serde(default)]
    product_reference: ProductReference,
    /// Where `quadrant` cuts G and V. Default `year-mean`.
    #[serde(default)]
    quadrant_cut: QuadrantCut,
}

/// Where the quadrants of the G-V plane are cut, per category and kind of origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuadrantCut {
    /// The unweighted means over the origins in the same year: a province's place among
    /// the others that year, as the study's yearly scatter plots show it.
    #[default]
    YearMean,
    /// The means of the base year, for every year: a common move of all provinces (the
    /// study's shift toward the second quadrant) moves them across the fixed lines.
    BaseYearMean,
    /// The medians over the origins in the same year: half the provinces on each side,
    /// whatever a few outliers do to the mean.
    YearMedian,
}

/// The exports a province's product-level Hummels-Klenow margins are measured against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProductReference {
    /// The nation's exports, the province's own included: the margins' usual reference,
    /// as for the partner-level margins of `indices`.
    #[default]
    Nation,
    /// The nation's exports without the province's own, so that a large province is not
    /// measured against itself.
    RestOfNation,
}

/// The unit of destination for concentration, entropy and growth margins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationLevel {
    /// Partner economies (ISO3): the study's choice.
    #[default]
    Country,
    /// The 11 world regions.
    Region,
}

fn default_threshold() -> f64 {
    1e11
}
fn default_top_n() -> u32 {
    10
}

impl Default for IndicesFile {
    fn default() -> Self {
        Self {
            destination_threshold_cny: default_threshold(),
            top_n: default_top_n(),
            base_year: None,
            destination_level: DestinationLevel::default(),
            product_margins: false,
            product_reference: ProductReference::default(),
            quadrant_cut: QuadrantCut::default(),
        }
    }
}

/// The format of an input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// Told from each file: `.parquet` is canonical Parquet; a text file's header names its
    /// format.
    #[default]
    Auto,
    /// exdep's canonical contract as CSV with a header line.
    CanonicalCsv,
    /// exdep's canonical contract as Parquet.
    CanonicalParquet,
    /// An export of the China Customs statistics query platform.
    CustomsCsv,
    /// UN Comtrade (plus, v1) CSV.
    ComtradeCsv,
    /// CEPII BACI CSV (`t,i,j,k,v,q`).
    BaciCsv,
}

impl InputFormat {
    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::CanonicalCsv => "canonical-csv",
            Self::CanonicalParquet => "canonical-parquet",
            Self::CustomsCsv => "customs-csv",
            Self::ComtradeCsv => "comtrade-csv",
            Self::BaciCsv => "baci-csv",
        }
    }

    /// The file names a folder or glob of this format lists, as their endings: text formats
    /// take their files compressed too (`.gz`, `.zst`); `auto` takes any name.
    pub fn file_extensions(self) -> &'static [&'static str] {
        match self {
            Self::Auto => &[],
            Self::CanonicalParquet => &[".parquet"],
            _ => &[".csv", ".csv.gz", ".csv.zst"],
        }
    }

    /// Whether a listed file's name is one this format reads.
    pub fn takes_file(self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let extensions = self.file_extensions();
        extensions.is_empty() || extensions.iter().any(|e| name.ends_with(e))
    }
}

/// One configured input: where and in which format.
#[derive(Debug, Clone)]
pub struct Input {
    /// Files, a folder or a glob.
    pub location: InputLocation,
    /// How to read them.
    pub format: InputFormat,
    /// How to decode them, for text formats.
    pub encoding: TextEncoding,
    /// BACI's country code dictionary.
    pub country_codes: Option<Location>,
    /// The HS level a Comtrade input keeps; `None`: its files must hold one level.
    pub hs_level: Option<HsLevel>,
    /// Whether a Comtrade input's partner codes go through the alias table.
    pub partner_aliases: bool,
}

impl Input {
    /// How this input's files are read, as text: a file read under another description must
    /// be read again.
    pub fn reading(&self) -> String {
        format!(
            "format={} encoding={:?} country-codes={} hs-level={:?} partner-aliases={}",
            self.format.name(),
            self.encoding,
            self.country_codes
                .as_ref()
                .map_or(String::new(), |l| l.to_string()),
            self.hs_level,
            self.partner_aliases,
        )
    }
}

/// Where the code tables live.
#[derive(Debug, Clone)]
pub struct TableLocations {
    /// HS chapter -> category.
    pub hs_chapters: Location,
    /// ISO3 partner -> region.
    pub partner_regions: Location,
    /// Province code -> name, macro-region.
    pub provinces: Location,
    /// Year -> CNY per USD.
    pub exchange_rates: Location,
    /// Year and month -> CNY per USD, when configured.
    pub exchange_rates_monthly: Option<Location>,
    /// Customs partner code -> ISO3 (read only for customs inputs).
    pub customs_partner_codes: Location,
    /// Comtrade partner code -> ISO3 (read only for Comtrade inputs with aliases on).
    pub comtrade_partner_aliases: Location,
    /// Province code -> tile-grid position (read only by the report).
    pub province_tiles: Location,
}

/// Settings of the index views.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Threshold of national exports, in CNY, for the destination list.
    pub destination_threshold_cny: f64,
    /// Number of strongest links kept per category.
    pub top_n: u32,
    /// The year statuses and changes are measured against; one of the run's years.
    pub base_year: i32,
    /// Countries or regions as destinations.
    pub destination_level: DestinationLevel,
    /// Whether the product cube is kept and `product_margins` published
    /// (`product-margins`).
    pub product_margins: bool,
    /// The reference of the product-level Hummels-Klenow margins (`product-reference`).
    pub product_reference: ProductReference,
    /// Where `quadrant` cuts G and V (`quadrant-cut`).
    pub quadrant_cut: QuadrantCut,
}

/// The `[storage]` options: object store settings, some of them secrets (keys, tokens).
/// `Debug` shows the keys only.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct StorageOptions(pub BTreeMap<String, String>);

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|key| (key, "<redacted>")))
            .finish()
    }
}

impl std::ops::Deref for StorageOptions {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Where byte `offset` of a TOML `text` lies: its 1-based line, and the key written on that
/// line with its table (`retry.max-retries`), when the line holds one.
struct TomlPlace {
    line: usize,
    table: Option<String>,
    key: Option<String>,
}

impl TomlPlace {
    fn of(text: &str, offset: usize) -> Self {
        let line = text[..offset.min(text.len())].matches('\n').count() + 1;
        let table = text
            .lines()
            .take(line)
            .filter_map(|l| {
                let l = l.trim();
                l.starts_with('[')
                    .then(|| l.trim_matches(['[', ']']).trim().to_string())
            })
            .last();
        let key = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(key, _)| key.trim().to_string())
            .filter(|key| !key.is_empty() && !key.starts_with('['));
        Self { line, table, key }
    }

    /// Whether the line lies in the `[storage]` table, where a value may be a secret.
    fn in_storage(&self) -> bool {
        self.table
            .as_deref()
            .is_some_and(|t| t == "storage" || t.starts_with("storage."))
    }

    /// The dotted key of the line, if it holds one.
    fn dotted_key(&self) -> Option<String> {
        let key = self.key.as_deref()?;
        Some(match &self.table {
            Some(table) => format!("{table}.{key}"),
            None => key.to_string(),
        })
    }
}

/// A TOML error as one line that never repeats the file's text: the line and column, the key
/// written there, and the parser's message, which is withheld for a line of `[storage]`, as
/// it may quote a secret.
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.message().trim().replace('\n', " ");
    };
    let place = TomlPlace::of(text, span.start);
    let line = place.line;
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let column = text[line_start..span.start.min(text.len())].chars().count() + 1;
    if place.in_storage() {
        format!(
            "line {line}, column {column}: invalid entry in [storage] (the parser's message is \
             withheld, as it may quote a secret)"
        )
    } else {
        let key = place
            .dotted_key()
            .map_or(String::new(), |key| format!(" (`{key}`)"));
        format!(
            "line {line}, column {column}{key}: {}",
            error.message().trim().replace('\n', " ")
        )
    }
}

/// SHA-256 of a config's text without its `[storage]` table, so the manifest's record of the
/// config carries nothing derived from a secret. Text that is not TOML is hashed as it is.
fn config_sha256(text: &str) -> String {
    match toml::from_str::<toml::Table>(text) {
        Ok(mut table) => {
            table.remove("storage");
            hex_sha256(toml::to_string(&table).unwrap_or_default().as_bytes())
        }
        Err(_) => hex_sha256(text.as_bytes()),
    }
}

/// A checked pipeline configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's text without `[storage]`, recorded in the run manifest.
    pub sha256: String,
    /// The years of the run, ascending, unique.
    pub years: BTreeSet<i32>,
    /// Root of the published tables.
    pub output: Location,
    /// Root of the intermediate layers.
    pub warehouse: Location,
    /// The inputs, in the order given.
    pub inputs: Vec<Input>,
    /// The code tables.
    pub tables: TableLocations,
    /// Index settings.
    pub indices: IndexSettings,
    /// The largest tolerated fraction of rejected records, if any.
    pub max_reject_ratio: Option<f64>,
    /// Object store options from `[storage]` (never logged: they may hold secrets).
    pub storage: StorageOptions,
    /// Compression of the Parquet files written, as DataFusion names it (`zstd(3)`, ...).
    pub parquet_compression: String,
    /// Where the plans execute.
    pub engine: Engine,
    /// Whether the audit layer `raw/` is written.
    pub raw_layer: bool,
    /// Whether a year with monthly records for fewer than 12 months refuses the run
    /// (`require-complete-years`).
    pub require_complete_years: bool,
    /// Bytes the embedded engine may hold before it spills to disk.
    pub memory_limit: u64,
    /// The longest record of a text input, in bytes (`max-line-bytes`).
    pub max_line_bytes: usize,
    /// How this process's object stores retry (`[retry]`); a cluster's executors use
    /// object_store's defaults.
    pub retry: StoreRetry,
    /// How long the run may take before it is cancelled (`[engine] timeout-seconds`,
    /// `--timeout`), when one is set; see [`Config::run_timeout`].
    pub timeout: Option<std::time::Duration>,
    /// The published tables' format (`table-format`).
    pub table_format: TableFormat,
    /// How long a Delta table keeps removed files before vacuum deletes them
    /// (`vacuum-retention-hours`).
    pub vacuum_retention: std::time::Duration,
    /// How long a run's lease lasts unless renewed (`lease-seconds`).
    pub lease: std::time::Duration,
    /// Whether the scheduler serialises runs (`serialized-runs`): the lease may then be
    /// written without a conditional replace where the store has none.
    pub serialized_runs: bool,
    /// How many times its compressed size a compressed input may inflate to
    /// (`max-compression-ratio`).
    pub max_compression_ratio: u64,
    /// Where the run reports itself: lineage events and metrics, under the job's name.
    pub telemetry: Telemetry,
}

impl InputFile {
    /// The checked `[[inputs]]` entry number `i`, its paths relative to `base`.
    fn check(&self, i: usize, base: &Path) -> Result<Input> {
        let key = |field: &str| format!("inputs[{i}].{field}");
        let country_codes = match (&self.country_codes, self.format) {
            (Some(codes), InputFormat::BaciCsv | InputFormat::Auto) => {
                Some(Location::resolve(codes, base).map_err(in_key(&key("country-codes")))?)
            }
            (None, InputFormat::BaciCsv) => {
                return Err(Error::ConfigValue {
                    key: key("country-codes"),
                    message: "baci-csv needs BACI's country_codes file".into(),
                });
            }
            (Some(_), format) => {
                return Err(Error::ConfigValue {
                    key: key("country-codes"),
                    message: format!("only baci-csv inputs take it, not {}", format.name()),
                });
            }
            (None, _) => None,
        };
        let comtrade = matches!(self.format, InputFormat::ComtradeCsv | InputFormat::Auto);
        for (field, given) in [
            ("hs-level", self.hs_level.is_some()),
            ("partner-aliases", self.partner_aliases.is_some()),
        ] {
            if given && !comtrade {
                return Err(Error::ConfigValue {
                    key: key(field),
                    message: format!(
                        "only comtrade-csv inputs take it, not {}",
                        self.format.name()
                    ),
                });
            }
        }
        let hs_level = match &self.hs_level {
            None => None,
            Some(HsLevelText::Digits(digits @ (2 | 4 | 6))) => Some(HsLevel::Digits(*digits as u8)),
            Some(HsLevelText::Word(word)) if word == "finest" => Some(HsLevel::Finest),
            Some(other) => {
                return Err(Error::ConfigValue {
                    key: key("hs-level"),
                    message: format!("must be 2, 4, 6 or \"finest\", got {other:?}"),
                });
            }
        };
        if self.format == InputFormat::CanonicalParquet && self.encoding != TextEncoding::Auto {
            return Err(Error::ConfigValue {
                key: key("encoding"),
                message: "Parquet inputs have no text encoding".into(),
            });
        }
        Ok(Input {
            location: InputLocation::resolve(&self.location, base)
                .map_err(in_key(&key("location")))?,
            format: self.format,
            encoding: self.encoding,
            country_codes,
            hs_level,
            partner_aliases: self.partner_aliases.unwrap_or(true),
        })
    }
}

impl TablesFile {
    /// The code tables' locations, relative paths taken from `base`.
    fn resolve(&self, base: &Path) -> Result<TableLocations> {
        let table = |key: &str, value: &str| {
            Location::resolve(value, base).map_err(in_key(&format!("tables.{key}")))
        };
        Ok(TableLocations {
            hs_chapters: table("hs-chapters", &self.hs_chapters)?,
            partner_regions: table("partner-regions", &self.partner_regions)?,
            provinces: table("provinces", &self.provinces)?,
            exchange_rates: table("exchange-rates", &self.exchange_rates)?,
            exchange_rates_monthly: (self.exchange_rates_monthly.as_ref())
                .map(|file| table("exchange-rates-monthly", file))
                .transpose()?,
            customs_partner_codes: table("customs-partner-codes", &self.customs_partner_codes)?,
            comtrade_partner_aliases: table(
                "comtrade-partner-aliases",
                &self.comtrade_partner_aliases,
            )?,
            province_tiles: table("province-tiles", &self.province_tiles)?,
        })
    }
}

impl IndicesFile {
    /// The checked `[indices]`; the base year defaults to the first of `years`.
    fn check(&self, years: &BTreeSet<i32>) -> Result<IndexSettings> {
        let threshold = self.destination_threshold_cny;
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(Error::ConfigValue {
                key: "indices.destination-threshold-cny".into(),
                message: format!("must be a positive number, got {threshold}"),
            });
        }
        if self.top_n == 0 {
            return Err(Error::ConfigValue {
                key: "indices.top-n".into(),
                message: "must be at least 1".into(),
            });
        }
        let base_year = match self.base_year {
            None => *years.first().expect("years is not empty"),
            Some(year) if years.contains(&year) => year,
            Some(year) => {
                return Err(Error::ConfigValue {
                    key: "indices.base-year".into(),
                    message: format!("{year} is not one of the configured years"),
                });
            }
        };
        Ok(IndexSettings {
            destination_threshold_cny: threshold,
            top_n: self.top_n,
            base_year,
            destination_level: self.destination_level,
            product_margins: self.product_margins,
            product_reference: self.product_reference,
            quadrant_cut: self.quadrant_cut,
        })
    }
}

impl EngineFile {
    /// The checked `[engine]`: a Ballista run names its scheduler, an embedded one does not.
    fn check(&self) -> Result<Engine> {
        match (self.kind, &self.scheduler) {
            (EngineKind::Embedded, None) => Ok(Engine::Embedded),
            (EngineKind::Embedded, Some(_)) => Err(Error::ConfigValue {
                key: "engine.scheduler".into(),
                message: "is for `kind = \"ballista\"` only".into(),
            }),
            (EngineKind::Ballista, None) => Err(Error::ConfigValue {
                key: "engine.scheduler".into(),
                message: "a Ballista run needs its scheduler, `df://HOST:PORT`".into(),
            }),
            (EngineKind::Ballista, Some(scheduler)) => Ok(Engine::Ballista {
                scheduler: check_scheduler(scheduler, "engine.scheduler")?,
                shared_local_paths: self.shared_local_paths,
            }),
        }
    }
}

/// `vacuum-retention-hours`, at least [`MIN_VACUUM_RETENTION_HOURS`] unless `checked` is
/// off (`vacuum-retention-check = false`).
fn vacuum_retention(hours: Option<u64>, checked: bool) -> Result<std::time::Duration> {
    let hours = match hours {
        Some(hours) if hours < MIN_VACUUM_RETENTION_HOURS && checked => {
            return Err(Error::ConfigValue {
                key: "vacuum-retention-hours".into(),
                message: format!(
                    "{hours} is under the floor of {MIN_VACUUM_RETENTION_HOURS}: a reader of \
                     the previous version would lose its files. Set vacuum-retention-check = \
                     false to allow it"
                ),
            });
        }
        hours => hours.unwrap_or(DEFAULT_VACUUM_RETENTION_HOURS),
    };
    Ok(std::time::Duration::from_secs(3600 * hours))
}

/// `max-compression-ratio`, at least 1.
fn max_compression_ratio(ratio: Option<u64>) -> Result<u64> {
    match ratio {
        Some(0) => Err(Error::ConfigValue {
            key: "max-compression-ratio".into(),
            message: "must be at least 1".into(),
        }),
        ratio => Ok(ratio.unwrap_or(DEFAULT_MAX_COMPRESSION_RATIO)),
    }
}

/// `lease-seconds`, at least [`MIN_LEASE_SECONDS`].
fn lease(seconds: Option<u64>) -> Result<std::time::Duration> {
    match seconds {
        Some(seconds) if seconds < MIN_LEASE_SECONDS => Err(Error::ConfigValue {
            key: "lease-seconds".into(),
            message: format!("must be at least {MIN_LEASE_SECONDS}, found {seconds}"),
        }),
        seconds => Ok(std::time::Duration::from_secs(
            seconds.unwrap_or(DEFAULT_LEASE_SECONDS),
        )),
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Adds `years` (given as `key`) to the run's years.
    pub fn add_years(&mut self, years: &[i32], key: &str) -> Result<()> {
        for &year in years {
            check_year(year, key)?;
            self.years.insert(year);
        }
        Ok(())
    }

    /// SHA-256 of the settings that shape every year's tables (the index settings): when it
    /// changes, every year is recomputed. Years, inputs and locations are followed one by one.
    pub fn settings_sha256(&self) -> String {
        hex_sha256(format!("{:?}", self.indices).as_bytes())
    }

    /// Checks config text as if it had been read from `path` (relative locations resolve
    /// against `path`'s directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::ConfigSyntax {
            path: path.to_path_buf(),
            message: syntax_message(text, &e),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(base).map_err(|e| Error::ConfigRead {
            path: path.to_path_buf(),
            source: e,
        })?;

        let years = check_years(&file.years)?;
        let output = Location::resolve(&file.output, &base).map_err(in_key("output"))?;
        let warehouse = Location::resolve(&file.warehouse, &base).map_err(in_key("warehouse"))?;
        let inputs = file
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| input.check(i, &base))
            .collect::<Result<Vec<_>>>()?;
        let tables = file.tables.resolve(&base)?;
        let indices = file.indices.check(&years)?;
        let max_reject_ratio = file.max_reject_ratio;
        check_ratio(max_reject_ratio, "max-reject-ratio")?;
        let parquet_compression = file
            .parquet_compression
            .unwrap_or_else(|| DEFAULT_COMPRESSION.to_string())
            .to_lowercase();
        parse_compression(&parquet_compression).map_err(|message| Error::ConfigValue {
            key: "parquet-compression".into(),
            message,
        })?;
        let engine = file.engine.check()?;
        let telemetry = Telemetry::check(
            file.name.as_deref(),
            file.lineage,
            file.metrics,
            path,
            &base,
        )?;
        let config = Self {
            path: path.to_path_buf(),
            sha256: config_sha256(text),
            years,
            output,
            warehouse,
            inputs,
            tables,
            indices,
            max_reject_ratio,
            storage: file.storage,
            parquet_compression,
            engine,
            raw_layer: file.raw_layer,
            require_complete_years: file.require_complete_years,
            timeout: file
                .engine
                .timeout_seconds
                .map(|seconds| timeout(seconds, "engine.timeout-seconds"))
                .transpose()?,
            memory_limit: match &file.memory_limit {
                Some(text) => parse_memory_limit(text, "memory-limit")?,
                None => crate::machine::default_memory_limit(),
            },
            max_line_bytes: match &file.max_line_bytes {
                Some(text) => parse_max_line_bytes(text)?,
                None => DEFAULT_MAX_LINE_BYTES,
            },
            table_format: file.table_format,
            vacuum_retention: vacuum_retention(
                file.vacuum_retention_hours,
                file.vacuum_retention_check.unwrap_or(true),
            )?,
            max_compression_ratio: max_compression_ratio(file.max_compression_ratio)?,
            serialized_runs: file.serialized_runs,
            lease: lease(file.lease_seconds)?,
            telemetry,
            retry: {
                let defaults = StoreRetry::default();
                StoreRetry {
                    max_retries: file.retry.max_retries.unwrap_or(defaults.max_retries),
                    timeout: file
                        .retry
                        .timeout_seconds
                        .map_or(defaults.timeout, std::time::Duration::from_secs),
                }
            },
        };
        config.check_locations("output", &|index| format!("inputs[{index}].location"))?;
        config.check_engine()?;
        Ok(config)
    }

    /// Where the run writes must not be where it reads: an input inside the output or the
    /// warehouse, or an input folder holding either, would read exdep's own files (and a run
    /// would replace what it reads). A warehouse inside the output root is fine (a
    /// `_`-prefixed folder that lake readers skip); an output inside the warehouse, or the
    /// same root, would mix the two. `output_key` and `input_key` name where the locations
    /// were given.
    fn check_locations(&self, output_key: &str, input_key: &dyn Fn(usize) -> String) -> Result<()> {
        let (output, warehouse) = (&self.output, &self.warehouse);
        if output.is_within(warehouse) {
            return Err(Error::ConfigValue {
                key: output_key.into(),
                message: format!("{output} must not lie inside the warehouse {warehouse}"),
            });
        }
        for (index, input) in self.inputs.iter().enumerate() {
            for (name, written) in [("output", output), ("warehouse", warehouse)] {
                let message = if input.location.is_within(written) {
                    format!(
                        "`{}` lies inside the {name} {written}: exdep would read its own files",
                        input.location.as_written()
                    )
                } else if input.location.lists(written) {
                    format!(
                        "the {name} {written} lies inside the input folder `{}`, which would \
                         list exdep's own files as inputs; point the input at the data's own \
                         folder or a glob such as `*.csv`",
                        input.location.as_written()
                    )
                } else {
                    continue;
                };
                return Err(Error::ConfigValue {
                    key: input_key(index),
                    message,
                });
            }
        }
        Ok(())
    }

    /// Runs on the Ballista cluster whose scheduler is `scheduler` (the CLI's `--cluster`).
    pub fn use_cluster(&mut self, scheduler: &str) -> Result<()> {
        let shared_local_paths = matches!(
            self.engine,
            Engine::Ballista {
                shared_local_paths: true,
                ..
            }
        );
        self.engine = Engine::Ballista {
            scheduler: check_scheduler(scheduler, "--cluster")?,
            shared_local_paths,
        };
        self.check_engine()
    }

    /// On a cluster, the executors read the inputs and write the warehouse and the output:
    /// those locations must be where every node reaches them, and store options must come
    /// from the nodes' environment, which the executors see, not from the config.
    pub fn check_engine(&self) -> Result<()> {
        let Engine::Ballista {
            scheduler,
            shared_local_paths,
        } = &self.engine
        else {
            return Ok(());
        };
        if !self.storage.is_empty() {
            return Err(Error::ConfigValue {
                key: "storage".into(),
                message: format!(
                    "the executors of {scheduler} do not see the config's store options; \
                     give them as AWS_*, GOOGLE_* or AZURE_* variables in the environment of \
                     the client, the scheduler and every executor"
                ),
            });
        }
        let scheduler_is_local = Url::parse(scheduler)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .is_some_and(|host| {
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
        let locations = self
            .inputs
            .iter()
            .map(|input| {
                (
                    "inputs",
                    input.location.url().scheme().to_string(),
                    input.location.to_string(),
                )
            })
            .chain([
                (
                    "warehouse",
                    self.warehouse.url().scheme().to_string(),
                    self.warehouse.to_string(),
                ),
                (
                    "output",
                    self.output.url().scheme().to_string(),
                    self.output.to_string(),
                ),
            ]);
        for (key, scheme, location) in locations {
            let unseen = if scheme == "memory" {
                Some("lives in this process's memory")
            } else if scheme == "file" && !scheduler_is_local && !shared_local_paths {
                Some("is a path on this machine")
            } else {
                None
            };
            if let Some(unseen) = unseen {
                return Err(Error::ConfigValue {
                    key: key.into(),
                    message: format!(
                        "`{location}` {unseen}, which the executors of {scheduler} cannot \
                         see: put it in a bucket (s3://, gs://, az://), or, if every node \
                         mounts it at the same place, set `engine.shared-local-paths = true`"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Replaces the configured inputs (the CLI's `--input`) when `inputs` is not empty, and
    /// the output root (`--output`) when given, both resolved against the working directory,
    /// then checks them as the config's own locations are checked. Input files' formats are
    /// told from their extensions and headers.
    pub fn override_locations(&mut self, inputs: &[String], output: Option<&str>) -> Result<()> {
        let cwd = working_dir()?;
        if !inputs.is_empty() {
            self.inputs = inputs
                .iter()
                .map(|location| {
                    Ok(Input {
                        location: InputLocation::resolve(location, &cwd)?,
                        format: InputFormat::Auto,
                        encoding: TextEncoding::Auto,
                        country_codes: None,
                        hs_level: None,
                        partner_aliases: true,
                    })
                })
                .collect::<Result<_>>()?;
        }
        if let Some(output) = output {
            self.output = Location::resolve(output, &cwd)?;
        }
        let output_key = if output.is_some() {
            "--output"
        } else {
            "output"
        };
        if inputs.is_empty() {
            self.check_locations(output_key, &|index| format!("inputs[{index}].location"))
        } else {
            self.check_locations(output_key, &|_| "--input".to_string())
        }
    }

    /// Every location the run touches: the output, the warehouse, the code tables and the
    /// inputs' (their stores are the run's).
    pub fn locations(&self) -> Vec<&Url> {
        let tables = &self.tables;
        [
            &self.output,
            &self.warehouse,
            &tables.hs_chapters,
            &tables.partner_regions,
            &tables.provinces,
            &tables.exchange_rates,
            &tables.customs_partner_codes,
            &tables.comtrade_partner_aliases,
            &tables.province_tiles,
        ]
        .into_iter()
        .chain(&tables.exchange_rates_monthly)
        .chain(self.inputs.iter().filter_map(|i| i.country_codes.as_ref()))
        .map(Location::url)
        .chain(self.inputs.iter().map(|i| i.location.url()))
        .collect()
    }

    /// How long the run may take before it is cancelled: the configured timeout, or on a
    /// cluster an hour, since a job whose executor was lost can otherwise keep the client
    /// waiting forever. An embedded run has no limit unless one is set.
    pub fn run_timeout(&self) -> Option<std::time::Duration> {
        self.timeout.or(match self.engine {
            Engine::Ballista { .. } => Some(std::time::Duration::from_secs(
                DEFAULT_CLUSTER_TIMEOUT_SECONDS,
            )),
            Engine::Embedded => None,
        })
    }

    /// Replaces the timeout (the CLI's `--timeout`).
    pub fn override_timeout(&mut self, seconds: u64) -> Result<()> {
        self.timeout = Some(timeout(seconds, "--timeout")?);
        Ok(())
    }

    /// Replaces the memory limit (the CLI's `--memory-limit`).
    pub fn override_memory_limit(&mut self, text: &str) -> Result<()> {
        self.memory_limit = parse_memory_limit(text, "--memory-limit")?;
        Ok(())
    }

    /// Fails unless the run has something to read.
    pub fn require_inputs(&self) -> Result<()> {
        if self.inputs.is_empty() {
            return Err(Error::ConfigValue {
                key: "inputs".into(),
                message: "no inputs: add [[inputs]] to the config or pass --input".into(),
            });
        }
        Ok(())
    }
}

/// A timeout of `seconds`, at least one.
fn timeout(seconds: u64, key: &str) -> Result<std::time::Duration> {
    if seconds == 0 {
        return Err(Error::ConfigValue {
            key: key.into(),
            message: "must be at least 1 second".into(),
        });
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// The longest record of a text input unless `max-line-bytes` says otherwise: no export
/// record is near it, and a file without line breaks is rejected in pieces of this size.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// A memory limit: at least 256 MiB, below which the sorts of the index plans cannot run
/// (measured: 64 MiB fails).
fn parse_memory_limit(text: &str, key: &str) -> Result<u64> {
    let bytes = parse_bytes(text, key)?;
    if bytes < 256 << 20 {
        return Err(Error::ConfigValue {
            key: key.into(),
            message: format!("`{text}` is below the smallest limit, 256MiB"),
        });
    }
    Ok(bytes)
}

/// `max-line-bytes`: room for any real record (1 KiB) and at most 1 GiB, which is already far
/// more than a line should hold in memory.
fn parse_max_line_bytes(text: &str) -> Result<usize> {
    let key = "max-line-bytes";
    let bytes = parse_bytes(text, key)?;
    if !(1 << 10..=1 << 30).contains(&bytes) {
        return Err(Error::ConfigValue {
            key: key.into(),
            message: format!("`{text}` must lie between 1KiB and 1GiB"),
        });
    }
    Ok(bytes as usize)
}

/// Reads a size such as `2GiB`, `512 MiB`, `1.5GB` or `1000000` (bytes).
fn parse_bytes(text: &str, key: &str) -> Result<u64> {
    let error = |message: String| Error::ConfigValue {
        key: key.into(),
        message,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| error(format!("`{text}` is not a size such as 2GiB or 512MiB")))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(error(format!(
                "unknown unit `{other}` in `{text}`; use KiB, MiB, GiB or TiB"
            )));
        }
    };
    Ok((number * factor as f64) as u64)
}

/// A fraction must lie in [0, 1].
pub fn check_ratio(ratio: Option<f64>, key: &str) -> Result<()> {
    match ratio {
        Some(r) if !(0.0..=1.0).contains(&r) => Err(Error::ConfigValue {
            key: key.into(),
            message: format!("must lie between 0 and 1, got {r}"),
        }),
        _ => Ok(()),
    }
}

/// The directory command-line locations are relative to.
fn working_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|source| Error::ConfigRead {
        path: PathBuf::from("."),
        source,
    })
}

/// A scheduler URL, `df://HOST:PORT`.
fn check_scheduler(text: &str, key: &str) -> Result<String> {
    let url = Url::parse(text).ok().filter(|url| {
        url.scheme() == "df"
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.port().is_some()
    });
    match url {
        Some(_) => Ok(text.to_string()),
        None => Err(Error::ConfigValue {
            key: key.to_string(),
            message: format!("`{text}` is not a scheduler URL, df://HOST:PORT"),
        }),
    }
}

fn check_year(year: i32, key: &str) -> Result<()> {
    if YEAR_RANGE.contains(&year) {
        return Ok(());
    }
    Err(Error::ConfigValue {
        key: key.to_string(),
        message: format!(
            "{year} is outside {}..={}",
            YEAR_RANGE.start(),
            YEAR_RANGE.end()
        ),
    })
}

fn check_years(years: &[i32]) -> Result<BTreeSet<i32>> {
    let key = || "years".to_string();
    if years.is_empty() {
        return Err(Error::ConfigValue {
            key: key(),
            message: "must list at least one year".into(),
        });
    }
    let mut set = BTreeSet::new();
    for &year in years {
        check_year(year, "years")?;
        if !set.insert(year) {
            return Err(Error::ConfigValue {
                key: key(),
                message: format!("{year} is listed twice"),
            });
        }
    }
    Ok(set)
}

fn in_key(key: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Location { location, message } => Error::ConfigValue {
            key: key.to_string(),
            message: format!("`{location}`: {message}"),
        },
        other => other,
    }
}

/// Lower-case hex SHA-256 of some bytes.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The compression of the Parquet files exdep writes unless a config says otherwise.
pub const DEFAULT_COMPRESSION: &str = "zstd(3)";

/// Reads a compression as DataFusion and the config name it: `uncompressed`, `snappy`,
/// `gzip(LEVEL)`, `lz4_raw` or `zstd(LEVEL)`.
pub fn parse_compression(text: &str) -> std::result::Result<Compression, String> {
    let compression: Compression = text.parse().map_err(|e| format!("`{text}`: {e}"))?;
    match compression {
        Compression::UNCOMPRESSED
        | Compression::SNAPPY
        | Compression::GZIP(_)
        | Compression::LZ4_RAW
        | Compression::ZSTD(_) => Ok(compression),
        _ => Err(format!(
            "`{text}` is not one of uncompressed, snappy, gzip(LEVEL), lz4_raw, zstd(LEVEL)"
        )),
    }
}

/// How a store retries a failed request: object_store's defaults (10 retries within 3
/// minutes, backing off from 100 ms to 15 s), which ride out a throttled or briefly
/// unreachable store, unless the config's `[retry]` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRetry {
    /// Retries of one request at most.
    pub max_retries: usize,
    /// How long after the first try no retry starts.
    pub timeout: std::time::Duration,
}

impl Default for StoreRetry {
    fn default() -> Self {
        Self {
            max_retries: 10,
            timeout: std::time::Duration::from_secs(180),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(top: &str) -> Result<Config> {
        let text = format!(
            "years = [2021]\noutput = \"memory:///out\"\nwarehouse = \"memory:///wh\"\n{top}"
        );
        Config::parse(&text, Path::new("/nowhere/pipeline.toml"))
    }

    fn refusal(top: &str) -> String {
        parse(top).expect_err(top).to_string()
    }

    #[test]
    fn the_lease_has_a_default_and_a_floor() {
        assert_eq!(
            parse("").unwrap().lease,
            std::time::Duration::from_secs(DEFAULT_LEASE_SECONDS)
        );
        assert_eq!(
            parse("lease-seconds = 30").unwrap().lease,
            std::time::Duration::from_secs(30)
        );
        assert!(refusal("lease-seconds = 1").contains("config key `lease-seconds`"));
    }

    #[test]
    fn the_compression_ratio_is_at_least_one() {
        assert_eq!(
            parse("").unwrap().max_compression_ratio,
            DEFAULT_MAX_COMPRESSION_RATIO
        );
        assert!(refusal("max-compression-ratio = 0").contains("`max-compression-ratio`"));
    }

    #[test]
    fn vacuum_retention_under_the_floor_needs_the_check_off() {
        let message = refusal("vacuum-retention-hours = 0");
        assert!(
            message.contains("`vacuum-retention-hours`")
                && message.contains("vacuum-retention-check = false"),
            "{message}"
        );
        let unchecked = parse("vacuum-retention-hours = 0\nvacuum-retention-check = false");
        assert_eq!(
            unchecked.unwrap().vacuum_retention,
            std::time::Duration::ZERO
        );
        assert_eq!(
            parse("vacuum-retention-hours = 1")
                .unwrap()
                .vacuum_retention,
            std::time::Duration::from_secs(3600)
        );
    }

    #[test]
    fn locations_resolve_against_the_config_files_folder() {
        let text = "years = [2022, 2020, 2021]\noutput = \"../out\"\nwarehouse = \"wh\"\n\
                    [[inputs]]\nlocation = \"landing/*.csv\"\n";
        let config = Config::parse(text, Path::new("/srv/exdep/configs/job.toml")).unwrap();
        assert_eq!(config.output.url().as_str(), "file:///srv/exdep/out");
        assert_eq!(
            config.warehouse.url().as_str(),
            "file:///srv/exdep/configs/wh"
        );
        assert_eq!(
            config.inputs[0].location.url().as_str(),
            "file:///srv/exdep/configs/landing/"
        );
        assert_eq!(
            config.years.iter().copied().collect::<Vec<_>>(),
            [2020, 2021, 2022]
        );
        assert_eq!(config.indices.base_year, 2020, "the first year by default");
        assert_eq!(config.parquet_compression, DEFAULT_COMPRESSION);
    }

    #[test]
    fn a_bad_key_is_named_with_its_line() {
        let message = refusal("memory-limt = \"2GiB\"");
        assert!(
            message.contains("line 4") && message.contains("memory-limt"),
            "{message}"
        );
        let message = refusal("[indices]\nbase-year = 2019");
        assert!(message.contains("`indices.base-year`"), "{message}");
        let message = refusal("parquet-compression = \"brotli(1)\"");
        assert!(message.contains("`parquet-compression`"), "{message}");
    }

    #[test]
    fn storage_secrets_stay_out_of_messages_and_the_hash() {
        let message = refusal("[storage]\naws_secret_access_key = [\"s3cr3t\"]");
        assert!(
            message.contains("[storage]") && !message.contains("s3cr3t"),
            "{message}"
        );
        let without = parse("").unwrap();
        let with = parse("[storage]\naws_access_key_id = \"AKIA\"").unwrap();
        assert_eq!(with.sha256, without.sha256);
        assert!(!format!("{:?}", with.storage).contains("AKIA"));
    }

    #[test]
    fn index_settings_are_part_of_the_settings_hash() {
        let default = parse("").unwrap().settings_sha256();
        let other = parse("[indices]\ntop-n = 3").unwrap().settings_sha256();
        assert_ne!(default, other);
    }
}
