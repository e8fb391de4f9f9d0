//! What a run tells the platform around it, besides its summary and log: an OpenLineage
//! event when it starts and when it completes or fails (`[lineage]`), and its metrics for
//! Prometheus (`[metrics]`): a file for node-exporter's textfile collector, a Pushgateway,
//! or both.
//!
//! Reports are best effort: a run that published its tables is not failed because a
//! lineage endpoint or a Pushgateway is down. What could not be delivered is logged as a
//! warning.
#![warn(missing_docs)]

mod error;
mod lineage;
mod metrics;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use exdep_core::Config;
use exdep_core::telemetry::{LineageTarget, Telemetry};
use exdep_store::RunManifest;
use exdep_store::layout::Output;
use tracing::warn;

pub use error::{Error, Result};

/// How a run ended.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// It published its tables, or found nothing changed.
    Completed {
        /// The manifest of the published tables (an earlier run's when nothing changed).
        manifest: &'a RunManifest,
        /// Whether it wrote anything.
        changed: bool,
    },
    /// It failed, or was stopped.
    Failed {
        /// The error and its causes, as the log shows them.
        message: &'a str,
        /// The process's exit code.
        exit_code: u8,
    },
}

/// A finished run, as its reports describe it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: DateTime<Utc>,
    /// How it ended.
    pub ended: Ended<'a>,
    /// Its stages in order, with the seconds each took.
    pub stages: &'a [(String, f64)],
}

impl RunEnd<'_> {
    /// The process's exit code.
    pub fn exit_code(&self) -> u8 {
        match self.ended {
            Ended::Completed { .. } => 0,
            Ended::Failed { exit_code, .. } => exit_code,
        }
    }

    /// Seconds from start to end.
    pub fn duration_seconds(&self) -> f64 {
        (self.finished - self.started).num_milliseconds() as f64 / 1e3
    }
}

/// Times a run's stages from the progress it reports: each stage lasts until the next one
/// starts, the last until [`StageClock::stages`]. A stage is named by its report up to its
/// first number or table name ("reading 6 input files" is `reading`), so that its metric
/// is the same series from run to run, and the tables, computed a few at a time, are one
/// stage from the first to the next stage.
#[derive(Debug, Default)]
pub struct StageClock {
    started: Mutex<Vec<(String, Instant)>>,
}

impl StageClock {
    /// Notes that `stage` starts now, unless it goes on the stage under way.
    pub fn start(&self, stage: &str) {
        let name = stage
            .split(|c: char| c.is_ascii_digit() || c == '`')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if started.last().is_none_or(|(last, _)| *last != name) {
            started.push((name, Instant::now()));
        }
    }

    /// Every stage so far with the seconds it took, the last one until now.
    pub fn stages(&self) -> Vec<(String, f64)> {
        let started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let ends = (started.iter().skip(1).map(|(_, at)| *at)).chain([Instant::now()]);
        (started.iter().zip(ends))
            .map(|((stage, from), to)| (stage.clone(), (to - *from).as_secs_f64()))
            .collect()
    }
}

/// How long a report may take to deliver before it is given up.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a run's lineage events and metrics where its config says.
#[derive(Debug)]
pub struct Observer {
    telemetry: Telemetry,
    /// Where the run publishes its tables: the lineage events' outputs.
    output: Output,
    /// The lineage run id, a UUID, as OpenLineage requires; the same for the run's START and
    /// its COMPLETE or FAIL.
    run_id: uuid::Uuid,
    http: reqwest::Client,
}

impl Observer {
    /// An observer of one run of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            telemetry: config.telemetry.clone(),
            output: Output::of(config),
            run_id: uuid::Uuid::new_v4(),
            http: reqwest::Client::new(),
        }
    }

    /// Reports that the run started at `started`.
    pub async fn started(&self, started: DateTime<Utc>) {
        if self.telemetry.lineage.is_some() {
            let event = lineage::start_event(&self.telemetry, self.run_id, started);
            log_undelivered(self.send_lineage(&event).await.err());
        }
    }

    /// Reports how the run ended: its COMPLETE or FAIL event and its metrics.
    pub async fn ended(&self, end: &RunEnd<'_>) {
        let mut undelivered = Vec::new();
        if self.telemetry.lineage.is_some() {
            let event = lineage::run_event(&self.telemetry, self.run_id, &self.output, end);
            undelivered.extend(self.send_lineage(&event).await.err());
        }
        let targets = &self.telemetry.metrics;
        if targets.textfile.is_some() || targets.pushgateway.is_some() {
            let text = metrics::exposition(end);
            if let Some(file) = &targets.textfile {
                undelivered.extend(replace_file(file, text.as_bytes()).err());
            }
            if let Some(gateway) = &targets.pushgateway {
                undelivered.extend(self.push(gateway, text).await.err());
            }
        }
        log_undelivered(undelivered);
    }

    /// Appends `event` to the lineage file, or POSTs it to the endpoint.
    async fn send_lineage(&self, event: &serde_json::Value) -> Result<()> {
        let Some(lineage) = &self.telemetry.lineage else {
            return Ok(());
        };
        match &lineage.target {
            LineageTarget::File(file) => append_line(file, &event.to_string()),
            LineageTarget::Http(url) => {
                let request = self
                    .http
                    .post(url.clone())
                    .header("Content-Type", "application/json")
                    .body(event.to_string());
                self.deliver(request, url.as_str()).await
            }
        }
    }

    /// Replaces the job's group on the Pushgateway at `gateway` with the run's metrics.
    async fn push(&self, gateway: &url::Url, text: String) -> Result<()> {
        let mut url = gateway.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Http {
                target: gateway.to_string(),
                message: "not a URL a path can be added to".into(),
            })?
            .pop_if_empty()
            .extend(["metrics", "job", &self.telemetry.job]);
        let request = self
            .http
            .put(url.clone())
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(text);
        self.deliver(request, url.as_str()).await
    }

    /// Sends `request`, within [`DELIVERY_TIMEOUT`]; an answer other than 2xx is an error.
    async fn deliver(&self, request: reqwest::RequestBuilder, target: &str) -> Result<()> {
        let http_error = |message: String| Error::Http {
            target: target.to_string(),
            message,
        };
        let response = request
            .timeout(DELIVERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| http_error(exdep_core::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(http_error(format!("answered {status}: {}", body.trim())));
        }
        Ok(())
    }
}

/// Logs each report that could not be delivered as a warning: the run's result stands.
fn log_undelivered(undelivered: impl IntoIterator<Item = Error>) {
    for error in undelivered {
        warn!("{}", exdep_core::error_chain(&error));
    }
}

/// Appends `line` and a line break to `file`, creating it and its folder.
fn append_line(file: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let io_error = |source| Error::File {
        file: file.to_path_buf(),
        source,
    };
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder).map_err(io_error)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(io_error)?;
    // One write of the whole line, so that concurrent writers' lines do not interleave.
    out.write_all(format!("{line}\n").as_bytes())
        .map_err(io_error)
}

/// Replaces `file` with `bytes` at once: written beside it, then renamed over it, so that a
/// collector never reads half a file.
fn replace_file(file: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| Error::File {
        file: file.to_path_buf(),
        source,
    };
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder).map_err(io_error)?;
    }
    let mut partial = file.as_os_str().to_owned();
    partial.push(format!(".{}.tmp", std::process::id()));
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_lasts_until_the_next_starts() {
        let clock = StageClock::default();
        clock.start("reading 6 input files");
        std::thread::sleep(Duration::from_millis(20));
        clock.start("computing and writing `indices` for 2017-2022");
        clock.start("computing and writing `lq` for 2017-2022");
        clock.start("publishing");
        let stages = clock.stages();
        assert_eq!(
            stages.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            ["reading", "computing and writing", "publishing"]
        );
        assert!(
            stages[0].1 >= 0.02 && stages[1].1 < stages[0].1,
            "{stages:?}"
        );
    }

    #[test]
    fn a_replaced_file_holds_the_new_text_only() {
        let folder = std::env::temp_dir().join(format!("exdep-observe-{}", std::process::id()));
        let file = folder.join("metrics/exdep.prom");
        replace_file(&file, b"first\n").unwrap();
        replace_file(&file, b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "second\n");
        assert_eq!(
            std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::remove_dir_all(folder).unwrap();
    }
}
