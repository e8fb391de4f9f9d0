//! The exdep pipeline as one call: ingest -> classify -> index -> export, as `exdep run` runs
//! it. The binary adds argument parsing and the summary; tests and embedding programs call
//! [`run_pipeline`] directly, for example on a `memory://` store.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exdep::Error> {
//! let config = exdep_core::Config::load(std::path::Path::new("configs/demo.toml"))?;
//! let ctx = exdep_core::new_session();
//! let manifest = exdep::run_pipeline(&ctx, &config, |stage| eprintln!("{stage}")).await?;
//! println!("{} tables written", manifest.tables.len());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use exdep_classify::CodeTables;
use exdep_core::Config;
use exdep_core::datafusion::prelude::SessionContext;
use exdep_export::{RunManifest, write_manifest, write_table};

/// A failure in one of the stages; each names the file, key or table involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration or storage.
    #[error(transparent)]
    Core(#[from] exdep_core::Error),
    /// Reading the inputs.
    #[error("ingest failed: {0}")]
    Ingest(#[from] exdep_ingest::Error),
    /// Code tables or the cube.
    #[error(transparent)]
    Classify(#[from] exdep_classify::Error),
    /// Planning an index.
    #[error(transparent)]
    Index(#[from] exdep_index::Error),
    /// Writing outputs or the manifest.
    #[error(transparent)]
    Export(#[from] exdep_export::Error),
    /// More records were rejected than `max-reject-ratio` allows; nothing was published.
    #[error(
        "{rejected} of {read} records were rejected ({ratio:.4}), more than max-reject-ratio \
         {max}; the outputs were left as they were (see WAREHOUSE/rejects/)"
    )]
    TooManyRejects {
        /// Records rejected.
        rejected: u64,
        /// Records read.
        read: u64,
        /// rejected / read.
        ratio: f64,
        /// The limit.
        max: f64,
    },
}

/// Runs the pipeline `config` describes in `ctx`, calling `progress` as each stage starts,
/// and returns the manifest it wrote to `OUTPUT/_manifest.json`.
pub async fn run_pipeline(
    ctx: &SessionContext,
    config: &Config,
    progress: impl Fn(&str),
) -> Result<RunManifest, Error> {
    let started = chrono::Utc::now();
    config.require_inputs()?;
    config.register_stores(ctx)?;
    progress("loading code tables");
    let tables = CodeTables::load(ctx, &config.tables, &config.years).await?;
    tables
        .register(ctx, &config.warehouse.join("tables"))
        .await?;

    progress("ingesting inputs into the raw layer");
    let ingest = exdep_ingest::ingest(ctx, config, &config.warehouse).await?;
    progress("classifying records into the cube");
    let cube = exdep_classify::build_cube(ctx, &config.warehouse, &config.years).await?;
    let inputs = exdep_export::reconcile(&ingest, &cube);
    if let Some(max) = config.max_reject_ratio {
        let read: u64 = inputs.iter().map(|f| f.read).sum();
        let rejected: u64 = inputs.iter().map(|f| f.rejected_total().records).sum();
        let ratio = if read == 0 {
            0.0
        } else {
            rejected as f64 / read as f64
        };
        if ratio > max {
            return Err(Error::TooManyRejects {
                rejected,
                read,
                ratio,
                max,
            });
        }
    }
    exdep_index::prepare(ctx, &config.warehouse).await?;
    let settings = exdep_index::PlanSettings {
        years: config.years.clone(),
        cube_years: exdep_index::cube_years(ctx, &config.warehouse).await?,
        base_year: config.indices.base_year,
        destination_level: config.indices.destination_level,
        top_n: config.indices.top_n,
        destination_threshold_cny: config.indices.destination_threshold_cny,
    };
    // Leftovers of a run killed before it published go first; this run stages its tables
    // and publishes them only when all are computed.
    exdep_export::clear_staging(ctx, &config.output).await?;
    let run_id = started.format("%Y%m%dT%H%M%S%3fZ").to_string();
    let staging = exdep_export::staging_root(&config.output, &run_id);
    let mut written = Vec::new();
    for table in exdep_index::tables(&settings) {
        progress(&format!("computing and writing `{}`", table.name));
        written.push(write_table(ctx, &staging, &table).await?);
    }
    exdep_export::stage_rejects(ctx, &config.warehouse, &staging, &config.years).await?;
    progress("publishing");
    exdep_export::publish(ctx, &staging, &config.output, &mut written, &config.years).await?;
    let manifest = RunManifest::new(
        started,
        config,
        tables.digests.clone(),
        inputs,
        &cube,
        written,
    );
    write_manifest(ctx, &config.output, &manifest).await?;
    Ok(manifest)
}
