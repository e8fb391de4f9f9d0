//! A run's metrics in Prometheus' text exposition format, for node-exporter's textfile
//! collector or a Pushgateway.

use std::fmt::Write;

use exdep_core::TallyByReason;

use crate::{Ended, RunEnd};

/// The exposition of `end`'s metrics. Every metric of a run is a gauge: the file or the
/// Pushgateway's group holds the last run's values, replaced whole by the next run.
pub(crate) fn exposition(end: &RunEnd<'_>) -> String {
    let mut text = Exposition::default();
    let succeeded = matches!(end.ended, Ended::Completed { .. });
    text.gauge(
        "exdep_run_success",
        "Whether the last run succeeded (1) or failed (0).",
        [(vec![], f64::from(u8::from(succeeded)))],
    );
    text.gauge(
        "exdep_run_exit_code",
        "The last run's exit code: 0 done, 1 a problem of the data, 2 any other failure, \
         128 + N stopped by signal N.",
        [(vec![], f64::from(end.exit_code()))],
    );
    text.gauge(
        "exdep_run_finished_timestamp_seconds",
        "When the last run ended, in seconds since 1970.",
        [(vec![], end.finished.timestamp_millis() as f64 / 1e3)],
    );
    text.gauge(
        "exdep_run_duration_seconds",
        "How long the last run took.",
        [(vec![], end.duration_seconds())],
    );
    text.gauge(
        "exdep_stage_duration_seconds",
        "How long each stage of the last run took.",
        (end.stages.iter()).map(|(stage, seconds)| (vec![("stage", stage.clone())], *seconds)),
    );
    let Ended::Completed { manifest, changed } = end.ended else {
        return text.0;
    };
    text.gauge(
        "exdep_run_changed",
        "Whether the last run found work and published (1) or found nothing changed (0).",
        [(vec![], f64::from(u8::from(changed)))],
    );
    text.gauge(
        "exdep_input_records_read",
        "Records read of each input file the published tables were computed from.",
        (manifest.inputs.iter())
            .map(|file| (vec![("input", file.source.file.clone())], file.read as f64)),
    );
    text.gauge(
        "exdep_input_records",
        "Records of each input file by disposition: accepted + rejected + excluded = read.",
        manifest.inputs.iter().flat_map(|file| {
            let input = || ("input", file.source.file.clone());
            [
                ("accepted", file.accepted.records),
                ("rejected", file.rejected_total().records),
                ("excluded", file.excluded_total().records),
            ]
            .map(|(disposition, records)| {
                (
                    vec![input(), ("disposition", disposition.to_string())],
                    records as f64,
                )
            })
        }),
    );
    let by_reason = |tallies: fn(&exdep_core::account::FileReconciliation) -> &TallyByReason| {
        let mut total = TallyByReason::new();
        for file in &manifest.inputs {
            for (reason, tally) in tallies(file) {
                total.entry(reason.clone()).or_default().add(*tally);
            }
        }
        total
    };
    text.gauge(
        "exdep_rejected_records",
        "Records rejected, over every input file, by reason.",
        (by_reason(|file| &file.rejected).into_iter())
            .map(|(reason, tally)| (vec![("reason", reason)], tally.records as f64)),
    );
    text.gauge(
        "exdep_excluded_records",
        "Records excluded by a rule, over every input file, by rule.",
        (by_reason(|file| &file.excluded).into_iter())
            .map(|(reason, tally)| (vec![("reason", reason)], tally.records as f64)),
    );
    text.gauge(
        "exdep_table_rows",
        "Rows of each published table.",
        (manifest.tables.iter())
            .map(|table| (vec![("table", table.name.clone())], table.rows as f64)),
    );
    text.gauge(
        "exdep_table_files",
        "Files of each published table.",
        (manifest.tables.iter()).map(|table| {
            (
                vec![("table", table.name.clone())],
                table.files.len() as f64,
            )
        }),
    );
    text.0
}

/// Text in the exposition format, metric by metric.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// A gauge named `name` with its help line and one sample per label set.
    fn gauge(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let _ = writeln!(self.0, "# HELP {name} {}", escaped(help, false));
        let _ = writeln!(self.0, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let labels: Vec<String> = (labels.iter())
                .map(|(label, value)| format!("{label}=\"{}\"", escaped(value, true)))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }
}

/// `text` escaped as the format wants a help line (`\` and line breaks) or a label value
/// (also `"`).
fn escaped(text: &str, label: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_help_are_escaped() {
        let mut text = Exposition::default();
        text.gauge(
            "exdep_input_records",
            "a\\b",
            [(vec![("input", "C:\\in \"x\"\n.csv".to_string())], 3.0)],
        );
        assert_eq!(
            text.0,
            "# HELP exdep_input_records a\\\\b\n# TYPE exdep_input_records gauge\n\
             exdep_input_records{input=\"C:\\\\in \\\"x\\\"\\n.csv\"} 3\n"
        );
    }

    #[test]
    fn a_metric_without_samples_is_left_out() {
        let mut text = Exposition::default();
        text.gauge("exdep_rejected_records", "none", []);
        assert!(text.0.is_empty());
    }
}
