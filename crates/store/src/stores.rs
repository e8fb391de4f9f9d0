//! Cloud object stores: S3 (and S3-compatible servers), Google Cloud Storage and Azure Blob
//! Storage, built from the environment's standard variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`)
//! and the config's `[storage]` options, then registered in the session so that DataFusion's
//! plans and exdep's own writers share them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, RetryConfig};
use url::Url;

use exdep_core::{Config, Location, StoreRetry};

use crate::error::{Error, Result};
use crate::objects::store_url;

/// object_store's retry settings for `retry`.
fn retry_config(retry: StoreRetry) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: retry.max_retries,
        retry_timeout: retry.timeout,
    }
}

/// Builds and registers the store of every cloud location `config` names (its inputs,
/// code tables, warehouse and output), with its `[storage]` options and `[retry]`. Local and
/// `memory://` stores are already in every session.
pub fn register_stores(ctx: &SessionContext, config: &Config) -> Result<()> {
    let mut done = BTreeSet::new();
    for location in config.locations() {
        let store_url = store_url(location);
        if !done.insert(store_url.as_str().to_string()) {
            continue;
        }
        let url: &Url = store_url.as_ref();
        if let Some(store) = build_store(url, &config.storage, config.retry)? {
            ctx.register_object_store(url, store);
        }
    }
    Ok(())
}

/// The Azure storage account an `az://` or `abfss://` location of `config` is in: as the
/// store exdep builds for it finds it (the URL, then `[storage]`, then `AZURE_*`); `None`
/// when none is set or the location is not in Azure.
pub fn azure_account(location: &Location, config: &Config) -> Result<Option<String>> {
    if !AZURE_SCHEMES.contains(&location.url().scheme()) {
        return Ok(None);
    }
    let builder = azure_builder(location.url(), &config.storage)?;
    Ok(builder.get_config_value(&AzureConfigKey::AccountName))
}

/// The builder of the Azure store of `url`, from the environment and `options`.
fn azure_builder(url: &Url, options: &BTreeMap<String, String>) -> Result<MicrosoftAzureBuilder> {
    let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
    for (key, value) in options {
        builder = builder.with_config(parse_key::<AzureConfigKey>(key)?, value);
    }
    Ok(builder)
}

/// The URL schemes of Azure Blob Storage and Data Lake locations.
const AZURE_SCHEMES: [&str; 5] = ["az", "azure", "abfs", "abfss", "adl"];

/// The cloud store of `url`'s bucket or container, from the environment and `options`;
/// `None` for the local filesystem and `memory://`, which every session has.
fn build_store(
    url: &Url,
    options: &BTreeMap<String, String>,
    retry: StoreRetry,
) -> Result<Option<Arc<dyn ObjectStore>>> {
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "file" | "memory" => return Ok(None),
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in options {
                builder = builder.with_config(parse_key::<AmazonS3ConfigKey>(key)?, value);
            }
            Arc::new(builder.with_retry(retry_config(retry)).build()?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (key, value) in options {
                builder = builder.with_config(parse_key::<GoogleConfigKey>(key)?, value);
            }
            Arc::new(builder.with_retry(retry_config(retry)).build()?)
        }
        scheme if AZURE_SCHEMES.contains(&scheme) => {
            let builder = azure_builder(url, options)?;
            Arc::new(builder.with_retry(retry_config(retry)).build()?)
        }
        other => {
            return Err(exdep_core::Error::Location {
                location: url.to_string(),
                message: format!(
                    "exdep cannot reach `{other}://` stores (use a path, file://, s3://, \
                     gs://, az:// or memory://)"
                ),
            }
            .into());
        }
    };
    Ok(Some(store))
}

/// An object store registry that builds the store of a cloud bucket the first time a plan
/// names it, from the process's environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), with
/// object_store's default retries. The cluster's
/// scheduler and executors plan and run whatever buckets a client's plans name, so they
/// cannot register stores in advance.
#[derive(Debug, Default)]
pub struct EnvironmentStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for EnvironmentStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let built = build_store(url, &BTreeMap::new(), StoreRetry::default())
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        match built {
            Some(store) => {
                self.known.register_store(url, store.clone());
                Ok(store)
            }
            None => self.known.get_store(url),
        }
    }
}

/// A `[storage]` key as the store's typed configuration key; an unknown key is an error.
fn parse_key<K: std::str::FromStr>(key: &str) -> Result<K> {
    key.parse().map_err(|_| Error::StorageOption {
        key: format!("storage.{key}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_are_object_stores() {
        let ours = retry_config(StoreRetry::default());
        let theirs = RetryConfig::default();
        assert_eq!(
            (ours.max_retries, ours.retry_timeout),
            (theirs.max_retries, theirs.retry_timeout)
        );
    }
}
