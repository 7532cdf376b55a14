//! The web console: `GET /console` and its assets under `/console/...`, embedded in the
//! binary (no CDN, nothing read from disk at run time).
//!
//! The HTML shell and scripts are public; every data call the console makes goes to `/v1`,
//! which needs the API key when one is set (the page asks for it once per browser tab); its
//! **API** page renders `/v1/openapi.json`, which needs none.
//! Vendored players (hls.js, mpegts.js; see `console/VENDORED.md`) sit under a versioned path
//! and are cached as immutable; the console's own files are revalidated by ETag.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
    /// Versioned by path: never changes, cache forever.
    immutable: bool,
    etag: &'static str,
}

/// FNV-1a, at compile time: a stable ETag per embedded file.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

const fn hex16(mut v: u64) -> [u8; 18] {
    // `"` + 16 hex digits + `"`
    let mut out = [b'"'; 18];
    let mut i = 16;
    while i > 0 {
        let d = (v & 0xf) as u8;
        out[i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        v >>= 4;
        i -= 1;
    }
    out
}

macro_rules! asset {
    ($path:literal, $mime:expr, $immutable:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!("../../console/", $path));
        const TAG: [u8; 18] = hex16(fnv1a(BODY));
        Asset {
            path: $path,
            mime: $mime,
            body: BODY,
            immutable: $immutable,
            etag: match std::str::from_utf8(&TAG) {
                Ok(s) => s,
                Err(_) => panic!("ASCII etag"),
            },
        }
    }};
}

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The vendored player versions (also in the paths below and in `console/VENDORED.md`).
#[cfg(test)]
const HLS_JS_VERSION: &str = "1.7.4";
#[cfg(test)]
const MPEGTS_JS_VERSION: &str = "1.8.2";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8", false),
    asset!("console.css", "text/css; charset=utf-8", false),
    asset!("console.js", JS, false),
    asset!("vendor/hls.js-1.7.4/hls.light.min.js", JS, true),
    asset!("vendor/hls.js-1.7.4/LICENSE", TEXT, true),
    asset!("vendor/mpegts.js-1.8.2/mpegts.js", JS, true),
    asset!("vendor/mpegts.js-1.8.2/LICENSE", TEXT, true),
    asset!("vendor/mpegts.js-1.8.2/mpegts.js.LICENSE.txt", TEXT, true),
    asset!("VENDORED.md", TEXT, false),
];

/// Scripts and media only from this server (blob: for the players' MediaSource and workers).
const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
                   worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let cache = if a.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_static(a.etag));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if a.mime.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    (StatusCode::OK, h, a.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_with_its_type_and_cache_policy() {
        let none = HeaderMap::new();
        for a in ASSETS {
            let r = serve(a.path, &none);
            assert_eq!(r.status(), StatusCode::OK, "{}", a.path);
            assert_eq!(r.headers()[header::CONTENT_TYPE], a.mime);
            let cc = r.headers()[header::CACHE_CONTROL].to_str().unwrap();
            assert_eq!(cc.contains("immutable"), a.path.starts_with("vendor/"));
            assert!(!a.body.is_empty());
        }
        assert_eq!(serve("nope.js", &none).status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve("../Cargo.toml", &none).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn vendored_paths_carry_the_pinned_versions() {
        for (name, v) in [("hls.js", HLS_JS_VERSION), ("mpegts.js", MPEGTS_JS_VERSION)] {
            let dir = format!("vendor/{name}-{v}/");
            assert!(
                ASSETS
                    .iter()
                    .any(|a| a.path.starts_with(&dir) && a.mime == JS)
            );
            assert!(
                ASSETS
                    .iter()
                    .any(|a| a.path == format!("{dir}LICENSE") && a.mime == TEXT)
            );
        }
    }

    #[test]
    fn etag_revalidation_answers_304() {
        let tag = serve("console.js", &HeaderMap::new()).headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(serve("console.js", &h).status(), StatusCode::NOT_MODIFIED);
        assert_ne!(
            serve("index.html", &HeaderMap::new()).headers()[header::ETAG],
            serve("console.js", &HeaderMap::new()).headers()[header::ETAG],
        );
    }
}
