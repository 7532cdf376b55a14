//! `GET /v1/streams`: the streams being published now.

use crate::hub::LiveStream;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list_streams))
}

/// The answer of `GET /v1/streams`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StreamList {
    /// By app, then stream name.
    pub streams: Vec<LiveStream>,
}

/// List live streams
///
/// The streams being published to this node now.
#[utoipa::path(
    get,
    path = "/v1/streams",
    tag = "streams",
    responses((status = 200, description = "The live streams", body = StreamList))
)]
async fn list_streams(State(st): State<Arc<AppState>>) -> Json<StreamList> {
    Json(StreamList {
        streams: st.hub.list(),
    })
}
