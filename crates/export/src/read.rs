//! Reading published tables back, in either format: what `exdep inspect` shows and what
//! reports draw from. A Delta table is read at its latest version (its log names the
//! files); a plain Parquet table is every file under its folder.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use exdep_core::arrow::datatypes::{DataType, Schema, SchemaRef};
use exdep_core::schema::{YEAR, partition_column_type};
use exdep_core::{Location, TableFormat};
use exdep_engine::datafusion::datasource::MemTable;
use exdep_engine::datafusion::prelude::{
    DataFrame, ParquetReadOptions, SessionContext, cast, col, lit,
};
use exdep_store::Objects;
use exdep_store::layout::{DELTA_LOG, Output, REJECTS};
use futures::TryStreamExt;

use crate::delta::active_files;
use crate::error::Result;

/// A table published under an output root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTable {
    /// Its folder's name.
    pub name: String,
    /// Its format: Delta when the folder holds a `_delta_log`.
    pub format: TableFormat,
}

/// The tables published under `output`, by name: its folders, except those whose names
/// start with `_` or `.` (staging, locks, markers).
pub async fn published_tables(
    ctx: &SessionContext,
    output: &Output,
) -> Result<Vec<PublishedTable>> {
    let store = output.root().store(ctx)?;
    let listing = store
        .list_with_delimiter(Some(&output.root().path()?))
        .await?;
    let mut tables = Vec::new();
    for folder in listing.common_prefixes {
        let Some(name) = folder.filename().map(str::to_string) else {
            continue;
        };
        if name.starts_with(['_', '.']) {
            continue;
        }
        let inside = store.list_with_delimiter(Some(&folder)).await?;
        let format = if inside
            .common_prefixes
            .iter()
            .any(|p| p.filename() == Some(DELTA_LOG))
        {
            TableFormat::Delta
        } else {
            TableFormat::Parquet
        };
        tables.push(PublishedTable { name, format });
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// Registers the published `table` under `output` in `ctx` as `alias`, its Hive partition
/// columns (`year`, `province`) as columns after the files' own. Returns the partition
/// columns.
pub async fn register_published(
    ctx: &SessionContext,
    output: &Output,
    table: &PublishedTable,
    alias: &str,
) -> Result<Vec<String>> {
    let root = output.table(&table.name);
    let (frame, partitions) = match table.format {
        TableFormat::Parquet => parquet_table(ctx, &root).await?,
        TableFormat::Delta => match active_files(ctx, &root).await? {
            Some((schema, files)) => delta_table(ctx, &root, schema, files).await?,
            None => return Ok(Vec::new()),
        },
    };
    ctx.register_table(alias, frame.into_view())?;
    Ok(partitions)
}

/// A plain Parquet table: every file under `root`, its partition columns from the first
/// file's path; and those columns.
async fn parquet_table(ctx: &SessionContext, root: &Location) -> Result<(DataFrame, Vec<String>)> {
    let prefix = root.path()?;
    let store = root.store(ctx)?;
    let mut listing = store.list(Some(&prefix));
    let mut first = None;
    while let Some(object) = listing.try_next().await? {
        if object.location.as_ref().ends_with(".parquet") {
            first = Some(object);
            break;
        }
    }
    let partitions: Vec<(String, DataType)> = first
        .iter()
        .flat_map(|object| {
            object
                .location
                .prefix_match(&prefix)
                .into_iter()
                .flatten()
                .filter_map(|part| {
                    let (column, _) = part.as_ref().split_once('=')?;
                    Some((column.to_string(), partition_column_type(column)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let names = partitions.iter().map(|(name, _)| name.clone()).collect();
    let frame = ctx
        .read_parquet(
            root.as_table_url(),
            ParquetReadOptions::default().table_partition_cols(partitions),
        )
        .await?;
    Ok((frame, names))
}

/// A Delta table at its latest version: the files its log lists, each partition's files
/// read with their partition values as literal columns, in the table's column order; and its
/// partition columns, `year` first.
async fn delta_table(
    ctx: &SessionContext,
    root: &Location,
    schema: SchemaRef,
    files: Vec<(String, BTreeMap<String, String>)>,
) -> Result<(DataFrame, Vec<String>)> {
    let mut names: Vec<String> = files
        .first()
        .map(|(_, partition)| partition.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_by_key(|name| (name != YEAR, name.clone()));
    let mut partitions: BTreeMap<BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    for (path, partition) in files {
        partitions
            .entry(partition)
            .or_default()
            .push(root.join(&path).to_string());
    }
    // The files' schema is the table's without its partition columns: given, it spares
    // reading every file's footer to infer it.
    let file_schema = Schema::new(
        schema
            .fields()
            .iter()
            .filter(|field| !names.contains(field.name()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut union: Option<DataFrame> = None;
    for (partition, urls) in partitions {
        let files = ctx
            .read_parquet(urls, ParquetReadOptions::default().schema(&file_schema))
            .await?;
        let columns: Vec<_> = schema
            .fields()
            .iter()
            .map(|field| match partition.get(field.name()) {
                Some(value) => {
                    cast(lit(value.as_str()), field.data_type().clone()).alias(field.name())
                }
                None => col(format!("\"{}\"", field.name())),
            })
            .collect();
        let frame = files.select(columns)?;
        union = Some(match union {
            Some(union) => union.union(frame)?,
            None => frame,
        });
    }
    let frame = match union {
        Some(frame) => frame,
        None => ctx.read_table(Arc::new(MemTable::try_new(schema, vec![vec![]])?))?,
    };
    Ok((frame, names))
}

/// The years published under `output`, as its tables' `year` partitions show them (a Delta
/// table's as its latest version does), whatever a manifest says: the guard against
/// replacing published years by nothing must hold when a killed run withdrew the manifest.
/// The quarantine is left out.
pub async fn published_years(ctx: &SessionContext, output: &Output) -> Result<BTreeSet<i32>> {
    let mut years = BTreeSet::new();
    for table in published_tables(ctx, output).await? {
        if table.name == REJECTS {
            continue;
        }
        let root = output.table(&table.name);
        match table.format {
            TableFormat::Parquet => years.extend(root.partition_years(ctx).await?),
            TableFormat::Delta => {
                let files = active_files(ctx, &root).await?.map(|(_, files)| files);
                years.extend(
                    files
                        .iter()
                        .flatten()
                        .filter_map(|(_, partition)| partition.get(YEAR)?.parse::<i32>().ok()),
                );
            }
        }
    }
    Ok(years)
}
