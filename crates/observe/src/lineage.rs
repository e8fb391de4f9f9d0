//! OpenLineage run events (spec 2-0-2): START when a run begins, COMPLETE or FAIL when it
//! ends. Datasets are named as OpenLineage's naming conventions name files in object
//! storage: namespace `file` or `s3://BUCKET` (`gs://`, `az://`, ...), name the path.

use chrono::{DateTime, SecondsFormat, Utc};
use exdep_core::telemetry::Telemetry;
use exdep_core::total;
use exdep_store::RunManifest;
use exdep_store::layout::Output;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Ended, RunEnd};

/// The run event schema the events follow.
const RUN_EVENT_SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// The schema of each standard facet exdep writes.
const JOB_TYPE_SCHEMA: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const PROCESSING_ENGINE_SCHEMA: &str = "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const ERROR_MESSAGE_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const VERSION_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
const OUTPUT_STATISTICS_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const INPUT_STATISTICS_SCHEMA: &str = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet";

/// The schema of exdep's own facet `facet`, in the repository's `docs/lineage/`, at this
/// version.
fn own_schema(facet: &str) -> String {
    format!(
        "{}/blob/v{}/docs/lineage/{facet}.json#/$defs/{facet}",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )
}

/// What produced the events: this exdep.
fn producer() -> String {
    format!(
        "{}/tree/v{}",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )
}

/// A facet: `fields` with the `_producer` and `_schemaURL` every facet carries.
fn facet(schema: &str, fields: Value) -> Value {
    let mut facet = json!({ "_producer": producer(), "_schemaURL": schema });
    if let (Value::Object(facet), Value::Object(fields)) = (&mut facet, fields) {
        facet.extend(fields);
    }
    facet
}

fn event_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The job every event of a config's runs names, with its type.
fn job(telemetry: &Telemetry) -> Value {
    let lineage = telemetry.lineage.as_ref();
    json!({
        "namespace": lineage.map_or("exdep", |l| l.namespace.as_str()),
        "name": telemetry.job,
        "facets": {
            "jobType": facet(JOB_TYPE_SCHEMA, json!({
                "processingType": "BATCH",
                "integration": "EXDEP",
                "jobType": "JOB",
            })),
        },
    })
}

/// The facets every event's run carries: the engine that ran it.
fn run_facets() -> serde_json::Map<String, Value> {
    let mut facets = serde_json::Map::new();
    facets.insert(
        "processing_engine".into(),
        facet(
            PROCESSING_ENGINE_SCHEMA,
            json!({
                "name": "exdep",
                "version": env!("CARGO_PKG_VERSION"),
                "openlineageAdapterVersion": env!("CARGO_PKG_VERSION"),
            }),
        ),
    );
    facets
}

/// The START event of run `run_id`.
pub(crate) fn start_event(telemetry: &Telemetry, run_id: Uuid, started: DateTime<Utc>) -> Value {
    json!({
        "eventType": "START",
        "eventTime": event_time(started),
        "run": { "runId": run_id.to_string(), "facets": run_facets() },
        "job": job(telemetry),
        "inputs": [],
        "outputs": [],
        "producer": producer(),
        "schemaURL": RUN_EVENT_SCHEMA,
    })
}

/// The COMPLETE or FAIL event of run `run_id` that wrote under `output`: on completion, its
/// inputs (each file with its fingerprint and its records' reconciliation), its outputs
/// (each table with its schema, rows and files, and for Delta its version) and the run's
/// reconciliation; on failure, the error.
pub(crate) fn run_event(
    telemetry: &Telemetry,
    run_id: Uuid,
    output: &Output,
    end: &RunEnd<'_>,
) -> Value {
    let mut facets = run_facets();
    let (event_type, inputs, outputs) = match end.ended {
        Ended::Completed { manifest, changed } => {
            facets.insert(
                "exdep_reconciliation".into(),
                reconciliation(manifest, changed),
            );
            // A run that found nothing changed read and wrote nothing: naming the published
            // tables as its outputs would make a new version of each for lineage readers.
            if changed {
                ("COMPLETE", inputs(manifest), outputs(manifest, output))
            } else {
                ("COMPLETE", vec![], vec![])
            }
        }
        Ended::Failed { message, .. } => {
            facets.insert(
                "errorMessage".into(),
                facet(
                    ERROR_MESSAGE_SCHEMA,
                    json!({ "message": message, "programmingLanguage": "Rust" }),
                ),
            );
            ("FAIL", vec![], vec![])
        }
    };
    json!({
        "eventType": event_type,
        "eventTime": event_time(end.finished),
        "run": { "runId": run_id.to_string(), "facets": facets },
        "job": job(telemetry),
        "inputs": inputs,
        "outputs": outputs,
        "producer": producer(),
        "schemaURL": RUN_EVENT_SCHEMA,
    })
}

/// The run's account of its records: read = accepted + rejected + excluded, over every
/// input file, and whether every file balanced.
fn reconciliation(manifest: &RunManifest, changed: bool) -> Value {
    let files = &manifest.inputs;
    let sum = |records: fn(&exdep_core::account::FileReconciliation) -> u64| -> u64 {
        files.iter().map(records).sum()
    };
    facet(
        &own_schema("ExdepReconciliationRunFacet"),
        json!({
            "changed": changed,
            "read": sum(|f| f.read),
            "accepted": sum(|f| f.accepted.records),
            "rejected": sum(|f| total(&f.rejected).records),
            "excluded": sum(|f| total(&f.excluded).records),
            "balanced": files.iter().all(|f| f.balanced),
            "years": manifest.years,
        }),
    )
}

/// The input files, each with its fingerprint and its records' account.
fn inputs(manifest: &RunManifest) -> Vec<Value> {
    (manifest.inputs.iter())
        .map(|file| {
            let source = &file.source;
            let (namespace, name) = dataset_name(&source.file);
            json!({
                "namespace": namespace,
                "name": name,
                "inputFacets": {
                    "inputStatistics": facet(INPUT_STATISTICS_SCHEMA, json!({
                        "rowCount": file.read,
                        "size": source.bytes,
                        "fileCount": 1,
                    })),
                    "exdep_fileFingerprint": facet(
                        &own_schema("ExdepFileFingerprintInputDatasetFacet"),
                        json!({
                            "size": source.bytes,
                            "eTag": source.e_tag,
                            "lastModified": source.last_modified,
                            "format": source.format,
                            "read": file.read,
                            "accepted": file.accepted.records,
                            "rejected": total(&file.rejected).records,
                            "excluded": total(&file.excluded).records,
                        }),
                    ),
                },
            })
        })
        .collect()
}

/// The published tables, each with its schema, its rows and files, and for a Delta table
/// the version its last commit made.
fn outputs(manifest: &RunManifest, output: &Output) -> Vec<Value> {
    (manifest.tables.iter())
        .map(|table| {
            let (namespace, name) = dataset_name(&output.table(&table.name).to_string());
            let mut facets = serde_json::Map::new();
            if let Some(version) = manifest.delta_versions.get(&table.name) {
                facets.insert(
                    "version".into(),
                    facet(
                        VERSION_SCHEMA,
                        json!({ "datasetVersion": version.to_string() }),
                    ),
                );
            }
            json!({
                "namespace": namespace,
                "name": name,
                "facets": facets,
                "outputFacets": {
                    "outputStatistics": facet(OUTPUT_STATISTICS_SCHEMA, json!({
                        "rowCount": table.rows,
                        "fileCount": table.files.len(),
                    })),
                },
            })
        })
        .collect()
}

/// A file or folder's dataset namespace and name, as OpenLineage names them: `file` and
/// the absolute path for a local file, `SCHEME://BUCKET` and the key for object storage.
fn dataset_name(url: &str) -> (String, String) {
    match url::Url::parse(url) {
        Ok(url) if url.scheme() == "file" => ("file".into(), url.path().to_string()),
        Ok(url) => (
            format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()),
            url.path().trim_start_matches('/').to_string(),
        ),
        Err(_) => ("file".into(), url.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_named_as_openlineage_names_files() {
        assert_eq!(
            dataset_name("file:///data/exports-2021.csv"),
            ("file".into(), "/data/exports-2021.csv".into())
        );
        assert_eq!(
            dataset_name("s3://lake/exdep/indices"),
            ("s3://lake".into(), "exdep/indices".into())
        );
    }
}
