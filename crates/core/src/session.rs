//! The DataFusion session every stage runs in.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::datatypes::{Field, Schema};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;

use crate::storage::{session_compression, writer_properties};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use object_store::memory::InMemory;
use url::Url;

use crate::config::{Config, Engine};
use crate::error::{Error, Result};
use crate::schema::YEAR;
use crate::storage::Location;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

/// exdep's session settings, on top of `config`.
fn session_config(config: SessionConfig) -> SessionConfig {
    let mut config = config
        .with_information_schema(false)
        // Small joins against code tables are broadcast; the cube is read with its statistics.
        .with_collect_statistics(true);
    // A Parquet footer is read with one request of this many bytes from the file's end (a
    // second one when the footer is longer). DataFusion's 512 KiB would have the client
    // download half a megabyte of every input just to learn its schema.
    config.options_mut().execution.parquet.metadata_size_hint = Some(64 << 10);
    config
}

/// The session a run of `config` executes in: embedded, or a client of its Ballista
/// cluster. [`Config::prepare_session`] readies it for the config's locations.
pub async fn connect(config: &Config) -> Result<SessionContext> {
    let ctx = match &config.engine {
        Engine::Embedded => session_with_limit(config.memory_limit)?,
        Engine::Ballista { scheduler, .. } => {
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_config(session_config(SessionConfig::new_with_ballista()))
                .build();
            let cluster_error = |source| Error::Cluster {
                scheduler: scheduler.clone(),
                source: Box::new(source),
            };
            let ctx = SessionContext::remote_with_state(scheduler, state)
                .await
                .map_err(cluster_error)?;
            // Ballista 55's adaptive planner re-plans stages per task, and a task whose
            // re-planned operators differ from its stage's cannot report its status: the
            // job then never ends. The static distributed planner runs the same plans.
            ctx.sql("SET ballista.planner.adaptive.enabled = false")
                .await
                .map_err(cluster_error)?;
            // The client asks for each job's status rather than waiting for the scheduler to
            // push it: it then knows the job's id as soon as the job is queued, which a run
            // that gives up needs to cancel it (a pushed id comes with the first status
            // change, which a stuck job may never have).
            ctx.sql("SET ballista.client.pull = true")
                .await
                .map_err(cluster_error)?;
            crate::jobs::track_jobs(ctx)
        }
    };
    Ok(ctx)
}

/// An embedded session with exdep's settings and the `memory://` store registered next to
/// the local filesystem, its memory unbounded.
pub fn new_session() -> SessionContext {
    with_memory_store(SessionContext::new_with_config(session_config(
        SessionConfig::new(),
    )))
}

/// An embedded session whose plans hold at most `limit` bytes: aggregations and sorts
/// past their share spill to files in the system's temporary folder.
fn session_with_limit(limit: u64) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(limit as usize)))
        .build_arc()?;
    Ok(with_memory_store(SessionContext::new_with_config_rt(
        session_config(SessionConfig::new()),
        runtime,
    )))
}

fn with_memory_store(ctx: SessionContext) -> SessionContext {
    ctx.register_object_store(
        &Url::parse("memory:///").expect("a constant URL"),
        Arc::new(InMemory::new()),
    );
    ctx
}

/// The memory limit of a run whose config sets none: half of the memory this process may
/// use, that is of the container's cgroup limit where there is one (a Kubernetes pod's),
/// else of this machine's memory (read from `/proc/meminfo`), or 4 GiB where neither can be
/// read.
pub(crate) fn default_memory_limit() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map(|kib| kib * 1024);
    let container = cgroup_memory_limit();
    let usable = match (machine, container) {
        (Some(machine), Some(container)) => Some(machine.min(container)),
        (machine, container) => machine.or(container),
    };
    usable.map_or(4 << 30, |bytes| bytes / 2)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, or v1
/// `memory.limit_in_bytes`), when one is set: the smallest of those of its own cgroup, as
/// `/proc/self/cgroup` names it, and of the cgroup mounted at `/sys/fs/cgroup` (inside a
/// container with a cgroup namespace that is its own; without one, its path is the host's).
fn cgroup_memory_limit() -> Option<u64> {
    let mut files = vec![
        "/sys/fs/cgroup/memory.max".to_string(),
        "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string(),
    ];
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        // `0::/path` (v2) or `N:memory:/path` (v1).
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            files.push(format!("/sys/fs/cgroup{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            files.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
        }
    }
    files
        .iter()
        .filter_map(|file| {
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        // "max" (v2) does not parse; v1 says "no limit" with a number near 2^63.
        .filter(|&bytes| bytes < 1 << 60)
        .min()
}

/// This machine's cores: how many files, tables or decodings exdep runs at once, and its
/// processes' allocator arenas.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A session that shares `ctx`'s tables, stores and memory pool but plans in `partitions`
/// partitions, in batches of at most `batch_rows` rows: for plans that run side by side, one
/// per core, where each would otherwise split its input (and hold its grouping state) once
/// per core, over a file whose longest record sets how many fit in a bounded batch. The same
/// session when `ctx` is a cluster's client: there the partitions are the executors' tasks.
pub fn with_partitions(
    ctx: &SessionContext,
    config: &Config,
    partitions: usize,
    batch_rows: usize,
) -> SessionContext {
    match config.engine {
        Engine::Embedded => {
            let mut state = ctx.state();
            let execution = &mut state.config_mut().options_mut().execution;
            execution.target_partitions = partitions.max(1);
            let rows = batch_rows.clamp(1, execution.batch_size.get());
            execution.batch_size = datafusion::config::ConfigNonZeroUsize::try_new(rows)
                .expect("clamped to at least 1");
            SessionContext::new_with_state(state)
        }
        Engine::Ballista { .. } => ctx.clone(),
    }
}

/// Registers a warehouse layer (Hive-partitioned by `year`) as table `name`.
pub async fn register_layer(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    file_schema: &SchemaRef,
) -> Result<()> {
    let options = ParquetReadOptions::default()
        .schema(file_schema)
        .table_partition_cols(vec![(YEAR.to_string(), DataType::Int32)]);
    ctx.register_parquet(name, location.as_table_url(), options)
        .await?;
    Ok(())
}

/// Registers a small CSV file (a code table) as table `name`, every column read as text:
/// a header line, `#` starting a comment line. The table is served from a Parquet copy under
/// `cache`: CSV carries no statistics, and without them DataFusion would build its join hash
/// tables on the big side of a join with a code table, holding millions of records in memory
/// instead of a few hundred codes. Replaces a table of the same name.
pub async fn register_text_table(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    columns: &[&str],
    cache: &Location,
) -> Result<()> {
    let schema = Schema::new(
        columns
            .iter()
            .map(|column| Field::new(*column, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let url = location.url().as_str();
    let extension = url.rfind('.').map_or("", |i| &url[i..]);
    let options = CsvReadOptions::new()
        .has_header(true)
        .comment(b'#')
        .schema(&schema)
        .file_extension(extension);
    let rows = ctx.read_csv(url, options).await?.collect().await?;
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(
        &mut bytes,
        Arc::new(schema),
        Some(writer_properties(session_compression(ctx))),
    )?;
    for batch in &rows {
        writer.write(batch)?;
    }
    writer.close()?;
    let copy = cache.join(&format!("{name}.parquet"));
    copy.store(ctx)?
        .put(&copy.path()?, PutPayload::from(bytes))
        .await?;
    if ctx.table_exist(name)? {
        ctx.deregister_table(name)?;
    }
    ctx.register_parquet(name, copy.url().as_str(), ParquetReadOptions::default())
        .await?;
    Ok(())
}

/// Decodes UTF-8 text, or says on which line (1-based) the first bad byte is.
pub fn utf8_text(bytes: &[u8]) -> std::result::Result<&str, usize> {
    std::str::from_utf8(bytes).map_err(|e| {
        bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    })
}
