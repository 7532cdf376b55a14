//! S3-compatible object storage (`[storage] kind = "s3"`): the bucket client, object keys,
//! playback of objects (Range/ETag/HEAD, or a redirect to a presigned URL) and deletes.
//!
//! Recording still happens on local disk; `upload` moves finished files into the bucket.
//! An object key is `{prefix}/{path}`, `path` being the recording's catalogue path
//! (`records/{app}/{stream}/{day}/{name}`); an HLS recording is a key prefix holding
//! `playlist.m3u8` and its `seg-N.ts`.

use crate::api::ApiError;
use crate::config::{ConfigError, StorageConfig, invalid};
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use std::time::Duration;

/// Retries of one object-store request inside the client.
const STORE_RETRIES: usize = 3;
/// No retry of one request starts after this long.
const STORE_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks `[storage]` for `kind = "s3"`; errors name the key.
pub(crate) fn validate(c: &StorageConfig) -> Result<(), ConfigError> {
    if c.bucket.is_empty() {
        return Err(invalid("storage.bucket", "must be set when kind = \"s3\""));
    }
    let http = c.endpoint.starts_with("http://") || c.endpoint.starts_with("https://");
    if !(c.endpoint.is_empty() || http) {
        return Err(invalid(
            "storage.endpoint",
            format!("`{}` is not an http(s) URL", c.endpoint),
        ));
    }
    if c.region.is_empty() {
        return Err(invalid("storage.region", "must not be empty"));
    }
    match (&c.access_key_id, &c.secret_access_key) {
        (Some(_), None) => {
            return Err(invalid(
                "storage.secret_access_key",
                "must be set with access_key_id",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "storage.access_key_id",
                "must be set with secret_access_key",
            ));
        }
        _ => {}
    }
    if let Some(f) = &c.credentials_file {
        read_credentials_file(f).map_err(|e| invalid("storage.credentials_file", e))?;
    }
    if !c.prefix.is_empty()
        && c.prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == ".." || p.chars().any(char::is_control))
    {
        return Err(invalid(
            "storage.prefix",
            "must be `a/b` style: no leading, trailing or double `/`, no `.`/`..`",
        ));
    }
    if c.presign_s > crate::config::MAX_PRESIGN_S {
        return Err(invalid(
            "storage.presign_s",
            format!(
                "{} is over {} (7 days)",
                c.presign_s,
                crate::config::MAX_PRESIGN_S
            ),
        ));
    }
    Ok(())
}

/// `(access_key_id, secret_access_key)` from an AWS-style credentials file: the `[default]`
/// profile (or keys before any section).
fn read_credentials_file(path: &std::path::Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut id, mut secret) = (None, None);
    let mut in_default = true;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_default = section.trim() == "default";
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !in_default {
            continue;
        }
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" | "access_key_id" => id = Some(v),
            "aws_secret_access_key" | "secret_access_key" => secret = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => Ok((i, s)),
        _ => Err(format!(
            "{}: no aws_access_key_id and aws_secret_access_key under [default]",
            path.display()
        )),
    }
}

/// Errors of the object store, with the key involved.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object store setup: {0}")]
    Setup(String),
    #[error("object {key}: {source}")]
    Store {
        key: String,
        source: object_store::Error,
    },
    #[error("object key `{key}`: {reason}")]
    BadKey { key: String, reason: String },
    #[error("local file {path}: {source}")]
    Local {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The bucket and how recordings map into it.
#[derive(Debug)]
pub struct Objects {
    store: Arc<AmazonS3>,
    prefix: String,
    /// Presigned-URL validity for `/vod` redirects; `None`: proxy reads.
    pub presign: Option<Duration>,
    pub keep_local: bool,
}

impl Objects {
    pub fn new(c: &StorageConfig) -> Result<Self, ObjectError> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_virtual_hosted_style_request(!c.path_style)
            // A few quick retries per request; the uploader's own backoff (forever) does the
            // rest, so a dead endpoint fails an attempt in seconds, not minutes.
            .with_retry(object_store::RetryConfig {
                max_retries: STORE_RETRIES,
                retry_timeout: STORE_RETRY_TIMEOUT,
                ..Default::default()
            });
        if !c.endpoint.is_empty() {
            b = b
                .with_endpoint(c.endpoint.trim_end_matches('/'))
                .with_allow_http(c.endpoint.starts_with("http://"));
        }
        let creds = match (&c.access_key_id, &c.secret_access_key, &c.credentials_file) {
            (Some(id), Some(secret), _) => Some((id.clone(), secret.clone())),
            (_, _, Some(f)) => Some(read_credentials_file(f).map_err(ObjectError::Setup)?),
            // from_env already read AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
            _ => None,
        };
        if let Some((id, secret)) = creds {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let store = b.build().map_err(|e| ObjectError::Setup(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: c.prefix.clone(),
            presign: (c.presign_s > 0).then(|| Duration::from_secs(c.presign_s)),
            keep_local: c.keep_local,
        })
    }

    pub fn store(&self) -> &Arc<AmazonS3> {
        &self.store
    }

    /// The object key of a recording at catalogue path `rel`.
    pub fn key_for(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// Uploads one local file to `key` (multipart above `upload::MULTIPART_THRESHOLD`);
    /// returns its size.
    pub async fn put_file(&self, path: &std::path::Path, key: &str) -> Result<u64, ObjectError> {
        crate::upload::put_file(self.store.as_ref(), path, key).await
    }

    /// Removes a recording's object(s): the key itself and, for HLS, everything under it.
    pub async fn delete_all(&self, key: &str) -> Result<(), ObjectError> {
        let path = parse(key)?;
        let err = |source| ObjectError::Store {
            key: key.to_owned(),
            source,
        };
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(err(e)),
        }
        let mut listing = self.store.list(Some(&path));
        let mut inside = Vec::new();
        while let Some(meta) = listing.next().await {
            inside.push(meta.map_err(err)?.location);
        }
        for p in inside {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }
}

pub(crate) fn parse(key: &str) -> Result<ObjectPath, ObjectError> {
    ObjectPath::parse(key).map_err(|e| ObjectError::BadKey {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// One `bytes=` range of a request, unresolved (a suffix needs the object's size).
enum Wanted {
    All,
    Range(GetRange),
}

/// Only a single range is served partially; several ranges (rare for players) get the whole
/// object, as RFC 9110 allows. A malformed header is ignored likewise.
fn wanted(headers: &HeaderMap) -> Wanted {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Wanted::All;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::All;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => Wanted::Range(GetRange::Bounded(a..b.saturating_add(1))),
        (Some(a), None) if b.is_empty() => Wanted::Range(GetRange::Offset(a)),
        (None, Some(n)) if a.is_empty() => Wanted::Range(GetRange::Suffix(n)),
        _ => Wanted::All,
    }
}

/// Resolves a range against the object size: `None` when unsatisfiable (416).
fn resolve(r: &GetRange, size: u64) -> Option<std::ops::Range<u64>> {
    let (start, end) = match r {
        GetRange::Bounded(r) => (r.start, r.end.min(size)),
        GetRange::Offset(o) => (*o, size),
        GetRange::Suffix(n) => (size.saturating_sub(*n), size),
    };
    (start < end).then_some(start..end)
}

/// `GET`/`HEAD` of an object for `/vod`: a presigned redirect, or the object streamed with
/// Range (206/416), ETag/If-None-Match (304) and Last-Modified.
pub(crate) async fn serve(
    objects: &Objects,
    key: &str,
    mime: &'static str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = parse(key).map_err(|e| ApiError::Internal(e.to_string()))?;
    let store_err = |e: object_store::Error| match e {
        object_store::Error::NotFound { .. } => ApiError::NotFound(format!("object {key}")),
        e => ApiError::Internal(format!("object {key}: {e}")),
    };
    if let Some(valid) = objects.presign
        && method == Method::GET
    {
        let url = objects
            .store
            .signed_url(Method::GET, &path, valid)
            .await
            .map_err(store_err)?;
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url.as_str())
            .body(Body::empty())
            .map_err(|e| ApiError::Internal(e.to_string()));
    }
    let meta = objects.store.head(&path).await.map_err(store_err)?;
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
            return resp
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
    }
    let size = meta.size;
    let (status, range) = match wanted(headers) {
        Wanted::All => (StatusCode::OK, 0..size),
        Wanted::Range(r) => match resolve(&r, size) {
            Some(r) => (StatusCode::PARTIAL_CONTENT, r),
            None => {
                return resp
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .map_err(|e| ApiError::Internal(e.to_string()));
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
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            // The same object the head described, or a clean error instead of mixed bytes.
            if_match: meta.e_tag.clone(),
            ..Default::default()
        };
        let got = objects
            .store
            .get_opts(&path, opts)
            .await
            .map_err(store_err)?;
        // Streamed as the store delivers it: never the whole object in memory.
        Body::from_stream(got.into_stream())
    };
    resp.body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn err(toml: &str) -> String {
        Config::from_toml_str(toml).unwrap_err().to_string()
    }

    #[test]
    fn bad_s3_settings_name_the_key() {
        let s3 = "[storage]\nkind = \"s3\"\n";
        assert!(err(s3).contains("storage.bucket"));
        let b = format!("{s3}bucket = \"b\"\n");
        assert!(err(&format!("{b}endpoint = \"ftp://x\"")).contains("storage.endpoint"));
        assert!(err(&format!("{b}access_key_id = \"k\"")).contains("storage.secret_access_key"));
        assert!(err(&format!("{b}secret_access_key = \"k\"")).contains("storage.access_key_id"));
        assert!(err(&format!("{b}prefix = \"/a\"")).contains("storage.prefix"));
        assert!(err(&format!("{b}prefix = \"a//b\"")).contains("storage.prefix"));
        assert!(err(&format!("{b}presign_s = 604801")).contains("storage.presign_s"));
        assert!(
            err(&format!("{b}credentials_file = \"/nonexistent/creds\""))
                .contains("storage.credentials_file")
        );
        assert!(err("[storage]\nkind = \"ftp\"").contains("kind"));
        let ok = Config::from_toml_str(&format!(
            "{b}endpoint = \"http://127.0.0.1:9000\"\nprefix = \"a/b\"\npresign_s = 60"
        ))
        .unwrap();
        assert_eq!(ok.storage.kind, crate::config::StorageKind::S3);
        // Local storage ignores the S3 keys.
        Config::from_toml_str("[storage]\nbucket = \"\"").unwrap();
    }

    #[test]
    fn credentials_file_default_profile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials");
        std::fs::write(
            &p,
            "[other]\naws_access_key_id = no\n[default]\naws_access_key_id = AK\n\
             aws_secret_access_key = SK\n",
        )
        .unwrap();
        assert_eq!(
            read_credentials_file(&p).unwrap(),
            ("AK".into(), "SK".into())
        );
        std::fs::write(&p, "[other]\naws_access_key_id = AK\n").unwrap();
        assert!(read_credentials_file(&p).is_err());
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, v.parse().unwrap());
            match wanted(&m) {
                Wanted::All => None,
                Wanted::Range(r) => Some(resolve(&r, 1000)),
            }
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
