//! Tencent's legacy `common_access` endpoint (§2): `Live_Tape_GetFilelist` over the catalogue.

use crate::state::AppState;
use axum::extract::{Query, RawForm, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use livetape_catalog::{RecordingQuery, SortOrder};
use livetape_tencent::filelist::{
    self, ErrorResponse, FileEntry, FilelistResponse, RET_BAD_SIGN, RET_INTERNAL,
    RET_UNKNOWN_INTERFACE,
};
use serde_json::Value;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/common_access", get(common_access).post(common_access))
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
    Json(dispatch(&st, &params, now_ms).await).into_response()
}

fn error(ret: i32, message: impl Into<String>) -> Value {
    serde_json::to_value(ErrorResponse::new(ret, message)).unwrap_or_default()
}

/// Dispatches on `interface`. Every outcome is a `{ret, message, output?}` envelope.
async fn dispatch(st: &AppState, params: &[(String, String)], now_ms: i64) -> Value {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let interface = get("interface").or_else(|| get("cmd")).unwrap_or("");
    if interface != "Live_Tape_GetFilelist" {
        return error(
            RET_UNKNOWN_INTERFACE,
            format!("unknown interface `{interface}`"),
        );
    }
    // With no [api] key configured the endpoint is open, like the REST API.
    if let Some(key) = &st.cfg.api.key {
        let (t, sign) = (get("t").unwrap_or(""), get("sign").unwrap_or(""));
        if let Err(e) = livetape_tencent::sign::verify_api_sign(key, t, sign, now_ms / 1000) {
            return error(RET_BAD_SIGN, e.to_string());
        }
    }
    let req = match filelist::parse_filelist_params(params) {
        Ok(r) => r,
        Err(e) => return serde_json::to_value(e.to_response()).unwrap_or_default(),
    };
    let q = RecordingQuery {
        stream_id: Some(req.channel_id.clone()),
        from_ms: req.start_ms,
        to_ms: req.end_ms,
        order: if req.sort_desc() {
            SortOrder::Desc
        } else {
            SortOrder::Asc
        },
        offset: req.offset(),
        limit: req.page_size,
        ..Default::default()
    };
    match st.catalog.list_recordings(&q).await {
        Ok((total, rows)) => {
            let list = rows
                .into_iter()
                .map(|r| {
                    FileEntry::new(
                        "",
                        r.start_ms.div_euclid(1000),
                        r.end_ms.div_euclid(1000),
                        r.file_id,
                        r.video_url,
                    )
                })
                .collect();
            serde_json::to_value(FilelistResponse::ok(total, list)).unwrap_or_default()
        }
        Err(e) => {
            tracing::error!(error = %e, "Live_Tape_GetFilelist failed");
            error(RET_INTERNAL, "internal error")
        }
    }
}
