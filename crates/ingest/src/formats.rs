//! The source formats: how each maps its columns onto the canonical record.
//!
//! Every format becomes one SQL projection over the registered input with the same columns:
//! `line`, `raw`, the canonical fields as trimmed text (`year_text`, `month_text`,
//! `province`, `partner`, `hs_code`, `value_text`, `currency`), the factor that turns the
//! value into the currency's units, a format-level reject reason (`pre_reason`) and an
//! exclusion rule (`rule`). [`checked_sql`] then applies the canonical checks that all
//! formats share, and the code tables' membership checks.
//!
//! Most records of a canonical input are clean: their fields are already codes the tables
//! know, in canonical form. A cheap test on the untouched fields (`fast`) lets those records
//! skip the text work (trimming, casing, pattern checks, the raw line) that only a record
//! with a problem needs; every text expression is evaluated for the other records only.

use std::collections::BTreeSet;

use exdep_core::InputFormat;
use exdep_core::arrow::datatypes::DataType;
use exdep_core::schema::{KnownCodes, MAX_RECORD_VALUE};
use exdep_core::sql::{text_list, text_literal, year_list};
use exdep_engine::{CELL_KEY, CellDomain};

use crate::normalize::{FIELDS_OK, LINE, TOO_LONG, raw_text_sql};

/// The columns every canonical input must have.
pub const CANONICAL_COLUMNS: [&str; 7] = [
    "year", "month", "province", "partner", "hs_code", "value", "currency",
];

/// The session name of the customs partner code table.
pub(crate) const CUSTOMS_PARTNERS: &str = "customs_partner_codes";

/// The session name of the Comtrade partner alias table.
pub(crate) const COMTRADE_ALIASES: &str = "comtrade_partner_aliases";

/// The column of a canonical input's checked rows that holds the cell of its untouched
/// fields (a name no input column has: no contract column has a space).
const FAST_CELL: &str = "exdep fast cell";
/// The untouched fields' year, month and value, parsed once for the cell and the output.
const FAST_YEAR: &str = "exdep fast year";
const FAST_MONTH: &str = "exdep fast month";
const FAST_VALUE: &str = "exdep fast value";

/// How a Comtrade file is read: the HS level it keeps, if it must choose one, and whether
/// its partner codes go through [`COMTRADE_ALIASES`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComtradeReading {
    pub hs_level: Option<u8>,
    pub partner_aliases: bool,
}

/// A Comtrade row's HS level: `aggrLevel` where the file has the column, else the number
/// of digits of `cmdCode`.
fn comtrade_level(columns: &Columns) -> crate::error::Result<String> {
    if columns.has("aggrLevel") {
        Ok(format!("try_cast({} AS INT)", columns.text("aggrLevel")?))
    } else {
        let cmd = columns.text("cmdCode")?;
        Ok(format!(
            "CASE WHEN regexp_like({cmd}, '^[0-9]+$') THEN CAST(length({cmd}) AS INT) END"
        ))
    }
}

/// The distinct HS levels (as INT) of a Comtrade file's export rows; commodity totals
/// (level 0) are not a level.
pub(crate) fn comtrade_levels_sql(table: &str, columns: &Columns) -> crate::error::Result<String> {
    Ok(format!(
        "SELECT DISTINCT level FROM (SELECT {level} AS level, {flow} AS flow FROM \"{table}\" t)
         WHERE flow = 'X' AND level > 0",
        level = comtrade_level(columns)?,
        flow = columns.text("flowCode")?,
    ))
}

/// Customs columns: the period, the partner code and the commodity code.
const CUSTOMS_PERIOD: &str = "数据年月";
const CUSTOMS_PARTNER: &str = "贸易伙伴编码";
const CUSTOMS_HS: &str = "商品编码";
/// The province comes from the firm's registered location, or else the goods' origin.
const CUSTOMS_ORIGINS: [&str; 2] = ["注册地编码", "境内货源地编码"];
const CUSTOMS_CNY: &str = "人民币";
const CUSTOMS_USD: &str = "美元";
/// The mark of a year-to-date (累计, cumulative) column in a customs download.
const CUSTOMS_YEAR_TO_DATE: &str = "累计";

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

fn is_binary(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// The characters of a typed record's raw text kept for its rejection.
const RAW_KEPT_CHARS: usize = 1 << 10;

/// Column `name` of the input (aliased `t`) as an SQL identifier: quoted, so that any name
/// an input file gives its column (a quote, a keyword, another case) is only a name.
pub(crate) fn input_column(name: &str) -> String {
    format!("t.\"{}\"", name.replace('"', "\"\""))
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

    fn missing(&self, name: &str) -> crate::error::Error {
        crate::error::Error::MissingColumn {
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

    /// The column as text, untouched.
    fn untrimmed(&self, name: &str) -> crate::error::Result<String> {
        let (name, data_type) = self.find(name).ok_or_else(|| self.missing(name))?;
        let quoted = input_column(name);
        Ok(match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => quoted,
            _ => format!("CAST({quoted} AS VARCHAR)"),
        })
    }

    /// The column as a number of `sql_type`, null where it is not one, without a detour
    /// through text for a column that already holds numbers.
    fn number(&self, name: &str, sql_type: &str) -> crate::error::Result<String> {
        let (name, _) = self.find(name).ok_or_else(|| self.missing(name))?;
        Ok(format!("try_cast({} AS {sql_type})", input_column(name)))
    }

    /// The column as trimmed text, empty as null.
    fn text(&self, name: &str) -> crate::error::Result<String> {
        let text = self.untrimmed(name)?;
        // Spaces, tabs and stray line-end characters around a field are not data.
        Ok(format!("nullif(btrim({text}, ' \t\r\n'), '')"))
    }

    /// A test that the column is empty: null, or for text an empty string.
    fn empty(&self, name: &str) -> crate::error::Result<String> {
        let (column, data_type) = self.find(name).ok_or_else(|| self.missing(name))?;
        let column = input_column(column);
        Ok(match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                format!("coalesce({column}, '') = ''")
            }
            // Not text: no value of it is an empty string (and casting every value to text
            // to find out would cost more than the rest of the record's checks).
            _ => format!("{column} IS NULL"),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Refuses a typed input (Parquet) whose columns cannot hold their fields faithfully:
    /// `hs_code` must be text, `year` and `month` integers or text.
    pub(crate) fn check_types(&self) -> crate::error::Result<()> {
        const TEXT: &str = "text (a string column)";
        const INTEGER: &str = "an integer or text column";
        for (field, expected) in [("hs_code", TEXT), ("year", INTEGER), ("month", INTEGER)] {
            let Some((name, data_type)) = self.find(field) else {
                continue;
            };
            let mut value_type = data_type;
            while let DataType::Dictionary(_, values) = value_type {
                value_type = values;
            }
            let text = matches!(
                value_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            );
            let fits = text || (expected == INTEGER && value_type.is_integer());
            if !fits {
                return Err(crate::error::Error::ColumnType {
                    file: self.file.clone(),
                    column: name.clone(),
                    found: data_type.to_string(),
                    expected,
                });
            }
        }
        Ok(())
    }
}

/// The untouched fields of a canonical input, for the test that lets a clean record skip
/// the text work.
struct FastFields {
    year: String,
    month_missing: String,
    month: String,
    province: String,
    partner: String,
    hs_code: String,
    value: String,
    currency: String,
}

/// A format's projection onto canonical text fields: SQL expressions over the input table
/// `t` (and the code tables the format joins in `from`).
pub(crate) struct Projection {
    line: String,
    raw: String,
    fields_ok: String,
    /// Why a record whose fields are not ok is rejected (`bad_field_count`, `line_too_long`).
    shape_reason: String,
    pre_reason: String,
    rule: String,
    /// year, month, province, partner, hs_code, value, currency as trimmed text.
    fields: [String; 7],
    multiplier: &'static str,
    fast: Option<FastFields>,
    from: String,
    /// Name of the column the province came from, for the manifest.
    pub origin_column: Option<String>,
}

/// Builds the projection of `format` over table `table` (aliased `t`); `codes` names the
/// BACI country code table when there is one, `comtrade` says how a Comtrade file is read.
pub(crate) fn projection(
    format: InputFormat,
    table: &str,
    columns: &Columns,
    text_input: bool,
    codes: Option<&str>,
    comtrade: Option<ComtradeReading>,
) -> crate::error::Result<Projection> {
    let (line, raw, fields_ok, shape_reason) = if text_input {
        (
            format!("CAST(t.\"{LINE}\" AS BIGINT)"),
            raw_text_sql(columns.columns.iter().map(|(name, _)| name.as_str())),
            format!("t.\"{FIELDS_OK}\" = '1'"),
            format!(
                "CASE WHEN t.\"{FIELDS_OK}\" = '{TOO_LONG}' THEN 'line_too_long' \
                 ELSE 'bad_field_count' END"
            ),
        )
    } else {
        // Columns outside the contract may be of any type: nested and binary ones are left
        // out of the raw text (casting them to text could be as large as they are).
        let fields = columns
            .columns
            .iter()
            .filter(|(_, data_type)| !data_type.is_nested() && !is_binary(data_type))
            .map(|(name, _)| format!("coalesce(CAST({} AS VARCHAR), '')", input_column(name)))
            .collect::<Vec<_>>()
            .join(", ");
        (
            "CAST(NULL AS BIGINT)".to_string(),
            // As much of a record's text as a text input keeps (see `normalize`).
            format!("left(concat_ws(',', {fields}), {RAW_KEPT_CHARS})"),
            "true".to_string(),
            null_text(),
        )
    };
    let mapping = match format {
        InputFormat::Auto => unreachable!("formats are resolved before projection"),
        InputFormat::CanonicalCsv | InputFormat::CanonicalParquet => canonical(columns)?,
        InputFormat::CustomsCsv => customs(columns)?,
        InputFormat::ComtradeCsv => {
            let reading = comtrade.expect("Comtrade inputs come with how to read them");
            comtrade_mapping(columns, reading)?
        }
        InputFormat::BaciCsv => baci(
            columns,
            codes.expect("BACI inputs come with their country codes"),
        )?,
    };
    Ok(Projection {
        line,
        raw,
        fields_ok,
        shape_reason,
        pre_reason: mapping.pre_reason,
        rule: mapping.rule,
        fields: mapping.fields,
        multiplier: mapping.multiplier,
        fast: mapping.fast,
        from: format!("\"{table}\" t {}", mapping.joins),
        origin_column: mapping.origin_column,
    })
}

/// How one format maps its columns onto the canonical fields (see [`Projection`]).
struct Mapping {
    fields: [String; 7],
    multiplier: &'static str,
    pre_reason: String,
    rule: String,
    fast: Option<FastFields>,
    /// The code tables the format joins to `t`.
    joins: String,
    origin_column: Option<String>,
}

fn null_text() -> String {
    "CAST(NULL AS VARCHAR)".to_string()
}

/// exdep's canonical columns, CSV or Parquet: fields as they are, trimmed and cased.
fn canonical(columns: &Columns) -> crate::error::Result<Mapping> {
    let [year, month, province, partner, hs_code, value, currency] =
        CANONICAL_COLUMNS.map(|c| columns.text(c));
    let (year, value) = (year?, value?);
    let duplicate = format!(
        "CASE WHEN lower({year}) = 'year' AND lower({value}) = 'value' \
         THEN 'duplicate_header' END"
    );
    let fast = FastFields {
        year: columns.number("year", "INT")?,
        month_missing: columns.empty("month")?,
        month: columns.number("month", "INT")?,
        province: columns.untrimmed("province")?,
        partner: columns.untrimmed("partner")?,
        hs_code: columns.untrimmed("hs_code")?,
        value: columns.number("value", "DOUBLE")?,
        currency: columns.untrimmed("currency")?,
    };
    Ok(Mapping {
        fields: [
            year,
            month?,
            province?,
            format!("upper({})", partner?),
            hs_code?,
            value,
            format!("upper({})", currency?),
        ],
        multiplier: "1",
        pre_reason: duplicate,
        rule: null_text(),
        fast: Some(fast),
        joins: String::new(),
        origin_column: None,
    })
}

/// A China Customs download: period `YYYYMM`, the origin's code in the first two digits,
/// partners as customs codes, values in one currency.
fn customs(columns: &Columns) -> crate::error::Result<Mapping> {
    // A year-to-date download's rows are running totals since January: summed as months,
    // they would count January up to twelve times.
    if let Some((column, _)) =
        (columns.columns.iter()).find(|(name, _)| name.contains(CUSTOMS_YEAR_TO_DATE))
    {
        return Err(crate::error::Error::YearToDate {
            file: columns.file.clone(),
            column: column.clone(),
        });
    }
    let period = columns.text(CUSTOMS_PERIOD)?;
    let partner = columns.text(CUSTOMS_PARTNER)?;
    let hs_code = columns.text(CUSTOMS_HS)?;
    let origin_column = CUSTOMS_ORIGINS
        .iter()
        .find(|c| columns.has(c))
        .ok_or_else(|| columns.missing(CUSTOMS_ORIGINS[0]))?;
    let origin = columns.text(origin_column)?;
    let (value_column, currency) = match (columns.has(CUSTOMS_CNY), columns.has(CUSTOMS_USD)) {
        (true, false) => (CUSTOMS_CNY, "CNY"),
        (false, true) => (CUSTOMS_USD, "USD"),
        (true, true) => {
            return Err(crate::error::Error::Header {
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
    Ok(Mapping {
        fields: [
            format!("substr({period}, 1, 4)"),
            format!("substr({period}, 5, 2)"),
            format!("substr({origin}, 1, 2)"),
            "cp.iso3".to_string(),
            hs_code,
            format!("replace({value}, ',', '')"),
            format!("'{currency}'"),
        ],
        multiplier: "1",
        pre_reason,
        rule,
        fast: None,
        joins: format!(
            "LEFT JOIN (SELECT code, nullif(iso3, '') AS iso3 FROM {CUSTOMS_PARTNERS}) cp
               ON cp.code = {partner}"
        ),
        origin_column: Some(origin_column.to_string()),
    })
}

/// A UN Comtrade download: exports to each partner, without world totals, breakdowns and
/// other HS levels.
fn comtrade_mapping(columns: &Columns, reading: ComtradeReading) -> crate::error::Result<Mapping> {
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
    let (month, partner) = (month?, partner?);
    let pre_reason = format!("CASE WHEN {year} = 'refYear' THEN 'duplicate_header' END");
    // Rows of another HS level than the one kept list the same trade again.
    let other_level = match reading.hs_level {
        Some(kept) => format!(
            "WHEN {level} > 0 AND {level} <> {kept} THEN 'other_hs_level'",
            level = comtrade_level(columns)?
        ),
        None => String::new(),
    };
    let rule = format!(
        "CASE
            WHEN {year} = 'refYear' THEN NULL
            WHEN coalesce({flow}, '') <> 'X' THEN 'not_export'
            WHEN coalesce({partner2}, '0') <> '0' OR coalesce({mot}, '0') <> '0'
              OR coalesce({customs}, 'C00') <> 'C00' THEN 'breakdown_row'
            WHEN {partner_code} = '0' THEN 'world_total'
            {other_level}
        END"
    );
    // Comtrade codes some partners with codes that are not ISO3 (S19, "Other Asia,
    // nes", is Taiwan's trade): the alias table maps them, unless turned off.
    let (partner, joins) = if reading.partner_aliases {
        (
            format!("coalesce(ca.iso3, upper({partner}))"),
            format!(
                "LEFT JOIN (SELECT code, nullif(iso3, '') AS iso3 FROM {COMTRADE_ALIASES}) ca
                   ON ca.code = upper({partner})"
            ),
        )
    } else {
        (format!("upper({partner})"), String::new())
    };
    Ok(Mapping {
        fields: [
            year,
            format!("CASE WHEN {month} = '52' THEN NULL ELSE {month} END"),
            format!("upper({})", reporter?),
            partner,
            cmd?,
            value?,
            "'USD'".to_string(),
        ],
        multiplier: "1",
        pre_reason,
        rule,
        fast: None,
        joins,
        origin_column: None,
    })
}

/// A BACI release: countries as numeric codes (through `codes`), values in thousands of USD.
fn baci(columns: &Columns, codes: &str) -> crate::error::Result<Mapping> {
    let [year, exporter, importer, product, value] = BACI_COLUMNS.map(|c| columns.text(c));
    let (year, exporter, importer, product) = (year?, exporter?, importer?, product?);
    let pre_reason = format!(
        "CASE
            WHEN {year} = 't' THEN 'duplicate_header'
            WHEN ci.code IS NULL OR cj.code IS NULL THEN 'unknown_country_code'
        END"
    );
    Ok(Mapping {
        fields: [
            year,
            null_text(),
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
        multiplier: "1000",
        pre_reason,
        rule: null_text(),
        fast: None,
        joins: format!(
            "LEFT JOIN {codes} ci ON ci.code = {exporter}
             LEFT JOIN {codes} cj ON cj.code = {importer}"
        ),
        origin_column: None,
    })
}

/// The SQL lists a record's fields are checked against.
struct MemberLists {
    run_years: String,
    origins: String,
    partners: String,
    chapters: String,
}

/// A record's fields as [`record_checks`] reads them: SQL expressions.
struct CheckedFields<'a> {
    /// The year as given (text, or a number for a typed input).
    year_text: &'a str,
    /// The year as a number, null where it is not one.
    year: &'a str,
    /// A test that the month is empty.
    month_missing: &'a str,
    /// The month as a number, null where it is not one.
    month: &'a str,
    province: &'a str,
    partner: &'a str,
    hs_code: &'a str,
    /// The value as given.
    value_text: &'a str,
    /// The value as the file gives it, null where it is not a number.
    value_number: &'a str,
    /// The value in the currency's units.
    value: &'a str,
    currency: &'a str,
}

/// One check of a record's fields.
struct RecordCheck {
    /// Why a record failing it is rejected.
    reason: &'static str,
    /// The condition a record passing it meets (null counts as failing).
    passes: String,
}

/// The checks every record's fields must pass, in the order that picks a rejected record's
/// reason (the first it fails). A record passes them all exactly when the cube kernel gives
/// it a cell (`exdep_engine::CellDomain`); the kernel decides a clean record in one call,
/// this list why another record is rejected.
fn record_checks(f: &CheckedFields, lists: &MemberLists) -> Vec<RecordCheck> {
    let check = |reason, passes: String| RecordCheck { reason, passes };
    let CheckedFields {
        year_text,
        year,
        month_missing,
        month,
        province,
        partner,
        hs_code: hs,
        value_text,
        value_number,
        value,
        currency,
    } = f;
    let MemberLists {
        run_years,
        origins,
        partners,
        chapters,
    } = lists;
    vec![
        check("missing_year", format!("{year_text} IS NOT NULL")),
        check("bad_year", format!("{year} IS NOT NULL")),
        check("year_outside_run", format!("{year} IN ({run_years})")),
        check(
            "bad_month",
            format!("({month_missing} OR {month} BETWEEN 1 AND 12)"),
        ),
        check("missing_province", format!("{province} IS NOT NULL")),
        check(
            "bad_province_code",
            format!("regexp_like({province}, '^([0-9]{{2}}|[A-Z]{{3}})$')"),
        ),
        check("missing_partner", format!("{partner} IS NOT NULL")),
        check(
            "bad_partner_code",
            format!("regexp_like({partner}, '^[A-Z]{{3}}$')"),
        ),
        check("missing_hs_code", format!("{hs} IS NOT NULL")),
        // 2 to 10 digits in pairs: a number of that length starting with a digit (no sign).
        check(
            "bad_hs_code",
            format!(
                "length({hs}) IN (2, 4, 6, 8, 10) AND try_cast({hs} AS BIGINT) IS NOT NULL \
                 AND left({hs}, 1) BETWEEN '0' AND '9'"
            ),
        ),
        // A NaN or an infinity is above 1e15 in the engine's total order of doubles (and a
        // negative NaN below 0), so the checks after this one would catch them too, but
        // under another reason.
        check("missing_value", format!("{value_text} IS NOT NULL")),
        check(
            "bad_value",
            format!(
                "(NOT isnan({value_number}) AND abs({value_number}) <> CAST('Infinity' AS DOUBLE))"
            ),
        ),
        check("negative_value", format!("{value_number} >= 0")),
        // Not negative by now, and the multiplier is positive.
        check(
            "value_too_large",
            format!("{value} <= {MAX_RECORD_VALUE:e}"),
        ),
        check("missing_currency", format!("{currency} IS NOT NULL")),
        check("bad_currency", format!("{currency} IN ('USD', 'CNY')")),
        check("unknown_province", format!("{province} IN ({origins})")),
        check("unknown_partner", format!("{partner} IN ({partners})")),
        check(
            "unknown_hs_chapter",
            format!("substr({hs}, 1, 2) IN ({chapters})"),
        ),
    ]
}

/// The rows of one input, checked: for every record its `year` (parsed, whatever it is),
/// `month`, `province`, `partner`, `hs_code`, `value` (in the currency's units), `currency`,
/// `line` and `raw` (kept for records with a problem only), and either its `cell` (it
/// passed: see `exdep_engine::CellDomain`), an exclusion `rule` of the source format, or a
/// reject `reason`: the first check that failed, a code table's membership check included
/// (`unknown_province`, `unknown_partner`, `unknown_hs_chapter`).
pub(crate) fn checked_sql(
    projection: &Projection,
    years: &BTreeSet<i32>,
    known: &KnownCodes,
    domain: &CellDomain,
) -> String {
    let Projection {
        line,
        raw,
        fields_ok,
        shape_reason,
        pre_reason,
        rule,
        fields: [year, month, province, partner, hs_code, value, currency],
        multiplier,
        fast,
        from,
        origin_column: _,
    } = projection;
    let fast_fields = fast.as_ref();
    let lists = MemberLists {
        run_years: year_list(years),
        origins: text_list(known.origins.iter().map(String::as_str)),
        partners: text_list(known.partners.iter().map(String::as_str)),
        chapters: text_list(known.chapters.keys().map(String::as_str)),
    };
    let domain = text_literal(&domain.literal());
    let cell_of = |fields: [&str; 8]| format!("{CELL_KEY}({}, {domain})", fields.join(", "));
    // The untouched fields' cell, computed once in a subquery that keeps the input's alias,
    // with the numbers it parsed: the output takes them from there, not parsed again.
    let (fast, from) = match fast_fields {
        Some(f) => (
            format!("({fields_ok} AND t.\"{FAST_CELL}\" IS NOT NULL)"),
            format!(
                "(SELECT {} AS \"{FAST_CELL}\", {} AS \"{FAST_YEAR}\", {} AS \"{FAST_MONTH}\",
                    {} AS \"{FAST_VALUE}\", t.* FROM {from}) t",
                cell_of([
                    &f.year,
                    &f.month_missing,
                    &f.month,
                    &f.province,
                    &f.partner,
                    &f.hs_code,
                    &f.value,
                    &f.currency
                ]),
                f.year,
                f.month,
                f.value,
            ),
        ),
        None => ("false".to_string(), from.clone()),
    };
    let fast_cell = match fast_fields {
        Some(_) => format!("CASE WHEN {fast} THEN t.\"{FAST_CELL}\" END"),
        None => "CAST(NULL AS BIGINT)".to_string(),
    };
    let checked = CheckedFields {
        year_text: "year_text",
        year: "year",
        month_missing: "month_text IS NULL",
        month: "try_cast(month_text AS INT)",
        province: "province",
        partner: "partner",
        hs_code: "hs_code",
        value_text: "value_text",
        value_number: "value_number",
        value: "value",
        currency: "currency",
    };
    let reasons: String = record_checks(&checked, &lists)
        .into_iter()
        .map(|check| {
            format!(
                "\n                WHEN NOT coalesce({}, false) THEN '{}'",
                check.passes, check.reason
            )
        })
        .collect();
    let slow_cell = cell_of([
        checked.year,
        checked.month_missing,
        checked.month,
        checked.province,
        checked.partner,
        checked.hs_code,
        checked.value,
        checked.currency,
    ]);
    // A clean record takes its fields as they are; the others are trimmed and cased.
    let either = |pick: fn(&FastFields) -> &String, slow: &str| match fast_fields {
        Some(f) => format!("CASE WHEN {fast} THEN {} ELSE {slow} END", pick(f)),
        None => slow.to_string(),
    };
    let number = |text: &str, sql_type: &str| format!("try_cast({text} AS {sql_type})");
    let slow_year = number(year, "INT");
    let slow_value = format!("{} * {multiplier}", number(value, "DOUBLE"));
    // A clean record's numbers as the subquery parsed them.
    let parsed = |column: &str, slow: &str| match fast_fields {
        Some(_) => format!("CASE WHEN {fast} THEN t.\"{column}\" ELSE {slow} END"),
        None => slow.to_string(),
    };
    let year_out = parsed(FAST_YEAR, &slow_year);
    let month_out = parsed(FAST_MONTH, &number(month, "INT"));
    let province_out = either(|f| &f.province, province);
    let partner_out = either(|f| &f.partner, partner);
    let hs_out = either(|f| &f.hs_code, hs_code);
    let value_out = parsed(FAST_VALUE, &slow_value);
    let currency_out = either(|f| &f.currency, currency);
    let number_text = number(value, "DOUBLE");
    format!(
        "SELECT year, month, province, partner, hs_code, value, currency, line, raw, rule,
            reason,
            CASE WHEN fast_cell IS NOT NULL THEN fast_cell
                 WHEN reason IS NULL AND rule IS NULL THEN {slow_cell} END AS cell
        FROM (
            SELECT year, month, province, partner, hs_code, value, currency, line, raw,
                fast_cell, month_text,
                CASE WHEN fast THEN NULL WHEN pre_reason IS NULL THEN rule END AS rule,
                CASE
                    WHEN fast THEN NULL
                    WHEN pre_reason IS NOT NULL THEN pre_reason
                    WHEN rule IS NOT NULL THEN NULL{reasons}
                END AS reason
            FROM (
                SELECT {fast} AS fast, {fast_cell} AS fast_cell,
                    {year_out} AS year, {month_out} AS month, {province_out} AS province,
                    {partner_out} AS partner, {hs_out} AS hs_code, {value_out} AS value,
                    {currency_out} AS currency,
                    CASE WHEN {fast} THEN NULL ELSE {line} END AS line,
                    CASE WHEN {fast} THEN NULL ELSE {raw} END AS raw,
                    CASE WHEN {fast} THEN NULL
                         WHEN NOT ({fields_ok}) THEN {shape_reason} ELSE {pre_reason} END
                        AS pre_reason,
                    CASE WHEN {fast} THEN NULL WHEN {fields_ok} THEN {rule} END AS rule,
                    CASE WHEN {fast} THEN NULL ELSE {year} END AS year_text,
                    CASE WHEN {fast} THEN NULL ELSE {month} END AS month_text,
                    CASE WHEN {fast} THEN NULL ELSE {value} END AS value_text,
                    CASE WHEN {fast} THEN NULL ELSE {number_text} END AS value_number
                FROM {from}
            )
        )"
    )
}
