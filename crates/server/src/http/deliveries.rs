//! Callback deliveries (the outbox) over REST, for the console:
//!
//! - `GET /v1/deliveries?status=&stream=&page=&page_size=`  newest first
//! - `GET /v1/deliveries/{id}`
//! - `POST /v1/deliveries/{id}/retry`  due now (a dead one gets one more attempt); 409 if delivered
//!
//! Signing keys never leave the server: a delivery shows its URL, unsigned body and state.

use super::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use livetape_catalog::{CatalogError, DeliveryQuery, OutboxEvent, OutboxState};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One outbox row as the REST API shows it.
#[derive(Serialize)]
pub struct DeliveryJson {
    pub id: i64,
    pub event_id: String,
    pub event_type: i32,
    pub stream_id: String,
    pub url: String,
    /// The JSON body without `t`/`sign` (added per attempt), and without the `txSecret` of
    /// its `stream_param` (the receiver gets it whole).
    pub body: String,
    /// `pending`, `delivered` or `dead`.
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at_ms: i64,
    /// Only while pending.
    pub next_attempt_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

impl From<OutboxEvent> for DeliveryJson {
    fn from(e: OutboxEvent) -> Self {
        Self {
            id: e.id,
            event_id: e.event_id,
            event_type: e.event_type,
            stream_id: e.stream_id,
            url: e.url,
            body: shown_body(e.body),
            status: e.state.as_str(),
            attempts: e.attempts,
            max_attempts: e.max_attempts,
            created_at_ms: e.created_at_ms,
            next_attempt_at_ms: (e.state == OutboxState::Pending).then_some(e.next_attempt_at_ms),
            delivered_at_ms: e.delivered_at_ms,
            last_error: e.last_error,
        }
    }
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/{id}", get(one))
        .route("/v1/deliveries/{id}/retry", post(retry))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    stream: Option<String>,
    page: Option<u64>,
    page_size: Option<u32>,
}

async fn list(
    State(st): State<Arc<AppState>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (page, page_size) = super::paging(p.page, p.page_size)?;
    let state = match p.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(OutboxState::try_from(s.to_owned()).map_err(|_| {
            ApiError::BadRequest(format!("status `{s}`: use pending, delivered or dead"))
        })?),
    };
    let q = DeliveryQuery {
        state,
        stream_id: p.stream.filter(|s| !s.is_empty()),
        offset: (page - 1).saturating_mul(u64::from(page_size)),
        limit: page_size,
    };
    let (total, rows) = st.catalog.list_deliveries(&q).await?;
    let rows: Vec<DeliveryJson> = rows.into_iter().map(Into::into).collect();
    Ok(Json(serde_json::json!({
        "total": total,
        "page": page,
        "page_size": page_size,
        "deliveries": rows,
    })))
}

async fn one(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryJson>, ApiError> {
    let row = st
        .catalog
        .get_delivery(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id}")))?;
    Ok(Json(row.into()))
}

async fn retry(
    State(st): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryJson>, ApiError> {
    let row = match st.catalog.retry_delivery_now(id, st.clock.now_ms()).await {
        Ok(row) => row,
        Err(CatalogError::NotFound { .. }) => {
            return Err(ApiError::NotFound(format!("delivery {id}")));
        }
        Err(e) if e.is_conflict() => {
            return Err(ApiError::Conflict(format!(
                "delivery {id} is already delivered"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    st.notifier.wake();
    tracing::info!(id, event_id = row.event_id, "callback retry requested");
    Ok(Json(row.into()))
}

/// A stored callback body as the API shows it: `stream_param` without its `txSecret`.
fn shown_body(body: String) -> String {
    if !body.to_ascii_lowercase().contains("txsecret") {
        return body;
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return body;
    };
    if let Some(p) = v.get_mut("stream_param")
        && let Some(s) = p.as_str()
    {
        *p = crate::model::without_push_secret(s).into();
    }
    v.to_string()
}
