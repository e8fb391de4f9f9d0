//! How `exdep run` shows how far it is: on a terminal, a bar of the input files read (their
//! count and bytes); elsewhere, one plain line a stage and a file (JSON events with
//! `--log-format json`), which a log file keeps readable.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Instant;

use exdep_pipeline::Progress;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::log::Log;

pub struct Reporter {
    log: Log,
    quiet: bool,
    /// Whether standard error is a terminal a bar can be drawn on.
    terminal: bool,
    started: Instant,
    /// The bar of the files read, and the line that says where it stands.
    files: Mutex<Option<(ProgressBar, String)>>,
}

impl Reporter {
    pub fn new(log: Log, quiet: bool) -> Self {
        Self {
            log,
            quiet,
            terminal: !log.is_json() && std::io::stderr().is_terminal(),
            started: Instant::now(),
            files: Mutex::new(None),
        }
    }

    pub fn report(&self, progress: Progress<'_>) {
        if self.quiet {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        match progress {
            Progress::Stage(stage) => {
                // The bar gives way to its last state as a line, kept in the scrollback.
                if let Some((bar, line)) = files.take() {
                    bar.finish_and_clear();
                    self.log.progress(&line);
                }
                self.log.progress(&format!("[{elapsed:>6.2}s] {stage}"));
            }
            Progress::FileRead {
                done,
                total,
                bytes,
                total_bytes,
            } => {
                let line = format!(
                    "[{elapsed:>6.2}s] read {done}/{total} input files, {} of {}",
                    HumanBytes(bytes),
                    HumanBytes(total_bytes)
                );
                if !self.terminal {
                    self.log.progress(&line);
                    return;
                }
                let prefix = format!("{done}/{total} files");
                match files.as_mut() {
                    Some((bar, last)) => {
                        bar.set_prefix(prefix);
                        bar.set_position(bytes);
                        *last = line;
                    }
                    None => {
                        let bar = ProgressBar::new(total_bytes)
                            .with_style(
                                ProgressStyle::with_template(
                                    "         {prefix} [{bar:30}] {bytes}/{total_bytes} \
                                     ({binary_bytes_per_sec}, {eta} left)",
                                )
                                .expect("a valid template")
                                .progress_chars("=> "),
                            )
                            .with_prefix(prefix)
                            .with_position(bytes);
                        bar.tick();
                        *files = Some((bar, line));
                    }
                }
            }
        }
    }
}
