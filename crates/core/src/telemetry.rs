//! Where a run reports itself besides its summary and log: OpenLineage events
//! (`[lineage]`) and Prometheus metrics (`[metrics]`), under the job name both use
//! (`name`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};

/// The `[lineage]` section as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct LineageFile {
    /// Where events go: a file, to which each event is appended as one line of JSON, or an
    /// `http(s)://` URL each event is POSTed to (Marquez: `.../api/v1/lineage`).
    target: String,
    /// The job's namespace. Default `exdep`.
    #[serde(default)]
    namespace: Option<String>,
}

/// The `[metrics]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct MetricsFile {
    /// A file for node-exporter's textfile collector, replaced at the end of each run.
    #[serde(default)]
    textfile: Option<String>,
    /// A Prometheus Pushgateway (`http://HOST:9091`) the run's metrics are pushed to.
    #[serde(default)]
    pushgateway: Option<String>,
}

/// Where a run's reports go, and the job name they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// The job's name (`name`; by default the config file's name without its extension).
    pub job: String,
    /// OpenLineage events, when `[lineage]` is set.
    pub lineage: Option<Lineage>,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

/// Where a run's OpenLineage events go.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// The file or endpoint.
    pub target: LineageTarget,
    /// The job's namespace.
    pub namespace: String,
}

/// A file events are appended to, or an endpoint they are POSTed to.
#[derive(Debug, Clone, PartialEq)]
pub enum LineageTarget {
    /// One JSON event per line, appended.
    File(PathBuf),
    /// An OpenLineage HTTP endpoint.
    Http(Url),
}

/// Where a run's Prometheus metrics go; neither, either or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// The textfile collector's file.
    pub textfile: Option<PathBuf>,
    /// The Pushgateway.
    pub pushgateway: Option<Url>,
}

/// The default namespace of lineage events.
const DEFAULT_NAMESPACE: &str = "exdep";

impl Telemetry {
    /// The checked settings of a config file at `path` (relative files resolve against
    /// `base`, its folder).
    pub(crate) fn check(
        name: Option<&str>,
        lineage: Option<LineageFile>,
        metrics: MetricsFile,
        path: &Path,
        base: &Path,
    ) -> Result<Self> {
        let job = match name {
            Some(name) => check_name(name, "name")?,
            // The file's name serves as it is where it can; its other characters become `_`,
            // so that a config named anyhow still runs.
            None => {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let job: String = (stem.chars().take(100))
                    .map(|c| if is_name_char(c) { c } else { '_' })
                    .collect();
                if job.is_empty() {
                    "exdep".to_string()
                } else {
                    job
                }
            }
        };
        let lineage = lineage
            .map(|lineage| -> Result<Lineage> {
                Ok(Lineage {
                    target: match http_url(&lineage.target, "lineage.target")? {
                        Some(url) => LineageTarget::Http(url),
                        None => LineageTarget::File(base.join(&lineage.target)),
                    },
                    namespace: check_name(
                        lineage.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
                        "lineage.namespace",
                    )?,
                })
            })
            .transpose()?;
        let pushgateway =
            match &metrics.pushgateway {
                Some(url) => Some(http_url(url, "metrics.pushgateway")?.ok_or_else(|| {
                    Error::ConfigValue {
                        key: "metrics.pushgateway".into(),
                        message: format!("`{url}` is not an http:// or https:// URL"),
                    }
                })?),
                None => None,
            };
        Ok(Self {
            job,
            lineage,
            metrics: Metrics {
                textfile: metrics.textfile.map(|file| base.join(file)),
                pushgateway,
            },
        })
    }
}

/// `name` when it is a name a metric label, a URL path segment and a lineage job can all
/// carry as it is.
fn check_name(name: &str, key: &str) -> Result<String> {
    let fits = !name.is_empty() && name.len() <= 100 && name.chars().all(is_name_char);
    if fits {
        Ok(name.to_string())
    } else {
        Err(Error::ConfigValue {
            key: key.into(),
            message: format!(
                "`{name}`: use 1 to 100 letters, digits, `_`, `-` or `.` (it names the job in \
                 lineage events and metrics)"
            ),
        })
    }
}

/// Whether `c` may be part of a job's name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `text` as a URL when it is an http(s) URL; `None` when it names a file.
fn http_url(text: &str, key: &str) -> Result<Option<Url>> {
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Ok(None);
    }
    let url = Url::parse(text).map_err(|e| Error::ConfigValue {
        key: key.into(),
        message: format!("`{text}`: {e}"),
    })?;
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: Option<&str>, lineage: &str, metrics: &str) -> Result<Telemetry> {
        Telemetry::check(
            name,
            (!lineage.is_empty()).then(|| toml::from_str(lineage).unwrap()),
            toml::from_str(metrics).unwrap(),
            Path::new("/jobs/nightly.toml"),
            Path::new("/jobs"),
        )
    }

    #[test]
    fn the_job_is_named_after_the_config_file_unless_named() {
        let telemetry = check(None, "", "").unwrap();
        assert_eq!(telemetry.job, "nightly");
        assert_eq!(telemetry.lineage, None);
        assert_eq!(telemetry.metrics, Metrics::default());
        assert_eq!(
            check(Some("exports-2025"), "", "").unwrap().job,
            "exports-2025"
        );
        let unusual = Telemetry::check(
            None,
            None,
            MetricsFile::default(),
            Path::new("/jobs/run eu+asia.toml"),
            Path::new("/jobs"),
        )
        .unwrap();
        assert_eq!(unusual.job, "run_eu_asia");
    }

    #[test]
    fn targets_are_files_beside_the_config_or_http_endpoints() {
        let telemetry = check(
            None,
            r#"target = "lineage/events.jsonl""#,
            "textfile = \"exdep.prom\"\npushgateway = \"http://127.0.0.1:9091\"",
        )
        .unwrap();
        let lineage = telemetry.lineage.unwrap();
        assert_eq!(
            lineage.target,
            LineageTarget::File("/jobs/lineage/events.jsonl".into())
        );
        assert_eq!(lineage.namespace, "exdep");
        assert_eq!(telemetry.metrics.textfile, Some("/jobs/exdep.prom".into()));
        assert_eq!(
            telemetry.metrics.pushgateway.unwrap().as_str(),
            "http://127.0.0.1:9091/"
        );
        let http = check(
            None,
            "target = \"https://marquez:5000/api/v1/lineage\"\nnamespace = \"trade\"",
            "",
        )
        .unwrap()
        .lineage
        .unwrap();
        assert!(matches!(http.target, LineageTarget::Http(url) if url.port() == Some(5000)));
        assert_eq!(http.namespace, "trade");
    }

    #[test]
    fn bad_names_and_urls_name_their_key() {
        let error = check(Some("my job"), "", "").unwrap_err().to_string();
        assert!(error.contains("config key `name`"), "{error}");
        let error = check(None, "", "pushgateway = \"gateway:9091\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`metrics.pushgateway`"), "{error}");
        let error = check(None, "target = \"x\"\nnamespace = \"a/b\"", "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`lineage.namespace`"), "{error}");
    }
}
