//! What lies at a [`Location`]: reading, listing, moving and deleting its objects.
//!
//! The stores behind the URLs live in the DataFusion session's runtime, so the plans and
//! exdep's own writers always talk to the same store instance.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use exdep_core::schema::YEAR;
use exdep_core::{InputLocation, Location};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tracing::warn;
use url::Url;

use crate::error::Result;

/// The URL of the store that holds `url` (its scheme and authority).
pub(crate) fn store_url(url: &Url) -> ObjectStoreUrl {
    ObjectStoreUrl::parse(&url[..url::Position::BeforePath])
        .expect("scheme and authority of a parsed URL form a valid store URL")
}

/// The objects at and below a [`Location`], in the stores of a session.
pub trait Objects {
    /// The URL of the store that holds this location (scheme and authority).
    fn object_store_url(&self) -> ObjectStoreUrl;

    /// The store that holds this location, from the session's registry.
    fn store(&self, ctx: &SessionContext) -> Result<Arc<dyn ObjectStore>>;

    /// The years of the `year=YYYY` partitions directly under this folder.
    fn partition_years(
        &self,
        ctx: &SessionContext,
    ) -> impl Future<Output = Result<BTreeSet<i32>>> + Send;

    /// Deletes every object under this folder.
    fn delete_all(&self, ctx: &SessionContext) -> impl Future<Output = Result<usize>> + Send;

    /// Deletes every object under this folder but those in `keep`.
    fn delete_all_except(
        &self,
        ctx: &SessionContext,
        keep: &HashSet<ObjectPath>,
    ) -> impl Future<Output = Result<usize>> + Send;

    /// Deletes the objects under this folder whose path `doomed` picks.
    fn delete_where(
        &self,
        ctx: &SessionContext,
        doomed: impl Fn(&ObjectPath) -> bool + Send + Sync,
    ) -> impl Future<Output = Result<usize>> + Send;

    /// Moves every object under this folder to the same place under `target`, replacing an
    /// object already there; returns how many moved. A rename where the store has one (a
    /// local disk), a copy and a delete elsewhere.
    fn move_into(
        &self,
        ctx: &SessionContext,
        target: &Location,
    ) -> impl Future<Output = Result<usize>> + Send;

    /// Deletes the object at this location; one that is not there is already deleted.
    fn delete_if_exists(&self, ctx: &SessionContext) -> impl Future<Output = Result<()>> + Send;

    /// Reads the whole object at this location.
    fn read_all(&self, ctx: &SessionContext) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// Whether any object lies under this folder.
    fn has_objects(&self, ctx: &SessionContext) -> impl Future<Output = Result<bool>> + Send;
}

impl Objects for Location {
    fn object_store_url(&self) -> ObjectStoreUrl {
        store_url(self.url())
    }

    fn store(&self, ctx: &SessionContext) -> Result<Arc<dyn ObjectStore>> {
        Ok(ctx.runtime_env().object_store(self.object_store_url())?)
    }

    async fn partition_years(&self, ctx: &SessionContext) -> Result<BTreeSet<i32>> {
        let listing = self
            .store(ctx)?
            .list_with_delimiter(Some(&self.path()?))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|prefix| {
                prefix
                    .filename()?
                    .strip_prefix(YEAR)?
                    .strip_prefix('=')?
                    .parse()
                    .ok()
            })
            .collect())
    }

    async fn delete_all(&self, ctx: &SessionContext) -> Result<usize> {
        self.delete_where(ctx, |_| true).await
    }

    async fn delete_all_except(
        &self,
        ctx: &SessionContext,
        keep: &HashSet<ObjectPath>,
    ) -> Result<usize> {
        self.delete_where(ctx, |path| !keep.contains(path)).await
    }

    async fn delete_where(
        &self,
        ctx: &SessionContext,
        doomed: impl Fn(&ObjectPath) -> bool + Send + Sync,
    ) -> Result<usize> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        let mut deleted = 0;
        for meta in objects.iter().filter(|m| doomed(&m.location)) {
            if let Some(link) = linked_folder(self, &meta.location) {
                warn!(
                    link = %link.display(),
                    "not deleting {}: it lies behind a symbolic link, outside exdep's folders",
                    meta.location
                );
                continue;
            }
            store.delete(&meta.location).await?;
            deleted += 1;
        }
        remove_empty_folders(self);
        Ok(deleted)
    }

    async fn move_into(&self, ctx: &SessionContext, target: &Location) -> Result<usize> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
        for meta in &objects {
            let relative: Vec<_> = meta
                .location
                .prefix_match(&prefix)
                .into_iter()
                .flatten()
                .collect();
            let relative = relative
                .iter()
                .map(|part| part.as_ref())
                .collect::<Vec<_>>()
                .join("/");
            store
                .rename(&meta.location, &target.join(&relative).path()?)
                .await?;
        }
        remove_empty_folders(self);
        Ok(objects.len())
    }

    async fn delete_if_exists(&self, ctx: &SessionContext) -> Result<()> {
        match self.store(ctx)?.delete(&self.path()?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn read_all(&self, ctx: &SessionContext) -> Result<Vec<u8>> {
        let store = self.store(ctx)?;
        let bytes = store.get(&self.path()?).await?.bytes().await?;
        Ok(bytes.to_vec())
    }

    async fn has_objects(&self, ctx: &SessionContext) -> Result<bool> {
        let store = self.store(ctx)?;
        let prefix = self.path()?;
        let mut listing = store.list(Some(&prefix));
        Ok(listing.try_next().await?.is_some())
    }
}

/// On a local filesystem, the symbolic link to a folder that `object` (listed below
/// `location`) is reached through, if any: listings follow such links, and a delete through
/// one would delete what it points to.
fn linked_folder(location: &Location, object: &ObjectPath) -> Option<PathBuf> {
    let url = location.url();
    let root = url.to_file_path().ok().filter(|_| url.scheme() == "file")?;
    let file = Path::new("/").join(object.as_ref());
    let below = file.strip_prefix(&root).ok()?.parent()?;
    let mut folder = root;
    for part in below.components() {
        folder.push(part);
        if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(folder);
        }
    }
    None
}

/// On a local filesystem, deleting objects leaves their folders behind (object stores have
/// no folders): remove the ones left empty under `location`, with the partial uploads of
/// killed processes, so that staging and emptied partitions do not linger.
fn remove_empty_folders(location: &Location) {
    fn prune(dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut empty = true;
        for entry in entries.flatten() {
            // A link is left alone, and keeps its folder: never followed.
            let Ok(file_type) = entry.file_type() else {
                empty = false;
                continue;
            };
            if file_type.is_dir() {
                empty &= prune(&entry.path());
                continue;
            }
            // An upload the local store had under way when its process was killed
            // (`NAME#N`): no listing shows it, and it never becomes an object.
            let upload = entry.file_name().to_string_lossy().contains('#');
            empty &= file_type.is_file() && upload && std::fs::remove_file(entry.path()).is_ok();
        }
        // Best effort: a folder that cannot be removed is only untidy.
        empty && std::fs::remove_dir(dir).is_ok()
    }
    let url = location.url();
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        prune(&path);
    }
}

/// The files an [`InputLocation`] names, in the stores of a session.
pub trait InputFiles {
    /// The URL of the store that holds the files.
    fn object_store_url(&self) -> ObjectStoreUrl;

    /// Lists the files this location names whose names end in `file_extension`, in path
    /// order.
    fn list_files(
        &self,
        ctx: &SessionContext,
        file_extension: &str,
    ) -> impl Future<Output = Result<Vec<(Location, ObjectMeta)>>> + Send;
}

impl InputFiles for InputLocation {
    fn object_store_url(&self) -> ObjectStoreUrl {
        store_url(self.url())
    }

    async fn list_files(
        &self,
        ctx: &SessionContext,
        file_extension: &str,
    ) -> Result<Vec<(Location, ObjectMeta)>> {
        let store_url = self.object_store_url();
        let store = ctx.runtime_env().object_store(&store_url)?;
        let listing = ListingTableUrl::try_new(self.url().clone(), self.glob().cloned())?;
        let state = ctx.state();
        let mut files: Vec<_> = listing
            .list_all_files(&state, store.as_ref(), file_extension)
            .await?
            .try_collect()
            .await?;
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files
            .into_iter()
            .map(|meta| {
                let url = Url::parse(store_url.as_str())
                    .and_then(|base| base.join(meta.location.as_ref()))
                    .expect("an object path joined to its store URL is a URL");
                (Location::from(url), meta)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_names_its_store() {
        let loc = Location::resolve("memory:///wh/", Path::new("/x")).unwrap();
        assert_eq!(loc.object_store_url().as_str(), "memory:///");
        let input = InputLocation::resolve("s3://bucket/in/*.csv", Path::new("/")).unwrap();
        assert_eq!(input.object_store_url().as_str(), "s3://bucket/");
    }
}
