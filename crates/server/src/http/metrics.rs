//! `GET /metrics` (the registry is `crate::metrics`) and the HTTP latency middleware.

use super::ApiError;
use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use crate::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(scrape))
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware: request latency (to the response head) by route template.
pub(super) async fn track_http(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let start = std::time::Instant::now();
    // Requests matching no route are pooled: raw paths would be unbounded label values.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let resp = next.run(req).await;
    st.metrics.observe_http(
        &route,
        method_label(&method),
        status_class(resp.status()),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Counts a playback response's body (its `Content-Length`: the range served) as bytes out.
pub(super) fn count_playback(m: &Metrics, method: &Method, resp: &Response) {
    if method == Method::HEAD || !resp.status().is_success() {
        return;
    }
    if let Some(n) = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        m.add_bytes_out(n);
    }
}

/// `GET /metrics`.
async fn scrape(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (pending, oldest_ms) = st.catalog.outbox_pending_stats().await?;
    let age_s = oldest_ms.map_or(0.0, |t| (st.clock.now_ms() - t).max(0) as f64 / 1000.0);
    st.metrics.set_snapshot(st.hub.live_count(), pending, age_s);
    st.metrics.set_jobs();
    let dead = st.catalog.dead_receivers().await?;
    st.metrics
        .set_outbox_dead(dead.iter().map(|r| r.dead).sum());
    if st.objects.is_some() {
        st.metrics
            .set_uploads_pending(st.catalog.pending_uploads_count().await?);
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let ct = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        PROMETHEUS_CONTENT_TYPE
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
        st.metrics.encode(openmetrics),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_and_methods() {
        assert_eq!(status_class(StatusCode::PARTIAL_CONTENT), "2xx");
        assert_eq!(status_class(StatusCode::NOT_MODIFIED), "3xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::INTERNAL_SERVER_ERROR), "5xx");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn playback_counts_content_length_of_successful_gets_only() {
        let m = Metrics::new();
        let resp = |status: StatusCode, len: &str| {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = status;
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_str(len).unwrap());
            r
        };
        count_playback(&m, &Method::GET, &resp(StatusCode::PARTIAL_CONTENT, "100"));
        count_playback(&m, &Method::GET, &resp(StatusCode::OK, "20"));
        count_playback(&m, &Method::HEAD, &resp(StatusCode::OK, "1000"));
        count_playback(&m, &Method::GET, &resp(StatusCode::NOT_FOUND, "1000"));
        assert!(
            m.encode(false)
                .contains("livetape_playback_sent_bytes_total 120\n")
        );
    }
}
