//! Every HTTP face, and only here: axum types live in this module alone. Handlers read the
//! catalogue, the hub and storage; a delete goes through `archive`. One file per resource:
//!
//! - `GET /healthz` ([`health`])
//! - `GET|POST /common_access?interface=Live_Tape_GetFilelist&…`, Tencent's legacy query
//!   ([`common_access`])
//! - `GET /v1/recordings`, `GET|DELETE /v1/recordings/{file_id}` ([`recordings`]),
//!   `GET /v1/streams` ([`streams`]), `GET /v1/jobs`: long jobs running now ([`jobs`])
//! - record/callback templates and rules under `/v1` ([`templates`]), `/v1/deliveries…`
//!   ([`deliveries`])
//! - `GET /vod/{file_id}/{name}`: playback with Range/ETag/CORS, from disk or the bucket
//!   ([`vod`])
//! - `GET /live/{app}/{stream}.{flv|m3u8}`: live viewing ([`live`])
//! - `GET /metrics` ([`metrics`]), `GET /console` ([`console`]; `GET /` redirects there)
//! - `POST /`: Tencent Cloud API 3.0 (`TC3-HMAC-SHA256`-signed, `X-TC-Action`), the live and
//!   vod actions of the recording feature ([`tencent_api`])
//! - `GET /v1/openapi.json`: the OpenAPI document of `/v1`, generated from the handlers'
//!   annotations ([`openapi`]); each `/v1` file registers its routes through
//!   `utoipa_axum::routes!`, so a route and its description are one item
//!
//! Errors: [`ApiError`], mapped to a status in one place ([`error`]).

mod common_access;
mod console;
mod deliveries;
mod error;
mod health;
mod jobs;
mod live;
mod metrics;
mod openapi;
mod recordings;
pub(crate) mod serve;
mod streams;
mod templates;
mod tencent_api;
mod vod;

pub use error::ApiError;
pub(crate) use openapi::document_json as openapi_json;

use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};
use utoipa_axum::router::OpenApiRouter;

/// Largest page the REST API returns.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Highest page number: 10^9 pages of 100 is far past any catalogue, and the offset it makes
/// always fits the databases' 64-bit integers.
pub const MAX_PAGE: u64 = 1_000_000_000;

/// The `/v1` routes behind [`bearer_auth`], each with its OpenAPI description.
fn guarded_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(recordings::routes())
        .merge(streams::routes())
        .merge(jobs::routes())
        .merge(templates::routes())
        .merge(deliveries::routes())
}

/// The OpenAPI document of every `/v1` route, as `GET /v1/openapi.json` serves it.
pub(crate) fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(guarded_routes().merge(openapi::routes()).into_openapi())
}

pub fn router(state: Arc<AppState>) -> Router {
    let (guarded, _) = guarded_routes().split_for_parts();
    let (public, _) = openapi::routes().split_for_parts();
    let rest = guarded
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer_auth))
        .merge(public);
    // The API answers browsers of the configured origins only (none by default): a page on
    // another site must not read recordings, stream parameters or templates through a
    // visitor's browser on the LAN.
    let rest = if state.cfg.api.cors_origins.is_empty() {
        rest
    } else {
        let origins: Vec<HeaderValue> = state
            .cfg
            .api
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        rest.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([
                    Method::GET,
                    Method::HEAD,
                    Method::POST,
                    Method::PUT,
                    Method::DELETE,
                    Method::OPTIONS,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        )
    };
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
    let scrape = metrics::routes();
    let scrape = if state.cfg.metrics.require_key {
        scrape.route_layer(middleware::from_fn_with_state(state.clone(), bearer_auth))
    } else {
        scrape
    };
    let playback = Router::new()
        .merge(common_access::routes())
        .merge(vod::routes())
        .merge(live::routes())
        .layer(cors);
    Router::new()
        // `POST /` (and a signed `GET /`) is Tencent Cloud API 3.0; a plain `GET /` the console.
        .merge(tencent_api::routes())
        .merge(health::routes())
        .merge(console::routes())
        .merge(playback)
        .merge(rest)
        .merge(scrape)
        // Outermost: latency as the client sees it, for every route (by its template).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_http,
        ))
        .with_state(state)
}

/// `Authorization: Bearer <[api] key>` on the routes it guards (none when no key is set).
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
    } else if !req.method().is_safe() {
        // No key: anyone may read, but only this machine may change or delete anything.
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if !peer.is_some_and(|ip| ip.is_loopback()) {
            return Err(ApiError::Forbidden(
                "with no [api] key set, only requests from this machine may change anything; \
                 set [api] key and send it as a bearer token"
                    .into(),
            ));
        }
    }
    Ok(next.run(req).await)
}

/// `page` (from 1, default 1) and `page_size` (1..=[`MAX_PAGE_SIZE`], default 20) of a
/// paged `/v1` listing.
pub(crate) fn paging(page: Option<u64>, page_size: Option<u32>) -> Result<(u64, u32), ApiError> {
    let page = page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(ApiError::BadRequest(format!("page must be 1..={MAX_PAGE}")));
    }
    let page_size = page_size.unwrap_or(20);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::BadRequest(format!(
            "page_size must be 1..={MAX_PAGE_SIZE}"
        )));
    }
    Ok((page, page_size))
}
