//! The foundation the exdep stages share: the checked pipeline [`Config`], object-store
//! [`Location`]s, the schemas of the warehouse layers, the DataFusion session, and the
//! Hive-partitioned Parquet writer.
//!
//! ```no_run
//! # async fn demo() -> exdep_core::Result<()> {
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! let ctx = exdep_core::new_session();
//! let raw = config.warehouse.join("raw");
//! println!("{} years, raw layer at {raw}", config.years.len());
//! # let _ = ctx; Ok(()) }
//! ```
#![warn(missing_docs)]

mod config;
mod error;
mod jobs;
pub mod schema;
mod session;
pub mod sql;
mod storage;
mod stores;
mod tally;

pub use config::{
    Config, DestinationLevel, Engine, HsLevel, IndexSettings, Input, InputFormat, StorageOptions,
    TableFormat, TableLocations, TextEncoding, check_ratio, hex_sha256,
};
pub use error::{Error, Result};
pub use jobs::{ClusterJobs, cancel_cluster_jobs};
pub use session::{
    connect, cores, new_session, register_layer, register_text_table, utf8_text, with_partitions,
};
pub use storage::{
    DEFAULT_COMPRESSION, InputLocation, Location, PartitionedWriter, WrittenFile,
    parse_compression, write_partitioned, writer_properties,
};
pub use stores::{EnvironmentStores, StoreRetry, register_stores};
pub use tally::{Tally, TallyByReason, total};

pub use arrow;
pub use datafusion;
pub use object_store;
pub use parquet;
