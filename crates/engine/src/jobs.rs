//! The jobs a client session has started on its Ballista cluster, so that a run that gives up
//! (its timeout passed) cancels them instead of leaving them to run on. Ballista's client
//! does not cancel a job whose results it stops reading.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobStatusParams, job_status};
use datafusion::catalog::Session;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_proto::protobuf::LogicalPlanNode;
use tracing::{info, warn};

use crate::error::{Error, Result};

/// The plans a session has sent to its cluster. A plan does not outlive the start of its
/// execution (its stream keeps only what it needs), so the plans are kept here for their job
/// ids; which jobs still run is the scheduler's to say.
#[derive(Debug, Default)]
pub struct ClusterJobs {
    plans: Mutex<Vec<Arc<dyn ExecutionPlan>>>,
}

impl ClusterJobs {
    fn track(&self, plan: &Arc<dyn ExecutionPlan>) {
        if plan.is::<DistributedQueryExec<LogicalPlanNode>>() {
            let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
            plans.push(Arc::clone(plan));
        }
    }

    /// The ids of the jobs submitted so far.
    fn submitted(&self) -> Vec<String> {
        let plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        plans
            .iter()
            .filter_map(|plan| {
                let exec = plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()?;
                Some(exec.job_id()?.to_string())
            })
            .collect()
    }
}

/// Ballista's planner, noting each plan it makes in [`ClusterJobs`].
#[derive(Debug)]
struct TrackingPlanner {
    inner: Arc<dyn QueryPlanner + Send + Sync>,
    jobs: Arc<ClusterJobs>,
}

#[async_trait]
impl QueryPlanner for TrackingPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let plan = self
            .inner
            .create_physical_plan(logical_plan, session)
            .await?;
        self.jobs.track(&plan);
        Ok(plan)
    }
}

/// `ctx` (a Ballista client session) with its planner wrapped to track the jobs it starts.
pub(crate) fn track_jobs(ctx: SessionContext) -> SessionContext {
    let state = ctx.state();
    let jobs = Arc::new(ClusterJobs::default());
    let planner = TrackingPlanner {
        inner: Arc::clone(state.query_planner()),
        jobs: Arc::clone(&jobs),
    };
    let config = state.config().clone().with_extension(jobs);
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .with_query_planner(Arc::new(planner))
        .build();
    SessionContext::new_with_state(state)
}

/// Cancels the jobs of `ctx` that are still queued or running on the cluster whose scheduler
/// is `scheduler` (`df://HOST:PORT`), and returns their ids. A session that is not a cluster
/// client has none.
pub async fn cancel_cluster_jobs(ctx: &SessionContext, scheduler: &str) -> Result<Vec<String>> {
    let Some(jobs) = ctx.state().config().get_extension::<ClusterJobs>() else {
        return Ok(Vec::new());
    };
    let submitted = jobs.submitted();
    if submitted.is_empty() {
        return Ok(submitted);
    }
    let endpoint = scheduler.replacen("df://", "http://", 1);
    let mut client = SchedulerGrpcClient::connect(endpoint)
        .await
        .map_err(|e| Error::Cluster {
            scheduler: scheduler.to_string(),
            source: Box::new(DataFusionError::External(Box::new(e))),
        })?;
    let mut cancelled = Vec::new();
    for job_id in submitted {
        let status = client
            .get_job_status(GetJobStatusParams {
                job_id: job_id.clone(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.status);
        if matches!(
            status,
            Some(job_status::Status::Failed(_) | job_status::Status::Successful(_))
        ) {
            continue;
        }
        match client
            .cancel_job(CancelJobParams {
                job_id: job_id.clone(),
            })
            .await
        {
            Ok(_) => info!(job_id, "cancelled the cluster job"),
            Err(status) => warn!(job_id, "the scheduler did not cancel the job: {status}"),
        }
        cancelled.push(job_id);
    }
    Ok(cancelled)
}
