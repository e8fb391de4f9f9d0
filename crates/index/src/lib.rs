//! The index engine: DataFusion plans, in SQL with built-in functions only, that turn the
//! classified cube into export-dependence tables. Every plan reads the cube (never the raw
//! records) through file-backed tables, so the same plans run embedded or on Ballista.
//!
//! Each [`IndexTable`] names its output table, its Hive partition columns and the schema of
//! its files, as `sql/tables.toml` declares them; its plan is `sql/<table>.sql` (see the
//! `plans` module for what a plan's template sees). Formulas follow shared/DOMAIN.md
//! section 2; notation for one origin p, year t and category m over partners i with
//! exports x_i > 0: X = sum x_i, s_i = x_i / X, N = number of partners.
//!
//! ```no_run
//! # async fn demo(ctx: exdep_engine::datafusion::prelude::SessionContext,
//! #               config: exdep_core::Config) -> exdep_index::Result<()> {
//! let warehouse = exdep_store::layout::Warehouse::of(&config);
//! exdep_index::prepare(&ctx, &warehouse, &config.indices).await?;
//! let settings = exdep_index::PlanSettings {
//!     cube_years: exdep_index::cube_years(&ctx, &warehouse).await?,
//!     base_year: config.indices.base_year,
//!     destination_level: config.indices.destination_level,
//!     top_n: config.indices.top_n,
//!     destination_threshold_cny: config.indices.destination_threshold_cny,
//!     provinces: ["11", "44"].map(String::from).into(),
//!     product_reference: config.indices.product_reference,
//!     quadrant_cut: config.indices.quadrant_cut,
//! };
//! let cells = exdep_store::layout::Output::of(&config).staged_cells("run-1");
//! exdep_index::compute_cells(&ctx, &settings, &config.years, &cells).await?;
//! for table in exdep_index::published_tables(&config.indices) {
//!     let frame = ctx.sql(&table.sql(&settings, &config.years)?).await?;
//!     println!("{} -> {} columns", table.name, frame.schema().fields().len());
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod plans;

use std::collections::BTreeSet;

use exdep_core::IndexSettings;
use exdep_core::Location;
use exdep_core::schema::{CUBE_FILE, PRODUCTS_FILE};
use exdep_engine::datafusion::prelude::SessionContext;
use exdep_store::Objects;
use exdep_store::layout::{Layer, Warehouse};

pub use error::{Error, Result};
pub use plans::{IndexTable, PlanSettings, published_tables, tables};

/// The years whose cube partitions exist in the warehouse.
pub async fn cube_years(ctx: &SessionContext, warehouse: &Warehouse) -> Result<BTreeSet<i32>> {
    Ok(warehouse.layer(Layer::Cube).partition_years(ctx).await?)
}

/// The origins (province codes and reporter countries) with cube cells in `years`. Expects
/// [`prepare`].
pub async fn origins(ctx: &SessionContext, years: &BTreeSet<i32>) -> Result<BTreeSet<String>> {
    let sql = format!(
        "SELECT DISTINCT province FROM cube WHERE year IN ({})",
        exdep_core::sql::year_list(years)
    );
    let mut origins = BTreeSet::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let column = exdep_core::arrow::compute::cast(
            batch.column(0),
            &exdep_core::arrow::datatypes::DataType::Utf8,
        )
        .map_err(exdep_engine::datafusion::error::DataFusionError::from)?;
        let codes = column
            .as_any()
            .downcast_ref::<exdep_core::arrow::array::StringArray>()
            .expect("cast to Utf8");
        origins.extend(codes.iter().flatten().map(str::to_string));
    }
    Ok(origins)
}

/// Computes the cells the plans of `settings` read for `years` (the cube's sums for the
/// years they need, with the national aggregate and the `all` category) once, writes them
/// under `location` (a folder of this run's own, removed with it) and registers them for
/// the plans. Expects [`prepare`].
pub async fn compute_cells(
    ctx: &SessionContext,
    settings: &PlanSettings,
    years: &BTreeSet<i32>,
    location: &Location,
) -> Result<()> {
    let sql = plans::cells_sql(settings, years)?;
    materialize(ctx, plans::cells(), &sql, location).await
}

/// Writes the rows of `sql` under `location` as `table` declares them, sorted (see
/// [`exdep_store::write_partitioned`]), and registers them as that table.
async fn materialize(
    ctx: &SessionContext,
    table: &IndexTable,
    sql: &str,
    location: &Location,
) -> Result<()> {
    let partition_by: Vec<&str> = table.partition_by.iter().map(String::as_str).collect();
    if ctx.table_exist(table.name.as_str())? {
        ctx.deregister_table(table.name.as_str())?;
    }
    exdep_store::write_partitioned(ctx, sql, location, &partition_by, None, &table.file_schema)
        .await?;
    exdep_engine::register_layer(ctx, &table.name, location, &table.file_schema).await?;
    Ok(())
}

/// Readies `ctx` for the index plans: registers the warehouse's cube layer (the files'
/// partial cubes) as table `cube`, with `product-margins = true` its product layer as table
/// `products`, and plans in a single partition from here on. The cube
/// holds cells, not records, so it is small; in one partition sums add up in one fixed
/// order, so a run gives the same bits every time and in every table (a base year's change
/// against itself is exactly 0).
pub async fn prepare(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    settings: &IndexSettings,
) -> Result<()> {
    let mut layers = vec![("cube", Layer::Cube, &*CUBE_FILE)];
    if settings.product_margins {
        layers.push(("products", Layer::Products, &*PRODUCTS_FILE));
    }
    for (table, layer, schema) in layers {
        if ctx.table_exist(table)? {
            ctx.deregister_table(table)?;
        }
        exdep_engine::register_layer(ctx, table, &warehouse.layer(layer), schema).await?;
    }
    ctx.sql("SET datafusion.execution.target_partitions = 1")
        .await?
        .collect()
        .await?;
    Ok(())
}
