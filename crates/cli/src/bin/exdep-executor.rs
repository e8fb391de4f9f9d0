//! `exdep-executor`: a Ballista executor of an exdep cluster. It registers with the
//! scheduler, runs the tasks of exdep's plans, and reaches the buckets they name with the
//! credentials of its environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::utils::default_config_producer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "exdep-executor",
    version,
    about = "A Ballista executor of an exdep cluster"
)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// The host name the scheduler, other executors and clients reach this executor by
    /// (default: the address its connection to the scheduler comes from).
    #[arg(long)]
    external_host: Option<String>,
    /// The Arrow Flight port: shuffles and results are fetched from it.
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// The gRPC port the scheduler launches tasks on.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// The scheduler's host.
    #[arg(long, default_value = "127.0.0.1")]
    scheduler_host: String,
    /// The scheduler's port.
    #[arg(long, default_value_t = 50050)]
    scheduler_port: u16,
    /// How long to wait for the scheduler to accept connections before giving up.
    #[arg(long, default_value_t = 60)]
    scheduler_wait_seconds: u64,
    /// Where shuffle files and spills go (default: a temporary folder).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<String>,
    /// Tasks run at once (default: every core).
    #[arg(long)]
    vcores: Option<usize>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 5)]
    heartbeat_seconds: u64,
}

fn main() -> ExitCode {
    exdep_cluster::tune_allocator();
    let args = Args::parse();
    exdep_cluster::init_logging();
    let result = wait_for_scheduler(&args).and_then(|()| {
        exdep_cluster::tokio_runtime()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(serve(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Ballista's executor makes one attempt to reach the scheduler; started together (a local
/// cluster, a Kubernetes rollout), the scheduler may need a moment.
fn wait_for_scheduler(args: &Args) -> Result<(), String> {
    let scheduler = format!("{}:{}", args.scheduler_host, args.scheduler_port);
    let deadline = Instant::now() + Duration::from_secs(args.scheduler_wait_seconds);
    loop {
        let reachable = scheduler
            .to_socket_addrs()
            .ok()
            .and_then(|mut addresses| addresses.next())
            .is_some_and(|address| {
                TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
            });
        if reachable {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the scheduler at {scheduler} did not accept a connection within {} s",
                args.scheduler_wait_seconds
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let stores = exdep_cluster::object_stores();
    let work_dir = args.work_dir.clone();
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: args.bind_host,
        external_host: args.external_host,
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler_host,
        scheduler_port: args.scheduler_port,
        scheduler_connect_timeout_seconds: 0,
        vcores: args.vcores.unwrap_or(defaults.vcores),
        work_dir: args.work_dir,
        executor_heartbeat_interval_seconds: args.heartbeat_seconds,
        override_config_producer: Some(Arc::new(default_config_producer)),
        override_function_registry: Some(exdep_cluster::function_registry()),
        override_execution_engine: Some(Arc::new(exdep_cluster::TasksWithoutMetrics::default())),
        override_runtime_producer: Some(Arc::new(move |_config| {
            exdep_cluster::runtime(&stores, work_dir.as_deref())
        })),
        ..defaults
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| e.to_string())
}
