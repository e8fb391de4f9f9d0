//! The data every exdep stage shares, with no engine and no object storage (its only reads
//! are the config file and the machine's facts, `/proc` and the cgroup): the checked pipeline
//! [`Config`], [`Location`]s as values, the schemas of the warehouse layers, the
//! [`account`] of every record read, the [`codes`] tables' rows, tallies, SQL helpers and
//! the machine's facts. Reading and writing is `exdep-store`'s; planning and executing is
//! `exdep-engine`'s.
//!
//! ```no_run
//! # fn demo() -> exdep_core::Result<()> {
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! println!("{} years, warehouse at {}", config.years.len(), config.warehouse);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod account;
pub mod codes;
mod config;
mod error;
mod location;
mod machine;
pub mod months;
pub mod schema;
pub mod sql;
mod tally;
pub mod telemetry;
mod text;

pub use config::{
    Config, DEFAULT_COMPRESSION, DestinationLevel, Engine, HsLevel, IndexSettings, Input,
    InputFormat, ProductReference, QuadrantCut, StorageOptions, StoreRetry, TableFormat,
    TableLocations, TextEncoding, check_ratio, hex_sha256, parse_compression,
};
pub use error::{Error, Result};
pub use location::{InputLocation, Location};
pub use machine::{cores, default_memory_limit};
pub use tally::{Tally, TallyByReason, total};
pub use text::{error_chain, utf8_text};

pub use arrow;
pub use object_store;
pub use parquet;
