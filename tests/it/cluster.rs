//! The pipeline on a Ballista cluster: `deploy/local-cluster.sh` starts a scheduler and two
//! executors on 127.0.0.1, a moto server stands in for S3, and the cluster's tables must
//! equal the embedded run's. Every process started here is stopped, every folder removed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::s3::{BUCKET, S3Server, download};
use crate::support::{Row, Scratch, Value, configs_dir, read_table};

/// A scheduler and two executors started by `deploy/local-cluster.sh`, stopped on drop.
struct LocalCluster {
    port: u16,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    fn start(s3: &S3Server) -> Self {
        let port = free_ports(5);
        let cluster = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        let bin = Path::new(env!("CARGO_BIN_EXE_exdep")).parent().unwrap();
        let mut start = cluster.script("start");
        start
            .env("EXDEP_BIN_DIR", bin)
            .env("EXDEP_EXECUTOR_TIMEOUT", "6")
            .env("EXDEP_HEARTBEAT", "1")
            // The kernel's once-per-process debug line shows where it ran.
            .env("EXDEP_LOG", "warn,exdep_engine::cells=debug");
        s3.env(&mut start);
        let output = start.output().unwrap();
        assert!(
            output.status.success(),
            "the local cluster did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster
    }

    /// `deploy/local-cluster.sh ACTION` for this cluster's port and folder.
    fn script(&self, action: &str) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local-cluster.sh");
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(action)
            .env("EXDEP_SCHEDULER_PORT", self.port.to_string())
            .env("EXDEP_CLUSTER_DIR", self.dir.path());
        command
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// The log of executor `n` (1 or 2) so far.
    fn executor_log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("executor-{n}.log"))).unwrap()
    }

    /// The process id of executor `n` (1 or 2).
    fn executor_pid(&self, n: u32) -> u32 {
        let file = self.dir.path().join(format!("executor-{n}.pid"));
        std::fs::read_to_string(file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn stop(&self) {
        let _ = self.script("stop").output();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first of `count` consecutive free ports on 127.0.0.1. They are looked for below the
/// kernel's ephemeral range (32768 and up), where the many outgoing connections of the
/// other tests running at the same time take their ports, and each call of this process
/// starts past the ports earlier calls returned.
fn free_ports(count: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const RANGE: std::ops::Range<u32> = 20_000..32_000;
    let span = RANGE.end - RANGE.start - u32::from(count);
    let seed = std::process::id().wrapping_mul(97) % span;
    for _ in 0..1000 {
        let offset = NEXT.fetch_add(u32::from(count), Ordering::SeqCst);
        let first = (RANGE.start + (seed + offset) % span) as u16;
        let all_free = (first..first + count).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return first;
        }
    }
    panic!("no {count} consecutive free ports");
}

/// A config reading `landing/` of the bucket and writing `ROOT/` there, run by `engine`.
fn bucket_config(scratch: &Scratch, name: &str, root: &str, engine: &str) -> PathBuf {
    bucket_config_for(scratch, name, root, engine, "csv")
}

/// [`bucket_config`] for the inputs `landing/*.EXTENSION`.
fn bucket_config_for(
    scratch: &Scratch,
    name: &str,
    root: &str,
    engine: &str,
    extension: &str,
) -> PathBuf {
    let tables = configs_dir();
    scratch.write(
        name,
        &format!(
            "years = [2017, 2018, 2019, 2020, 2021, 2022]\n\
             output = \"s3://{BUCKET}/{root}/out\"\n\
             warehouse = \"s3://{BUCKET}/{root}/warehouse\"\n{engine}\n\
             [[inputs]]\nlocation = \"s3://{BUCKET}/landing/*.{extension}\"\n\n\
             [tables]\nhs-chapters = \"{t}/hs_chapters.csv\"\n\
             partner-regions = \"{t}/partner_regions.csv\"\n\
             provinces = \"{t}/provinces.csv\"\nexchange-rates = \"{t}/cny_per_usd.csv\"\n",
            t = tables.display()
        ),
    )
}

/// The partition folders of every table under `out`.
fn partitions(out: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![out.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let relative = folder.strip_prefix(out).unwrap().display().to_string();
                found.push(relative);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

const TABLES: [&str; 8] = [
    "indices",
    "lq",
    "region_shares",
    "margins",
    "top_links",
    "destinations",
    "indices_change",
    "rejects",
];

/// The rows of a table, keyed by their text and integer values, for comparing runs whose
/// row order may differ.
fn keyed(rows: Vec<Row>) -> BTreeMap<String, Vec<Row>> {
    let mut keyed: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in rows {
        let key: Vec<String> = row
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Float(_)))
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        keyed.entry(key.join(",")).or_default().push(row);
    }
    keyed
}

/// Asserts the tables under `a` and `b` hold the same rows in the same partitions, floats
/// equal to 1e-9 relative: those of [`TABLES`], and `product_margins` when runs publish it.
async fn assert_same_tables(a: &Path, b: &Path) {
    assert_eq!(partitions(a), partitions(b), "partitions differ");
    let products = ["product_margins"]
        .into_iter()
        .filter(|t| a.join(t).is_dir());
    for table in TABLES.into_iter().chain(products) {
        let (rows_a, rows_b) = (
            keyed(read_table(a, table, "year").await),
            keyed(read_table(b, table, "year").await),
        );
        assert_eq!(
            rows_a.keys().collect::<Vec<_>>(),
            rows_b.keys().collect::<Vec<_>>(),
            "{table}: different rows"
        );
        for (key, group_a) in &rows_a {
            let group_b = &rows_b[key];
            assert_eq!(group_a.len(), group_b.len(), "{table} {key}");
            for (row_a, row_b) in group_a.iter().zip(group_b) {
                for (column, value) in row_a {
                    if let (Value::Float(x), Value::Float(y)) = (value, &row_b[column]) {
                        let tolerance = 1e-9 * x.abs().max(y.abs()) + 1e-12;
                        assert!(
                            (x - y).abs() <= tolerance,
                            "{table} {key} {column}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs moto_server"]
async fn a_cluster_run_equals_the_embedded_run() {
    let s3 = S3Server::start();
    let scratch = Scratch::new();
    // 6 years x 170,000 records: over a million.
    scratch.generate(&["--records-per-year", "170000", "--dirty-every", "5000"]);
    s3.upload_inputs(&scratch, 2017..=2022).await;
    // With the product cube, so that its plans run on the executors too.
    let with_products = |config: PathBuf| {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text + "\n[indices]\nproduct-margins = true\n").unwrap();
    };
    with_products(bucket_config(&scratch, "embedded.toml", "embedded", ""));
    let started = Instant::now();
    s3.run(&scratch, "embedded.toml", &[]);
    let embedded_seconds = started.elapsed().as_secs_f64();

    let cluster = LocalCluster::start(&s3);
    let engine = format!(
        "\n[engine]\nkind = \"ballista\"\nscheduler = \"{}\"\n",
        cluster.url()
    );
    with_products(bucket_config(&scratch, "cluster.toml", "cluster", &engine));
    let started = Instant::now();
    let client = s3
        .exdep(&scratch, &["run", "--config", "cluster.toml", "--quiet"])
        .env("EXDEP_LOG", "warn,exdep_engine::cells=debug")
        .output()
        .unwrap();
    let cluster_seconds = started.elapsed().as_secs_f64();
    let client_log = String::from_utf8_lossy(&client.stderr);
    assert!(client.status.success(), "exdep failed:\n{client_log}");
    let summary = String::from_utf8_lossy(&client.stdout);
    eprintln!("1.02M records: embedded {embedded_seconds:.1} s, cluster {cluster_seconds:.1} s");
    assert!(summary.contains("indices"), "{summary}");
    // The records' checks and cells are computed by the kernel on the executors, never on
    // the client.
    let kernel_ran = format!("{}: the run's codes read", exdep_engine::CELL_KEY);
    assert!(
        !client_log.contains(&kernel_ran),
        "the client ran the kernel:\n{client_log}"
    );
    let executors_running_it = (1..=2)
        .filter(|&n| cluster.executor_log(n).contains(&kernel_ran))
        .count();
    assert!(
        executors_running_it >= 1,
        "no executor ran the kernel:\n{}\n{}",
        cluster.executor_log(1),
        cluster.executor_log(2)
    );

    download(&s3, "embedded/out", &scratch.path("embedded")).await;
    download(&s3, "cluster/out", &scratch.path("cluster")).await;
    assert!(scratch.path("embedded/product_margins").is_dir());
    assert_same_tables(&scratch.path("embedded"), &scratch.path("cluster")).await;
}

/// A TCP proxy in front of the S3 server that records the head of every request a process
/// pointed at it sends: what that process asked the store for. Stopped on drop.
struct RecordingProxy {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    open: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingProxy {
    fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (log, connections) = (heads.clone(), open.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    while let Ok((client, _)) = listener.accept().await {
                        let (log, connections) = (log.clone(), connections.clone());
                        connections.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            if let Ok(server) = tokio::net::TcpStream::connect(upstream).await {
                                let (from_client, mut to_client) = client.into_split();
                                let (mut from_server, to_server) = server.into_split();
                                let requests = record_requests(from_client, to_server, log);
                                let responses = tokio::io::copy(&mut from_server, &mut to_client);
                                let _ = tokio::join!(requests, responses);
                            }
                            connections.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            port,
            heads,
            open,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The heads of the requests sent through the proxy, once every connection has closed.
    fn heads(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards a client's bytes to the server, keeping the head (request line and headers) of
/// each request; bodies pass through unread.
async fn record_requests(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&buffer[..read]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&pending[..end]).into_owned();
            // A request's body may precede the next head in the same read: the head starts
            // at its request line.
            if let Some(start) = ["GET ", "PUT ", "POST ", "HEAD ", "DELETE "]
                .iter()
                .filter_map(|method| text.rfind(method))
                .max()
            {
                log.lock().unwrap().push(text[start..].to_string());
            }
            pending.drain(..end + 4);
        }
        // Only the tail can hold the start of a head.
        if pending.len() > 64 * 1024 {
            pending.drain(..pending.len() - 16 * 1024);
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The bytes a request head asks for from `object` of size `size`: its range, or all of it.
fn requested_bytes(head: &str, object: &str, size: u64) -> Option<u64> {
    let request_line = head.lines().next()?;
    let path = request_line.strip_prefix("GET ")?.split(' ').next()?;
    if !path.trim_end_matches('/').ends_with(object) {
        return None;
    }
    let range = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("range")
            .then(|| value.trim().strip_prefix("bytes=").map(str::to_string))?
    });
    Some(match range {
        None => size,
        Some(range) => match range.split_once('-') {
            Some((first, "")) => size - first.parse::<u64>().unwrap_or(0),
            Some(("", suffix)) => suffix.parse().unwrap_or(size),
            Some((first, last)) => {
                last.parse::<u64>().unwrap_or(size) + 1 - first.parse::<u64>().unwrap_or(0)
            }
            None => size,
        },
    })
}

#[tokio::test]
#[ignore = "needs moto_server"]
async fn a_cluster_run_reads_parquet_inputs_on_the_executors_not_the_client() {
    let s3 = S3Server::start();
    let scratch = Scratch::new();
    scratch.generate(&[
        "--records-per-year",
        "150000",
        "--format",
        "parquet",
        "--dirty-every",
        "5000",
    ]);
    s3.upload_inputs_as(&scratch, 2017..=2022, "parquet").await;
    let cluster = LocalCluster::start(&s3);
    let engine = format!(
        "\n[engine]\nkind = \"ballista\"\nscheduler = \"{}\"\n",
        cluster.url()
    );
    bucket_config_for(&scratch, "cluster.toml", "lake", &engine, "parquet");
    // The client reaches S3 through the proxy; the executors reach it directly.
    let proxy = RecordingProxy::start(&s3.endpoint);
    let output = s3
        .exdep(&scratch, &["run", "--config", "cluster.toml", "--quiet"])
        .env("AWS_ENDPOINT", proxy.endpoint())
        .output()
        .unwrap();
    let heads = proxy.heads();
    assert!(
        output.status.success(),
        "exdep failed:\n{}\n{}\nrequests: {heads:?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("tables:"), "{summary}");
    assert!(
        heads.iter().any(|h| h.starts_with("PUT ")),
        "the proxy saw the client's requests: {heads:?}"
    );
    // Of each input, the client reads no more than the footer (its schema); the records
    // stay on the executors.
    for year in 2017..=2022 {
        let object = format!("landing/exports-{year}.parquet");
        let size = std::fs::metadata(scratch.path(&format!("inputs/exports-{year}.parquet")))
            .unwrap()
            .len();
        let read: u64 = heads
            .iter()
            .filter_map(|head| requested_bytes(head, &object, size))
            .sum();
        eprintln!("{object}: {size} bytes, the client asked for {read}");
        assert!(
            read < size / 4,
            "the client asked for {read} of the {size} bytes of {object}"
        );
    }
}

/// A cluster run of `cluster.toml` (`[engine]` with `engine_extra`) has published
/// `records_per_year` generated records a year, downloaded to `before/`; new data of the
/// same size is in the bucket for the next run.
async fn published_then_new_data(
    records_per_year: &str,
    engine_extra: &str,
) -> (S3Server, Scratch, LocalCluster) {
    let s3 = S3Server::start();
    let scratch = Scratch::new();
    scratch.generate(&["--records-per-year", records_per_year, "--seed", "1"]);
    s3.upload_inputs(&scratch, 2017..=2022).await;
    let cluster = LocalCluster::start(&s3);
    let engine = format!(
        "\n[engine]\nkind = \"ballista\"\nscheduler = \"{}\"\n{engine_extra}",
        cluster.url()
    );
    bucket_config(&scratch, "cluster.toml", "lake", &engine);
    s3.run(&scratch, "cluster.toml", &[]);
    download(&s3, "lake/out", &scratch.path("before")).await;
    scratch.generate(&["--records-per-year", records_per_year, "--seed", "2"]);
    s3.upload_inputs(&scratch, 2017..=2022).await;
    (s3, scratch, cluster)
}

#[tokio::test]
#[ignore = "needs moto_server"]
async fn losing_an_executor_completes_on_the_other_or_fails_clearly() {
    // A job that lost its executor may never end: the client stops waiting after 150 s.
    let (s3, scratch, cluster) = published_then_new_data("60000", "timeout-seconds = 150\n").await;
    // Executor 1 is killed once the run is under way.
    let mut run = s3.exdep(&scratch, &["run", "--config", "cluster.toml", "--quiet"]);
    let child = run
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-KILL", &cluster.executor_pid(1).to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Which way it went, before any assertion, so a failure says which branch failed.
    eprintln!(
        "run after losing an executor: {}",
        if output.status.success() {
            "completed"
        } else {
            &stderr
        }
    );

    download(&s3, "lake/out", &scratch.path("after")).await;
    if output.status.success() {
        // It completed on the other executor: the tables are those of the new data.
        bucket_config(&scratch, "embedded.toml", "embedded", "");
        s3.run(&scratch, "embedded.toml", &[]);
        download(&s3, "embedded/out", &scratch.path("embedded")).await;
        assert_same_tables(&scratch.path("after"), &scratch.path("embedded")).await;
    } else {
        // It failed: one line saying so, and the published tables are the old ones.
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert_same_tables(&scratch.path("before"), &scratch.path("after")).await;
    }
}

/// Sends `signal` (`STOP`, `CONT`) to the processes `pids`.
fn signal(signal: &str, pids: &[u32]) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(&pids)
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pids:?}");
}

/// A run whose jobs cannot finish (both executors are frozen) is stopped at `--timeout`:
/// one error line, its jobs cancelled on the scheduler, the published tables as they were.
#[tokio::test]
#[ignore = "needs moto_server"]
async fn a_run_past_its_timeout_is_stopped_and_its_jobs_cancelled() {
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    use ballista_core::serde::protobuf::{GetJobStatusParams, job_status};

    let (s3, scratch, cluster) = published_then_new_data("2000", "").await;
    let executors = [cluster.executor_pid(1), cluster.executor_pid(2)];
    signal("STOP", &executors);
    let started = Instant::now();
    let output = s3
        .exdep(
            &scratch,
            &[
                "run",
                "--config",
                "cluster.toml",
                "--quiet",
                "--timeout",
                "3",
            ],
        )
        .output()
        .unwrap();
    let waited = started.elapsed();
    signal("CONT", &executors);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(waited < Duration::from_secs(30), "stopped after {waited:?}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("did not finish within 3 s") && errors[0].contains("cancelled"),
        "{}",
        errors[0]
    );
    let (_, listed) = errors[0].split_once("cancelled (").unwrap();
    let (listed, _) = listed.split_once(')').unwrap();
    let jobs: Vec<&str> = listed.split(", ").filter(|j| !j.is_empty()).collect();
    assert!(!jobs.is_empty(), "no job was running: {}", stderr);

    // The scheduler has failed each job as cancelled (once the thawed executors answer).
    let mut scheduler = SchedulerGrpcClient::connect(format!("http://127.0.0.1:{}", cluster.port))
        .await
        .unwrap();
    for job in jobs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = scheduler
                .get_job_status(GetJobStatusParams {
                    job_id: job.to_string(),
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .and_then(|s| s.status);
            match status {
                Some(job_status::Status::Failed(failed)) => {
                    assert!(failed.error.contains("Cancelled"), "{job}: {failed:?}");
                    break;
                }
                other => assert!(
                    Instant::now() < deadline,
                    "{job} is still {other:?} after its cancellation"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    download(&s3, "lake/out", &scratch.path("after")).await;
    assert_same_tables(&scratch.path("before"), &scratch.path("after")).await;
}
