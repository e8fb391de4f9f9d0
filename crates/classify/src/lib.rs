//! Classification: loads and validates the code tables (HS chapter -> factor category,
//! partner -> world region, province codes, exchange rates), and builds, one input file at a
//! time in one pass, the classified cube that every index reads: exports by year x province
//! x partner x category, in USD and CNY.
//!
//! Records out of scope by rule (HS chapters 98/99, exports to China itself) are counted,
//! and rejected records kept: nothing disappears.
//!
//! ```no_run
//! # async fn demo(config: exdep_core::Config, checked_sql: &str) -> exdep_classify::Result<()> {
//! let ctx = exdep_engine::new_session();
//! let tables = exdep_classify::CodeTables::load(&ctx, &config.tables, &config.years).await?;
//! let staging = exdep_store::layout::Warehouse::of(&config).staging("run-1");
//! tables.register(&ctx, &staging.tables()).await?;
//! let settings = exdep_classify::FileSettings {
//!     years: config.years.clone(),
//!     provinces: tables.provinces.keys().cloned().collect(),
//!     monthly_rates: config.tables.exchange_rates_monthly.is_some(),
//!     product_margins: config.indices.product_margins,
//!     embedded: true,
//! };
//! let file = exdep_classify::classify_file(
//!     &ctx, checked_sql, "file:///in/exports.parquet", "part-1.parquet", &staging, &settings,
//! ).await?;
//! println!("{} records read, {} accepted", file.records.read, file.records.accepted.records);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod cube;
mod error;
mod tables;

pub use cube::{
    FileClassification, FileSettings, classify_file, commit_files, cube_cells, drop_years,
};
pub use error::{Error, Result};
pub use tables::{CodeTables, load_province_tiles};

#[cfg(test)]
mod tests;
