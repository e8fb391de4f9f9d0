//! `exdep ddl`: the statements that declare the published tables in a catalog.

use std::path::PathBuf;

use anyhow::Result;
use exdep_core::Config;
use exdep_export::{CatalogEngine, CatalogNames};
use exdep_store::layout::Output;

#[derive(clap::Args)]
pub struct DdlArgs {
    /// The engine whose SQL to print.
    #[arg(long, value_enum)]
    engine: Engine,
    /// The pipeline config (TOML) whose tables to declare.
    #[arg(long)]
    config: PathBuf,
    /// Declare the tables under this root instead of the config's `output`.
    #[arg(long, value_name = "URL")]
    output: Option<String>,
    /// The schema (database) the tables are created in.
    #[arg(long, default_value = "exdep")]
    schema: String,
    /// Trino's catalog (default: `hive` for Parquet tables, `delta` for Delta tables).
    #[arg(long, value_name = "NAME")]
    trino_catalog: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Engine {
    Spark,
    Trino,
    Hive,
    Duckdb,
}

pub fn ddl(args: DdlArgs) -> Result<()> {
    let mut config = Config::load(&args.config)?;
    config.override_locations(&[], args.output.as_deref())?;
    let engine = match args.engine {
        Engine::Spark => CatalogEngine::Spark,
        Engine::Trino => CatalogEngine::Trino,
        Engine::Hive => CatalogEngine::Hive,
        Engine::Duckdb => CatalogEngine::Duckdb,
    };
    let output = Output::of(&config);
    let names = CatalogNames {
        schema: args.schema,
        trino_catalog: args.trino_catalog,
        azure_account: exdep_store::azure_account(output.root(), &config)?,
    };
    let layouts = exdep_pipeline::published_layouts(&config.indices);
    let sql = exdep_export::catalog_ddl(engine, &layouts, &output, config.table_format, &names)?;
    println!(
        "-- exdep {}: the tables of {} under {} ({:?}).\n-- Run again after each exdep run \
         that adds partitions (Parquet), or use the view (DuckDB), which lists them itself.",
        env!("CARGO_PKG_VERSION"),
        config.path.display(),
        output.root(),
        config.table_format,
    );
    print!("{sql}");
    Ok(())
}
