//! exdep's object storage: the stores behind the locations (local disk, memory, S3, GCS,
//! Azure), what lies at a [`Location`](exdep_core::Location) ([`Objects`], [`InputFiles`]),
//! the one Parquet writer, the run state and the manifest ([`RunState`], [`RunManifest`]),
//! the code tables' files ([`read_code_table`]), the run lease, and the one [`layout`] of
//! the warehouse and the output.
//!
//! ```no_run
//! # async fn demo(ctx: &datafusion::prelude::SessionContext) -> exdep_store::Result<()> {
//! use exdep_store::Objects;
//! use exdep_store::layout::{Layer, Warehouse};
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! let cube = Warehouse::of(&config).layer(Layer::Cube);
//! println!("cube years: {:?}", cube.partition_years(ctx).await?);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod documents;
mod error;
pub mod layout;
mod lock;
mod objects;
mod statistics;
mod stores;
mod writer;

pub use documents::{
    ConfigRecord, FileState, RunManifest, RunState, read_code_table, read_manifest, read_state,
    remove_state, withdraw_publication, write_manifest, write_object, write_state,
};
pub use error::{Error, Result};
pub use lock::{LockHolder, RunLock};
pub use objects::{InputFiles, Objects};
pub use statistics::FileStatistics;
pub use stores::{EnvironmentStores, azure_account, register_stores};
pub use writer::{
    PartitionedWriter, TableReport, WrittenFile, session_compression, write_empty_partitions,
    write_partitioned, writer_properties,
};

pub use object_store;
