//! `GET /healthz`.

use super::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(st): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let depth = st.catalog.outbox_depth().await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "live_streams": st.hub.list().len(),
        "outbox_pending": depth,
    })))
}
