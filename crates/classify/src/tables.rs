//! The run's code tables (`[tables]`): read and checked by [`exdep_core::codes`]'s rules,
//! checked for what they must cover, then registered as file-backed DataFusion tables that
//! the cube plan joins.

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::account::TableDigest;
use exdep_core::codes::{
    CodeRow, CodeTable, ExchangeRate, HsChapter, MonthlyExchangeRate, PartnerRegion, Province,
    ProvinceTile,
};
use exdep_core::schema::KnownCodes;
use exdep_core::{Location, TableLocations};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_engine::register_text_table;
use exdep_store::read_code_table;

use crate::error::Result;

/// HS chapters that do not exist and need no row.
const NONEXISTENT_CHAPTERS: [u32; 1] = [77];

/// The validated code tables of a run.
#[derive(Debug, Clone)]
pub struct CodeTables {
    locations: TableLocations,
    /// HS chapter (two digits) -> category.
    pub chapters: BTreeMap<String, String>,
    /// ISO3 -> region.
    pub partner_regions: BTreeMap<String, String>,
    /// Province code -> its row.
    pub provinces: BTreeMap<String, Province>,
    /// Year -> CNY per USD.
    pub cny_per_usd: BTreeMap<i32, f64>,
    /// Whether monthly rates convert each month's records (`exchange-rates-monthly`).
    pub monthly_rates: bool,
    /// SHA-256 of each table file, for the run manifest.
    pub digests: BTreeMap<String, TableDigest>,
}

/// The session name of each table.
const HS_CHAPTERS: &str = "hs_chapters";
const PARTNER_REGIONS: &str = "partner_regions";
const PROVINCES: &str = "provinces";
const EXCHANGE_RATES: &str = "exchange_rates";
/// The monthly rates' session name; the cube plan joins it when the config names the table.
pub const MONTHLY_EXCHANGE_RATES: &str = "exchange_rates_monthly";

impl CodeTables {
    /// Reads and validates the four tables; `years` must all have an exchange rate.
    pub async fn load(
        ctx: &SessionContext,
        locations: &TableLocations,
        years: &BTreeSet<i32>,
    ) -> Result<Self> {
        let mut digests = BTreeMap::new();
        let (chapters, digest) = read_code_table::<HsChapter>(ctx, &locations.hs_chapters).await?;
        digests.insert(HS_CHAPTERS.to_string(), digest);
        let (partners, digest) =
            read_code_table::<PartnerRegion>(ctx, &locations.partner_regions).await?;
        digests.insert(PARTNER_REGIONS.to_string(), digest);
        let (provinces, digest) = read_code_table::<Province>(ctx, &locations.provinces).await?;
        digests.insert(PROVINCES.to_string(), digest);
        let (rates, digest) =
            read_code_table::<ExchangeRate>(ctx, &locations.exchange_rates).await?;
        digests.insert(EXCHANGE_RATES.to_string(), digest);
        if let Some(location) = &locations.exchange_rates_monthly {
            let (monthly, digest) = read_code_table::<MonthlyExchangeRate>(ctx, location).await?;
            digests.insert(MONTHLY_EXCHANGE_RATES.to_string(), digest);
            check_monthly_rates(&monthly)?;
        }
        Ok(Self {
            locations: locations.clone(),
            chapters: check_chapters(chapters)?,
            partner_regions: check_partner_regions(partners)?,
            provinces: check_provinces(provinces)?,
            cny_per_usd: check_rates(rates, years)?,
            monthly_rates: locations.exchange_rates_monthly.is_some(),
            digests,
        })
    }

    /// The codes the tables know, for the per-record membership checks.
    pub fn known_codes(&self) -> KnownCodes {
        KnownCodes {
            origins: self
                .provinces
                .keys()
                .chain(self.partner_regions.keys())
                .cloned()
                .collect(),
            partners: self.partner_regions.keys().cloned().collect(),
            chapters: self.chapters.clone(),
        }
    }

    /// Registers the tables in the session as file-backed tables (Parquet copies under
    /// `cache`), the form a Ballista executor can read as well.
    pub async fn register(&self, ctx: &SessionContext, cache: &Location) -> Result<()> {
        let tables: [(&str, &Location, &[&str]); 4] = [
            (HS_CHAPTERS, &self.locations.hs_chapters, HsChapter::HEADER),
            (
                PARTNER_REGIONS,
                &self.locations.partner_regions,
                PartnerRegion::HEADER,
            ),
            (PROVINCES, &self.locations.provinces, Province::HEADER),
            (
                EXCHANGE_RATES,
                &self.locations.exchange_rates,
                ExchangeRate::HEADER,
            ),
        ];
        for (name, location, columns) in tables {
            register_text_table(ctx, name, location, columns, cache).await?;
        }
        if let Some(location) = &self.locations.exchange_rates_monthly {
            let columns = MonthlyExchangeRate::HEADER;
            register_text_table(ctx, MONTHLY_EXCHANGE_RATES, location, columns, cache).await?;
        }
        Ok(())
    }
}

/// Reads and validates the report's tile grid of provinces (`code,row,column`): every
/// province of `provinces` on a tile of its own, and no code the provinces table lacks.
pub async fn load_province_tiles(
    ctx: &SessionContext,
    location: &Location,
    provinces: &BTreeMap<String, Province>,
) -> Result<BTreeMap<String, (u32, u32)>> {
    let (table, _) = read_code_table::<ProvinceTile>(ctx, location).await?;
    let mut tiles = BTreeMap::new();
    let mut taken: BTreeMap<(u32, u32), (usize, &str)> = BTreeMap::new();
    for (line, tile) in &table.rows {
        if !provinces.contains_key(&tile.code) {
            let message = format!("`{}` is not in the provinces table", tile.code);
            return Err(table.error(*line, message).into());
        }
        let position = (tile.row, tile.column);
        if let Some((first, other)) = taken.insert(position, (*line, &tile.code)) {
            let message = format!("`{}` is on the tile of `{other}` (line {first})", tile.code);
            return Err(table.error(*line, message).into());
        }
        tiles.insert(tile.code.clone(), position);
    }
    let missing: Vec<&str> = provinces
        .keys()
        .filter(|code| !tiles.contains_key(*code))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let message = format!("no tile for province {}", missing.join(", "));
        return Err(table.coverage_error(message).into());
    }
    Ok(tiles)
}

fn check_chapters(table: CodeTable<HsChapter>) -> Result<BTreeMap<String, String>> {
    let missing: Vec<String> = (1..=99)
        .filter(|c| !NONEXISTENT_CHAPTERS.contains(c))
        .map(|c| format!("{c:02}"))
        .filter(|c| !table.rows.iter().any(|(_, row)| &row.chapter == c))
        .collect();
    if !missing.is_empty() {
        let message = format!("chapters without a category: {}", missing.join(", "));
        return Err(table.coverage_error(message).into());
    }
    Ok(table
        .into_rows()
        .map(|row| (row.chapter, row.category))
        .collect())
}

fn check_partner_regions(table: CodeTable<PartnerRegion>) -> Result<BTreeMap<String, String>> {
    if table.rows.is_empty() {
        return Err(table.coverage_error("no partners").into());
    }
    Ok(table
        .into_rows()
        .map(|row| (row.iso3, row.region))
        .collect())
}

fn check_provinces(table: CodeTable<Province>) -> Result<BTreeMap<String, Province>> {
    if table.rows.is_empty() {
        return Err(table.coverage_error("no provinces").into());
    }
    Ok(table
        .into_rows()
        .map(|row| (row.code.clone(), row))
        .collect())
}

fn check_rates(
    table: CodeTable<ExchangeRate>,
    years: &BTreeSet<i32>,
) -> Result<BTreeMap<i32, f64>> {
    let rates: BTreeMap<i32, f64> = table
        .rows
        .iter()
        .map(|(_, row)| (row.year, row.cny_per_usd))
        .collect();
    let missing: Vec<String> = years
        .iter()
        .filter(|y| !rates.contains_key(y))
        .map(|y| y.to_string())
        .collect();
    if !missing.is_empty() {
        let message = format!("no CNY per USD rate for year {}", missing.join(", "));
        return Err(table.coverage_error(message).into());
    }
    Ok(rates)
}

/// A year in the monthly rates has all twelve months: a record of a month without its rate
/// would fall back to the year's rate silently, and a year is converted one way or the other.
fn check_monthly_rates(table: &CodeTable<MonthlyExchangeRate>) -> Result<()> {
    let mut months: BTreeMap<i32, BTreeSet<u8>> = BTreeMap::new();
    for (_, row) in &table.rows {
        months.entry(row.year).or_default().insert(row.month);
    }
    let short: Vec<String> = (months.iter())
        .filter(|(_, months)| months.len() < 12)
        .map(|(year, months)| {
            let missing = (1..=12).filter(|m| !months.contains(m)).collect();
            format!(
                "{year} (missing {})",
                exdep_core::months::month_list(&missing)
            )
        })
        .collect();
    if !short.is_empty() {
        let message = format!(
            "a year in the monthly rates needs all 12 months: {}",
            short.join(", ")
        );
        return Err(table.coverage_error(message).into());
    }
    Ok(())
}
