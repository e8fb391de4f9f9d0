//! The cube kernel's functions. A record that passes every check of its fields becomes one
//! integer, its *cell*: its year, origin, partner, the category of its HS chapter and its
//! currency packed into an `Int64`. The one pass over a file then groups its records by that
//! integer, not by five strings, and the code tables are joined to the few distinct cells,
//! not to records. A cell holds the category, not the chapter: the cube needs no more, and
//! a file's grouping table is then twenty times smaller (five categories for 98 chapters),
//! small enough to stay in the processor's caches.
//!
//! Every code the checks accept has a fixed shape (two digits or three capitals for an
//! origin, three capitals for a partner, two digits for a chapter), so each maps to a small
//! slot number with a little arithmetic, and whether the run knows it is one look-up in a
//! table indexed by slot, built once per run's code tables: a check of a field's value costs
//! the same whatever the table's size, with no hashing and no string compared.
//!
//! Both functions are plain scalar functions registered in every session exdep makes,
//! embedded or a cluster's client, and in exdep's scheduler and executors
//! ([`cell_functions`]); the run's code tables travel as a text argument
//! ([`CellDomain::literal`]), so a cluster's executors need nothing of the run's config.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, StringArray, StringViewArray, new_null_array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use exdep_core::codes::CHAPTER_CATEGORIES;
use exdep_core::schema::{KnownCodes, MAX_RECORD_VALUE};

/// The name of the function that makes a record's cell (see [`CellKey`]).
pub const CELL_KEY: &str = "exdep_cell_key";
/// The name of the function that reads one part of a cell (see [`CellPart`]).
pub const CELL_PART: &str = "exdep_cell_part";
/// The name of the function that numbers an HS code's product (see [`ProductCode`]).
pub const PRODUCT_CODE: &str = "exdep_product_code";

/// Slots of two-digit codes (`00`-`99`), then of three-capital codes (`AAA`-`ZZZ`).
const CODE_SLOTS: usize = 100 + 26 * 26 * 26;

/// A cell's bits, from the lowest: currency (1), category (7: its index in
/// [`CHAPTER_CATEGORIES`]), partner slot (15), origin slot (15), year (14): 52 bits, so a
/// cell is a non-negative `Int64`.
const CATEGORY_SHIFT: u32 = 1;
const PARTNER_SHIFT: u32 = 8;
/// The lowest bit of a cell's origin: the bits from here up are its origin and year, and
/// bit 0 its currency (the time guards' slices keep those, see `exdep_classify`).
pub const ORIGIN_SHIFT: u32 = 23;
const YEAR_SHIFT: u32 = 38;
pub(crate) const CODE_MASK: i64 = (1 << 15) - 1;
const CATEGORY_MASK: i64 = (1 << 7) - 1;
const LAST_YEAR: i32 = (1 << 14) - 1;

/// The currencies a record may be in, by their bit in a cell.
const CURRENCIES: [&[u8]; 2] = [b"USD", b"CNY"];

/// The slot of a code of the shapes the checks accept: two ASCII digits, or three ASCII
/// capitals; `None` for anything else.
fn code_slot(code: &[u8]) -> Option<usize> {
    match *code {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(usize::from(a - b'0') * 10 + usize::from(b - b'0'))
        }
        [a, b, c] if code.iter().all(u8::is_ascii_uppercase) => Some(
            100 + (usize::from(a - b'A') * 26 + usize::from(b - b'A')) * 26 + usize::from(c - b'A'),
        ),
        _ => None,
    }
}

/// The code in `slot` (the inverse of [`code_slot`]).
fn slot_code(slot: usize) -> String {
    if slot < 100 {
        format!("{slot:02}")
    } else {
        let slot = slot - 100;
        let letter = |n: usize| char::from(b'A' + (n % 26) as u8);
        [letter(slot / 676), letter(slot / 26), letter(slot)]
            .iter()
            .collect()
    }
}

/// The codes a run accepts: its years, and the origins, partners and HS chapters (with
/// their categories) of its code tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellDomain {
    years: Vec<i32>,
    origins: Vec<String>,
    partners: Vec<String>,
    /// Chapter -> category.
    chapters: BTreeMap<String, String>,
}

impl CellDomain {
    /// The domain of a run of `years` with the code tables' `known` codes. Every code must
    /// have a shape a cell can hold (the code tables are checked for it at load).
    pub fn new(years: impl IntoIterator<Item = i32>, known: &KnownCodes) -> Result<Self, String> {
        let domain = CellDomain {
            years: years.into_iter().collect(),
            origins: known.origins.clone(),
            partners: known.partners.clone(),
            chapters: known.chapters.clone(),
        };
        domain.lookups()?;
        Ok(domain)
    }

    /// The domain as the text argument of [`CELL_KEY`]: `years=2017,2018;origins=11,...;
    /// partners=...;chapters=01:resource,...`.
    pub fn literal(&self) -> String {
        let years: Vec<String> = self.years.iter().map(i32::to_string).collect();
        let chapters: Vec<String> = (self.chapters.iter())
            .map(|(chapter, category)| format!("{chapter}:{category}"))
            .collect();
        format!(
            "years={};origins={};partners={};chapters={}",
            years.join(","),
            self.origins.join(","),
            self.partners.join(","),
            chapters.join(",")
        )
    }

    fn parse(literal: &str) -> Result<Self, String> {
        let mut parts = literal.split(';').map(|part| {
            let (name, list) = part.split_once('=').unwrap_or((part, ""));
            let items = list
                .split(',')
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>();
            (name, items)
        });
        let mut next = |expected: &str| match parts.next() {
            Some((name, items)) if name == expected => Ok(items),
            _ => Err(format!(
                "`{literal}` is not a cell domain: `{expected}=` expected"
            )),
        };
        let years = next("years")?
            .iter()
            .map(|year| {
                year.parse()
                    .map_err(|_| format!("year `{year}` is not a number"))
            })
            .collect::<Result<_, _>>()?;
        let (origins, partners) = (next("origins")?, next("partners")?);
        let chapters = next("chapters")?
            .iter()
            .map(|item| match item.split_once(':') {
                Some((chapter, category)) => Ok((chapter.to_string(), category.to_string())),
                None => Err(format!("chapter `{item}` has no `:category`")),
            })
            .collect::<Result<_, _>>()?;
        Ok(CellDomain {
            years,
            origins,
            partners,
            chapters,
        })
    }

    fn lookups(&self) -> Result<Lookups, String> {
        let slots = |codes: &[String], what: &str| {
            let mut known = vec![false; CODE_SLOTS];
            for code in codes {
                let slot = code_slot(code.as_bytes())
                    .ok_or_else(|| format!("{what} code `{code}` has no cell slot"))?;
                known[slot] = true;
            }
            Ok::<_, String>(known)
        };
        let mut categories = [None; 100];
        for (chapter, category) in &self.chapters {
            let slot = code_slot(chapter.as_bytes())
                .filter(|slot| *slot < 100)
                .ok_or_else(|| format!("HS chapter `{chapter}` is not two digits"))?;
            let index = (CHAPTER_CATEGORIES.iter())
                .position(|known| known == category)
                .ok_or_else(|| format!("chapter {chapter}'s category `{category}` is unknown"))?;
            categories[slot] = Some(index as u8);
        }
        if let Some(year) = self.years.iter().find(|y| !(0..=LAST_YEAR).contains(*y)) {
            return Err(format!("year {year} is outside 0-{LAST_YEAR}"));
        }
        Ok(Lookups {
            years: self.years.clone(),
            origins: slots(&self.origins, "origin")?,
            partners: slots(&self.partners, "partner")?,
            categories,
        })
    }
}

/// A domain's look-up tables, indexed by slot.
#[derive(Debug)]
struct Lookups {
    years: Vec<i32>,
    origins: Vec<bool>,
    partners: Vec<bool>,
    /// A chapter's category (its index in [`CHAPTER_CATEGORIES`]), if the run knows it.
    categories: [Option<u8>; 100],
}

/// A record's fields, as the kernel reads them.
struct Fields<'a> {
    year: Option<i32>,
    month_ok: bool,
    origin: Option<&'a [u8]>,
    partner: Option<&'a [u8]>,
    hs_code: Option<&'a [u8]>,
    value: Option<f64>,
    currency: Option<&'a [u8]>,
}

impl Lookups {
    /// The record's cell, or `None` when any check of its fields fails: a year of the run,
    /// a month that is missing or 1-12, a known origin and partner, an HS code of 2, 4, 6,
    /// 8 or 10 digits whose chapter is known, a value from 0 to the largest a record may
    /// have (which leaves out NaN and the infinities), and USD or CNY.
    fn cell(&self, fields: &Fields) -> Option<i64> {
        let year = fields.year.filter(|year| self.years.contains(year))?;
        if !fields.month_ok {
            return None;
        }
        let origin = code_slot(fields.origin?).filter(|slot| self.origins[*slot])?;
        let partner = code_slot(fields.partner?).filter(|slot| self.partners[*slot])?;
        let hs_code = fields.hs_code?;
        let hs_shaped =
            matches!(hs_code.len(), 2 | 4 | 6 | 8 | 10) && hs_code.iter().all(u8::is_ascii_digit);
        let category = code_slot(&hs_code[..2.min(hs_code.len())])
            .filter(|_| hs_shaped)
            .and_then(|slot| self.categories[slot])?;
        fields
            .value
            .filter(|value| (0.0..=MAX_RECORD_VALUE).contains(value))?;
        let currency = CURRENCIES
            .iter()
            .position(|code| Some(*code) == fields.currency)?;
        Some(
            i64::from(year) << YEAR_SHIFT
                | (origin as i64) << ORIGIN_SHIFT
                | (partner as i64) << PARTNER_SHIFT
                | i64::from(category) << CATEGORY_SHIFT
                | currency as i64,
        )
    }
}

/// A text argument, read in place.
enum Texts<'a> {
    Plain(&'a StringArray),
    View(&'a StringViewArray),
}

impl<'a> Texts<'a> {
    fn of(array: &'a ArrayRef) -> DfResult<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(Texts::Plain(array.as_string::<i32>())),
            DataType::Utf8View => Ok(Texts::View(array.as_string_view())),
            other => exec_err!("{CELL_KEY}: a text argument is {other}"),
        }
    }

    fn get(&self, row: usize) -> Option<&'a [u8]> {
        match self {
            Texts::Plain(texts) => texts.is_valid(row).then(|| texts.value(row).as_bytes()),
            Texts::View(texts) => texts.is_valid(row).then(|| texts.value(row).as_bytes()),
        }
    }
}

/// The text of a literal argument.
fn literal_text<'a>(arg: &'a ColumnarValue, function: &str) -> DfResult<&'a str> {
    match arg {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(text))
            | ScalarValue::Utf8View(Some(text))
            | ScalarValue::LargeUtf8(Some(text)),
        ) => Ok(text),
        _ => exec_err!("{function}: its last argument must be a text literal"),
    }
}

/// `exdep_cell_key(year, month_missing, month, origin, partner, hs_code, value, currency,
/// domain)`: a record's cell (an `Int64`), or null when a check of its fields fails (see
/// `Lookups::cell`); `domain` is a [`CellDomain::literal`]. Integers are read as `Int32`,
/// the value as `Float64`, text as it comes (other text types as string views).
#[derive(Debug)]
pub struct CellKey {
    signature: Signature,
    /// The look-up tables of the last domain seen: one per run, so parsed once.
    lookups: Mutex<Option<(String, Arc<Lookups>)>>,
}

impl Default for CellKey {
    fn default() -> Self {
        CellKey {
            signature: Signature::user_defined(Volatility::Immutable),
            lookups: Mutex::new(None),
        }
    }
}

impl PartialEq for CellKey {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature
    }
}

impl Eq for CellKey {}

impl Hash for CellKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.signature.hash(state);
    }
}

impl CellKey {
    fn lookups(&self, literal: &str) -> DfResult<Arc<Lookups>> {
        let mut cached = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((text, lookups)) = cached.as_ref()
            && text == literal
        {
            return Ok(lookups.clone());
        }
        let lookups = match CellDomain::parse(literal).and_then(|domain| domain.lookups()) {
            Ok(lookups) => Arc::new(lookups),
            Err(message) => return exec_err!("{CELL_KEY}: {message}"),
        };
        // Once per process and run: a cluster's executors log it, which shows the kernel ran
        // there and not on the client.
        tracing::debug!(
            process = std::process::id(),
            "{CELL_KEY}: the run's codes read ({} bytes)",
            literal.len()
        );
        *cached = Some((literal.to_string(), lookups.clone()));
        Ok(lookups)
    }
}

impl ScalarUDFImpl for CellKey {
    fn name(&self) -> &str {
        CELL_KEY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != 9 {
            return plan_err!(
                "{CELL_KEY} takes 9 arguments (year, month_missing, month, origin, partner, \
                 hs_code, value, currency, domain), not {}",
                arg_types.len()
            );
        }
        let text = |data_type: &DataType| match data_type {
            DataType::Utf8 | DataType::Utf8View => data_type.clone(),
            _ => DataType::Utf8View,
        };
        Ok(vec![
            DataType::Int32,
            DataType::Boolean,
            DataType::Int32,
            text(&arg_types[3]),
            text(&arg_types[4]),
            text(&arg_types[5]),
            DataType::Float64,
            text(&arg_types[7]),
            DataType::Utf8,
        ])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let lookups = self.lookups(literal_text(&args.args[8], CELL_KEY)?)?;
        let rows = args.number_rows;
        let arrays = args.args[..8]
            .iter()
            .map(|arg| arg.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        let years = arrays[0].as_primitive::<Int32Type>();
        let months_missing = arrays[1].as_boolean();
        let months = arrays[2].as_primitive::<Int32Type>();
        let (origins, partners) = (Texts::of(&arrays[3])?, Texts::of(&arrays[4])?);
        let hs_codes = Texts::of(&arrays[5])?;
        let values = arrays[6].as_primitive::<Float64Type>();
        let currencies = Texts::of(&arrays[7])?;
        let valid = |array: &dyn Array, row: usize| array.is_valid(row);
        let cells: Int64Array = (0..rows)
            .map(|row| {
                let month_missing = valid(months_missing, row) && months_missing.value(row);
                let month_ok =
                    month_missing || (valid(months, row) && (1..=12).contains(&months.value(row)));
                lookups.cell(&Fields {
                    year: valid(years, row).then(|| years.value(row)),
                    month_ok,
                    origin: origins.get(row),
                    partner: partners.get(row),
                    hs_code: hs_codes.get(row),
                    value: valid(values, row).then(|| values.value(row)),
                    currency: currencies.get(row),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(cells)))
    }
}

/// The parts of a cell [`CellPart`] reads.
const PARTS: [&str; 5] = ["year", "origin", "partner", "category", "currency"];

/// `exdep_cell_part(cell, part)`: one part of a cell as text, `part` one of `year`,
/// `origin`, `partner`, `category` (its HS chapter's) and `currency`; null for a null
/// cell.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CellPart {
    signature: Signature,
}

impl Default for CellPart {
    fn default() -> Self {
        CellPart {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// One part of `cell` as text.
fn cell_part(cell: i64, part: &str) -> String {
    let code = |shift: u32| slot_code(((cell >> shift) & CODE_MASK) as usize);
    match part {
        "year" => (cell >> YEAR_SHIFT).to_string(),
        "origin" => code(ORIGIN_SHIFT),
        "partner" => code(PARTNER_SHIFT),
        "category" => {
            CHAPTER_CATEGORIES[((cell >> CATEGORY_SHIFT) & CATEGORY_MASK) as usize].to_string()
        }
        _ => String::from_utf8_lossy(CURRENCIES[(cell & 1) as usize]).into_owned(),
    }
}

impl ScalarUDFImpl for CellPart {
    fn name(&self) -> &str {
        CELL_PART
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("{CELL_PART} takes 2 arguments (cell, part)");
        }
        Ok(vec![DataType::Int64, DataType::Utf8])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let part = literal_text(&args.args[1], CELL_PART)?;
        if !PARTS.contains(&part) {
            return exec_err!(
                "{CELL_PART}: no part `{part}` (one of {})",
                PARTS.join(", ")
            );
        }
        let cells = args.args[0].to_array(args.number_rows)?;
        if cells.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(new_null_array(
                &DataType::Utf8,
                cells.len(),
            )));
        }
        let parts: StringArray = cells
            .as_primitive::<Int64Type>()
            .iter()
            .map(|cell| cell.map(|cell| cell_part(cell, part)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(parts)))
    }
}

/// The bits of a product number (see [`ProductCode`]).
pub const PRODUCT_BITS: u32 = 20;

/// A product's number (see [`ProductCode`]); `None` for a code of another shape. The
/// largest, 1 010 099, takes [`PRODUCT_BITS`] bits.
fn product_code(hs_code: &[u8]) -> Option<i32> {
    if hs_code.len() > VIEW_INLINE_BYTES {
        return None;
    }
    let mut view = [0u8; 16];
    view[..4].copy_from_slice(&(hs_code.len() as u32).to_le_bytes());
    view[4..4 + hs_code.len()].copy_from_slice(hs_code);
    let product = product_of_view(u128::from_le_bytes(view));
    (product >= 0).then_some(product)
}

/// The bytes a string view holds within itself: its text when it is no longer.
const VIEW_INLINE_BYTES: usize = 12;

/// The product of an HS code held within its string view (an Arrow view: the length in
/// the low 32 bits, then the text), or -1 (see [`product_code`]). The text is read as one
/// integer, its bytes checked for digits and its first six converted a word at a time, a
/// few operations that do not depend on the code, with no loop over its bytes.
fn product_of_view(view: u128) -> i32 {
    const ZEROS: u128 = 0x3030_3030_3030_3030_3030_3030;
    const SIXES: u128 = 0x0606_0606_0606_0606_0606_0606;
    const HIGH_NIBBLES: u128 = 0xF0F0_F0F0_F0F0_F0F0_F0F0_F0F0;
    let length = view as u32;
    if !matches!(length, 2 | 4 | 6 | 8 | 10) {
        return -1;
    }
    let bytes = (1u128 << (8 * length)) - 1;
    let code = (view >> 32) & bytes;
    // A digit's high nibble is 3 and its low nibble at most 9, so adding 6 leaves its high
    // nibble as it is (and, with every high nibble 3, carries into no other byte).
    let digits = (code & HIGH_NIBBLES) == ZEROS & bytes
        && ((code + (SIXES & bytes)) & HIGH_NIBBLES) == ZEROS & bytes;
    if !digits {
        return -1;
    }
    // The first six digits (a shorter code's all), after zeros up to eight digits: the
    // first digit in the lowest byte, as the text is laid out.
    let kept = length.min(6);
    let leading = (code as u64) & ((1u64 << (8 * kept)) - 1);
    let eight = (leading << (8 * (8 - kept))) | (ZEROS as u64 >> (8 * kept));
    // Two digits to a byte, four to two bytes, eight to four.
    let mut number = eight - ZEROS as u64;
    number = (number.wrapping_mul(10) + (number >> 8)) & 0x00FF_00FF_00FF_00FF;
    number = (number.wrapping_mul(100) + (number >> 16)) & 0x0000_FFFF_0000_FFFF;
    number = (number.wrapping_mul(10_000) + (number >> 32)) & 0xFFFF_FFFF;
    let number = number as i32;
    match kept {
        6 => number,
        4 => 1_000_000 + number,
        _ => 1_010_000 + number,
    }
}

/// `exdep_product_code(hs_code)`: the product of an HS code as a number, an `Int32`: its
/// first six digits, or for a code of four or two digits 10^6 plus its four digits or
/// 10^6 + 10^4 plus its two, so that `0101` and `010100` stay apart; null for a code that
/// is not 2, 4, 6, 8 or 10 digits.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProductCode {
    signature: Signature,
}

impl Default for ProductCode {
    fn default() -> Self {
        ProductCode {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ProductCode {
    fn name(&self) -> &str {
        PRODUCT_CODE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::Utf8View] => Ok(arg_types.to_vec()),
            [_] => Ok(vec![DataType::Utf8View]),
            _ => plan_err!("{PRODUCT_CODE} takes 1 argument (hs_code)"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let codes = args.args[0].to_array(args.number_rows)?;
        let products = match codes.data_type() {
            DataType::Utf8View => products_of_views(codes.as_string_view()),
            _ => {
                let codes = Texts::of(&codes)?;
                (0..args.number_rows)
                    .map(|row| codes.get(row).and_then(product_code))
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(products)))
    }
}

/// The products of string views' codes (see [`ProductCode`]). A code of a product is at
/// most ten bytes, which a view holds within itself, so only the views are read, never
/// their buffers; and the products are numbers first (-1 for none), their nulls made after
/// in one pass, so the loop over records has no null bitmap to build.
fn products_of_views(codes: &StringViewArray) -> Int32Array {
    let numbers: Vec<i32> = (codes.views().iter())
        .map(|view| product_of_view(*view))
        .collect();
    let shaped = BooleanBuffer::collect_bool(numbers.len(), |row| numbers[row] >= 0);
    let nulls = NullBuffer::union(codes.nulls(), Some(&NullBuffer::new(shaped)));
    Int32Array::new(numbers.into(), nulls)
}

/// The kernel's functions, for every session and cluster process to register.
pub fn cell_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(CellKey::default())),
        Arc::new(ScalarUDF::from(CellPart::default())),
        Arc::new(ScalarUDF::from(ProductCode::default())),
    ]
}

/// SQL over cells and product keys, for plans that stay on integers until their last
/// step. A *product key* is one `Int64` per origin, partner, category and product: a
/// cell's origin, partner and category bits (not its year, which the cube's partitions
/// hold, nor its currency, which is converted by then) above the product's number, so
/// `key >> PRODUCT_BITS` is a cell of year 0 in USD that [`CELL_PART`] reads.
pub mod cell_sql {
    use super::{
        CATEGORY_MASK, CATEGORY_SHIFT, CHAPTER_CATEGORIES, CODE_MASK, ORIGIN_SHIFT, PARTNER_SHIFT,
        PRODUCT_BITS, YEAR_SHIFT, code_slot,
    };

    /// The bits of a cell a product key keeps: its category, partner and origin.
    const PLACE_MASK: i64 = ((1 << YEAR_SHIFT) - 1) & !1;

    /// The lowest bit of a product key's origin.
    pub const KEY_ORIGIN_SHIFT: u32 = ORIGIN_SHIFT + PRODUCT_BITS;

    /// The bits of a product key below its origin: its partner, category and product.
    pub const KEY_WITHOUT_ORIGIN_MASK: i64 = (1 << KEY_ORIGIN_SHIFT) - 1;

    /// The origin slot of the national aggregate in a product key: no code has it.
    pub const NATIONAL_SLOT: i64 = CODE_MASK;

    /// The year of `cell`, an `INT`.
    pub fn year(cell: &str) -> String {
        format!("CAST({cell} >> {YEAR_SHIFT} AS INT)")
    }

    /// Whether `cell`'s records are in USD (else CNY).
    pub fn in_usd(cell: &str) -> String {
        format!("{cell} % 2 = 0")
    }

    /// The product key of `cell` and the product number `product`.
    pub fn product_key(cell: &str, product: &str) -> String {
        format!("(({cell} & {PLACE_MASK}) << {PRODUCT_BITS}) + {product}")
    }

    /// The slot of a cell part in `cell` (`origin` or `partner`).
    fn slot(cell: &str, shift: u32) -> String {
        format!("(({cell} >> {shift}) & {CODE_MASK})")
    }

    /// Whether `cell`'s origin is one of `origins`, given by their codes.
    pub fn origin_in<'a>(cell: &str, origins: impl IntoIterator<Item = &'a String>) -> String {
        let slots = slot_list(origins);
        format!("{} IN ({slots})", slot(cell, ORIGIN_SHIFT))
    }

    /// Whether `cell`'s partner is `partner` (a code of three capitals).
    pub fn partner_is(cell: &str, partner: &str) -> String {
        let code = code_slot(partner.as_bytes()).expect("a partner code has a slot");
        format!("{} = {code}", slot(cell, PARTNER_SHIFT))
    }

    /// Whether `cell`'s HS chapter is of `category` (one of [`CHAPTER_CATEGORIES`]).
    pub fn category_is(cell: &str, category: &str) -> String {
        let index = (CHAPTER_CATEGORIES.iter())
            .position(|known| *known == category)
            .expect("a category of CHAPTER_CATEGORIES");
        format!("(({cell} >> {CATEGORY_SHIFT}) & {CATEGORY_MASK}) = {index}")
    }

    /// The slots of `codes` as an SQL list (`-1`, no slot, for none, so the list is never
    /// empty). Codes without a slot are left out: no cell holds them.
    pub fn slot_list<'a>(codes: impl IntoIterator<Item = &'a String>) -> String {
        let slots: Vec<String> = (codes.into_iter())
            .filter_map(|code| code_slot(code.as_bytes()))
            .map(|slot| slot.to_string())
            .collect();
        if slots.is_empty() {
            "-1".to_string()
        } else {
            slots.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups() -> Lookups {
        let known = KnownCodes {
            origins: vec!["11".into(), "44".into(), "USA".into()],
            partners: vec!["CHN".into(), "DEU".into(), "ZZZ".into()],
            chapters: [("01", "resource"), ("09", "labor"), ("85", "technology")]
                .into_iter()
                .chain([("99", "excluded")])
                .map(|(chapter, category)| (chapter.into(), category.into()))
                .collect(),
        };
        CellDomain::new([2017, 2022], &known)
            .unwrap()
            .lookups()
            .unwrap()
    }

    fn record<'a>(origin: &'a str, hs_code: &'a str, value: f64) -> Fields<'a> {
        Fields {
            year: Some(2022),
            month_ok: true,
            origin: Some(origin.as_bytes()),
            partner: Some(b"DEU"),
            hs_code: Some(hs_code.as_bytes()),
            value: Some(value),
            currency: Some(b"CNY"),
        }
    }

    #[test]
    fn a_cell_gives_back_its_parts() {
        let cell = lookups().cell(&record("44", "09012100", 5.0)).unwrap();
        let parts: Vec<String> = PARTS.iter().map(|part| cell_part(cell, part)).collect();
        assert_eq!(parts, ["2022", "44", "DEU", "labor", "CNY"]);
        let extremes = Fields {
            year: Some(2017),
            currency: Some(b"USD"),
            partner: Some(b"ZZZ"),
            ..record("USA", "99", 0.0)
        };
        let cell = lookups().cell(&extremes).unwrap();
        let parts: Vec<String> = PARTS.iter().map(|part| cell_part(cell, part)).collect();
        assert_eq!(parts, ["2017", "USA", "ZZZ", "excluded", "USD"]);
        assert!(cell >= 0);
    }

    #[test]
    fn every_failed_check_gives_no_cell() {
        let lookups = lookups();
        let refused = [
            Fields {
                year: Some(2018),
                ..record("44", "0901", 1.0)
            },
            Fields {
                year: None,
                ..record("44", "0901", 1.0)
            },
            Fields {
                month_ok: false,
                ..record("44", "0901", 1.0)
            },
            record("12", "0901", 1.0),
            record("4", "0901", 1.0),
            record("usa", "0901", 1.0),
            record(" 44", "0901", 1.0),
            Fields {
                partner: Some(b"deu"),
                ..record("44", "0901", 1.0)
            },
            Fields {
                partner: None,
                ..record("44", "0901", 1.0)
            },
            record("44", "0201", 1.0),
            record("44", "090", 1.0),
            record("44", "9", 1.0),
            record("44", "", 1.0),
            record("44", "09012", 1.0),
            record("44", "090121001", 1.0),
            record("44", "090121000011", 1.0),
            record("44", "09a1", 1.0),
            record("44", "0901 ", 1.0),
            record("44", "0901", -1.0),
            record("44", "0901", f64::NAN),
            record("44", "0901", f64::INFINITY),
            record("44", "0901", 1e15 + 1.0),
            Fields {
                value: None,
                ..record("44", "0901", 1.0)
            },
            Fields {
                currency: Some(b"usd"),
                ..record("44", "0901", 1.0)
            },
            Fields {
                currency: Some(b"EUR"),
                ..record("44", "0901", 1.0)
            },
        ];
        for (i, fields) in refused.iter().enumerate() {
            assert_eq!(lookups.cell(fields), None, "case {i}");
        }
        for accepted in [
            record("44", "0901", 0.0),
            record("44", "0901", -0.0),
            record("44", "0901", 1e15),
            record("44", "8542310000", 1.0),
        ] {
            assert!(lookups.cell(&accepted).is_some());
        }
    }

    #[test]
    fn a_domain_survives_its_literal() {
        let known = KnownCodes {
            origins: vec!["11".into()],
            partners: vec!["DEU".into()],
            chapters: [("01".into(), "resource".into())].into(),
        };
        let domain = CellDomain::new([2017, 2018], &known).unwrap();
        assert_eq!(CellDomain::parse(&domain.literal()).unwrap(), domain);
        assert!(CellDomain::parse("origins=11").is_err());
        let bad = KnownCodes {
            origins: vec!["1A".into()],
            ..known.clone()
        };
        let message = CellDomain::new([2017], &bad).unwrap_err();
        assert!(message.contains("`1A`"), "{message}");
        let unknown_category = KnownCodes {
            chapters: [("01".into(), "fishing".into())].into(),
            ..known
        };
        let message = CellDomain::new([2017], &unknown_category).unwrap_err();
        assert!(message.contains("`fishing`"), "{message}");
    }

    #[test]
    fn a_product_is_its_codes_first_six_digits_and_shorter_codes_stay_apart() {
        let products: Vec<Option<i32>> = ["0901210000", "09012100", "090121", "0901", "09"]
            .iter()
            .map(|code| product_code(code.as_bytes()))
            .collect();
        assert_eq!(
            products,
            [
                Some(90121),
                Some(90121),
                Some(90121),
                Some(1_000_901),
                Some(1_010_009)
            ]
        );
        assert_eq!(product_code(b"999999"), Some(999_999));
        assert!(product_code(b"9999").unwrap() < product_code(b"99").unwrap());
        assert!(product_code(b"99").unwrap() < 1 << PRODUCT_BITS);
        for refused in ["090", "09012", "0901a1", "", "09012100001"] {
            assert_eq!(product_code(refused.as_bytes()), None, "{refused}");
        }
    }

    /// [`product_code`] as its doc states it, a byte at a time.
    fn product_by_digits(code: &[u8]) -> Option<i32> {
        if !matches!(code.len(), 2 | 4 | 6 | 8 | 10) || !code.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digits = &code[..code.len().min(6)];
        let number = (digits.iter()).fold(0, |number, digit| number * 10 + i32::from(digit - b'0'));
        Some(match digits.len() {
            6 => number,
            4 => 1_000_000 + number,
            _ => 1_010_000 + number,
        })
    }

    #[test]
    fn a_product_read_a_word_at_a_time_is_the_one_read_a_digit_at_a_time() {
        // Every length up to past a view's inline bytes, from bytes around the digits'
        // (`/` and `:` next to them, bytes whose low nibble is a digit's, others' high
        // nibble), drawn by a fixed sequence.
        let alphabet = b"0123456789/:?@ 9\x7f\xc3\xa9P`0";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let length = (next() % 14) as usize;
            let digits_only = next() % 2 == 0;
            let code: Vec<u8> = (0..length)
                .map(|_| {
                    let pick = next() as usize;
                    if digits_only {
                        b'0' + (pick % 10) as u8
                    } else {
                        alphabet[pick % alphabet.len()]
                    }
                })
                .collect();
            assert_eq!(product_code(&code), product_by_digits(&code), "{code:?}");
        }
    }

    #[test]
    fn string_views_give_the_products_their_texts_give() {
        let codes = [
            Some("0901210000"),
            None,
            Some("0901"),
            Some("09012"),
            Some("090121000012345"),
            Some("85"),
            Some("8517620000 "),
            Some("851762"),
        ];
        let views = StringViewArray::from_iter(codes);
        let texts = StringArray::from_iter(codes);
        let expected: Int32Array = (0..texts.len())
            .map(|row| texts.is_valid(row).then(|| texts.value(row).as_bytes()))
            .map(|code| code.and_then(product_code))
            .collect();
        assert_eq!(products_of_views(&views), expected);
        assert_eq!(products_of_views(&views.slice(1, 6)), expected.slice(1, 6));
    }

    #[test]
    fn every_slot_names_its_code() {
        for slot in 0..CODE_SLOTS {
            assert_eq!(code_slot(slot_code(slot).as_bytes()), Some(slot));
        }
        assert!(CODE_SLOTS as i64 <= CODE_MASK + 1);
    }
}
