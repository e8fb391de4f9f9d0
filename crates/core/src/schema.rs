//! The schemas of exdep's warehouse layers, shared by the stage that writes a layer and the
//! stages that read it.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// The partition column of both warehouse layers.
pub const YEAR: &str = "year";

/// The type of a Hive partition column of exdep's layers and tables: `year` is a number,
/// every other (`province`) is text.
pub fn partition_column_type(column: &str) -> DataType {
    if column == YEAR {
        DataType::Int32
    } else {
        DataType::Utf8
    }
}

/// The column of the factor-intensity category (or [`ALL_CATEGORIES`]).
pub const CATEGORY: &str = "category";

/// Names of the factor-intensity categories, in the order outputs list them.
pub const CATEGORIES: [&str; 4] = ["resource", "labor", "capital", "technology"];

/// The category that sums the four.
pub const ALL_CATEGORIES: &str = "all";

/// The province code of the national aggregate (the sum over provinces).
pub const NATIONAL: &str = "CN";

/// Raw canonical records as the opt-in audit layer `raw/year=YYYY/` holds them (config key
/// `raw-layer`): the records that passed ingest's checks, not yet classified. `year` lives
/// in the path.
pub static RAW_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("month", DataType::Int32, true),
        Field::new("province", DataType::Utf8, false),
        Field::new("partner", DataType::Utf8, false),
        Field::new("hs_code", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::Int64, true),
    ]))
});

/// Rejected records as `rejects/year=YYYY/` holds them: where each came from, why it was
/// rejected and its text. Records without a usable year are filed under `year=0`.
pub static REJECTS_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
});

/// The `year` partition of rejected records whose year is unusable.
pub const UNKNOWN_YEAR: i32 = 0;

/// One input file's partial cube as classify writes it to
/// `cube/year=YYYY/part-<hash of the file's URL>.parquet`: the file's exports summed by
/// province, partner and category, in both currencies, as exact decimals (1e-10 units), so
/// that a year's cube is the exact sum of its files' partials in any order. `year` lives in
/// the path.
pub static CUBE_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("province", DataType::Utf8, false),
        Field::new("partner", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new(CATEGORY, DataType::Utf8, false),
        Field::new("exports_usd", DataType::Decimal128(38, 10), false),
        Field::new("exports_cny", DataType::Decimal128(38, 10), false),
        Field::new("records", DataType::Int64, false),
    ]))
});

/// One input file's partial product cube (`product-margins = true`) as classify writes it
/// to `products/year=YYYY/part-<hash of the file's URL>.parquet`: the cube's exports (not
/// its counts of records, which no reader of the product cube needs), by HS6 product (the HS code's first six digits, or the whole code when it is shorter) as well,
/// each under its product key (origin, partner, category and product as one integer; see
/// `exdep_engine::cell_sql`). A key may have several rows in a file (its records in USD and
/// in CNY, or of months converted at different rates): a key's exports are the sum of its
/// rows.
pub static PRODUCTS_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("exports_usd", DataType::Decimal128(38, 10), false),
        Field::new("exports_cny", DataType::Decimal128(38, 10), false),
    ]))
});

/// The largest value one record may have, in its currency: no single shipment is worth
/// 10^15 dollars or yuan. Larger values are rejected (`value_too_large`), which also keeps
/// every exact sum far inside its 38 digits.
pub const MAX_RECORD_VALUE: f64 = 1e15;

/// The codes the code tables know, for the per-record checks of a file's plan and the
/// cube kernel's look-up tables.
#[derive(Debug, Clone, Default)]
pub struct KnownCodes {
    /// Origins: province codes, and ISO3 codes of reporters that are countries.
    pub origins: Vec<String>,
    /// Partners (ISO3).
    pub partners: Vec<String>,
    /// HS chapters (two digits), excluded ones included, with their category (one of
    /// [`crate::codes::CHAPTER_CATEGORIES`]).
    pub chapters: BTreeMap<String, String>,
}
