//! The DataFusion session every stage runs in.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::datatypes::{Field, Schema};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
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

/// Registers a small CSV file (a code table) as table `name`, every column read as text:
/// a header line, `#` starting a comment line. Replaces a table of the same name.
pub async fn register_text_table(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    columns: &[&str],
) -> Result<()> {
    let schema = Schema::new(
        columns
            .iter()
            .map(|column| Field::new(*column, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let url = location.url().as_str();
    let extension = url.rfind('.').map_or("", |i| &url[i..]);
    let options = CsvReadOptions::new()
        .has_header(true)
        .comment(b'#')
        .schema(&schema)
        .file_extension(extension);
    if ctx.table_exist(name)? {
        ctx.deregister_table(name)?;
    }
    ctx.register_csv(name, url, options).await?;
    Ok(())
}

/// Decodes UTF-8 text, or says on which line (1-based) the first bad byte is.
pub fn utf8_text(bytes: &[u8]) -> std::result::Result<&str, usize> {
    std::str::from_utf8(bytes).map_err(|e| {
        bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    })
}
