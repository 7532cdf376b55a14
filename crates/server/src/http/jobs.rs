//! `GET /v1/jobs`: the long jobs running now (retention sweeps, upload backlogs; start-up
//! recovery runs before anything serves, so only its log and `/metrics` see it) and the
//! uploads waiting: the console's "Running jobs".

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list_jobs))
}

/// One job running now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Job {
    /// `retention` (recordings deleted), `uploads` (upload attempts finished since the queue
    /// was last empty) or `start-up recovery` (spools).
    pub job: String,
    /// Items done so far.
    pub done: u64,
    /// Items to do, when known ahead.
    pub total: Option<u64>,
    /// Items per second since it started.
    pub per_s: f64,
    /// Since it started, in milliseconds.
    pub running_ms: u64,
}

/// The answer of `GET /v1/jobs`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    /// By name.
    pub jobs: Vec<Job>,
    /// Finished files of this node waiting for their upload (`[storage] kind = "s3"`; absent
    /// otherwise).
    pub uploads_pending: Option<u64>,
}

/// List running jobs
///
/// The long jobs running on this node now, with how far they are.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    responses((status = 200, description = "The jobs running now", body = JobList))
)]
async fn list_jobs(State(st): State<Arc<AppState>>) -> Result<Json<JobList>, ApiError> {
    let jobs = st
        .metrics
        .jobs
        .running()
        .into_iter()
        .map(|j| Job {
            job: j.job.to_owned(),
            done: j.done,
            total: j.total,
            per_s: (j.per_s() * 10.0).round() / 10.0,
            running_ms: j.started.elapsed().as_millis() as u64,
        })
        .collect();
    let uploads_pending = match st.objects {
        Some(_) => Some(st.catalog.pending_uploads_count().await?),
        None => None,
    };
    Ok(Json(JobList {
        jobs,
        uploads_pending,
    }))
}
