//! Callback deliveries (the outbox) over REST, for the console:
//!
//! - `GET /v1/deliveries?status=&stream=&page=&page_size=`  newest first
//! - `GET /v1/deliveries/{id}`
//! - `POST /v1/deliveries/{id}/retry`  due now (a dead one gets one more attempt); 409 if delivered
//!
//! Signing keys never leave the server: a delivery shows its URL, unsigned body and state.

use super::ApiError;
use super::error::ErrorBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use livetape_catalog::{CatalogError, DeliveryQuery, OutboxEvent, OutboxState};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One outbox row as the REST API shows it.
#[derive(Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = String, pattern = "^(pending|delivered|dead)$")]
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at_ms: i64,
    /// Only while pending.
    #[schema(required)]
    pub next_attempt_at_ms: Option<i64>,
    #[schema(required)]
    pub delivered_at_ms: Option<i64>,
    #[schema(required)]
    pub last_error: Option<String>,
}

/// A page of `GET /v1/deliveries`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    /// Deliveries that match, on every page.
    pub total: u64,
    pub page: u64,
    pub page_size: u32,
    pub deliveries: Vec<DeliveryJson>,
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

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(retry))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// `pending`, `delivered` or `dead`; empty or absent for all.
    status: Option<String>,
    /// Only this stream's (its stream ID).
    stream: Option<String>,
    /// From 1; default 1.
    page: Option<u64>,
    /// 1..=100; default 20.
    page_size: Option<u32>,
}

/// A delivery's id from the URL: anything but an integer is a 400 with the usual error body.
fn delivery_id(p: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    p.map(|Path(id)| id)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// List callback deliveries
///
/// The outbox, newest first.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "deliveries",
    operation_id = "list_deliveries",
    params(ListParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "A query parameter is malformed or out of range", body = ErrorBody),
    )
)]
async fn list(
    State(st): State<Arc<AppState>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
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
        ..Default::default()
    };
    let (total, rows) = st.catalog.list_deliveries(&q).await?;
    Ok(Json(DeliveryPage {
        total,
        page,
        page_size,
        deliveries: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Get one delivery
#[utoipa::path(
    get,
    path = "/v1/deliveries/{id}",
    tag = "deliveries",
    operation_id = "get_delivery",
    params(("id" = i64, Path, description = "The delivery's `id`")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryJson),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    )
)]
async fn one(
    State(st): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DeliveryJson>, ApiError> {
    let id = delivery_id(id)?;
    let row = st
        .catalog
        .get_delivery(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id}")))?;
    Ok(Json(row.into()))
}

/// Retry a delivery now
///
/// Makes a pending delivery due now; a dead one gets one more attempt.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    tag = "deliveries",
    operation_id = "retry_delivery",
    params(("id" = i64, Path, description = "The delivery's `id`")),
    responses(
        (status = 200, description = "The delivery, due now", body = DeliveryJson),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "Already delivered", body = ErrorBody),
    )
)]
async fn retry(
    State(st): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DeliveryJson>, ApiError> {
    let id = delivery_id(id)?;
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
