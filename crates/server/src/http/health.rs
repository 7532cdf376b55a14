//! `GET /healthz` (the process serves and records) and `GET /readyz` (and its catalogue
//! answers). Pushes keep recording to disk while the catalogue is away, so a load balancer
//! that pulled a node on a catalogue outage would cut live pushes that are fine: point
//! liveness checks and ingest load balancers at `/healthz`, rollouts and "can this node take
//! new work that needs the catalogue" at `/readyz`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 while the server runs, whatever the catalogue does; says what it knows of it.
async fn healthz(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let outbox = st.catalog.outbox_depth().await;
    Json(serde_json::json!({
        "status": "ok",
        "live_streams": st.hub.live_count(),
        "catalogue": if outbox.is_ok() { "ok" } else { "unreachable" },
        "outbox_pending": outbox.ok(),
    }))
}

/// 200 when the catalogue answers, 503 (with the reason) when it does not.
async fn readyz(State(st): State<Arc<AppState>>) -> (StatusCode, Json<serde_json::Value>) {
    match st.catalog.outbox_depth().await {
        Ok(depth) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready", "outbox_pending": depth })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: catalogue unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "catalogue unreachable",
                    "live_streams": st.hub.live_count(),
                })),
            )
        }
    }
}
