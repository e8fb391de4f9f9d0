//! The code tables, each a small CSV file with a fixed header, and their rows as types:
//! the four every run reads (`[tables]`: HS chapters, partner regions, provinces, exchange
//! rates), the report's province tiles, and the tables of the source formats (China
//! Customs partner codes, Comtrade's partner aliases, BACI's country codes).
//!
//! Every table is read by one set of rules ([`CodeTable::parse`]): UTF-8 (a byte order mark
//! is ignored), the exact header, then one row per line as CSV (a `"quoted, field"` may
//! hold commas); blank lines and lines starting with `#` are skipped; no field has
//! surrounding spaces (plans join on fields as written, so padding would silently break a
//! match); each row's key is unique; and each row type checks its own fields. Checks that
//! span tables or need the run's years (coverage) are the loader's.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::text::utf8_text;

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

/// A row of a code table.
pub trait CodeRow: Sized {
    /// The table's header, which is also its columns' names.
    const HEADER: &'static [&'static str];

    /// Reads and checks one row's fields (as many as [`Self::HEADER`]); the error says what
    /// is wrong, the caller adds the file and line.
    fn from_fields(fields: &[&str]) -> Result<Self, String>;

    /// The value that must be unique in the table.
    fn key(&self) -> String;
}

/// A code table's rows, each with its 1-based line.
#[derive(Debug, Clone)]
pub struct CodeTable<R> {
    /// Where the table was read from.
    pub file: String,
    /// The rows in file order.
    pub rows: Vec<(usize, R)>,
}

impl<R: CodeRow> CodeTable<R> {
    /// Reads the table in `bytes`, from `file` (named in errors).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self> {
        let error = |line: usize, message: String| Error::CodeTableLine {
            file: file.to_string(),
            line,
            message,
        };
        let text = utf8_text(bytes).map_err(|line| error(line, "not valid UTF-8".into()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
            .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|(number, line)| {
                let fields = line_fields(line).map_err(|e| error(number, e.to_string()))?;
                Ok((number, fields))
            });
        let header = R::HEADER.join(",");
        let Some(first) = lines.next() else {
            return Err(error(1, "the table is empty".into()));
        };
        let (number, names) = first?;
        let names: Vec<&str> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if i == 0 {
                    name.trim_start_matches('\u{feff}')
                } else {
                    name
                }
            })
            .collect();
        if names != R::HEADER {
            return Err(error(
                number,
                format!("header must be `{header}`, found `{}`", names.join(",")),
            ));
        }
        let mut rows = Vec::new();
        let mut keys = BTreeMap::new();
        for next in lines {
            let (line, record) = next?;
            let fields: Vec<&str> = record.iter().collect();
            if fields.len() != R::HEADER.len() {
                return Err(error(
                    line,
                    format!(
                        "expected {} fields, found {}",
                        R::HEADER.len(),
                        fields.len()
                    ),
                ));
            }
            if let Some(field) = fields.iter().find(|f| f.trim() != **f) {
                return Err(error(
                    line,
                    format!("field `{field}` has surrounding spaces"),
                ));
            }
            let row = R::from_fields(&fields).map_err(|message| error(line, message))?;
            if let Some(first) = keys.insert(row.key(), line) {
                return Err(error(
                    line,
                    format!("`{}` is listed twice (first on line {first})", row.key()),
                ));
            }
            rows.push((line, row));
        }
        Ok(Self {
            file: file.to_string(),
            rows,
        })
    }

    /// An error on `line` of the table.
    pub fn error(&self, line: usize, message: impl Into<String>) -> Error {
        Error::CodeTableLine {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    /// An error about the table as a whole: keys it must cover and does not.
    pub fn coverage_error(&self, message: impl Into<String>) -> Error {
        Error::CodeTableCoverage {
            file: self.file.clone(),
            message: message.into(),
        }
    }

    /// The rows without their lines.
    pub fn into_rows(self) -> impl Iterator<Item = R> {
        self.rows.into_iter().map(|(_, row)| row)
    }
}

/// The fields of one line, as CSV.
fn line_fields(line: &str) -> std::result::Result<csv::StringRecord, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    reader.read_record(&mut record)?;
    Ok(record)
}

fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{what} `{value}` is not one of {}",
            allowed.join(", ")
        ))
    }
}

/// An ISO 3166-1 alpha-3 code as the format tables write them: three letters or digits,
/// or empty (not a country).
fn optional_iso3(value: &str) -> Result<Option<String>, String> {
    match value {
        "" => Ok(None),
        code if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Some(code.to_string()))
        }
        other => Err(format!("`{other}` is not an ISO 3166-1 alpha-3 code")),
    }
}

/// `hs_chapters.csv`: an HS chapter (`01`-`99`) and its factor-intensity category.
#[derive(Debug, Clone, PartialEq)]
pub struct HsChapter {
    /// Two digits.
    pub chapter: String,
    /// One of [`CHAPTER_CATEGORIES`].
    pub category: String,
}

impl CodeRow for HsChapter {
    const HEADER: &'static [&'static str] = &["chapter", "category"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let chapter = fields[0];
        if chapter.len() != 2 || !all_digits(chapter) || chapter == "00" {
            return Err(format!("chapter `{chapter}` is not 01-99"));
        }
        Ok(Self {
            chapter: chapter.to_string(),
            category: one_of("category", fields[1], &CHAPTER_CATEGORIES)?,
        })
    }

    fn key(&self) -> String {
        self.chapter.clone()
    }
}

/// `partner_regions.csv`: a partner (ISO3), its name and its world region.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerRegion {
    /// Three capital letters.
    pub iso3: String,
    /// The partner's English name.
    pub name: String,
    /// One of [`REGIONS`].
    pub region: String,
}

impl CodeRow for PartnerRegion {
    const HEADER: &'static [&'static str] = &["iso3", "name", "region"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let iso3 = fields[0];
        if iso3.len() != 3 || !iso3.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("`{iso3}` is not an ISO 3166-1 alpha-3 code"));
        }
        Ok(Self {
            iso3: iso3.to_string(),
            name: fields[1].to_string(),
            region: one_of("region", fields[2], &REGIONS)?,
        })
    }

    fn key(&self) -> String {
        self.iso3.clone()
    }
}

/// `provinces.csv`: a province's two-digit code, names and macro-region.
#[derive(Debug, Clone, PartialEq)]
pub struct Province {
    /// Two digits (the GB/T 2260 prefix).
    pub code: String,
    /// The English name.
    pub name: String,
    /// The Chinese name.
    pub name_zh: String,
    /// One of [`MACRO_REGIONS`].
    pub macro_region: String,
}

impl CodeRow for Province {
    const HEADER: &'static [&'static str] = &["code", "name", "name_zh", "macro_region"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let code = fields[0];
        if code.len() != 2 || !all_digits(code) {
            return Err(format!("province code `{code}` is not two digits"));
        }
        Ok(Self {
            code: code.to_string(),
            name: fields[1].to_string(),
            name_zh: fields[2].to_string(),
            macro_region: one_of("macro_region", fields[3], &MACRO_REGIONS)?,
        })
    }

    fn key(&self) -> String {
        self.code.clone()
    }
}

/// `cny_per_usd.csv`: a year's average exchange rate.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRate {
    /// The year.
    pub year: i32,
    /// Yuan per US dollar, positive.
    pub cny_per_usd: f64,
}

impl CodeRow for ExchangeRate {
    const HEADER: &'static [&'static str] = &["year", "cny_per_usd"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let year = fields[0]
            .parse()
            .map_err(|_| format!("year `{}` is not a number", fields[0]))?;
        let cny_per_usd = fields[1]
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| format!("rate `{}` is not a positive number", fields[1]))?;
        Ok(Self { year, cny_per_usd })
    }

    fn key(&self) -> String {
        self.year.to_string()
    }
}

/// `cny_per_usd_monthly.csv` (optional, `[tables] exchange-rates-monthly`): a month's
/// average exchange rate, which converts the records of that month as customs does.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyExchangeRate {
    /// The year.
    pub year: i32,
    /// The month, 1-12.
    pub month: u8,
    /// Yuan per US dollar, positive.
    pub cny_per_usd: f64,
}

impl CodeRow for MonthlyExchangeRate {
    const HEADER: &'static [&'static str] = &["year", "month", "cny_per_usd"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let year = fields[0]
            .parse()
            .map_err(|_| format!("year `{}` is not a number", fields[0]))?;
        let month = fields[1]
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| format!("month `{}` is not 1-12", fields[1]))?;
        let cny_per_usd = fields[2]
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| format!("rate `{}` is not a positive number", fields[2]))?;
        Ok(Self {
            year,
            month,
            cny_per_usd,
        })
    }

    fn key(&self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }
}

/// `province_tiles.csv`: a province's tile on the report's map grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvinceTile {
    /// The province's code.
    pub code: String,
    /// Row 0-31, 0 the north.
    pub row: u32,
    /// Column 0-31, 0 the west.
    pub column: u32,
}

impl CodeRow for ProvinceTile {
    const HEADER: &'static [&'static str] = &["code", "row", "column"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let position = |field: &str, what: &str| {
            field
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 32)
                .ok_or_else(|| format!("{what} `{field}` is not 0-31"))
        };
        Ok(Self {
            code: fields[0].to_string(),
            row: position(fields[1], "row")?,
            column: position(fields[2], "column")?,
        })
    }

    fn key(&self) -> String {
        self.code.clone()
    }
}

/// `customs_partner_codes.csv`: a China Customs partner code and the ISO3 it stands for;
/// none when the partner is not a country (excluded by rule).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomsPartner {
    /// Three digits.
    pub code: String,
    /// The country's ISO3.
    pub iso3: Option<String>,
    /// The Chinese name.
    pub name_zh: String,
}

impl CodeRow for CustomsPartner {
    const HEADER: &'static [&'static str] = &["code", "iso3", "name_zh"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let code = fields[0];
        if code.len() != 3 || !all_digits(code) {
            return Err(format!("`{code}` is not a valid code"));
        }
        Ok(Self {
            code: code.to_string(),
            iso3: optional_iso3(fields[1])?,
            name_zh: fields[2].to_string(),
        })
    }

    fn key(&self) -> String {
        self.code.clone()
    }
}

/// `comtrade_partner_aliases.csv`: a Comtrade partner code that is not an ISO3 (`S19`) and
/// the ISO3 it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ComtradeAlias {
    /// Three capital letters or digits.
    pub code: String,
    /// The country's ISO3; none when the code is not a country.
    pub iso3: Option<String>,
    /// The English name.
    pub name: String,
}

impl CodeRow for ComtradeAlias {
    const HEADER: &'static [&'static str] = &["code", "iso3", "name"];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let code = fields[0];
        let valid = code.len() == 3
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(format!("`{code}` is not a valid code"));
        }
        Ok(Self {
            code: code.to_string(),
            iso3: optional_iso3(fields[1])?,
            name: fields[2].to_string(),
        })
    }

    fn key(&self) -> String {
        self.code.clone()
    }
}

/// A BACI release's `country_codes_V*.csv`: BACI's numeric country code and its ISO codes.
#[derive(Debug, Clone, PartialEq)]
pub struct BaciCountry {
    /// Digits (ISO 3166-1 numeric, or BACI's own).
    pub code: String,
    /// The English name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub iso2: String,
    /// The country's ISO3; none for a code that is not a country.
    pub iso3: Option<String>,
}

impl CodeRow for BaciCountry {
    const HEADER: &'static [&'static str] = &[
        "country_code",
        "country_name",
        "country_iso2",
        "country_iso3",
    ];

    fn from_fields(fields: &[&str]) -> Result<Self, String> {
        let code = fields[0];
        if code.is_empty() || !all_digits(code) {
            return Err(format!("`{code}` is not a valid country_code"));
        }
        Ok(Self {
            code: code.to_string(),
            name: fields[1].to_string(),
            iso2: fields[2].to_string(),
            iso3: optional_iso3(fields[3])?,
        })
    }

    fn key(&self) -> String {
        self.code.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<R: CodeRow>(text: &str) -> Result<CodeTable<R>> {
        CodeTable::parse("t.csv", text.as_bytes())
    }

    fn message<R: CodeRow + std::fmt::Debug>(text: &str) -> String {
        parse::<R>(text).unwrap_err().to_string()
    }

    #[test]
    fn rows_are_read_with_their_lines_skipping_comments_and_blank_lines() {
        let table = parse::<BaciCountry>(
            "\u{feff}country_code,country_name,country_iso2,country_iso3\n\
             # a comment\n\
             156,China,CN,CHN\n\
             \n   \n\
             344,\"China, Hong Kong SAR\",HK,HKG\r\n\
             999,Not a country,,\n",
        )
        .unwrap();
        let lines: Vec<usize> = table.rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [3, 6, 7]);
        assert_eq!(table.rows[1].1.name, "China, Hong Kong SAR");
        assert_eq!(table.rows[2].1.iso3, None);
    }

    #[test]
    fn bad_tables_are_refused_naming_file_and_line() {
        let cases = [
            (
                message::<HsChapter>(""),
                "code table t.csv: line 1: the table is empty",
            ),
            (
                message::<HsChapter>("chapter,kind\n"),
                "line 1: header must be `chapter,category`, found `chapter,kind`",
            ),
            (
                message::<HsChapter>("chapter,category\n01,labor\n00,labor\n"),
                "line 3: chapter `00` is not 01-99",
            ),
            (
                message::<HsChapter>("chapter,category\n01,labor\n01,capital\n"),
                "line 3: `01` is listed twice (first on line 2)",
            ),
            (
                message::<HsChapter>("chapter,category\n01,labor,x\n"),
                "line 2: expected 2 fields, found 3",
            ),
            (
                message::<HsChapter>("chapter,category\n01, labor\n"),
                "line 2: field ` labor` has surrounding spaces",
            ),
            (
                message::<PartnerRegion>("iso3,name,region\nUSA,United States,europe\n"),
                "region `europe` is not one of",
            ),
            (
                message::<ExchangeRate>("year,cny_per_usd\n2020,-1\n"),
                "line 2: rate `-1` is not a positive number",
            ),
            (
                message::<CustomsPartner>("code,iso3,name_zh\n502,US,美国\n"),
                "line 2: `US` is not an ISO 3166-1 alpha-3 code",
            ),
            (
                message::<ProvinceTile>("code,row,column\n11,40,2\n"),
                "line 2: row `40` is not 0-31",
            ),
        ];
        for (error, expected) in cases {
            assert!(error.contains(expected), "`{error}` lacks `{expected}`");
        }
        let invalid = CodeTable::<HsChapter>::parse("t.csv", b"chapter,category\n01,\xff\n");
        assert!(
            invalid
                .unwrap_err()
                .to_string()
                .contains("line 2: not valid UTF-8")
        );
    }
}
