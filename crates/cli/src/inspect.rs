//! `exdep inspect`: a published table's rows, printed as a table.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use exdep_classify::CodeTables;
use exdep_core::Config;
use exdep_core::arrow::util::pretty::pretty_format_batches;
use exdep_core::schema::YEAR;
use exdep_engine::new_session;
use exdep_store::layout::Output;

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

/// Fails unless `code` is an origin a table can hold: `CN` (the national aggregate), a
/// province of the provinces table, or a reporter country (an ISO3 code of the partner
/// regions table), so that a typo is an error and not an empty table.
async fn check_origin(
    ctx: &exdep_engine::datafusion::prelude::SessionContext,
    config: &Config,
    code: &str,
) -> Result<()> {
    let tables = CodeTables::load(ctx, &config.tables, &config.years).await?;
    let known = code == exdep_core::schema::NATIONAL
        || tables.provinces.contains_key(code)
        || tables.partner_regions.contains_key(code);
    if !known {
        bail!(
            "--province {code}: not CN, a province of the provinces table ({}) or a country \
             of the partner-regions table ({})",
            config.tables.provinces,
            config.tables.partner_regions
        );
    }
    Ok(())
}

pub async fn inspect(args: InspectArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let ctx = new_session();
    exdep_engine::prepare_session(&ctx, &config)?;
    let tables = exdep_export::published_tables(&ctx, &Output::of(&config)).await?;
    let Some(table) = tables.iter().find(|table| table.name == args.table) else {
        let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
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
    let partitions =
        exdep_export::register_published(&ctx, &Output::of(&config), table, "published")
            .await
            .with_context(|| format!("reading {}", Output::of(&config).table(&table.name)))?;
    if args.province.is_some() && !partitions.iter().any(|c| c == PROVINCE) {
        bail!(
            "`{}` is not partitioned by province: leave out --province",
            args.table
        );
    }
    if let Some(province) = &args.province {
        check_origin(&ctx, &config, province).await?;
    }
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
                .map(|c| exdep_engine::datafusion::prelude::col(c.as_str()))
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
