//! The stream hub: which streams are live, and the one-publisher-per-stream rule.
//!
//! Recorders run inside the publisher's connection task (see `record`), so the hub never sits
//! between a frame and its recording: a slow consumer can never cost a recorded frame.

pub mod live;

use crate::model::StreamKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A stream being published, as `GET /v1/streams` shows it.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct LiveStream {
    pub app: String,
    pub stream: String,
    /// The push domain (`[server] domain`, else the tcUrl host): `app` in the callbacks.
    pub domain: String,
    pub sequence: String,
    pub client_ip: String,
    pub started_at_ms: i64,
    // The fields below are filled by [`Hub::list`] from the live feed.
    /// Same as `started_at_ms`.
    pub since_ms: i64,
    /// Moving average over ~5 s of media.
    pub bitrate_kbps: u64,
    pub video_codec: String,
    pub audio_codec: String,
    pub width: u32,
    pub height: u32,
    /// HTTP-FLV connections plus HLS clients seen in the last few seconds.
    pub viewers: u64,
    /// The live-viewing side of the push (`None` with `[live] enabled = false`).
    #[serde(skip)]
    pub live: Option<Arc<live::StreamLive>>,
    /// Cancelling it cuts the push ([`Hub::cut`]).
    #[serde(skip)]
    pub cut: tokio_util::sync::CancellationToken,
}

#[derive(Default)]
pub struct Hub {
    live: Mutex<HashMap<StreamKey, LiveStream>>,
}

#[derive(Debug, thiserror::Error)]
#[error("stream {app}/{stream} is already being published")]
pub struct AlreadyPublishing {
    pub app: String,
    pub stream: String,
}

/// Held by the publishing connection; dropping it (however the connection ends) frees the name.
pub struct PublishLease {
    hub: Arc<Hub>,
    key: StreamKey,
}

impl Drop for PublishLease {
    fn drop(&mut self) {
        self.hub.lock().remove(&self.key);
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, LiveStream>> {
        // A poisoned lock only means another connection panicked mid-insert; the map is still valid.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many streams are live (cheaper than `list().len()`: nothing is cloned).
    pub fn live_count(&self) -> usize {
        self.lock().len()
    }

    /// Whether the push with session id `sequence` is live on this node.
    pub fn is_live(&self, sequence: &str) -> bool {
        self.lock().values().any(|s| s.sequence == sequence)
    }

    pub fn claim(self: &Arc<Self>, info: LiveStream) -> Result<PublishLease, AlreadyPublishing> {
        let key = StreamKey {
            app: info.app.clone(),
            stream: info.stream.clone(),
        };
        let mut live = self.lock();
        if live.contains_key(&key) {
            return Err(AlreadyPublishing {
                app: key.app,
                stream: key.stream,
            });
        }
        live.insert(key.clone(), info);
        Ok(PublishLease {
            hub: Arc::clone(self),
            key,
        })
    }

    pub fn list(&self) -> Vec<LiveStream> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| (&a.app, &a.stream).cmp(&(&b.app, &b.stream)));
        for s in &mut v {
            s.since_ms = s.started_at_ms;
            if let Some(live) = &s.live {
                let st = live.stats();
                s.bitrate_kbps = st.bitrate_kbps;
                s.video_codec = st.video_codec.into();
                s.audio_codec = st.audio_codec.into();
                s.width = st.width;
                s.height = st.height;
                s.viewers = st.viewers;
            }
        }
        v
    }

    /// Cuts the push of `app/stream` at once (its driver ends it as usual: event 0, files
    /// closed); false if the stream is not live here.
    pub fn cut(&self, app: &str, stream: &str) -> bool {
        let key = StreamKey {
            app: app.to_owned(),
            stream: stream.to_owned(),
        };
        self.lock().get(&key).map(|s| s.cut.cancel()).is_some()
    }

    /// The live feed of a stream being published.
    pub fn live(&self, app: &str, stream: &str) -> Option<Arc<live::StreamLive>> {
        let key = StreamKey {
            app: app.to_owned(),
            stream: stream.to_owned(),
        };
        self.lock().get(&key).and_then(|s| s.live.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(stream: &str) -> LiveStream {
        LiveStream {
            app: "live".into(),
            stream: stream.into(),
            sequence: "1".into(),
            client_ip: "127.0.0.1".into(),
            started_at_ms: 0,
            ..Default::default()
        }
    }

    #[test]
    fn second_publisher_is_refused_until_the_first_leaves() {
        let hub = Arc::new(Hub::default());
        let lease = hub.claim(info("a")).unwrap();
        assert!(hub.claim(info("a")).is_err());
        let _other = hub.claim(info("b")).unwrap();
        assert_eq!(hub.list().len(), 2);
        drop(lease);
        assert!(hub.claim(info("a")).is_ok());
    }
}
