//! Live viewing over HTTP (the feed itself is `hub::live`):
//!
//! - `GET /live/{app}/{stream}.flv`        HTTP-FLV (headers + GOP cache, then live tags)
//! - `GET /live/{app}/{stream}.m3u8`       live HLS playlist (sliding window)
//! - `GET /live/{app}/{stream}/{n}.ts`     its segments
//!
//! With `[live] play_key`, every request needs Tencent's play signature (§4.2).

use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use livetape_catalog::AuthKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long a first playlist request waits for the first segment before a 503.
pub const HLS_FIRST_WAIT: Duration = Duration::from_secs(6);

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/live/{app}/{file}", get(play))
        .route("/live/{app}/{stream}/{segment}", get(segment))
}

fn status(code: StatusCode, msg: &'static str) -> Response {
    (code, msg).into_response()
}

/// Tencent play auth (§4.2): `txSecret = MD5(key + stream + txTime)`, checked in constant time,
/// with the play domain's key set: the one set over API 3.0 for the request's `Host`, else the
/// file's `[live] play_key`.
fn authorized(st: &AppState, req: &Request, stream: &str) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(crate::push::host_of);
    let domain = match host {
        Some(h) if !h.is_empty() => h,
        _ => st.cfg.server.domain.clone(),
    };
    let Some(auth) = st.keys.get(AuthKind::Play, &domain).auth() else {
        return true;
    };
    let query = req.uri().query().unwrap_or("");
    let now = st.clock.now_ms() / 1000;
    livetape_tencent::sign::verify_push(&auth, stream, query, now).is_ok()
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn no_cache(resp: &mut Response, mime: &'static str) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

async fn play(
    State(st): State<Arc<AppState>>,
    Path((app, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    if !st.cfg.live.enabled {
        return status(StatusCode::NOT_FOUND, "live viewing is disabled");
    }
    let (stream, flv) = if let Some(s) = file.strip_suffix(".flv") {
        (s, true)
    } else if let Some(s) = file.strip_suffix(".m3u8") {
        (s, false)
    } else {
        return status(StatusCode::NOT_FOUND, "use .flv or .m3u8");
    };
    let query = req.uri().query().unwrap_or("");
    if !authorized(&st, &req, stream) {
        return status(StatusCode::FORBIDDEN, "play auth failed");
    }
    let Some(live) = st.hub.live(&app, stream) else {
        return status(StatusCode::NOT_FOUND, "stream is not live");
    };
    if flv {
        let bytes = live.flv_stream(st.metrics.clone());
        let body = Body::from_stream(bytes.map(Ok::<_, std::convert::Infallible>));
        let mut resp = Response::new(body);
        no_cache(&mut resp, "video/x-flv");
        return resp;
    }
    // Segment URIs carry the playlist's query, so signed URLs reach the segments too.
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let dir = encode_component(stream);
    let playlist = live
        .hls_playlist(client_ip(&req), HLS_FIRST_WAIT, |i| {
            format!("{dir}/{i}.ts{q}")
        })
        .await;
    if let Some(p) = playlist {
        let mut resp = p.into_response();
        no_cache(&mut resp, "application/vnd.apple.mpegurl");
        return resp;
    }
    let mut resp = status(StatusCode::SERVICE_UNAVAILABLE, "first segment not ready");
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    resp
}

async fn segment(
    State(st): State<Arc<AppState>>,
    Path((app, stream, segment)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let not_found = || status(StatusCode::NOT_FOUND, "no such segment");
    if !st.cfg.live.enabled {
        return not_found();
    }
    let Some(index) = segment
        .strip_suffix(".ts")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return not_found();
    };
    if !authorized(&st, &req, &stream) {
        return status(StatusCode::FORBIDDEN, "play auth failed");
    }
    let Some(live) = st.hub.live(&app, &stream) else {
        return not_found();
    };
    let Some(data) = live.hls_segment(client_ip(&req), index) else {
        return not_found();
    };
    let mut resp = data.into_response();
    no_cache(&mut resp, "video/mp2t");
    resp
}

/// Percent-encodes a path component (stream names come from publishers).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(super::encode_component("a b/ü_1.x"), "a%20b%2F%C3%BC_1.x");
    }
}
