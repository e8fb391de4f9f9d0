//! Locations in object storage, as values: resolving, joining, comparing. Reading and
//! writing what lies there is `exdep-store`'s.
//!
//! Every place exdep reads or writes is a URL: `file://`, `memory://`, or a plain path, which
//! becomes a `file://` URL.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use object_store::path::Path as ObjectPath;
use url::Url;

use crate::error::{Error, Result};

/// A folder or file in object storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
}

impl Location {
    /// Resolves a URL (`file://`, `memory://`, ...) or a local path; relative paths are taken
    /// relative to `base`.
    pub fn resolve(text: &str, base: &Path) -> Result<Self> {
        let error = location_error(text)?;
        if has_scheme(text) {
            let mut url = Url::parse(text).map_err(|e| error(e.to_string()))?;
            if url.path().ends_with('/') && url.path().len() > 1 {
                let trimmed = url.path().trim_end_matches('/').to_string();
                url.set_path(&trimmed);
            }
            return Ok(Self { url });
        }
        let path = normalize(&base.join(text));
        let url = Url::from_file_path(&path)
            .map_err(|()| error(format!("{} is not an absolute path", path.display())))?;
        Ok(Self { url })
    }

    /// The location as a URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The path inside the store.
    pub fn path(&self) -> Result<ObjectPath> {
        ObjectPath::from_url_path(self.url.path()).map_err(|e| Error::Location {
            location: self.url.to_string(),
            message: e.to_string(),
        })
    }

    /// A child of this folder.
    pub fn join(&self, segment: &str) -> Self {
        let mut url = self.url.clone();
        url.path_segments_mut()
            .expect("object store URLs have a path")
            .pop_if_empty()
            .extend(segment.split('/'));
        Self { url }
    }

    /// Whether this location is `other` or lies below it.
    pub fn is_within(&self, other: &Location) -> bool {
        url_within(self.url.as_str(), other.url.as_str())
    }

    /// The location as a string DataFusion's listing tables accept (a folder, with a slash).
    pub fn as_table_url(&self) -> String {
        format!("{}/", self.url.as_str().trim_end_matches('/'))
    }

    /// A location from a URL string exdep itself produced (no relative paths).
    pub fn parse_url(url: &str) -> Result<Self> {
        Url::parse(url)
            .map(|url| Self { url })
            .map_err(|e| Error::Location {
                location: url.to_string(),
                message: e.to_string(),
            })
    }
}

impl From<Url> for Location {
    fn from(url: Url) -> Self {
        Self { url }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// The error of a location as written, unless it is empty (which is an error already).
fn location_error(text: &str) -> Result<impl Fn(String) -> Error + '_> {
    let error = move |message: String| Error::Location {
        location: text.to_string(),
        message,
    };
    if text.trim().is_empty() {
        return Err(error("empty location".into()));
    }
    Ok(error)
}

/// Whether the URL `mine` is `theirs` or lies below it.
fn url_within(mine: &str, theirs: &str) -> bool {
    let theirs = theirs.trim_end_matches('/');
    let mine = mine.trim_end_matches('/');
    mine == theirs
        || mine
            .strip_prefix(theirs)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An input location: a file, a folder, or a glob over file names.
#[derive(Debug, Clone)]
pub struct InputLocation {
    text: String,
    /// The file, or the folder listed (its URL ending in `/`).
    url: Url,
    /// The pattern file names below `url` must match, when the location ends in a glob.
    glob: Option<glob::Pattern>,
}

impl InputLocation {
    /// Resolves a URL or local path, either possibly ending in a glob such as `*.csv`.
    pub fn resolve(text: &str, base: &Path) -> Result<Self> {
        let error = location_error(text)?;
        let absolute;
        let written = if has_scheme(text) {
            text
        } else {
            absolute = normalize(&base.join(text)).to_string_lossy().into_owned();
            &absolute
        };
        let (prefix, glob) = match written.find(['*', '?', '[']) {
            Some(glob_start) => {
                let split = written[..glob_start].rfind('/').map_or(0, |i| i + 1);
                let (prefix, pattern) = written.split_at(split);
                let pattern = glob::Pattern::new(pattern).map_err(|e| error(e.to_string()))?;
                (prefix, Some(pattern))
            }
            None => (written, None),
        };
        let url = if has_scheme(text) {
            Url::parse(prefix).map_err(|e| error(e.to_string()))?
        } else {
            // A local folder lists its files; a path that does not exist yet names a file,
            // unless a glob follows it (the part before a glob ends in a slash).
            let path = Path::new(prefix);
            let folder = path.is_dir() || prefix.ends_with('/');
            if folder {
                Url::from_directory_path(path)
            } else {
                Url::from_file_path(path)
            }
            .map_err(|()| error(format!("{prefix} is not an absolute path")))?
        };
        // A path no store could hold is refused here, not when the run lists it.
        ObjectPath::from_url_path(url.path()).map_err(|e| error(e.to_string()))?;
        Ok(Self {
            text: text.to_string(),
            url,
            glob,
        })
    }

    /// The file, or the folder whose files are listed (its URL then ends in `/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The pattern the listed files' names must match, if any.
    pub fn glob(&self) -> Option<&glob::Pattern> {
        self.glob.as_ref()
    }

    /// The location as the user wrote it.
    pub fn as_written(&self) -> &str {
        &self.text
    }

    /// Whether every file this location names lies in `folder` (or is it).
    pub fn is_within(&self, folder: &Location) -> bool {
        url_within(self.url.as_str(), folder.url.as_str())
    }

    /// Whether `location` lies in the folder this location lists (a folder input, not a
    /// single file or a glob over file names).
    pub fn lists(&self, location: &Location) -> bool {
        self.glob.is_none()
            && url_within(location.url.as_str(), self.url.as_str())
            && location.url.as_str() != self.url.as_str().trim_end_matches('/')
    }

    /// Whether a listed file is hidden, as Spark and Hive see it: a folder or file name
    /// below this location's prefix starts with `_` or `.` (`_SUCCESS`, `.DS_Store`,
    /// `_temporary/`). A file the location names itself is never hidden.
    pub fn is_hidden(&self, path: &ObjectPath) -> bool {
        let prefix = ObjectPath::from_url_path(self.url.path()).expect("checked at resolve");
        path.prefix_match(&prefix).is_some_and(|mut parts| {
            parts.any(|part| part.as_ref().starts_with('_') || part.as_ref().starts_with('.'))
        })
    }
}

impl fmt::Display for InputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn has_scheme(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// Removes `.` and `..` without touching the filesystem, so paths that do not exist yet
/// (an output root) resolve the same as those that do.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let loc = Location::resolve("../out/x", Path::new("/a/b/configs")).unwrap();
        assert_eq!(loc.url().as_str(), "file:///a/b/out/x");
        assert_eq!(
            loc.join("year=2020").url().as_str(),
            "file:///a/b/out/x/year=2020"
        );
    }

    #[test]
    fn urls_keep_their_scheme() {
        let loc = Location::resolve("memory:///wh/", Path::new("/x")).unwrap();
        assert_eq!(loc.url().as_str(), "memory:///wh");
        assert_eq!(loc.path().unwrap().as_ref(), "wh");
    }

    #[test]
    fn within() {
        let root = Location::resolve("/a/out", Path::new("/")).unwrap();
        assert!(
            Location::resolve("/a/out/_wh", Path::new("/"))
                .unwrap()
                .is_within(&root)
        );
        assert!(
            !Location::resolve("/a/output", Path::new("/"))
                .unwrap()
                .is_within(&root)
        );
    }

    #[test]
    fn inputs_split_a_glob_from_the_folder_it_lists() {
        let local = InputLocation::resolve("in/*.csv", Path::new("/no/such")).unwrap();
        assert_eq!(local.url().as_str(), "file:///no/such/in/");
        assert_eq!(local.glob().map(|g| g.as_str()), Some("*.csv"));
        let remote =
            InputLocation::resolve("s3://bucket/in/2021-*.parquet", Path::new("/")).unwrap();
        assert_eq!(remote.url().as_str(), "s3://bucket/in/");
        assert_eq!(remote.glob().map(|g| g.as_str()), Some("2021-*.parquet"));
        let file = InputLocation::resolve("/no/such/in/a.csv", Path::new("/")).unwrap();
        assert_eq!(file.url().as_str(), "file:///no/such/in/a.csv");
        assert!(file.glob().is_none());
        let hidden = ObjectPath::from("no/such/in/_SUCCESS");
        assert!(local.is_hidden(&hidden));
        assert!(!file.is_hidden(&ObjectPath::from("no/such/in/a.csv")));
    }
}
