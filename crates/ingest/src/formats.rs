//! The source formats: how each maps its columns onto the canonical record.
//!
//! Every format becomes one SQL projection over the registered input with the same columns:
//! `line`, `raw`, the canonical fields as trimmed text (`year_text`, `month_text`,
//! `province`, `partner`, `hs_code`, `value_text`, `currency`), the factor that turns the
//! value into the currency's units, a format-level reject reason (`pre_reason`) and an
//! exclusion rule (`rule`). [`validation_sql`] then applies the canonical checks that all
//! formats share.

use std::collections::BTreeSet;

use exdep_core::InputFormat;
use exdep_core::arrow::datatypes::DataType;

use crate::normalize::{FIELDS_OK, LINE, RAW};

/// The columns every canonical input must have.
pub const CANONICAL_COLUMNS: [&str; 7] = [
    "year", "month", "province", "partner", "hs_code", "value", "currency",
];

/// The session name of the customs partner code table.
pub(crate) const CUSTOMS_PARTNERS: &str = "customs_partner_codes";

/// Customs columns: the period, the partner code and the commodity code.
const CUSTOMS_PERIOD: &str = "数据年月";
const CUSTOMS_PARTNER: &str = "贸易伙伴编码";
const CUSTOMS_HS: &str = "商品编码";
/// The province comes from the firm's registered location, or else the goods' origin.
const CUSTOMS_ORIGINS: [&str; 2] = ["注册地编码", "境内货源地编码"];
const CUSTOMS_CNY: &str = "人民币";
const CUSTOMS_USD: &str = "美元";

const COMTRADE_COLUMNS: [&str; 12] = [
    "refYear",
    "refMonth",
    "reporterISO",
    "flowCode",
    "partnerCode",
    "partnerISO",
    "partner2Code",
    "motCode",
    "customsCode",
    "cmdCode",
    "primaryValue",
    "period",
];

const BACI_COLUMNS: [&str; 5] = ["t", "i", "j", "k", "v"];

/// Tells a text file's format from its header.
pub(crate) fn infer(header: &[String]) -> Option<InputFormat> {
    let has = |name: &str| header.iter().any(|h| h.eq_ignore_ascii_case(name));
    if has(CUSTOMS_PERIOD) {
        Some(InputFormat::CustomsCsv)
    } else if has("flowCode") && has("primaryValue") {
        Some(InputFormat::ComtradeCsv)
    } else if BACI_COLUMNS.iter().all(|c| has(c)) && header.len() <= 6 {
        Some(InputFormat::BaciCsv)
    } else if CANONICAL_COLUMNS.iter().all(|c| has(c)) {
        Some(InputFormat::CanonicalCsv)
    } else {
        None
    }
}

/// The columns of a registered input, to build its projection from.
pub(crate) struct Columns {
    pub file: String,
    pub columns: Vec<(String, DataType)>,
}

impl Columns {
    fn find(&self, name: &str) -> Option<&(String, DataType)> {
        self.columns.iter().find(|(n, _)| n == name).or_else(|| {
            self.columns
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
        })
    }

    fn missing(&self, name: &str) -> crate::Error {
        crate::Error::MissingColumn {
            file: self.file.clone(),
            column: name.to_string(),
            found: self
                .columns
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !n.starts_with("__"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The column as trimmed text, empty as null.
    fn text(&self, name: &str) -> crate::Result<String> {
        let (name, data_type) = self.find(name).ok_or_else(|| self.missing(name))?;
        let quoted = format!("t.\"{}\"", name.replace('"', "\"\""));
        let text = match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => quoted,
            _ => format!("CAST({quoted} AS VARCHAR)"),
        };
        // Spaces, tabs and stray line-end characters around a field are not data.
        Ok(format!("nullif(btrim({text}, ' \t\r\n'), '')"))
    }

    fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

/// A format's projection onto canonical text fields.
pub(crate) struct Projection {
    pub select: String,
    /// Name of the column the province came from, for the manifest.
    pub origin_column: Option<String>,
}

/// Builds the projection of `format` over table `table` (aliased `t`); `codes` names the
/// BACI country code table when there is one.
pub(crate) fn projection(
    format: InputFormat,
    table: &str,
    columns: &Columns,
    text_input: bool,
    codes: Option<&str>,
) -> crate::Result<Projection> {
    let (line, raw, fields_ok) = if text_input {
        (
            format!("CAST(t.\"{LINE}\" AS BIGINT)"),
            format!("t.\"{RAW}\""),
            format!("t.\"{FIELDS_OK}\" = '1'"),
        )
    } else {
        let fields = columns
            .columns
            .iter()
            .map(|(name, _)| format!("coalesce(CAST(t.\"{name}\" AS VARCHAR), '')"))
            .collect::<Vec<_>>()
            .join(", ");
        (
            "CAST(NULL AS BIGINT)".to_string(),
            format!("concat_ws(',', {fields})"),
            "true".to_string(),
        )
    };
    let common =
        |fields: [String; 7], multiplier: &str, pre_reason: String, rule: String, joins: String| {
            let [year, month, province, partner, hs_code, value, currency] = fields;
            format!(
                "SELECT {line} AS line, {raw} AS raw,
                CASE WHEN NOT ({fields_ok}) THEN 'bad_field_count' ELSE {pre_reason} END
                    AS pre_reason,
                CASE WHEN {fields_ok} THEN {rule} END AS rule,
                {year} AS year_text, {month} AS month_text, {province} AS province,
                {partner} AS partner, {hs_code} AS hs_code, {value} AS value_text,
                {currency} AS currency, CAST({multiplier} AS DOUBLE) AS multiplier
            FROM \"{table}\" t {joins}"
            )
        };
    let null = || "CAST(NULL AS VARCHAR)".to_string();
    match format {
        InputFormat::Auto => unreachable!("formats are resolved before projection"),
        InputFormat::CanonicalCsv | InputFormat::CanonicalParquet => {
            let [year, month, province, partner, hs_code, value, currency] =
                CANONICAL_COLUMNS.map(|c| columns.text(c));
            let (year, value) = (year?, value?);
            let duplicate = format!(
                "CASE WHEN lower({year}) = 'year' AND lower({value}) = 'value' \
                 THEN 'duplicate_header' END"
            );
            Ok(Projection {
                select: common(
                    [
                        year,
                        month?,
                        province?,
                        format!("upper({})", partner?),
                        hs_code?,
                        value,
                        format!("upper({})", currency?),
                    ],
                    "1",
                    duplicate,
                    null(),
                    String::new(),
                ),
                origin_column: None,
            })
        }
        InputFormat::CustomsCsv => {
            let period = columns.text(CUSTOMS_PERIOD)?;
            let partner = columns.text(CUSTOMS_PARTNER)?;
            let hs_code = columns.text(CUSTOMS_HS)?;
            let origin_column = CUSTOMS_ORIGINS
                .iter()
                .find(|c| columns.has(c))
                .ok_or_else(|| columns.missing(CUSTOMS_ORIGINS[0]))?;
            let origin = columns.text(origin_column)?;
            let (value_column, currency) = match (
                columns.has(CUSTOMS_CNY),
                columns.has(CUSTOMS_USD),
            ) {
                (true, false) => (CUSTOMS_CNY, "CNY"),
                (false, true) => (CUSTOMS_USD, "USD"),
                (true, true) => {
                    return Err(crate::Error::Header {
                        file: columns.file.clone(),
                        message: format!(
                            "both `{CUSTOMS_CNY}` and `{CUSTOMS_USD}` are present; export one currency"
                        ),
                    });
                }
                (false, false) => return Err(columns.missing(CUSTOMS_CNY)),
            };
            let value = columns.text(value_column)?;
            let pre_reason = format!(
                "CASE
                    WHEN {period} = '{CUSTOMS_PERIOD}' THEN 'duplicate_header'
                    WHEN {period} IS NULL
                      OR NOT regexp_like({period}, '^[0-9]{{4}}(0[1-9]|1[0-2])$') THEN 'bad_period'
                    WHEN cp.code IS NULL THEN 'unknown_customs_partner'
                END"
            );
            let rule = "CASE WHEN cp.code IS NOT NULL AND cp.iso3 IS NULL \
                        THEN 'partner_not_a_country' END"
                .to_string();
            Ok(Projection {
                select: common(
                    [
                        format!("substr({period}, 1, 4)"),
                        format!("substr({period}, 5, 2)"),
                        format!("substr({origin}, 1, 2)"),
                        "cp.iso3".to_string(),
                        hs_code,
                        format!("replace({value}, ',', '')"),
                        format!("'{currency}'"),
                    ],
                    "1",
                    pre_reason,
                    rule,
                    format!(
                        "LEFT JOIN (SELECT code, nullif(iso3, '') AS iso3 FROM {CUSTOMS_PARTNERS}) cp
                           ON cp.code = {partner}"
                    ),
                ),
                origin_column: Some(origin_column.to_string()),
            })
        }
        InputFormat::ComtradeCsv => {
            let [
                year,
                month,
                reporter,
                flow,
                partner_code,
                partner,
                partner2,
                mot,
                customs,
                cmd,
                value,
                _,
            ] = COMTRADE_COLUMNS.map(|c| columns.text(c));
            let (year, flow, partner_code) = (year?, flow?, partner_code?);
            let (partner2, mot, customs) = (partner2?, mot?, customs?);
            let month = month?;
            let pre_reason = format!("CASE WHEN {year} = 'refYear' THEN 'duplicate_header' END");
            let rule = format!(
                "CASE
                    WHEN {year} = 'refYear' THEN NULL
                    WHEN coalesce({flow}, '') <> 'X' THEN 'not_export'
                    WHEN coalesce({partner2}, '0') <> '0' OR coalesce({mot}, '0') <> '0'
                      OR coalesce({customs}, 'C00') <> 'C00' THEN 'breakdown_row'
                    WHEN {partner_code} = '0' THEN 'world_total'
                END"
            );
            Ok(Projection {
                select: common(
                    [
                        year,
                        format!("CASE WHEN {month} = '52' THEN NULL ELSE {month} END"),
                        format!("upper({})", reporter?),
                        format!("upper({})", partner?),
                        cmd?,
                        value?,
                        "'USD'".to_string(),
                    ],
                    "1",
                    pre_reason,
                    rule,
                    String::new(),
                ),
                origin_column: None,
            })
        }
        InputFormat::BaciCsv => {
            let codes = codes.expect("BACI inputs come with their country codes");
            let [year, exporter, importer, product, value] = BACI_COLUMNS.map(|c| columns.text(c));
            let (year, exporter, importer, product) = (year?, exporter?, importer?, product?);
            let pre_reason = format!(
                "CASE
                    WHEN {year} = 't' THEN 'duplicate_header'
                    WHEN ci.code IS NULL OR cj.code IS NULL THEN 'unknown_country_code'
                END"
            );
            Ok(Projection {
                select: common(
                    [
                        year,
                        null(),
                        "ci.iso3".to_string(),
                        "cj.iso3".to_string(),
                        // Files that went through a spreadsheet lose the leading zero.
                        format!(
                            "CASE WHEN length({product}) = 5 THEN lpad({product}, 6, '0') \
                             ELSE {product} END"
                        ),
                        value?,
                        "'USD'".to_string(),
                    ],
                    // BACI values are thousands of USD.
                    "1000",
                    pre_reason,
                    null(),
                    format!(
                        "LEFT JOIN {codes} ci ON ci.code = {exporter}
                         LEFT JOIN {codes} cj ON cj.code = {importer}"
                    ),
                ),
                origin_column: None,
            })
        }
    }
}

/// The canonical checks over a format's projection. Each row gets either a null `reason` and
/// `rule` (accepted), a `rule` (excluded) or a `reason` (rejected: the first check failed).
pub(crate) fn validation_sql(projection: &str, source: &str, years: &BTreeSet<i32>) -> String {
    let run_years = exdep_core::sql::year_list(years);
    let source = source.replace('\'', "''");
    format!(
        "SELECT
            try_cast(year_text AS INT) AS year,
            try_cast(month_text AS INT) AS month,
            province, partner, hs_code,
            try_cast(value_text AS DOUBLE) * multiplier AS value,
            currency,
            '{source}' AS source,
            line, raw,
            -- Rejects are filed under their year when it is one of the run's, else under 0.
            CASE WHEN try_cast(year_text AS INT) IN ({run_years})
                 THEN try_cast(year_text AS INT) ELSE 0 END AS reject_year,
            CASE WHEN pre_reason IS NULL THEN rule END AS rule,
            CASE
                WHEN pre_reason IS NOT NULL THEN pre_reason
                WHEN rule IS NOT NULL THEN NULL
                WHEN year_text IS NULL THEN 'missing_year'
                WHEN try_cast(year_text AS INT) IS NULL THEN 'bad_year'
                WHEN try_cast(year_text AS INT) NOT IN ({run_years}) THEN 'year_outside_run'
                WHEN month_text IS NOT NULL
                    AND coalesce(try_cast(month_text AS INT) NOT BETWEEN 1 AND 12, true)
                    THEN 'bad_month'
                WHEN province IS NULL THEN 'missing_province'
                WHEN NOT regexp_like(province, '^([0-9]{{2}}|[A-Z]{{3}})$')
                    THEN 'bad_province_code'
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
        FROM ({projection})"
    )
}
