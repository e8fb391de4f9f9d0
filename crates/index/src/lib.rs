//! The index engine: DataFusion plans, in SQL with built-in functions only, that turn the
//! classified cube into export-dependence tables. Every plan reads the cube (never the raw
//! records) through file-backed tables, so the same plans run embedded or on Ballista.
//!
//! Each [`IndexTable`] names its output table, its Hive partition columns, the schema of its
//! files and the plan that computes it. Formulas follow shared/DOMAIN.md section 2; notation
//! for one origin p, year t and category m over partners i with exports x_i > 0:
//! X = sum x_i, s_i = x_i / X, N = number of partners.
//!
//! ```no_run
//! # async fn demo(ctx: exdep_core::datafusion::prelude::SessionContext,
//! #               config: exdep_core::Config) -> exdep_index::Result<()> {
//! exdep_index::register_cube(&ctx, &config.warehouse).await?;
//! for table in exdep_index::tables(&config.years) {
//!     let frame = ctx.sql(&table.sql).await?;
//!     println!("{} -> {} columns", table.name, frame.schema().fields().len());
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod plans;

use exdep_core::Location;
use exdep_core::arrow::datatypes::SchemaRef;
use exdep_core::datafusion::prelude::SessionContext;
use exdep_core::schema::CUBE_FILE;

pub use error::{Error, Result};
pub use plans::tables;

/// An output table: its name, partitioning, file schema and plan.
#[derive(Debug, Clone)]
pub struct IndexTable {
    /// Folder name under the output root.
    pub name: &'static str,
    /// Hive partition columns, outermost first.
    pub partition_by: &'static [&'static str],
    /// Schema of the Parquet files (without the partition columns).
    pub file_schema: SchemaRef,
    /// The plan, as SQL over the registered `cube` table.
    pub sql: String,
}

/// Registers the warehouse's cube layer as table `cube`.
pub async fn register_cube(ctx: &SessionContext, warehouse: &Location) -> Result<()> {
    if ctx.table_exist("cube")? {
        ctx.deregister_table("cube")?;
    }
    exdep_core::register_layer(ctx, "cube", &warehouse.join("cube"), &CUBE_FILE).await?;
    Ok(())
}
