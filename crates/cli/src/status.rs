//! `exdep status`: what is published, when, from which inputs, and what is stale.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use exdep_classify::CodeTables;
use exdep_core::Config;
use exdep_engine::new_session;
use exdep_pipeline::{Planned, RunOptions};
use exdep_store::layout::Output;
use exdep_store::read_manifest;

pub async fn status(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let ctx = new_session();
    exdep_engine::prepare_session(&ctx, &config)?;
    let nothing_published = || println!("nothing is published under {}", config.output);
    // Nothing published is an answer of its own, whatever the inputs and tables are now.
    if read_manifest(&ctx, &Output::of(&config)).await?.is_none() {
        nothing_published();
        return Ok(());
    }
    let tables = CodeTables::load(&ctx, &config.tables, &config.years).await?;
    let Planned {
        plan,
        state,
        previous,
        ..
    } = exdep_pipeline::plan(&ctx, &config, &tables, &RunOptions::default()).await?;
    // A run publishing meanwhile withdraws the manifest until it is done.
    let Some(manifest) = previous else {
        nothing_published();
        return Ok(());
    };
    println!(
        "published under {} by exdep {}, run finished {}",
        config.output, manifest.exdep_version, manifest.finished
    );
    if let Some(why) = &plan.full {
        println!("every year is stale: {why}");
    }
    for (file, why) in plan.read.iter().filter(|(f, _)| {
        state
            .as_ref()
            .is_none_or(|s| !s.files.contains_key(&f.location.to_string()))
    }) {
        println!(
            "to read: {} ({why}; its years are known once read)",
            file.location
        );
    }

    let years: BTreeSet<i32> = config
        .years
        .union(&manifest.published_years)
        .copied()
        .collect();
    println!("{:<6} {:<10} {:<7} state", "year", "published", "inputs");
    for year in years {
        let inputs = manifest
            .inputs
            .iter()
            .filter(|f| f.years.contains(&year))
            .count();
        let mut reasons: Vec<String> = plan
            .rebuild
            .get(&year)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let is_published = manifest.published_years.contains(&year);
        if !is_published {
            reasons.push("configured but not published".into());
        }
        if !config.years.contains(&year) {
            reasons.push("published but no longer configured".into());
        }
        let state = if reasons.is_empty() {
            "current".to_string()
        } else {
            format!("stale: {}", reasons.join("; "))
        };
        println!(
            "{year:<6} {:<10} {inputs:<7} {state}",
            if is_published { "yes" } else { "no" },
        );
    }
    Ok(())
}
