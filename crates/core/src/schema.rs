//! The schemas of exdep's warehouse layers, shared by the stage that writes a layer and the
//! stages that read it.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// The partition column of both warehouse layers.
pub const YEAR: &str = "year";

/// Names of the factor-intensity categories, in the order outputs list them.
pub const CATEGORIES: [&str; 4] = ["resource", "labor", "capital", "technology"];

/// The category that sums the four.
pub const ALL_CATEGORIES: &str = "all";

/// The province code of the national aggregate (the sum over provinces).
pub const NATIONAL: &str = "CN";

/// Raw canonical records as ingest writes them to `raw/year=YYYY/`: syntactically valid,
/// in the run's years, not yet classified. `year` lives in the path.
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

/// The classified cube as classify writes it to `cube/year=YYYY/`: exports summed by
/// province, partner and category, in both currencies. `year` lives in the path.
pub static CUBE_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("province", DataType::Utf8, false),
        Field::new("partner", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("exports_usd", DataType::Float64, false),
        Field::new("exports_cny", DataType::Float64, false),
        Field::new("records", DataType::Int64, false),
    ]))
});
