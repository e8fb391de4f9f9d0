//! The pipeline against a real S3-compatible server on 127.0.0.1 (moto's standalone server,
//! `pip install "moto[server]"`): inputs read from a bucket, warehouse and tables written to
//! it, the same bytes as on the local filesystem. The test starts the server and stops it.
//!
//! The tests that need `moto_server` are `#[ignore]`d: a plain `cargo test` lists them as
//! ignored, never as passed, and the test command in README (`-- --include-ignored`, what
//! `.ci/run` runs) runs them, failing where moto_server is missing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use exdep_core::object_store::aws::AmazonS3Builder;
use exdep_core::object_store::path::Path as ObjectPath;
use exdep_core::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use futures::TryStreamExt;

use crate::support::{
    LocalServer, Scratch, assert_one_refused_on_the_lock, configs_dir, table_files, without_run_id,
};

pub const BUCKET: &str = "exdep";
const SECRET: &str = "s3cr3t-never-printed";

/// A moto server on a free loopback port, stopped on drop (also used by the cluster tests).
pub struct S3Server {
    _server: LocalServer,
    pub endpoint: String,
}

impl S3Server {
    pub fn start() -> Self {
        let server = LocalServer::start(
            "moto_server",
            &["-H", "127.0.0.1", "-p", "{port}"],
            "python3 -m pip install \"moto[server]\"",
        );
        let port = server.port;
        let server = Self {
            endpoint: server.url(),
            _server: server,
        };
        // Create the bucket with a plain PUT: moto does not check signatures.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "bucket not created: {response}"
        );
        server
    }

    pub fn store(&self) -> impl ObjectStore {
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("exdep")
            .with_secret_access_key(SECRET)
            .build()
            .unwrap()
    }

    pub fn env(&self, command: &mut Command) {
        command.envs(self.env_vars());
    }

    /// The environment variables that point exdep at this server, with the bucket's
    /// credentials.
    fn env_vars(&self) -> [(&str, &str); 5] {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "exdep"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]
    }
}

/// A moto server, and a scratch folder whose generated inputs for `years`
/// (`records_per_year` records each, more `exdep generate` arguments in `extra`) are in the
/// bucket's `landing/`.
async fn bucket_with_inputs(
    years: RangeInclusive<i32>,
    records_per_year: usize,
    extra: &[&str],
) -> (S3Server, Scratch) {
    let server = S3Server::start();
    let scratch = Scratch::new();
    scratch.generate_years(years.clone(), records_per_year, extra);
    server.upload_inputs(&scratch, years).await;
    (server, scratch)
}

fn s3_config(scratch: &Scratch) {
    s3_config_for(scratch, &[2019, 2020, 2021]);
}

fn s3_config_for(scratch: &Scratch, years: &[i32]) {
    let tables = configs_dir();
    let years: Vec<String> = years.iter().map(|y| y.to_string()).collect();
    scratch.write(
        "s3.toml",
        &format!(
            "years = [{years}]\n\
             output = \"s3://{BUCKET}/lake/exdep\"\n\
             warehouse = \"s3://{BUCKET}/lake/_exdep_warehouse\"\n\n\
             [[inputs]]\nlocation = \"s3://{BUCKET}/landing/*.csv\"\n\n\
             [tables]\nhs-chapters = \"{t}/hs_chapters.csv\"\n\
             partner-regions = \"{t}/partner_regions.csv\"\n\
             provinces = \"{t}/provinces.csv\"\nexchange-rates = \"{t}/cny_per_usd.csv\"\n",
            t = tables.display(),
            years = years.join(", ")
        ),
    );
}

impl S3Server {
    /// Puts the scratch folder's `inputs/exports-YEAR.csv` of `years` into `landing/`.
    pub async fn upload_inputs(&self, scratch: &Scratch, years: RangeInclusive<i32>) {
        self.upload_inputs_as(scratch, years, "csv").await;
    }

    /// Uploads the generated `inputs/exports-YEAR.EXTENSION` files to `landing/`.
    pub async fn upload_inputs_as(
        &self,
        scratch: &Scratch,
        years: RangeInclusive<i32>,
        extension: &str,
    ) {
        for year in years {
            let file = format!("exports-{year}.{extension}");
            let bytes = std::fs::read(scratch.path(&format!("inputs/{file}"))).unwrap();
            self.store()
                .put(
                    &ObjectPath::from(format!("landing/{file}")),
                    PutPayload::from(bytes),
                )
                .await
                .unwrap();
        }
    }

    /// Every object of the bucket, by key without the run id, with its entity tag and
    /// modification time.
    async fn snapshot(&self) -> BTreeMap<String, (Option<String>, String)> {
        let objects: Vec<_> = self.store().list(None).try_collect().await.unwrap();
        objects
            .into_iter()
            .map(|o| {
                let stamp = (o.e_tag, o.last_modified.to_rfc3339());
                (without_run_id(o.location.as_ref()), stamp)
            })
            .collect()
    }

    /// `exdep ARGS` in the scratch folder, with the bucket's credentials.
    pub fn exdep(&self, scratch: &Scratch, args: &[&str]) -> Command {
        scratch.exdep_command(args, &self.env_vars())
    }

    /// Runs `exdep run --config CONFIG --quiet EXTRA` with the bucket's credentials and
    /// insists it succeeds; returns its standard output.
    pub fn run(&self, scratch: &Scratch, config: &str, extra: &[&str]) -> String {
        scratch.run_config_ok_with_env(config, extra, &self.env_vars())
    }
}

/// The objects whose entity tag or modification time differ, or that are new.
fn written_between(
    before: &BTreeMap<String, (Option<String>, String)>,
    after: &BTreeMap<String, (Option<String>, String)>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(key, stamp)| before.get(*key) != Some(*stamp))
        .map(|(key, _)| key.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs moto_server"]
async fn a_new_year_is_all_a_rerun_writes_and_an_unchanged_rerun_writes_nothing() {
    let server = S3Server::start();
    let scratch = Scratch::new();
    scratch.generate_years(2017..=2022, 2000, &["--dirty-every", "150"]);
    server.upload_inputs(&scratch, 2017..=2021).await;
    s3_config_for(&scratch, &[2017, 2018, 2019, 2020, 2021]);
    server.run(&scratch, "s3.toml", &[]);
    let first = server.snapshot().await;

    // 2022's customs data lands and the config names 2022. Modification times have a
    // resolution of a second: wait so that a rewrite shows even with the same bytes.
    std::thread::sleep(Duration::from_millis(1100));
    server.upload_inputs(&scratch, 2022..=2022).await;
    s3_config_for(&scratch, &[2017, 2018, 2019, 2020, 2021, 2022]);
    let summary = server.run(&scratch, "s3.toml", &[]);
    let second = server.snapshot().await;
    assert!(summary.contains("2022  recomputed"), "{summary}");
    for year in 2017..=2021 {
        assert!(
            summary.contains(&format!("{year}  skipped: current")),
            "{summary}"
        );
    }
    let written = written_between(&first, &second);
    for key in &written {
        let allowed = key.contains("/year=2022/")
            // The 2022 file's records without a usable year join the quarantine's year 0.
            || key.contains("/rejects/year=0/")
            || key == "landing/exports-2022.csv"
            || key == "lake/exdep/_manifest.json"
            || key == "lake/exdep/_SUCCESS"
            || key == "lake/_exdep_warehouse/_state.json"
            // The code tables the plans join, copied for this run.
            || key.starts_with("lake/_exdep_warehouse/tables/");
        assert!(allowed, "{key} was written though only 2022 changed");
    }
    for table in ["indices", "margins", "indices_change", "lq", "rejects"] {
        let prefix = format!("lake/exdep/{table}/year=2022/");
        assert!(
            written.iter().any(|k| k.starts_with(&prefix)),
            "nothing written under {prefix}"
        );
    }
    let removed: Vec<_> = first.keys().filter(|k| !second.contains_key(*k)).collect();
    assert!(removed.is_empty(), "{removed:?} were removed");

    // Nothing changed: nothing is written, and the run says so.
    std::thread::sleep(Duration::from_millis(1100));
    let summary = server.run(&scratch, "s3.toml", &[]);
    assert!(summary.contains("nothing changed"), "{summary}");
    assert_eq!(server.snapshot().await, second, "a rerun wrote objects");

    // --force recomputes everything and gives the same table contents.
    let contents = lake_tables(&server.store()).await;
    let summary = server.run(&scratch, "s3.toml", &["--force"]);
    assert!(summary.contains("rebuilt every year: --force"), "{summary}");
    assert!(
        lake_tables(&server.store()).await == contents,
        "the tables differ after --force"
    );
}

#[tokio::test]
#[ignore = "needs moto_server"]
async fn the_pipeline_reads_and_writes_a_bucket() {
    let (server, scratch) = bucket_with_inputs(2019..=2021, 5000, &["--dirty-every", "200"]).await;
    s3_config(&scratch);
    let stdout = server.run(&scratch, "s3.toml", &[]);
    assert!(
        stdout.contains("s3://exdep/landing/exports-2019.csv"),
        "{stdout}"
    );
    let store = server.store();

    // The same inputs on the local filesystem give the same bytes.
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    let lake = ObjectPath::from("lake/exdep");
    let objects: Vec<_> = store.list(Some(&lake)).try_collect().await.unwrap();
    let local_tables = table_files(&scratch.path("out"));
    let mut compared = 0;
    for object in &objects {
        let relative = key_below(&object.location, &lake);
        // Rejects name their source file, whose URL differs between the two runs.
        if !relative.ends_with(".parquet") || relative.starts_with("rejects/") {
            continue;
        }
        let remote = object_bytes(&store, &object.location).await;
        let local = &local_tables[&without_run_id(&relative)];
        assert!(remote == *local, "{relative} differs");
        compared += 1;
    }
    assert!(compared > 100, "only {compared} tables files in the bucket");
    for marker in ["lake/exdep/_manifest.json", "lake/exdep/_SUCCESS"] {
        assert!(
            store.head(&ObjectPath::from(marker)).await.is_ok(),
            "{marker}"
        );
    }
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_the_url_not_the_secret() {
    let scratch = Scratch::new();
    s3_config(&scratch);
    // object_store's default retries take about a minute to give up on a closed port.
    let config = scratch.path("s3.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[retry]\nmax-retries = 1\n")).unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_exdep"))
        .args(["run", "--config", "s3.toml", "--quiet"])
        .current_dir(scratch.dir.path())
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{closed}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "exdep")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("EXDEP_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!("127.0.0.1:{closed}")),
        "{}",
        errors[0]
    );
    assert!(!stderr.contains(SECRET), "the secret leaked: {stderr}");
}

/// The key of `location` below `prefix`, its parts joined with `/`.
fn key_below(location: &ObjectPath, prefix: &ObjectPath) -> String {
    let parts: Vec<_> = (location.prefix_match(prefix).unwrap())
        .map(|part| part.as_ref().to_string())
        .collect();
    parts.join("/")
}

/// The bytes of the object at `location`.
async fn object_bytes(store: &impl ObjectStore, location: &ObjectPath) -> Vec<u8> {
    let object = store.get(location).await.unwrap();
    object.bytes().await.unwrap().to_vec()
}

/// Asserts that neither the output's nor the warehouse's lock is left in the bucket.
async fn assert_no_locks(store: &impl ObjectStore) {
    for lock in [
        "lake/exdep/_exdep.lock",
        "lake/_exdep_warehouse/_exdep.lock",
    ] {
        assert!(store.head(&ObjectPath::from(lock)).await.is_err(), "{lock}");
    }
}

/// The bytes of every table file under `lake/exdep/` but the quarantine (whose rows name
/// their source file's URL), by path relative to it without the run id.
async fn lake_tables(store: &impl ObjectStore) -> BTreeMap<String, Vec<u8>> {
    let lake = ObjectPath::from("lake/exdep");
    let objects: Vec<_> = store.list(Some(&lake)).try_collect().await.unwrap();
    let mut tables = BTreeMap::new();
    for object in objects {
        let relative = key_below(&object.location, &lake);
        if relative.ends_with(".parquet") && !relative.starts_with("rejects/") {
            let bytes = object_bytes(store, &object.location).await;
            tables.insert(without_run_id(&relative), bytes);
        }
    }
    tables
}

/// Two runs started together on the same bucket: the lock's conditional create holds on S3
/// too. One fails naming the holder, the other publishes what a local run publishes.
#[tokio::test]
#[ignore = "needs moto_server"]
async fn two_runs_at_once_on_a_bucket_one_publishes() {
    let (server, scratch) = bucket_with_inputs(2019..=2021, 5000, &[]).await;
    s3_config(&scratch);
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    let store = server.store();
    for offset_ms in [0, 150] {
        let lake: Vec<_> = store
            .list(Some(&ObjectPath::from("lake")))
            .try_collect()
            .await
            .unwrap();
        for object in lake {
            store.delete(&object.location).await.unwrap();
        }
        let spawn = || {
            (server.exdep(&scratch, &["run", "--config", "s3.toml", "--quiet"]))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        assert_one_refused_on_the_lock(spawn, offset_ms, "_exdep.lock is held by the run on host");
        let tables = lake_tables(&store).await;
        assert!(tables.len() > 100, "offset {offset_ms} ms");
        let local_tables = table_files(&scratch.path("out"));
        for (relative, bytes) in &tables {
            let local = &local_tables[relative];
            assert!(bytes == local, "offset {offset_ms} ms: {relative} differs");
        }
        assert_no_locks(&store).await;
        assert!(
            server
                .run(&scratch, "s3.toml", &[])
                .contains("nothing changed")
        );
    }
}

/// Copies every object under `prefix` of the bucket into `to`.
pub async fn download(s3: &S3Server, prefix: &str, to: &Path) {
    let store = s3.store();
    let prefix = ObjectPath::from(prefix);
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    for object in objects {
        let path = to.join(key_below(&object.location, &prefix));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, object_bytes(&store, &object.location).await).unwrap();
    }
}

/// Delta tables on a bucket: each commit is a conditional create on the store, so two runs
/// started together leave one commit per table, and the tables, read back with delta-rs and
/// Polars, hold the rows a local plain-Parquet run of the same inputs publishes.
#[tokio::test]
#[ignore = "needs moto_server and python3 with deltalake, polars and duckdb"]
async fn delta_tables_on_a_bucket_commit_once_and_read_like_parquet() {
    let (server, scratch) = bucket_with_inputs(2019..=2021, 5000, &["--dirty-every", "500"]).await;
    s3_config(&scratch);
    let text = std::fs::read_to_string(scratch.path("s3.toml")).unwrap();
    std::fs::write(
        scratch.path("s3.toml"),
        format!("table-format = \"delta\"\n{text}"),
    )
    .unwrap();
    let start = || {
        server
            .exdep(&scratch, &["run", "--config", "s3.toml", "--quiet"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert_one_refused_on_the_lock(start, 0, "_exdep.lock is held by");

    download(&server, "lake/exdep", &scratch.path("delta-out")).await;
    scratch.config(&[2019, 2020, 2021], "");
    scratch.run_ok();
    let commits = crate::delta::read_published("history", &scratch.path("delta-out"));
    assert_eq!(commits.len(), 8, "{commits:?}");
    for (table, history) in &commits {
        assert_eq!(history.as_array().unwrap().len(), 1, "{table}: {history}");
    }
    let mut on_the_bucket = crate::delta::read_published("rows", &scratch.path("delta-out"));
    let mut local = crate::delta::read_published("rows", &scratch.path("out"));
    // Rejected rows name their source file, whose URL differs between the two runs.
    let (bucket_rejects, local_rejects) = (
        on_the_bucket.remove("rejects").unwrap(),
        local.remove("rejects").unwrap(),
    );
    assert_eq!(
        bucket_rejects.as_array().unwrap().len(),
        local_rejects.as_array().unwrap().len()
    );
    assert!(
        on_the_bucket == local,
        "the Delta tables on the bucket hold the local Parquet run's rows"
    );
}

/// A store without conditional replaces (here S3 with `aws_conditional_put = "disabled"`)
/// cannot keep two runs apart with the lease: the run is refused, saying what to set, and
/// runs once the config says the scheduler serialises runs.
#[tokio::test]
#[ignore = "needs moto_server"]
async fn a_store_without_conditional_writes_needs_serialized_runs() {
    let (server, scratch) = bucket_with_inputs(2021..=2021, 500, &[]).await;
    s3_config_for(&scratch, &[2021]);
    let text = std::fs::read_to_string(scratch.path("s3.toml")).unwrap();
    let unconditional = format!("{text}\n[storage]\naws_conditional_put = \"disabled\"\n");
    scratch.write("s3.toml", &unconditional);
    let output = server
        .exdep(&scratch, &["run", "--config", "s3.toml", "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot replace an object conditionally")
            && stderr.contains("serialized-runs = true"),
        "{stderr}"
    );
    let store = server.store();
    assert_no_locks(&store).await;
    scratch.write(
        "s3.toml",
        &format!("serialized-runs = true\n{unconditional}"),
    );
    server.run(&scratch, "s3.toml", &[]);
    assert_no_locks(&store).await;
}
