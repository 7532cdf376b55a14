//! The HTTP API: it reads the catalogue and storage, and never touches a live recording.
//!
//! - `GET /healthz`
//! - `GET|POST /common_access?interface=Live_Tape_GetFilelist&…`   Tencent's legacy query
//! - `GET /v1/recordings`, `GET|DELETE /v1/recordings/{file_id}`, `GET /v1/streams`
//! - `GET /vod/{file_id}/f0.{mp4|flv}`                              playback with Range/ETag/CORS
//!   (from the bucket when uploaded and not kept locally: `objects::serve`)
//! - `GET /metrics`                                                 Prometheus (see `metrics`)
//! - `/v1/deliveries…` (`deliveries.rs`) and `GET /console` (`console.rs`) are merged in below
//! - `GET /live/{app}/{stream}.{flv|m3u8}`                          live viewing (`live.rs`)

use crate::AppState;
use axum::extract::{Path, Query, RawForm, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use livetape_catalog::{Recording, RecordingQuery, SortOrder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeFile;

/// Largest page the REST API returns.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Every API error, mapped to an HTTP status in exactly one place ([`IntoResponse`] below).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<livetape_catalog::CatalogError> for ApiError {
    fn from(e: livetape_catalog::CatalogError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let rest = Router::new()
        .route("/v1/recordings", get(list_recordings))
        .route(
            "/v1/recordings/{file_id}",
            get(get_recording).delete(delete_recording),
        )
        .route("/v1/streams", get(list_streams))
        .merge(crate::templates::routes())
        .merge(crate::deliveries::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer_auth));
    // Players on other origins (web apps, the Tencent-style player pages) fetch recordings
    // cross-origin, and need the range headers exposed to scrub.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::RANGE, header::IF_NONE_MATCH, header::AUTHORIZATION])
        .expose_headers([
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
            header::ETAG,
        ]);
    let metrics = Router::new().route("/metrics", get(crate::metrics::scrape));
    let metrics = if state.cfg.metrics.require_key {
        metrics.route_layer(middleware::from_fn_with_state(state.clone(), bearer_auth))
    } else {
        metrics
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/common_access", get(common_access).post(common_access))
        .route("/vod/{file_id}/{name}", get(vod))
        .merge(crate::console::routes())
        .merge(crate::live::routes())
        .merge(rest)
        .merge(metrics)
        .layer(cors)
        // Outermost: latency as the client sees it, for every route (by its template).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track_http,
        ))
        .with_state(state)
}

async fn bearer_auth(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(key) = &st.cfg.api.key {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|tok| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    tok.as_bytes(),
                    key.as_bytes(),
                ))
            });
        if !ok {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

async fn healthz(State(st): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let depth = st.catalog.outbox_depth().await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "live_streams": st.hub.list().len(),
        "outbox_pending": depth,
    })))
}

/// A recording as the REST API shows it.
#[derive(Serialize)]
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
            stream_param: r.stream_param,
            video_codec: r.video_codec,
            width: r.width,
            height: r.height,
        }
    }
}

#[derive(Deserialize)]
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
    page: Option<u64>,
    page_size: Option<u32>,
    /// `asc` (default) or `desc` by start time.
    order: Option<String>,
}

/// `page` (from 1, default 1) and `page_size` (1..=[`MAX_PAGE_SIZE`], default 20) of a
/// paged `/v1` listing.
pub(crate) fn paging(page: Option<u64>, page_size: Option<u32>) -> Result<(u64, u32), ApiError> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::BadRequest("page starts at 1".into()));
    }
    let page_size = page_size.unwrap_or(20);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::BadRequest(format!(
            "page_size must be 1..={MAX_PAGE_SIZE}"
        )));
    }
    Ok((page, page_size))
}

async fn list_recordings(
    State(st): State<Arc<AppState>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (page, page_size) = crate::api::paging(p.page, p.page_size)?;
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
        format: p.format,
        from_ms: p.from,
        to_ms: p.to,
        order,
        offset: (page - 1).saturating_mul(u64::from(page_size)),
        limit: page_size,
    };
    let (total, rows) = st.catalog.list_recordings(&q).await?;
    let recs: Vec<RecordingJson> = rows.into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({
        "total": total,
        "page": page,
        "page_size": page_size,
        "recordings": recs,
    })))
}

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

async fn delete_recording(
    State(st): State<Arc<AppState>>,
    Path(file_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Row and file go together (tombstone → file → forget), as for retention.
    crate::retention::delete(&st, &file_id, crate::retention::Reason::Api)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recording {file_id}")))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_streams(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "streams": st.hub.list() }))
}

/// `seg-00042.ts`: the only segment names an HLS recording has (no path tricks possible).
fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("seg-")
        .and_then(|n| n.strip_suffix(".ts"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Bytes read from a file per body chunk. Each read is a hop to the blocking pool (and a copy
/// out of tokio's file buffer), so tower-http's 64 KiB default cost 16 hops per MiB served;
/// 256 KiB is a quarter of that while a slow viewer still holds at most ~2 chunks.
const PLAYBACK_CHUNK: usize = 256 * 1024;

async fn vod(
    State(st): State<Arc<AppState>>,
    Path((file_id, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("/vod/{file_id}/{name}"));
    let rec = st
        .catalog
        .get_recording(&file_id)
        .await?
        .ok_or_else(not_found)?;
    let Some(format) = crate::model::Format::from_name(&rec.format) else {
        return Err(not_found());
    };
    let dir_or_file = st.storage.resolve(&rec.path).ok_or_else(not_found)?;
    let (path, mime) = if format == crate::model::Format::Hls {
        // An HLS recording is a directory: its playlist and segments are served beside it.
        if name == format.url_name() {
            (dir_or_file.join(&name), format.mime())
        } else if is_segment_name(&name) {
            (dir_or_file.join(&name), "video/mp2t")
        } else {
            return Err(not_found());
        }
    } else if name == format.url_name() {
        (dir_or_file, format.mime())
    } else {
        return Err(not_found());
    };
    let method = req.method().clone();
    // Uploaded and not kept locally: served from the bucket (`objects`).
    if let Some(objects) = &st.objects
        && !tokio::fs::try_exists(&path).await.unwrap_or(false)
        && let Some(key) = st.catalog.object_key(&file_id).await?
    {
        let key = if format == crate::model::Format::Hls {
            format!("{key}/{name}")
        } else {
            key
        };
        let mut resp = crate::objects::serve(objects, &key, mime, &method, req.headers()).await?;
        crate::metrics::count_playback(&st.metrics, &method, &resp);
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        );
        return Ok(resp);
    }
    // ServeFile implements Range (206/416), ETag/If-None-Match and Last-Modified.
    let resp = ServeFile::new_with_mime(&path, &mime.parse().expect("static mime"))
        .with_buf_chunk_size(PLAYBACK_CHUNK)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    let mut resp = resp.map(axum::body::Body::new);
    crate::metrics::count_playback(&st.metrics, &method, &resp);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(resp)
}

/// Tencent's fcgi envelope: business errors are HTTP 200 with a non-zero `ret`.
async fn common_access(
    State(st): State<Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    form: RawForm,
) -> Response {
    let mut params = query;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if (is_form || !form.0.is_empty())
        && let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&form.0)
    {
        params.extend(pairs);
    }
    let now_ms = st.clock.now_ms();
    Json(crate::query::common_access(&st, &params, now_ms).await).into_response()
}
