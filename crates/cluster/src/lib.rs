//! exdep's Ballista cluster processes: a scheduler and executors built on the
//! `ballista-scheduler` and `ballista-executor` libraries, so they share exdep's build and
//! register what exdep's plans need — the cube kernel's functions, and object stores for
//! every bucket a plan names, built from the process's environment (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`).
//!
//! The binaries are `exdep-scheduler` and `exdep-executor` (in package `exdep`); `deploy/local-cluster.sh` starts
//! one scheduler and two executors on this machine.
#![warn(missing_docs)]

use std::sync::Arc;

use ballista_core::JobId;
use ballista_core::extension::{
    ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use exdep_engine::datafusion::execution::SessionStateBuilder;
use exdep_engine::datafusion::execution::TaskContext;
use exdep_engine::datafusion::execution::object_store::ObjectStoreRegistry;
use exdep_engine::datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use exdep_engine::datafusion::execution::session_state::SessionState;
use exdep_engine::datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use exdep_engine::datafusion::physical_plan::ExecutionPlan;
use exdep_engine::datafusion::physical_plan::metrics::MetricsSet;
use exdep_engine::datafusion::prelude::SessionConfig;
use exdep_store::EnvironmentStores;

/// The registry every session of a cluster process shares: one store per bucket, built on
/// first use from the environment.
pub fn object_stores() -> Arc<dyn ObjectStoreRegistry> {
    Arc::new(EnvironmentStores::default())
}

/// A runtime for one session: the shared object stores, and, on an executor, its work
/// folder for spills. A runtime per session keeps each session's listing caches its own.
pub fn runtime(
    stores: &Arc<dyn ObjectStoreRegistry>,
    work_dir: Option<&str>,
) -> exdep_engine::datafusion::error::Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(stores.clone());
    if let Some(dir) = work_dir {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}

/// Ballista's scalar functions and the cube kernel's (see [`exdep_engine::cell_functions`]).
fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut functions = ballista_scalar_functions();
    functions.extend(exdep_engine::cell_functions());
    functions
}

/// Ballista's aggregate functions and the product margins' (see
/// [`exdep_engine::product_margin_functions`]).
fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    let mut functions = ballista_aggregate_functions();
    functions.extend(exdep_engine::product_margin_functions());
    functions
}

/// The functions an executor's tasks may call: Ballista's, the cube kernel's and the
/// product margins' aggregates.
pub fn function_registry() -> Arc<BallistaFunctionRegistry> {
    let mut registry = BallistaFunctionRegistry::default();
    for function in exdep_engine::cell_functions() {
        registry
            .scalar_functions
            .insert(function.name().to_string(), function);
    }
    for function in exdep_engine::product_margin_functions() {
        registry
            .aggregate_functions
            .insert(function.name().to_string(), function);
    }
    Arc::new(registry)
}

/// The scheduler's state for a client session: Ballista's defaults with exdep's stores.
pub fn scheduler_session(
    config: SessionConfig,
    stores: &Arc<dyn ObjectStoreRegistry>,
) -> exdep_engine::datafusion::error::Result<SessionState> {
    Ok(SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime(stores, None)?)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(scalar_functions())
        .with_aggregate_functions(aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build())
}

/// Ballista's execution engine, but tasks report no operator metrics to the scheduler.
///
/// Ballista 55's scheduler adopts the first task's operator metrics as its stage's, and
/// when a later task of the stage reports a different number of operators (the plans of
/// exdep's index tables do this) it rejects that task's status update: the job then never
/// ends. The metrics only feed the scheduler's displays; without them every status update
/// is taken. Everything else a task reports passes through.
#[derive(Default)]
pub struct TasksWithoutMetrics {
    engine: DefaultExecutionEngine,
}

impl ExecutionEngine for TasksWithoutMetrics {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> exdep_engine::datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let stage = self.engine.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(StageWithoutMetrics(stage)))
    }
}

/// A query stage whose operator metrics stay on the executor.
#[derive(Debug)]
struct StageWithoutMetrics(Arc<dyn QueryStageExecutor>);

impl std::fmt::Display for StageWithoutMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for StageWithoutMetrics {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> exdep_engine::datafusion::error::Result<Vec<ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        Vec::new()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(
        &self,
    ) -> exdep_engine::datafusion::error::Result<Vec<WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.0.collect_column_stats()
    }
}

/// Logs to standard error, at the level `EXDEP_LOG` names (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXDEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Sets the allocator up for a process of exdep's; call it first in `main`, before any
/// thread starts. With glibc, two settings, made for a process whose threads take turns
/// decoding and freeing megabyte buffers (a Parquet row group's column chunks):
/// - one arena per core (glibc's default is up to eight): memory freed in one thread's arena
///   is not reused by the others, so with many arenas the process holds many partly used
///   ones;
/// - a fixed mmap threshold of 1 MiB: by default glibc raises the threshold to the size of
///   every large block freed, so later buffers of that size are carved out of the arenas and
///   fragment them instead of going back to the system when freed;
/// - a trim threshold of 64 MiB and a top pad of 16 MiB: a fixed mmap threshold leaves the
///   trim threshold at its 128 KiB default, so an arena's free top went back to the system
///   after nearly every batch and was faulted in again for the next.
///
/// On 20M Parquet records (`bench/`): the fixed mmap threshold took peak RSS from 207-240 MiB
/// to 160-169 MiB at the same speed; the trim threshold and top pad take system time from
/// 0.45-0.86 s to 0.23-0.31 s (1.35-1.88 s to 0.84-1.10 s with product margins) and the run
/// from 2.50-3.07 s to 2.20-2.54 s (4.76-6.92 s to 4.54-5.57 s), for 10-16 MiB more peak
/// RSS (10-60 MiB with product margins; `bench/results/2026-12-06-ab.txt`).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_glibc_malloc(exdep_core::cores());
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_glibc_malloc(arenas: usize) {
    const MMAP_THRESHOLD: libc::c_int = 1 << 20;
    const TRIM_THRESHOLD: libc::c_int = 64 << 20;
    const TOP_PAD: libc::c_int = 16 << 20;
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` only changes the allocator's parameters, under its own lock; the
    // values are in the documented ranges. A call failing (it returns 0) leaves glibc's
    // default, which is correct, only larger or slower.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}

/// A runtime with large thread stacks: planning deep SQL recurses.
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
}
