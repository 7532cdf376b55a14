//! The S3-compatible bucket (`[storage] kind = "s3"`): the object store client, one file to
//! one object (a PUT, or multipart above [`MULTIPART_THRESHOLD`]), deletes of a recording's
//! objects, and the reads playback needs (`head`, ranged `get`, presigned URLs). No HTTP types
//! here: `http::vod` turns these into responses.

use crate::config::StorageConfig;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Retries of one store request (the store's own backoff), and their total time limit.
const STORE_RETRIES: usize = 3;
const STORE_RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// Files up to this size go in one PUT (read into memory whole); larger ones multipart.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Multipart part size (S3's minimum is 5 MiB, all parts but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one file in flight at once (memory: about `PART_SIZE` × (this + 1) per file).
pub const PARTS_IN_FLIGHT: usize = 2;

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
            (_, _, Some(f)) => {
                Some(crate::config::read_credentials_file(f).map_err(ObjectError::Setup)?)
            }
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
    /// One file to one object: a PUT, or a multipart upload for large files.
    pub async fn put_file(&self, path: &Path, key: &str) -> Result<u64, ObjectError> {
        put_file(self.store.as_ref(), path, key).await
    }

    /// The object's size, ETag and modification time.
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectError> {
        let path = parse(key)?;
        self.store
            .head(&path)
            .await
            .map_err(|source| ObjectError::Store {
                key: key.to_owned(),
                source,
            })
    }

    /// The bytes `range` of the object, streamed as the store delivers them (never the whole
    /// object in memory); `if_match` makes it the same object a `head` described.
    pub async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
        if_match: Option<String>,
    ) -> Result<impl futures_util::Stream<Item = object_store::Result<Bytes>> + use<>, ObjectError>
    {
        let path = parse(key)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match,
            ..Default::default()
        };
        let got = self
            .store
            .get_opts(&path, opts)
            .await
            .map_err(|source| ObjectError::Store {
                key: key.to_owned(),
                source,
            })?;
        Ok(got.into_stream())
    }

    /// A presigned GET URL valid for `valid`.
    pub async fn signed_url(&self, key: &str, valid: Duration) -> Result<String, ObjectError> {
        let path = parse(key)?;
        self.store
            .signed_url(http::Method::GET, &path, valid)
            .await
            .map(|u| u.to_string())
            .map_err(|source| ObjectError::Store {
                key: key.to_owned(),
                source,
            })
    }

    /// Removes a recording's object(s): for HLS everything under the key (playlist and
    /// segments), else the key itself.
    ///
    /// Contents first: a file-backed server (s3s-fs, MinIO in FS mode) keeps an HLS key as a
    /// directory and refuses to delete it while it has contents ("Is a directory"), and real
    /// S3 has no object under the bare prefix at all. So when the key has contents, the bare
    /// key's own delete is best effort; without contents it is the recording, and its
    /// failure is the delete's failure.
    pub async fn delete_all(&self, key: &str) -> Result<(), ObjectError> {
        let path = parse(key)?;
        let err = |source| ObjectError::Store {
            key: key.to_owned(),
            source,
        };
        let mut listing = self.store.list(Some(&path));
        let mut inside = Vec::new();
        while let Some(meta) = listing.next().await {
            inside.push(meta.map_err(err)?.location);
        }
        for p in &inside {
            match self.store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) if !inside.is_empty() => {
                tracing::debug!(key, error = %e, "bare HLS prefix not deletable; its contents are gone");
                Ok(())
            }
            Err(e) => Err(err(e)),
        }
    }
}

pub(crate) fn parse(key: &str) -> Result<ObjectPath, ObjectError> {
    ObjectPath::parse(key).map_err(|e| ObjectError::BadKey {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// One `bytes=` range of a request, unresolved (a suffix needs the object's size).
/// One file to one object: a PUT, or a multipart upload for large files.
async fn put_file(store: &dyn ObjectStore, path: &Path, key: &str) -> Result<u64, ObjectError> {
    let loc = parse(key)?;
    let local_err = |source| ObjectError::Local {
        path: path.to_path_buf(),
        source,
    };
    let store_err = |source| ObjectError::Store {
        key: key.to_owned(),
        source,
    };
    let file = Arc::new(std::fs::File::open(path).map_err(local_err)?);
    let size = file.metadata().map_err(local_err)?.len();
    if size <= MULTIPART_THRESHOLD {
        let data = read_at(file, 0, size as usize).await.map_err(local_err)?;
        store.put(&loc, data.into()).await.map_err(store_err)?;
        return Ok(size);
    }
    let upload = store.put_multipart(&loc).await.map_err(store_err)?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut off = 0u64;
    while off < size {
        let len = (size - off).min(PART_SIZE as u64) as usize;
        let part = match read_at(file.clone(), off, len).await {
            Ok(p) => p,
            Err(e) => {
                let _ = w.abort().await;
                return Err(local_err(e));
            }
        };
        if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = w.abort().await;
            return Err(store_err(e));
        }
        w.put(part);
        off += len as u64;
        if off >= PART_SIZE as u64 * 2 {
            // Crash tests: parts are in the bucket's pending upload, the object is not.
            crate::failpoint::hit("upload.part");
        }
    }
    w.finish().await.map_err(store_err)?;
    Ok(size)
}

/// Reads `len` bytes at `off` on the blocking pool (one hop per part, not per 64 KiB).
async fn read_at(file: Arc<std::fs::File>, off: u64, len: usize) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, off)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}
