//! The canonical input contract: `year, month, province, partner, hs_code, value, currency`.
//!
//! Every column is read as text and checked in one DataFusion projection, so a bad value
//! becomes a rejected row with a reason instead of a failed file. The checks are built-in
//! SQL functions only, so the same plan runs on a Ballista cluster.

use std::collections::BTreeSet;

use exdep_core::arrow::datatypes::{DataType, Field, Schema};
use exdep_core::datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use exdep_core::object_store::{GetOptions, GetRange, ObjectMeta};
use exdep_core::{InputFormat, Location};

use crate::error::{Error, Result};

/// The columns every canonical input must have.
pub const COLUMNS: [&str; 7] = [
    "year", "month", "province", "partner", "hs_code", "value", "currency",
];

/// How many bytes at the start of a CSV file may hold its header line.
const HEADER_LIMIT: u64 = 64 * 1024;

/// Registers one input file as table `table` and checks that it has the canonical columns.
/// Returns, for each canonical column, the SQL expression that yields it as trimmed text.
pub(crate) async fn register(
    ctx: &SessionContext,
    table: &str,
    file: &Location,
    meta: &ObjectMeta,
    format: InputFormat,
) -> Result<Vec<String>> {
    if meta.size == 0 {
        return Err(Error::EmptyFile {
            file: file.to_string(),
        });
    }
    let file_name = meta.location.filename().unwrap_or_default().to_string();
    let extension = file_name
        .rfind('.')
        .map_or(String::new(), |i| file_name[i..].to_string());
    let columns: Vec<(String, DataType)> = match format {
        InputFormat::CanonicalCsv => {
            let header = read_csv_header(ctx, file, meta).await?;
            let schema = Schema::new(
                header
                    .iter()
                    .map(|name| Field::new(name, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            );
            let options = CsvReadOptions::new()
                .has_header(true)
                .schema(&schema)
                .file_extension(&extension)
                // Short rows become rows with empty fields, which are then rejected by reason.
                .truncated_rows(true);
            ctx.register_csv(table, file.url().as_str(), options)
                .await
                .map_err(|e| read_error(file, e))?;
            header.into_iter().map(|n| (n, DataType::Utf8)).collect()
        }
        InputFormat::CanonicalParquet => {
            let options = ParquetReadOptions::default().file_extension(&extension);
            ctx.register_parquet(table, file.url().as_str(), options)
                .await
                .map_err(|e| read_error(file, e))?;
            let provider = ctx.table_provider(table).await?;
            provider
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect()
        }
    };
    let found = columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    COLUMNS
        .iter()
        .map(|&column| {
            let (name, data_type) = columns
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(column))
                .ok_or_else(|| Error::MissingColumn {
                    file: file.to_string(),
                    column: column.to_string(),
                    found: found.clone(),
                })?;
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            let text = match data_type {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => quoted,
                _ => format!("CAST({quoted} AS VARCHAR)"),
            };
            // Spaces, tabs and stray line-end characters around a field are not data.
            Ok(format!("nullif(btrim({text}, ' \t\r\n'), '')"))
        })
        .collect()
}

/// Reads and splits the first line of a CSV file, without the UTF-8 byte order mark.
async fn read_csv_header(
    ctx: &SessionContext,
    file: &Location,
    meta: &ObjectMeta,
) -> Result<Vec<String>> {
    let store = file.store(ctx)?;
    let options = GetOptions {
        range: Some(GetRange::Bounded(0..meta.size.min(HEADER_LIMIT))),
        ..Default::default()
    };
    let bytes = store
        .get_opts(&meta.location, options)
        .await
        .map_err(exdep_core::Error::from)?
        .bytes()
        .await
        .map_err(exdep_core::Error::from)?;
    let header_error = |message: String| Error::Header {
        file: file.to_string(),
        message,
    };
    let end = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None if meta.size <= HEADER_LIMIT => bytes.len(),
        None => {
            return Err(header_error(format!(
                "no line break in the first {HEADER_LIMIT} bytes"
            )));
        }
    };
    let line = std::str::from_utf8(&bytes[..end])
        .map_err(|e| header_error(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let names: Vec<String> = line
        .trim_end_matches('\r')
        .split(',')
        .map(|name| name.trim().trim_matches('"').trim().to_string())
        .collect();
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() && i + 1 < names.len() {
            return Err(header_error(format!("column {} has no name", i + 1)));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(header_error(format!("column `{name}` appears twice")));
        }
    }
    Ok(names)
}

/// The validation projection over a registered input. Each output row carries either a null
/// `reason` (accepted) or the code of the first check it failed.
pub(crate) fn validation_sql(
    table: &str,
    texts: &[String],
    source: &str,
    years: &BTreeSet<i32>,
) -> String {
    let [year, month, province, partner, hs_code, value, currency] =
        [0, 1, 2, 3, 4, 5, 6].map(|i| texts[i].as_str());
    let run_years = years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let source = source.replace('\'', "''");
    format!(
        "SELECT
            try_cast(year_text AS INT) AS year,
            try_cast(month_text AS INT) AS month,
            province, partner, hs_code,
            try_cast(value_text AS DOUBLE) AS value,
            currency,
            '{source}' AS source,
            CASE
                WHEN year_text IS NULL THEN 'missing_year'
                WHEN try_cast(year_text AS INT) IS NULL THEN 'bad_year'
                WHEN try_cast(year_text AS INT) NOT IN ({run_years}) THEN 'year_outside_run'
                WHEN month_text IS NOT NULL
                    AND coalesce(try_cast(month_text AS INT) NOT BETWEEN 1 AND 12, true)
                    THEN 'bad_month'
                WHEN province IS NULL THEN 'missing_province'
                WHEN NOT regexp_like(province, '^[0-9]{{2}}$') THEN 'bad_province_code'
                WHEN partner IS NULL THEN 'missing_partner'
                WHEN NOT regexp_like(partner, '^[A-Z]{{3}}$') THEN 'bad_partner_code'
                WHEN hs_code IS NULL THEN 'missing_hs_code'
                WHEN NOT regexp_like(hs_code, '^[0-9]{{2,10}}$') THEN 'bad_hs_code'
                WHEN value_text IS NULL THEN 'missing_value'
                WHEN try_cast(value_text AS DOUBLE) IS NULL
                    OR isnan(try_cast(value_text AS DOUBLE))
                    OR abs(try_cast(value_text AS DOUBLE)) = CAST('Infinity' AS DOUBLE)
                    THEN 'bad_value'
                WHEN try_cast(value_text AS DOUBLE) < 0 THEN 'negative_value'
                WHEN currency IS NULL THEN 'missing_currency'
                WHEN currency NOT IN ('USD', 'CNY') THEN 'bad_currency'
            END AS reason
        FROM (
            SELECT
                {year} AS year_text,
                {month} AS month_text,
                {province} AS province,
                upper({partner}) AS partner,
                {hs_code} AS hs_code,
                {value} AS value_text,
                upper({currency}) AS currency
            FROM \"{table}\"
        )"
    )
}

pub(crate) fn read_error(
    file: &Location,
    source: exdep_core::datafusion::error::DataFusionError,
) -> Error {
    Error::Read {
        file: file.to_string(),
        source: Box::new(source),
    }
}
