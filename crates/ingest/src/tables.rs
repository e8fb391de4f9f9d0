//! The code tables of the source formats: China Customs partner codes (shipped in
//! `configs/`) and BACI's country code dictionary (shipped with each BACI release). Both are
//! validated when first needed, then registered as CSV-backed tables the projections join.

use std::collections::BTreeMap;

use exdep_core::Location;
use exdep_core::arrow::datatypes::{DataType, Field, Schema};
use exdep_core::datafusion::prelude::{CsvReadOptions, SessionContext};
use exdep_core::object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::formats::CUSTOMS_PARTNERS;
use crate::normalize::split_fields;

async fn read_text(ctx: &SessionContext, location: &Location) -> Result<String> {
    let bytes = location
        .store(ctx)?
        .get(&location.path()?)
        .await
        .map_err(exdep_core::Error::from)?
        .bytes()
        .await
        .map_err(exdep_core::Error::from)?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| Error::CodeTable {
        file: location.to_string(),
        line: bytes[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
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
    let names = split_fields(first).unwrap_or_default();
    if names.iter().map(|n| n.trim()).ne(header.iter().copied()) {
        return Err(error(
            1,
            format!("header must be `{}`, found `{first}`", header.join(",")),
        ));
    }
    let mut seen = BTreeMap::new();
    for (line, text) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields = split_fields(text)
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

async fn register(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    header: &[&str],
) -> Result<()> {
    let schema = Schema::new(
        header
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let url = location.url().as_str();
    let extension = url.rfind('.').map_or("", |i| &url[i..]);
    let options = CsvReadOptions::new()
        .has_header(true)
        .schema(&schema)
        .file_extension(extension);
    if ctx.table_exist(name)? {
        ctx.deregister_table(name)?;
    }
    ctx.register_csv(name, url, options).await?;
    Ok(())
}

/// Loads, checks and registers `configs/customs_partner_codes.csv` (`code,iso3,name_zh`):
/// unique three-digit codes, each with an ISO3 or empty (not a country: excluded by rule).
pub(crate) async fn register_customs_partners(
    ctx: &SessionContext,
    location: &Location,
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
    register(ctx, CUSTOMS_PARTNERS, location, &HEADER).await
}

/// Loads, checks and registers a BACI `country_codes_V*.csv` as table `name`.
pub(crate) async fn register_baci_codes(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
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
    register(ctx, name, location, &HEADER).await
}
