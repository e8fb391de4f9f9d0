//! The pipeline on a `memory://` object store: every read and write goes through
//! object_store URLs, none through the local filesystem.

use std::path::Path;

use exdep_core::Config;
use exdep_core::arrow::array::AsArray;
use exdep_core::arrow::datatypes::{DataType, Float64Type};
use exdep_core::object_store::path::Path as ObjectPath;
use exdep_core::object_store::{ObjectStoreExt, PutPayload};
use exdep_engine::datafusion::execution::object_store::ObjectStoreUrl;
use exdep_engine::datafusion::prelude::ParquetReadOptions;
use exdep_engine::new_session;

use crate::support::{canonical_csv, configs_dir};

#[tokio::test]
async fn the_pipeline_runs_on_an_in_memory_store() {
    let ctx = new_session();
    let store = ctx
        .runtime_env()
        .object_store(ObjectStoreUrl::parse("memory://").unwrap())
        .unwrap();
    for table in [
        "hs_chapters.csv",
        "partner_regions.csv",
        "provinces.csv",
        "cny_per_usd.csv",
    ] {
        let bytes = std::fs::read(configs_dir().join(table)).unwrap();
        store
            .put(
                &ObjectPath::from(format!("tables/{table}")),
                PutPayload::from(bytes),
            )
            .await
            .unwrap();
    }
    let csv = canonical_csv(&[
        (2020, "44", "USA", "8504", 300.0, "USD"),
        (2020, "44", "JPN", "8504", 100.0, "USD"),
        (2020, "11", "DEU", "0101", 50.0, "USD"),
    ]);
    store
        .put(
            &ObjectPath::from("landing/exports.csv"),
            PutPayload::from(csv.into_bytes()),
        )
        .await
        .unwrap();
    let config = Config::parse(
        r#"
        years = [2020]
        output = "memory:///lake/exdep"
        warehouse = "memory:///lake/_exdep_warehouse"
        [[inputs]]
        location = "memory:///landing/*.csv"
        format = "canonical-csv"
        [tables]
        hs-chapters = "memory:///tables/hs_chapters.csv"
        partner-regions = "memory:///tables/partner_regions.csv"
        provinces = "memory:///tables/provinces.csv"
        exchange-rates = "memory:///tables/cny_per_usd.csv"
        "#,
        Path::new("/nowhere/pipeline.toml"),
    )
    .unwrap();

    let options = exdep_pipeline::RunOptions::default();
    let outcome = exdep_pipeline::run_pipeline(&ctx, &config, &options, |_| {})
        .await
        .unwrap();
    let manifest = outcome.manifest;
    assert_eq!(manifest.inputs.len(), 1);
    assert_eq!(
        manifest.inputs[0].source.file,
        "memory:///landing/exports.csv"
    );
    assert_eq!(manifest.inputs[0].accepted.records, 3);
    assert!(
        store
            .head(&ObjectPath::from("lake/exdep/_manifest.json"))
            .await
            .is_ok(),
        "the manifest is in the store"
    );

    let options = ParquetReadOptions::default().table_partition_cols(vec![
        ("year".to_string(), DataType::Int32),
        ("province".to_string(), DataType::Utf8),
    ]);
    ctx.register_parquet("out_indices", "memory:///lake/exdep/indices/", options)
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT hhi FROM out_indices WHERE province = '44' AND category = 'all'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let hhi = batches[0].column(0).as_primitive::<Float64Type>().value(0);
    assert!(
        (hhi - (0.75f64.powi(2) + 0.25f64.powi(2))).abs() < 1e-12,
        "hhi {hhi}"
    );
    assert!(
        !Path::new("/nowhere").exists(),
        "nothing touched the local filesystem"
    );
}
