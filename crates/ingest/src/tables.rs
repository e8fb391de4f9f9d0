//! The code tables of the source formats: China Customs partner codes and Comtrade's
//! partner aliases (shipped in `configs/`), and BACI's country code dictionary (shipped with
//! each BACI release). Each is validated when first needed, then registered as a CSV-backed
//! table the projections join.

use std::collections::BTreeMap;

use exdep_core::{Location, utf8_text};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_engine::register_text_table;
use exdep_store::Objects;

use crate::error::{Error, Result};
use crate::formats::{COMTRADE_ALIASES, CUSTOMS_PARTNERS};
use crate::normalize::line_fields;

async fn read_text(ctx: &SessionContext, location: &Location) -> Result<String> {
    let bytes = location.read_all(ctx).await?;
    let text = utf8_text(&bytes).map_err(|line| Error::CodeTable {
        file: location.to_string(),
        line,
        message: "not valid UTF-8".into(),
    })?;
    Ok(text.trim_start_matches('\u{feff}').to_string())
}

/// Checks a code table's rows: `key` names the column whose values must be unique and match
/// `valid_key`; `iso3` the column that must be empty or three capital letters.
fn check_rows(
    location: &Location,
    text: &str,
    header: &[&str],
    key: usize,
    valid_key: fn(&str) -> bool,
    iso3: usize,
) -> Result<()> {
    let error = |line: usize, message: String| Error::CodeTable {
        file: location.to_string(),
        line,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let (_, first) = lines
        .next()
        .ok_or_else(|| error(1, "the table is empty".into()))?;
    let names = line_fields(first.as_bytes());
    if names.iter().map(|n| n.trim()).ne(header.iter().copied()) {
        return Err(error(
            1,
            format!("header must be `{}`, found `{first}`", header.join(",")),
        ));
    }
    let mut seen = BTreeMap::new();
    for (line, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields = Some(line_fields(text.as_bytes()))
            .filter(|f| f.len() == header.len())
            .ok_or_else(|| error(line, format!("expected {} fields", header.len())))?;
        let code = fields[key].trim();
        if !valid_key(code) {
            return Err(error(
                line,
                format!("`{code}` is not a valid {}", header[key]),
            ));
        }
        if let Some(first) = seen.insert(code.to_string(), line) {
            return Err(error(
                line,
                format!("`{code}` is listed twice (first on line {first})"),
            ));
        }
        let iso = fields[iso3].trim();
        let is_code = iso.len() == 3 && iso.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(iso.is_empty() || is_code) {
            return Err(error(
                line,
                format!("`{iso}` is not an ISO 3166-1 alpha-3 code"),
            ));
        }
    }
    Ok(())
}

/// Loads, checks and registers `configs/customs_partner_codes.csv` (`code,iso3,name_zh`):
/// unique three-digit codes, each with an ISO3 or empty (not a country: excluded by rule).
pub(crate) async fn register_customs_partners(
    ctx: &SessionContext,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    const HEADER: [&str; 3] = ["code", "iso3", "name_zh"];
    let text = read_text(ctx, location).await?;
    check_rows(
        location,
        &text,
        &HEADER,
        0,
        |code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
        1,
    )?;
    Ok(register_text_table(ctx, CUSTOMS_PARTNERS, location, &HEADER, cache).await?)
}

/// Loads, checks and registers `configs/comtrade_partner_aliases.csv` (`code,iso3,name`):
/// Comtrade partner codes that are not ISO3 (`S19`), each with the ISO3 it stands for.
pub(crate) async fn register_comtrade_aliases(
    ctx: &SessionContext,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    const HEADER: [&str; 3] = ["code", "iso3", "name"];
    let text = read_text(ctx, location).await?;
    check_rows(
        location,
        &text,
        &HEADER,
        0,
        |code| {
            code.len() == 3
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        },
        1,
    )?;
    Ok(register_text_table(ctx, COMTRADE_ALIASES, location, &HEADER, cache).await?)
}

/// Loads, checks and registers a BACI `country_codes_V*.csv` as table `name`.
pub(crate) async fn register_baci_codes(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    cache: &Location,
) -> Result<()> {
    const HEADER: [&str; 4] = [
        "country_code",
        "country_name",
        "country_iso2",
        "country_iso3",
    ];
    let text = read_text(ctx, location).await?;
    check_rows(
        location,
        &text,
        &HEADER,
        0,
        |code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()),
        3,
    )?;
    Ok(register_text_table(ctx, name, location, &HEADER, cache).await?)
}
