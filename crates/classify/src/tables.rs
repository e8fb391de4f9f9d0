//! The code tables: CSV files in `configs/`, loaded and validated before anything runs, then
//! registered as file-backed DataFusion tables that the cube plan joins.

use std::collections::{BTreeMap, BTreeSet};

use exdep_core::account::TableDigest;
use exdep_core::schema::KnownCodes;
use exdep_core::{Location, TableLocations, hex_sha256, utf8_text};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_engine::register_text_table;
use exdep_store::Objects;

use crate::error::{Error, Result};

/// The category names a chapter may map to; `excluded` chapters are counted and left out.
pub const CHAPTER_CATEGORIES: [&str; 5] =
    ["resource", "labor", "capital", "technology", "excluded"];

/// The eleven world regions partners are grouped into.
pub const REGIONS: [&str; 11] = [
    "western_europe",
    "eastern_europe",
    "north_america",
    "latin_america",
    "africa",
    "middle_east",
    "central_asia",
    "south_asia",
    "southeast_asia",
    "east_asia",
    "oceania",
];

/// The macro-regions of China's provinces.
pub const MACRO_REGIONS: [&str; 4] = ["east", "central", "west", "northeast"];

/// HS chapters that do not exist and need no row.
const NONEXISTENT_CHAPTERS: [u32; 1] = [77];

/// Each table's session name and its columns, which are also its required CSV header. The
/// tables are registered with every column as text; the cube plan casts where it needs to.
const TABLES: [(&str, &[&str]); 4] = [
    ("hs_chapters", &["chapter", "category"]),
    ("partner_regions", &["iso3", "name", "region"]),
    ("provinces", &["code", "name", "name_zh", "macro_region"]),
    ("exchange_rates", &["year", "cny_per_usd"]),
];

fn location_of<'a>(locations: &'a TableLocations, table: &str) -> &'a Location {
    match table {
        "hs_chapters" => &locations.hs_chapters,
        "partner_regions" => &locations.partner_regions,
        "provinces" => &locations.provinces,
        "exchange_rates" => &locations.exchange_rates,
        other => unreachable!("no code table named {other}"),
    }
}

/// The validated code tables of a run.
#[derive(Debug, Clone)]
pub struct CodeTables {
    locations: TableLocations,
    /// HS chapter (two digits) -> category.
    pub chapters: BTreeMap<String, String>,
    /// ISO3 -> region.
    pub partner_regions: BTreeMap<String, String>,
    /// Province code -> (name, macro-region).
    pub provinces: BTreeMap<String, (String, String)>,
    /// Year -> CNY per USD.
    pub cny_per_usd: BTreeMap<i32, f64>,
    /// SHA-256 of each table file, for the run manifest.
    pub digests: BTreeMap<String, TableDigest>,
}

/// A table file split into lines, with the header checked.
struct TableText {
    file: String,
    rows: Vec<(usize, Vec<String>)>,
}

impl TableText {
    fn error(&self, line: usize, message: impl Into<String>) -> Error {
        Error::TableLine {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

impl CodeTables {
    /// Reads and validates the four tables; `years` must all have an exchange rate.
    pub async fn load(
        ctx: &SessionContext,
        locations: &TableLocations,
        years: &BTreeSet<i32>,
    ) -> Result<Self> {
        let mut digests = BTreeMap::new();
        let mut texts = Vec::new();
        for (name, header) in TABLES {
            let location = location_of(locations, name);
            let bytes = read_bytes(ctx, location).await?;
            digests.insert(
                name.to_string(),
                TableDigest {
                    location: location.to_string(),
                    sha256: hex_sha256(&bytes),
                },
            );
            texts.push(split_table(location, &bytes, header)?);
        }
        let [chapters, partners, provinces, rates] =
            <[TableText; 4]>::try_from(texts).unwrap_or_else(|_| unreachable!("four tables"));
        Ok(Self {
            locations: locations.clone(),
            chapters: check_chapters(&chapters)?,
            partner_regions: check_partner_regions(&partners)?,
            provinces: check_provinces(&provinces)?,
            cny_per_usd: check_rates(&rates, years)?,
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
            chapters: self.chapters.keys().cloned().collect(),
        }
    }

    /// Registers the tables in the session as file-backed tables (Parquet copies under
    /// `cache`), the form a Ballista executor can read as well.
    pub async fn register(&self, ctx: &SessionContext, cache: &Location) -> Result<()> {
        for (name, columns) in TABLES {
            let location = location_of(&self.locations, name);
            register_text_table(ctx, name, location, columns, cache).await?;
        }
        Ok(())
    }
}

/// Reads and validates the report's tile grid of provinces (`code,row,column`): every
/// province of `provinces` on a tile of its own, and no code the provinces table lacks.
pub async fn load_province_tiles(
    ctx: &SessionContext,
    location: &Location,
    provinces: &BTreeMap<String, (String, String)>,
) -> Result<BTreeMap<String, (u32, u32)>> {
    let bytes = read_bytes(ctx, location).await?;
    let table = split_table(location, &bytes, &["code", "row", "column"])?;
    let mut tiles = BTreeMap::new();
    let mut taken: BTreeMap<(u32, u32), (usize, String)> = BTreeMap::new();
    for (line, fields) in &table.rows {
        let code = &fields[0];
        if !provinces.contains_key(code) {
            return Err(table.error(*line, format!("`{code}` is not in the provinces table")));
        }
        let position = |field: &str, what: &str| {
            field
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 32)
                .ok_or_else(|| table.error(*line, format!("{what} `{field}` is not 0-31")))
        };
        let tile = (
            position(&fields[1], "row")?,
            position(&fields[2], "column")?,
        );
        if let Some((first, other)) = taken.get(&tile) {
            return Err(table.error(
                *line,
                format!("`{code}` is on the tile of `{other}` (line {first})"),
            ));
        }
        taken.insert(tile, (*line, code.clone()));
        insert_unique(&table, &mut tiles, *line, code, tile)?;
    }
    let missing: Vec<&str> = provinces
        .keys()
        .filter(|code| !tiles.contains_key(*code))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Error::TableCoverage {
            file: table.file.clone(),
            message: format!("no tile for province {}", missing.join(", ")),
        });
    }
    Ok(tiles.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

async fn read_bytes(ctx: &SessionContext, location: &Location) -> Result<Vec<u8>> {
    location.read_all(ctx).await.map_err(|e| match e {
        exdep_store::Error::ObjectStore(source) => Error::TableRead {
            file: location.to_string(),
            source,
        },
        other => other.into(),
    })
}

/// Splits a table into fields; skips blank and `#` lines; checks the header names.
fn split_table(location: &Location, bytes: &[u8], header: &[&str]) -> Result<TableText> {
    let file = location.to_string();
    let text = utf8_text(bytes).map_err(|line| Error::TableLine {
        file: file.clone(),
        line,
        message: "not valid UTF-8".into(),
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'));
    let table = |rows| TableText {
        file: file.clone(),
        rows,
    };
    let Some((line, first)) = lines.next() else {
        return Err(table(vec![]).error(1, "the table is empty"));
    };
    if first.strip_prefix('\u{feff}').unwrap_or(first) != header.join(",") {
        return Err(table(vec![]).error(
            line,
            format!("header must be `{}`, found `{first}`", header.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for (line, text) in lines {
        let fields: Vec<String> = text.split(',').map(str::to_string).collect();
        if fields.len() != header.len() {
            return Err(table(vec![]).error(
                line,
                format!("expected {} fields, found {}", header.len(), fields.len()),
            ));
        }
        if text.contains('"') {
            return Err(table(vec![]).error(line, "quotes are not allowed in code tables"));
        }
        // The plans join on the fields as written, so padding would silently break a match.
        if let Some(field) = fields.iter().find(|f| f.trim() != f.as_str()) {
            return Err(
                table(vec![]).error(line, format!("field `{field}` has surrounding spaces"))
            );
        }
        rows.push((line, fields));
    }
    Ok(table(rows))
}

/// Inserts a key, failing on a duplicate with both line numbers.
fn insert_unique<V>(
    table: &TableText,
    map: &mut BTreeMap<String, (usize, V)>,
    line: usize,
    key: &str,
    value: V,
) -> Result<()> {
    if let Some((first, _)) = map.get(key) {
        return Err(table.error(
            line,
            format!("`{key}` is listed twice (first on line {first})"),
        ));
    }
    map.insert(key.to_string(), (line, value));
    Ok(())
}

fn one_of(table: &TableText, line: usize, what: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(table.error(
            line,
            format!("{what} `{value}` is not one of {}", allowed.join(", ")),
        ))
    }
}

fn check_chapters(table: &TableText) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (line, fields) in &table.rows {
        let (chapter, category) = (&fields[0], &fields[1]);
        if chapter.len() != 2 || !chapter.bytes().all(|b| b.is_ascii_digit()) || chapter == "00" {
            return Err(table.error(*line, format!("chapter `{chapter}` is not 01-99")));
        }
        one_of(table, *line, "category", category, &CHAPTER_CATEGORIES)?;
        insert_unique(table, &mut map, *line, chapter, category.clone())?;
    }
    let missing: Vec<String> = (1..=99)
        .filter(|c| !NONEXISTENT_CHAPTERS.contains(c))
        .map(|c| format!("{c:02}"))
        .filter(|c| !map.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(Error::TableCoverage {
            file: table.file.clone(),
            message: format!("chapters without a category: {}", missing.join(", ")),
        });
    }
    Ok(map.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

fn check_partner_regions(table: &TableText) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (line, fields) in &table.rows {
        let (iso3, region) = (&fields[0], &fields[2]);
        if iso3.len() != 3 || !iso3.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(table.error(*line, format!("`{iso3}` is not an ISO 3166-1 alpha-3 code")));
        }
        one_of(table, *line, "region", region, &REGIONS)?;
        insert_unique(table, &mut map, *line, iso3, region.clone())?;
    }
    if map.is_empty() {
        return Err(Error::TableCoverage {
            file: table.file.clone(),
            message: "no partners".into(),
        });
    }
    Ok(map.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

fn check_provinces(table: &TableText) -> Result<BTreeMap<String, (String, String)>> {
    let mut map = BTreeMap::new();
    for (line, fields) in &table.rows {
        let (code, name, macro_region) = (&fields[0], &fields[1], &fields[3]);
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(table.error(*line, format!("province code `{code}` is not two digits")));
        }
        one_of(table, *line, "macro_region", macro_region, &MACRO_REGIONS)?;
        insert_unique(
            table,
            &mut map,
            *line,
            code,
            (name.clone(), macro_region.clone()),
        )?;
    }
    if map.is_empty() {
        return Err(Error::TableCoverage {
            file: table.file.clone(),
            message: "no provinces".into(),
        });
    }
    Ok(map.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

fn check_rates(table: &TableText, years: &BTreeSet<i32>) -> Result<BTreeMap<i32, f64>> {
    let mut map = BTreeMap::new();
    for (line, fields) in &table.rows {
        let year: i32 = fields[0]
            .parse()
            .map_err(|_| table.error(*line, format!("year `{}` is not a number", fields[0])))?;
        let rate: f64 = fields[1]
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| {
                table.error(
                    *line,
                    format!("rate `{}` is not a positive number", fields[1]),
                )
            })?;
        insert_unique(table, &mut map, *line, &fields[0], (year, rate))?;
    }
    let rates: BTreeMap<i32, f64> = map.into_values().map(|(_, pair)| pair).collect();
    let missing: Vec<String> = years
        .iter()
        .filter(|y| !rates.contains_key(y))
        .map(|y| y.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::TableCoverage {
            file: table.file.clone(),
            message: format!("no CNY per USD rate for year {}", missing.join(", ")),
        });
    }
    Ok(rates)
}
