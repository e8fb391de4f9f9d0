//! `exdep inspect`: a published table's rows, printed as a table.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use exdep_core::arrow::datatypes::DataType;
use exdep_core::arrow::util::pretty::pretty_format_batches;
use exdep_core::datafusion::prelude::ParquetReadOptions;
use exdep_core::schema::YEAR;
use exdep_core::{Config, Location, new_session};
use futures::TryStreamExt;

#[derive(Args)]
pub struct InspectArgs {
    /// The published table: `indices`, `lq`, `region_shares`, `margins`, `top_links`,
    /// `destinations`, `indices_change` or `rejects`.
    table: String,
    /// The pipeline config (TOML) whose output holds the table.
    #[arg(long)]
    config: PathBuf,
    /// Only this year's rows.
    #[arg(long, value_name = "YEAR")]
    year: Option<i32>,
    /// Only this origin's rows (a province code such as `44`, or `CN`), in tables
    /// partitioned by province.
    #[arg(long, value_name = "CODE")]
    province: Option<String>,
    /// Print at most this many rows.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
}

/// The column a table is partitioned by province with.
const PROVINCE: &str = "province";

pub async fn inspect(args: InspectArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let ctx = new_session();
    config.prepare_session(&ctx)?;
    let tables = published_tables(&ctx, &config.output).await?;
    let Some((_, partitions)) = tables.iter().find(|(name, _)| *name == args.table) else {
        let names: Vec<&str> = tables.iter().map(|(name, _)| name.as_str()).collect();
        bail!(
            "no table `{}` is published under {}; published: {}",
            args.table,
            config.output,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    };
    if args.province.is_some() && !partitions.iter().any(|c| c == PROVINCE) {
        bail!(
            "`{}` is not partitioned by province: leave out --province",
            args.table
        );
    }
    let columns: Vec<(String, DataType)> = partitions
        .iter()
        .map(|c| {
            let data_type = if c == YEAR {
                DataType::Int32
            } else {
                DataType::Utf8
            };
            (c.clone(), data_type)
        })
        .collect();
    let root = config.output.join(&args.table);
    ctx.register_parquet(
        "published",
        root.as_table_url(),
        ParquetReadOptions::default().table_partition_cols(columns),
    )
    .await
    .with_context(|| format!("reading {root}"))?;
    let mut filters = Vec::new();
    if let Some(year) = args.year {
        filters.push(format!("{YEAR} = {year}"));
    }
    if let Some(province) = &args.province {
        filters.push(format!(
            "{PROVINCE} IN ({})",
            exdep_core::sql::text_list([province.as_str()])
        ));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let frame = ctx
        .sql(&format!("SELECT * FROM published {filter}"))
        .await?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name().replace('"', "\"\"")))
        .collect();
    // Every column orders the rows, so the same table prints the same way each time.
    let batches = frame
        .sort_by(
            columns
                .iter()
                .map(|c| exdep_core::datafusion::prelude::col(c.as_str()))
                .collect(),
        )?
        .limit(0, Some(args.limit))?
        .collect()
        .await?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        println!("no rows");
        return Ok(());
    }
    println!("{}", pretty_format_batches(&batches)?);
    Ok(())
}

/// The tables published under `output` (its folders whose names do not start with `_`),
/// each with its Hive partition columns as its files' paths show them.
async fn published_tables(
    ctx: &exdep_core::datafusion::prelude::SessionContext,
    output: &Location,
) -> Result<Vec<(String, Vec<String>)>> {
    let prefix = output.path()?;
    let objects: Vec<_> = output
        .store(ctx)?
        .list(Some(&prefix))
        .try_collect()
        .await
        .with_context(|| format!("listing {output}"))?;
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for object in objects {
        let Some(mut parts) = object.location.prefix_match(&prefix) else {
            continue;
        };
        let Some(table) = parts
            .next()
            .map(|part| part.as_ref().to_string())
            .filter(|t| !t.starts_with(['_', '.']))
        else {
            continue;
        };
        if tables.iter().any(|(name, _)| *name == table) {
            continue;
        }
        let partitions = parts
            .filter_map(|part| {
                let (column, _) = part.as_ref().split_once('=')?;
                Some(column.to_string())
            })
            .collect();
        tables.push((table, partitions));
    }
    tables.sort();
    Ok(tables)
}
