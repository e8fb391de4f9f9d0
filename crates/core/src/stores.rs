//! Cloud object stores: S3 (and S3-compatible servers), Google Cloud Storage and Azure Blob
//! Storage, built from the environment's standard variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`)
//! and the config's `[storage]` options, then registered in the session so that DataFusion's
//! plans and exdep's own writers share them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::object_store::{
    DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl,
};
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// How a store retries a failed request: object_store's defaults (10 retries within 3
/// minutes, backing off from 100 ms to 15 s), which ride out a throttled or briefly
/// unreachable store, unless the config's `[retry]` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRetry {
    /// Retries of one request at most.
    pub max_retries: usize,
    /// How long after the first try no retry starts.
    pub timeout: Duration,
}

impl Default for StoreRetry {
    fn default() -> Self {
        let defaults = RetryConfig::default();
        Self {
            max_retries: defaults.max_retries,
            timeout: defaults.retry_timeout,
        }
    }
}

impl StoreRetry {
    fn config(self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.max_retries,
            retry_timeout: self.timeout,
        }
    }
}

/// Builds and registers the store of every cloud URL among `stores` (scheme and authority,
/// such as `s3://bucket`). Local and `memory://` stores are already in every session.
pub fn register_stores<'a>(
    ctx: &SessionContext,
    stores: impl IntoIterator<Item = &'a ObjectStoreUrl>,
    options: &BTreeMap<String, String>,
    retry: StoreRetry,
) -> Result<()> {
    let mut done = std::collections::BTreeSet::new();
    for store_url in stores {
        if !done.insert(store_url.as_str().to_string()) {
            continue;
        }
        let url: &Url = store_url.as_ref();
        if let Some(store) = build_store(url, options, retry)? {
            ctx.register_object_store(url, store);
        }
    }
    Ok(())
}

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
            Arc::new(builder.with_retry(retry.config()).build()?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (key, value) in options {
                builder = builder.with_config(parse_key::<GoogleConfigKey>(key)?, value);
            }
            Arc::new(builder.with_retry(retry.config()).build()?)
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (key, value) in options {
                builder = builder.with_config(parse_key::<AzureConfigKey>(key)?, value);
            }
            Arc::new(builder.with_retry(retry.config()).build()?)
        }
        other => {
            return Err(Error::Location {
                location: url.to_string(),
                message: format!(
                    "exdep cannot reach `{other}://` stores (use a path, file://, s3://, \
                     gs://, az:// or memory://)"
                ),
            });
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
    key.parse().map_err(|_| Error::ConfigValue {
        key: format!("storage.{key}"),
        message: "not an option of this object store".into(),
    })
}
