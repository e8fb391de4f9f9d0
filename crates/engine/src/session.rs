//! The DataFusion session every stage runs in.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use exdep_core::schema::YEAR;
use exdep_core::{Config, Engine, Location};
use exdep_store::{register_stores, session_compression, write_object, writer_properties};
use object_store::memory::InMemory;
use parquet::arrow::ArrowWriter;
use url::Url;

use crate::error::{Error, Result};

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
/// cluster. [`prepare_session`] readies it for the config's locations.
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
            register_exdep_functions(&ctx);
            crate::jobs::track_jobs(ctx)
        }
    };
    Ok(ctx)
}

/// Readies `ctx` for `config`: registers the cloud stores of every location, and sets the
/// compression of the Parquet files written.
pub fn prepare_session(ctx: &SessionContext, config: &Config) -> Result<()> {
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .parquet
        .compression = Some(config.parquet_compression.clone());
    Ok(register_stores(ctx, config)?)
}

/// An embedded session with exdep's settings, the cube kernel's functions, and the
/// `memory://` store registered next to the local filesystem, its memory unbounded.
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

/// Registers exdep's functions: the cube kernel's (see [`crate::cell_functions`]) and the
/// product margins' aggregates (see [`crate::product_margin_functions`]).
fn register_exdep_functions(ctx: &SessionContext) {
    for function in crate::cell_functions() {
        ctx.register_udf(function.as_ref().clone());
    }
    for function in crate::product_margin_functions() {
        ctx.register_udaf(function.as_ref().clone());
    }
}

fn with_memory_store(ctx: SessionContext) -> SessionContext {
    register_exdep_functions(&ctx);
    ctx.register_object_store(
        &Url::parse("memory:///").expect("a constant URL"),
        Arc::new(InMemory::new()),
    );
    ctx
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

/// Registers the scratch files at `location` (Arrow IPC files, a file or a folder of them
/// partitioned by `partition_by`, see `exdep_store::PartitionedWriter::scratch`) as table
/// `name`, with columns `file_schema` or, without, the files' own. A `year` partition is
/// an `INT`, any other text.
pub async fn register_scratch(
    ctx: &SessionContext,
    name: &str,
    location: &Location,
    file_schema: Option<&SchemaRef>,
    partition_by: &[&str],
) -> Result<()> {
    let partition_type = |column: &str| match column {
        YEAR => DataType::Int32,
        _ => DataType::Utf8,
    };
    let options = ArrowReadOptions {
        schema: file_schema.map(|schema| schema.as_ref()),
        table_partition_cols: (partition_by.iter())
            .map(|column| (column.to_string(), partition_type(column)))
            .collect(),
        ..ArrowReadOptions::default()
    };
    let url = if partition_by.is_empty() {
        location.url().to_string()
    } else {
        location.as_table_url()
    };
    ctx.register_arrow(name, url, options).await?;
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
    write_object(ctx, &copy, bytes).await?;
    if ctx.table_exist(name)? {
        ctx.deregister_table(name)?;
    }
    ctx.register_parquet(name, copy.url().as_str(), ParquetReadOptions::default())
        .await?;
    Ok(())
}
