//! `exdep run` and `exdep check`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use exdep_classify::CodeTables;
use exdep_core::{Config, new_session};
use exdep_export::{FileReconciliation, MANIFEST_NAME, RunManifest};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The pipeline config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Read these files, folders or globs instead of the config's inputs (repeatable); the
    /// format follows the extension (.csv or .parquet).
    #[arg(long = "input", value_name = "URL")]
    inputs: Vec<String>,
    /// Write the tables under this root instead of the config's `output`.
    #[arg(long, value_name = "URL")]
    output: Option<String>,
    /// Fail, before publishing anything, when more than this fraction of the records read
    /// is rejected (replaces the config's `max-reject-ratio`).
    #[arg(long, value_name = "R")]
    max_reject_ratio: Option<f64>,
    /// Print only the final summary, no progress.
    #[arg(long)]
    quiet: bool,
}

pub async fn check(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let ctx = new_session();
    config.register_stores(&ctx)?;
    let tables = CodeTables::load(&ctx, &config.tables, &config.years).await?;
    println!(
        "config ok: {} years, {} inputs, {} chapters, {} partners, {} provinces",
        config.years.len(),
        config.inputs.len(),
        tables.chapters.len(),
        tables.partner_regions.len(),
        tables.provinces.len()
    );
    Ok(())
}

pub async fn run(args: RunArgs) -> Result<()> {
    let timer = Instant::now();
    let mut config = Config::load(&args.config)?;
    if !args.inputs.is_empty() {
        config.override_inputs(&args.inputs)?;
    }
    if let Some(output) = &args.output {
        config.override_output(output)?;
    }
    if let Some(ratio) = args.max_reject_ratio {
        exdep_core::check_ratio(Some(ratio), "--max-reject-ratio")?;
        config.max_reject_ratio = Some(ratio);
    }
    let ctx = new_session();
    let manifest = exdep::run_pipeline(&ctx, &config, |stage| {
        if !args.quiet {
            eprintln!("[{:>6.2}s] {stage}", timer.elapsed().as_secs_f64());
        }
    })
    .await?;
    let manifest_location = config.output.join(MANIFEST_NAME);
    print_summary(
        &manifest,
        &manifest_location.to_string(),
        timer.elapsed().as_secs_f64(),
    );
    if let Some(file) = manifest.inputs.iter().find(|f| !f.balanced) {
        bail!(
            "{}: records do not reconcile (read {}, accepted {}, rejected {}, excluded {})",
            file.file,
            file.read,
            file.accepted.records,
            file.rejected_total().records,
            file.excluded_total().records
        );
    }
    Ok(())
}

fn print_summary(manifest: &RunManifest, manifest_location: &str, seconds: f64) {
    let years = &manifest.years;
    println!(
        "exdep run: years {}-{} ({}), {} input files, {seconds:.2} s",
        years.first().unwrap_or(&0),
        years.last().unwrap_or(&0),
        years.len(),
        manifest.inputs.len()
    );
    println!("inputs (read = accepted + rejected + excluded):");
    for file in &manifest.inputs {
        print_reconciliation(file);
    }
    if manifest.years_without_records.is_empty() {
        println!("every configured year has records");
    } else {
        let missing: Vec<String> = manifest
            .years_without_records
            .iter()
            .map(|y| y.to_string())
            .collect();
        println!("configured years without records: {}", missing.join(", "));
    }
    println!("tables:");
    for table in &manifest.tables {
        println!(
            "  {:<14} {:>9} rows in {:>4} partitions",
            table.name,
            table.rows,
            table.files.len()
        );
    }
    println!("manifest: {manifest_location}");
}

fn print_reconciliation(file: &FileReconciliation) {
    let detail = |tallies: &exdep_core::TallyByReason| {
        if tallies.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = tallies
                .iter()
                .map(|(reason, t)| format!("{reason} {}", t.records))
                .collect();
            format!(" ({})", parts.join(", "))
        }
    };
    println!("  {}", file.file);
    println!(
        "    read {} = accepted {} + rejected {}{} + excluded {}{}{}",
        file.read,
        file.accepted.records,
        file.rejected_total().records,
        detail(&file.rejected),
        file.excluded_total().records,
        detail(&file.excluded),
        if file.balanced { "" } else { "  MISMATCH" }
    );
}
