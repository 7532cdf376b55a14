//! `GET /v1/recordings`, `GET|DELETE /v1/recordings/{file_id}`.

use super::ApiError;
use super::error::ErrorBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use livetape_catalog::{Recording, RecordingQuery, SortOrder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(get_recording, delete_recording))
}

/// A recording as the REST API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordingJson {
    pub file_id: String,
    pub app: String,
    pub domain: String,
    pub stream_id: String,
    pub sequence: String,
    pub format: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub size_bytes: u64,
    pub video_url: String,
    pub stream_param: String,
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
}

impl From<Recording> for RecordingJson {
    fn from(r: Recording) -> Self {
        Self {
            file_id: r.file_id,
            app: r.appname,
            domain: r.app,
            stream_id: r.stream_id,
            sequence: r.sequence,
            format: r.format,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            video_url: r.video_url,
            stream_param: crate::model::without_push_secret(&r.stream_param),
            video_codec: r.video_codec,
            width: r.width,
            height: r.height,
        }
    }
}

/// A page of `GET /v1/recordings`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordingPage {
    /// Recordings that match, on every page.
    pub total: u64,
    pub page: u64,
    pub page_size: u32,
    pub recordings: Vec<RecordingJson>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    stream_id: Option<String>,
    /// The RTMP app (`live`).
    app: Option<String>,
    format: Option<String>,
    /// Epoch ms, inclusive, on the file's start.
    from: Option<i64>,
    /// Epoch ms, exclusive, on the file's start.
    to: Option<i64>,
    /// From 1; default 1.
    page: Option<u64>,
    /// 1..=100; default 20.
    page_size: Option<u32>,
    /// `asc` (default) or `desc` by start time.
    order: Option<String>,
}

/// List recordings
///
/// Finished recordings in the catalogue, filtered and paged, by start time.
#[utoipa::path(
    get,
    path = "/v1/recordings",
    tag = "recordings",
    params(ListParams),
    responses(
        (status = 200, description = "A page of recordings", body = RecordingPage),
        (status = 400, description = "A query parameter is malformed or out of range", body = ErrorBody),
    )
)]
async fn list_recordings(
    State(st): State<Arc<AppState>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordingPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (page, page_size) = super::paging(p.page, p.page_size)?;
    let order = match p.order.as_deref() {
        None | Some("asc") => SortOrder::Asc,
        Some("desc") => SortOrder::Desc,
        Some(o) => {
            return Err(ApiError::BadRequest(format!(
                "order `{o}`: use asc or desc"
            )));
        }
    };
    let q = RecordingQuery {
        app: None,
        appname: p.app,
        stream_id: p.stream_id,
        stream_ids: Vec::new(),
        format: p.format,
        from_ms: p.from,
        to_ms: p.to,
        order,
        offset: (page - 1).saturating_mul(u64::from(page_size)),
        limit: page_size,
    };
    let (total, rows) = st.catalog.list_recordings(&q).await?;
    Ok(Json(RecordingPage {
        total,
        page,
        page_size,
        recordings: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Get one recording
#[utoipa::path(
    get,
    path = "/v1/recordings/{file_id}",
    tag = "recordings",
    params(("file_id" = String, Path, description = "The recording's `file_id`")),
    responses(
        (status = 200, description = "The recording", body = RecordingJson),
        (status = 404, description = "No such recording", body = ErrorBody),
    )
)]
async fn get_recording(
    State(st): State<Arc<AppState>>,
    Path(file_id): Path<String>,
) -> Result<Json<RecordingJson>, ApiError> {
    let r = st
        .catalog
        .get_recording(&file_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recording {file_id}")))?;
    Ok(Json(r.into()))
}

/// Delete one recording
///
/// Removes the catalogue row and the file (on disk or in the bucket) together.
#[utoipa::path(
    delete,
    path = "/v1/recordings/{file_id}",
    tag = "recordings",
    params(("file_id" = String, Path, description = "The recording's `file_id`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such recording", body = ErrorBody),
    )
)]
async fn delete_recording(
    State(st): State<Arc<AppState>>,
    Path(file_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Row and file go together (tombstone → file → forget), as for retention.
    st.deletes
        .delete(&file_id, crate::archive::Reason::Api)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recording {file_id}")))?;
    Ok(StatusCode::NO_CONTENT)
}
