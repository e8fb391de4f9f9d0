//! `exdep-scheduler`: the Ballista scheduler of an exdep cluster. Clients connect to it
//! (`exdep run --cluster df://HOST:PORT`), executors register with it. It serves gRPC and, on
//! the same port, `GET /healthz` (up) and `GET /readyz` (enough executors registered).

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;

use ballista_core::utils::default_config_producer;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "exdep-scheduler",
    version,
    about = "The Ballista scheduler of an exdep cluster"
)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_host: String,
    /// The port of gRPC and of the HTTP health checks.
    #[arg(long, default_value_t = 50050)]
    port: u16,
    /// The host name executors and clients reach this scheduler by (default: the bind host).
    #[arg(long)]
    external_host: Option<String>,
    /// `/readyz` answers 200 once this many executors are registered.
    #[arg(long, default_value_t = 1)]
    min_ready_executors: usize,
    /// An executor silent for this long is taken as lost and its tasks run elsewhere.
    #[arg(long, default_value_t = 60)]
    executor_timeout_seconds: u64,
}

fn main() -> ExitCode {
    exdep_cluster::tune_allocator();
    let args = Args::parse();
    exdep_cluster::init_logging();
    let result = exdep_cluster::tokio_runtime()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| runtime.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let address: SocketAddr = (args.bind_host.as_str(), args.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| format!("cannot listen on {}:{}", args.bind_host, args.port))?;
    let stores = exdep_cluster::object_stores();
    let external_host = args.external_host.unwrap_or_else(|| args.bind_host.clone());
    let mut config = SchedulerConfig::default()
        .with_hostname(external_host)
        .with_port(args.port)
        .with_override_config_producer(Arc::new(default_config_producer))
        .with_override_session_builder(Arc::new(move |config| {
            exdep_cluster::scheduler_session(config, &stores)
        }))
        .with_no_executors_grace_period_seconds(args.executor_timeout_seconds);
    config.bind_host = args.bind_host.clone();
    config.min_ready_executors = args.min_ready_executors;
    config.executor_timeout_seconds = args.executor_timeout_seconds;
    config.expire_dead_executor_interval_seconds = (args.executor_timeout_seconds / 4).clamp(1, 15);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    start_server(cluster, address, Arc::new(config))
        .await
        .map_err(|e| format!("scheduler on {address}: {e}"))
}
