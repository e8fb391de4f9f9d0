//! Classification: loads and validates the code tables (HS chapter -> factor category,
//! partner -> world region, province codes, exchange rates), and builds the classified cube
//! that every index reads: exports by year x province x partner x category, in USD and CNY.
//!
//! Records whose codes no table maps are counted by kind, and records out of scope by rule
//! (HS chapters 98/99, exports to China itself) are counted too: nothing disappears.
//!
//! ```no_run
//! # async fn demo(config: exdep_core::Config) -> exdep_classify::Result<()> {
//! let ctx = exdep_core::new_session();
//! let tables = exdep_classify::CodeTables::load(&ctx, &config.tables, &config.years).await?;
//! tables.register(&ctx, &config.warehouse.join("tables")).await?;
//! let report = exdep_classify::build_cube(&ctx, &config.warehouse, &config.years).await?;
//! for (year, cube) in &report {
//!     println!("{year}: {} cells", cube.cells);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod cube;
mod error;
mod tables;

pub use cube::{CubeReport, SourceDisposition, YearCube, build_cube, drop_years};
pub use error::{Error, Result};
pub use tables::{CHAPTER_CATEGORIES, CodeTables, MACRO_REGIONS, REGIONS, TableDigest};

#[cfg(test)]
mod tests;
