//! `GET /vod/{file_id}/{name}`: a recording, from the local disk (tower-http's `ServeFile`:
//! Range, ETag, Last-Modified) or, once uploaded and not kept locally, from the bucket (the
//! same semantics, streamed) or as a presigned redirect.

use super::ApiError;
use crate::model::ByteRange;
use crate::state::AppState;
use crate::store::bucket::Objects;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/vod/{file_id}/{name}", get(vod))
}

/// Bytes read from a file per body chunk. Each read is a hop to the blocking pool (and a copy
/// out of tokio's file buffer), so tower-http's 64 KiB default cost 16 hops per MiB served;
/// 256 KiB is a quarter of that while a slow viewer still holds at most ~2 chunks.
const PLAYBACK_CHUNK: usize = 256 * 1024;

async fn vod(
    State(st): State<Arc<AppState>>,
    Path((file_id, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("/vod/{file_id}/{name}"));
    let rec = st
        .catalog
        .get_recording(&file_id)
        .await?
        .ok_or_else(not_found)?;
    let Some(format) = crate::model::Format::from_name(&rec.format) else {
        return Err(not_found());
    };
    let dir_or_file = st.storage.resolve(&rec.path).ok_or_else(not_found)?;
    let (path, mime) = if format == crate::model::Format::Hls {
        // An HLS recording is a directory: its playlist and segments are served beside it.
        if name == format.url_name() {
            (dir_or_file.join(&name), format.mime())
        } else if livetape_hls::parse_segment_uri(&name).is_some() {
            (dir_or_file.join(&name), "video/mp2t")
        } else {
            return Err(not_found());
        }
    } else if name == format.url_name() {
        (dir_or_file, format.mime())
    } else {
        return Err(not_found());
    };
    let method = req.method().clone();
    // Uploaded and not kept locally: served from the bucket (`objects`).
    if let Some(objects) = &st.objects
        && !tokio::fs::try_exists(&path).await.unwrap_or(false)
        && let Some(key) = st.catalog.object_key(&file_id).await?
    {
        let key = if format == crate::model::Format::Hls {
            format!("{key}/{name}")
        } else {
            key
        };
        let mut resp = from_bucket(objects, &key, mime, &method, req.headers()).await?;
        super::metrics::count_playback(&st.metrics, &method, &resp);
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        );
        return Ok(resp);
    }
    // ServeFile implements Range (206/416), ETag/If-None-Match and Last-Modified.
    let resp = ServeFile::new_with_mime(&path, &mime.parse().expect("static mime"))
        .with_buf_chunk_size(PLAYBACK_CHUNK)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Err(not_found());
    }
    let mut resp = resp.map(axum::body::Body::new);
    super::metrics::count_playback(&st.metrics, &method, &resp);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(resp)
}

/// The Range a request asks for (`None`: the whole object).
fn wanted(headers: &HeaderMap) -> Option<ByteRange> {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(ByteRange::parse)
}

/// `GET`/`HEAD` of an object for `/vod`: a presigned redirect, or the object streamed with
/// Range (206/416), ETag/If-None-Match (304) and Last-Modified.
/// A recording's object in the bucket: a presigned redirect, or the bytes proxied with
/// Range (206/416), HEAD and ETag/If-None-Match (304).
async fn from_bucket(
    objects: &Objects,
    key: &str,
    mime: &'static str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let built =
        |r: Result<Response, axum::http::Error>| r.map_err(|e| ApiError::Internal(e.to_string()));
    if let Some(valid) = objects.presign
        && method == Method::GET
    {
        let url = objects.signed_url(key, valid).await?;
        return built(
            Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, url.as_str())
                .body(Body::empty()),
        );
    }
    let meta = objects.head(key).await?;
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::LAST_MODIFIED,
            meta.last_modified
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        );
    if let Some(etag) = &meta.e_tag {
        let quoted = if etag.starts_with('"') || etag.starts_with("W/") {
            etag.clone()
        } else {
            format!("\"{etag}\"")
        };
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
        resp = resp.header(header::ETAG, &quoted);
        if matches {
            return built(resp.status(StatusCode::NOT_MODIFIED).body(Body::empty()));
        }
    }
    let size = meta.size;
    let (status, range) = match wanted(headers) {
        None => (StatusCode::OK, 0..size),
        Some(r) => match r.resolve(size) {
            Some(r) => (StatusCode::PARTIAL_CONTENT, r),
            None => {
                return built(
                    resp.status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                        .body(Body::empty()),
                );
            }
        },
    };
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", range.start, range.end - 1),
        );
    }
    resp = resp
        .status(status)
        .header(header::CONTENT_LENGTH, range.end - range.start);
    let body = if method == Method::HEAD || range.is_empty() {
        Body::empty()
    } else {
        // The same object the head described (If-Match), or a clean error, never mixed bytes.
        Body::from_stream(objects.get_range(key, range, meta.e_tag.clone()).await?)
    };
    built(resp.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, v.parse().unwrap());
            wanted(&m).map(|r| r.resolve(1000))
        };
        assert_eq!(h("bytes=0-99"), Some(Some(0..100)));
        assert_eq!(h("bytes=900-"), Some(Some(900..1000)));
        assert_eq!(h("bytes=-100"), Some(Some(900..1000)));
        assert_eq!(h("bytes=990-5000"), Some(Some(990..1000)));
        assert_eq!(h("bytes=1000-"), Some(None));
        assert_eq!(h("bytes=-0"), Some(None));
        assert_eq!(h("bytes=5-1"), None);
        assert_eq!(h("bytes=0-1,5-6"), None);
        assert_eq!(h("items=0-1"), None);
    }
}
