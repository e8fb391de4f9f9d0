//! The DataFusion session every stage runs in.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use object_store::memory::InMemory;
use url::Url;

use crate::error::Result;
use crate::schema::YEAR;
use crate::storage::Location;

/// A session with exdep's settings and the `memory://` store registered next to the local
/// filesystem.
pub fn new_session() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(false)
        // Small joins against code tables are broadcast; the cube is read with its statistics.
        .with_collect_statistics(true);
    let ctx = SessionContext::new_with_config(config);
    ctx.register_object_store(
        &Url::parse("memory:///").expect("a constant URL"),
        Arc::new(InMemory::new()),
    );
    ctx
}

/// Registers a warehouse layer (Hive-partitioned by `year`) as table `name`.
pub async fn register_layer(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    file_schema: &SchemaRef,
) -> Result<()> {
    let options = ParquetReadOptions::default()
        .schema(file_schema)
        .table_partition_cols(vec![(YEAR.to_string(), DataType::Int32)]);
    ctx.register_parquet(name, location.as_table_url(), options)
        .await?;
    Ok(())
}
