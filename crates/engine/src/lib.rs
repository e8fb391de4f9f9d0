//! The engine exdep's plans run in: the DataFusion session, embedded with its memory pool
//! or a client of a Ballista cluster ([`connect`]), readied for a config's stores
//! ([`prepare_session`]); warehouse layers and code tables registered as tables; and the
//! cluster jobs a session submitted, for cancelling them.
//!
//! ```no_run
//! # async fn demo() -> exdep_engine::Result<()> {
//! # let config: exdep_core::Config = todo!();
//! let ctx = exdep_engine::connect(&config).await?;
//! exdep_engine::prepare_session(&ctx, &config)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod cells;
mod chunked;
mod error;
mod jobs;
mod one_group;
mod product_growth;
mod product_sums;
mod session;

pub use cells::{
    CELL_KEY, CELL_PART, CellDomain, CellKey, CellPart, ORIGIN_SHIFT as CELL_ORIGIN_SHIFT,
    PRODUCT_BITS, PRODUCT_CODE, ProductCode, cell_functions, cell_sql,
};
pub use error::{Error, Result};
pub use jobs::{ClusterJobs, cancel_cluster_jobs};
pub use product_growth::{PRODUCT_GROWTH, ProductGrowth};
pub use product_sums::{PRODUCT_SUMS, ProductSums};
pub use session::{
    connect, new_session, prepare_session, register_layer, register_scratch, register_text_table,
    with_partitions,
};

pub use datafusion;

/// The product margins' aggregate functions, [`ProductSums`] and [`ProductGrowth`], for
/// every session and cluster process to register.
pub fn product_margin_functions() -> Vec<std::sync::Arc<datafusion::logical_expr::AggregateUDF>> {
    vec![
        product_sums::product_sums_function(),
        product_growth::product_growth_function(),
    ]
}

/// The layers below the engine, for [`layered_error`]'s paths.
#[doc(hidden)]
pub mod layers {
    pub use exdep_core;
    pub use exdep_store;
}
