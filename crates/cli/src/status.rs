//! `exdep status`: what is published, when, from which inputs, and what is stale.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use exdep_classify::CodeTables;
use exdep_core::{Config, new_session};
use exdep_export::read_manifest;

/// An input file as it is now: size, entity tag, modification time.
type Fingerprint = (u64, Option<String>, String);

pub async fn status(path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let ctx = new_session();
    config.register_stores(&ctx)?;
    let Some(manifest) = read_manifest(&ctx, &config.output).await? else {
        println!("nothing is published under {}", config.output);
        return Ok(());
    };
    println!(
        "published under {} by exdep {}, run finished {}",
        config.output, manifest.exdep_version, manifest.finished
    );

    // Reasons every year is stale: the config or a code table changed since the run.
    let mut everywhere = Vec::new();
    if manifest.config.sha256 != config.sha256 {
        everywhere.push("the config changed".to_string());
    }
    let tables = CodeTables::load(&ctx, &config.tables, &config.years).await?;
    for (name, digest) in &tables.digests {
        match manifest.code_tables.get(name) {
            Some(used) if used.sha256 == digest.sha256 => {}
            _ => everywhere.push(format!("code table {name} changed")),
        }
    }

    let mut now: BTreeMap<String, Fingerprint> = BTreeMap::new();
    for input in &config.inputs {
        for (file, meta) in input
            .location
            .list_files(&ctx, input.format.file_extension())
            .await?
        {
            let fingerprint = (
                meta.size,
                meta.e_tag.clone(),
                meta.last_modified.to_rfc3339(),
            );
            now.insert(file.to_string(), fingerprint);
        }
    }
    let then: BTreeMap<&str, _> = manifest
        .inputs
        .iter()
        .map(|f| (f.file.as_str(), f))
        .collect();
    for file in now.keys().filter(|f| !then.contains_key(f.as_str())) {
        everywhere.push(format!("new input {file} (its years are known once read)"));
    }

    let published: BTreeSet<i32> = manifest
        .tables
        .iter()
        .flat_map(|t| t.files.iter())
        .filter_map(|f| f.partition.first()?.1.parse().ok())
        .collect();
    let years: BTreeSet<i32> = config.years.union(&published).copied().collect();
    println!("{:<6} {:<10} {:<7} state", "year", "published", "inputs");
    for year in years {
        let inputs: Vec<_> = manifest
            .inputs
            .iter()
            .filter(|f| f.years.contains(&year))
            .collect();
        let mut reasons = everywhere.clone();
        for file in &inputs {
            match now.get(&file.file) {
                None => reasons.push(format!("input {} is gone", file.file)),
                Some((size, e_tag, modified))
                    if *size != file.bytes
                        || *e_tag != file.e_tag
                        || *modified != file.last_modified =>
                {
                    reasons.push(format!("input {} changed", file.file))
                }
                Some(_) => {}
            }
        }
        let is_published = published.contains(&year);
        if !is_published && config.years.contains(&year) {
            reasons.push("configured but not published".into());
        }
        if is_published && !config.years.contains(&year) {
            reasons.push("published but no longer configured".into());
        }
        let state = if reasons.is_empty() {
            "current".to_string()
        } else {
            format!("stale: {}", reasons.join("; "))
        };
        println!(
            "{year:<6} {:<10} {:<7} {state}",
            if is_published { "yes" } else { "no" },
            inputs.len()
        );
    }
    Ok(())
}
