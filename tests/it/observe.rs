//! What a run tells the platform around it: OpenLineage events, to a file and to an HTTP
//! endpoint, checked against the OpenLineage spec (`tests/reference/check_lineage.py`, with
//! `openlineage-python` and `jsonschema`); its Prometheus metrics, in a file for the
//! textfile collector and on a Pushgateway (Debian's `prometheus-pushgateway`, started and
//! stopped by the test) scraped back over HTTP.
//!
//! They need those tools, so they are `#[ignore]`d; the README's test command runs them.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;

use crate::support::{LocalServer, Scratch, config_text, reference_script};

/// Writes `config.toml` for 2020-2021 naming the job `nightly`, with `sections` appended.
fn config(scratch: &Scratch, sections: &str) {
    let top = "output = \"out\"\nwarehouse = \"warehouse\"\nname = \"nightly\"\n";
    scratch.write(
        "config.toml",
        &format!("{}\n{sections}", config_text(&[2020, 2021], top, &[])),
    );
}

/// Generates 2020 and 2021, with a few records every reason rejects.
fn generate(scratch: &Scratch) {
    scratch.generate_years(2020..=2021, 3000, &["--dirty-every", "300"]);
}

/// Checks the events in `file` with `check_lineage.py`, expecting these event types.
fn check_lineage(file: &Path, expect: &str) -> Vec<Value> {
    reference_script(
        "check_lineage.py",
        &[file.as_os_str(), OsStr::new("--expect"), OsStr::new(expect)],
        None,
        "python3 -m pip install openlineage-python jsonschema",
        "",
    );
    (std::fs::read_to_string(file).unwrap().lines())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The published manifest.
fn manifest(scratch: &Scratch) -> Value {
    serde_json::from_slice(&std::fs::read(scratch.path("out/_manifest.json")).unwrap()).unwrap()
}

/// `exdep run` refused for its rejects (exit code 1).
fn run_refused(scratch: &Scratch) {
    let refused = scratch.exdep(&[
        "run",
        "--config",
        "config.toml",
        "--quiet",
        "--force",
        "--max-reject-ratio",
        "0",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
#[ignore = "needs python3 with openlineage-python and jsonschema"]
fn a_run_reports_its_start_and_its_completion_or_its_failure_as_lineage_events() {
    let scratch = Scratch::new();
    generate(&scratch);
    config(&scratch, "[lineage]\ntarget = \"lineage/first.jsonl\"\n");
    scratch.run_ok();
    let events = check_lineage(&scratch.path("lineage/first.jsonl"), "START,COMPLETE");
    let complete = &events[1];
    assert_eq!(complete["job"]["name"], "nightly");
    assert_eq!(complete["job"]["namespace"], "exdep");

    // The inputs are the two files with their fingerprints and their accounts, and the
    // run's reconciliation adds up over them.
    let inputs = complete["inputs"].as_array().unwrap();
    let names: Vec<&str> = inputs.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with('/') && n.ends_with(".csv")),
        "{names:?}"
    );
    assert!(inputs.iter().all(|i| i["namespace"] == "file"));
    let reconciliation = &complete["run"]["facets"]["exdep_reconciliation"];
    let field = |value: &Value, name: &str| value[name].as_u64().unwrap();
    let read: u64 = (inputs.iter())
        .map(|i| field(&i["inputFacets"]["exdep_fileFingerprint"], "read"))
        .sum();
    assert_eq!(field(reconciliation, "read"), read);
    assert_eq!(
        read,
        field(reconciliation, "accepted")
            + field(reconciliation, "rejected")
            + field(reconciliation, "excluded")
    );
    assert!(field(reconciliation, "rejected") > 0, "{reconciliation}");
    assert_eq!(reconciliation["balanced"], true);

    // The outputs are the published tables, with the manifest's rows and files.
    let manifest = manifest(&scratch);
    let outputs: BTreeMap<String, &Value> = (complete["outputs"].as_array().unwrap().iter())
        .map(|o| {
            let name = o["name"].as_str().unwrap();
            (name.rsplit('/').next().unwrap().to_string(), o)
        })
        .collect();
    for table in manifest["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap();
        let statistics = &outputs[name]["outputFacets"]["outputStatistics"];
        assert_eq!(statistics["rowCount"], table["rows"], "{name}");
        assert_eq!(
            statistics["fileCount"].as_u64(),
            Some(table["files"].as_array().unwrap().len() as u64),
            "{name}"
        );
    }
    assert!(outputs.contains_key("indices") && outputs.contains_key("rejects"));

    // A refused run sends START and FAIL, with the error.
    config(&scratch, "[lineage]\ntarget = \"lineage/refused.jsonl\"\n");
    run_refused(&scratch);
    let events = check_lineage(&scratch.path("lineage/refused.jsonl"), "START,FAIL");
    let message = events[1]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("reject"), "{message}");
    assert_ne!(
        events[0]["run"]["runId"], complete["run"]["runId"],
        "each run has its own id"
    );
}

/// `GET path` over HTTP/1.0, so that the answer comes whole, not in chunks: the answer.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    answer
}

/// The value of the sample of `metric` whose labels include every one of `labels`
/// (`name="value"`), in the exposition `text`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            name == metric && labels.iter().all(|label| rest.contains(label))
        })
        .map(|(_, value)| value.parse().unwrap())
}

#[test]
#[ignore = "needs Debian's prometheus-pushgateway and python3 with openlineage-python and jsonschema"]
fn metrics_reach_the_textfile_and_the_pushgateway_and_events_an_http_endpoint() {
    let scratch = Scratch::new();
    generate(&scratch);
    let gateway = LocalServer::start(
        "prometheus-pushgateway",
        &["--web.listen-address=127.0.0.1:{port}"],
        "apt-get install prometheus-pushgateway",
    );
    let events = scratch.path("received.jsonl");
    let receiver = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/reference/receive_lineage.py")
        .display()
        .to_string();
    let endpoint = LocalServer::start(
        "python3",
        &[&receiver, "{port}", &events.display().to_string()],
        "python3",
    );
    config(
        &scratch,
        &format!(
            "[lineage]\ntarget = \"{}/api/v1/lineage\"\n\n\
             [metrics]\ntextfile = \"metrics/exdep.prom\"\npushgateway = \"{}\"\n",
            endpoint.url(),
            gateway.url()
        ),
    );
    scratch.run_ok();
    check_lineage(&events, "START,COMPLETE");

    let manifest = manifest(&scratch);
    let indices_rows = (manifest["tables"].as_array().unwrap().iter())
        .find(|t| t["name"] == "indices")
        .unwrap()["rows"]
        .as_f64();
    let read: f64 = (manifest["inputs"].as_array().unwrap().iter())
        .map(|i| i["read"].as_f64().unwrap())
        .sum();
    let textfile = std::fs::read_to_string(scratch.path("metrics/exdep.prom")).unwrap();
    let pushed = http_get(gateway.port, "/metrics");
    for (text, job) in [(&textfile, &[][..]), (&pushed, &["job=\"nightly\""])] {
        let with = |extra: &[&'static str]| [job, extra].concat();
        assert_eq!(sample(text, "exdep_run_success", job), Some(1.0), "{text}");
        assert_eq!(sample(text, "exdep_run_exit_code", job), Some(0.0));
        assert_eq!(
            sample(text, "exdep_table_rows", &with(&["table=\"indices\""])),
            indices_rows,
            "{text}"
        );
        let read_by_input: f64 = (text.lines())
            .filter(|l| l.starts_with("exdep_input_records_read{"))
            .filter(|l| job.iter().all(|label| l.contains(label)))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
        assert_eq!(read_by_input, read, "{text}");
        assert!(
            sample(text, "exdep_stage_duration_seconds", job).is_some(),
            "{text}"
        );
    }

    // A refused run replaces them: failed, exit code 1.
    run_refused(&scratch);
    let textfile = std::fs::read_to_string(scratch.path("metrics/exdep.prom")).unwrap();
    let pushed = http_get(gateway.port, "/metrics");
    for (text, job) in [(&textfile, &[][..]), (&pushed, &["job=\"nightly\""])] {
        assert_eq!(sample(text, "exdep_run_success", job), Some(0.0), "{text}");
        assert_eq!(
            sample(text, "exdep_run_exit_code", job),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(text, "exdep_table_rows", job),
            None,
            "a failed run publishes no tables: {text}"
        );
    }
}
