//! Live viewing: the tokio driver around `livetape-live` (the HTTP side is `http::live`).
//!
//! The publisher's connection task owns a [`Publisher`]. While nobody watches, it keeps its
//! feed private (one relaxed atomic load per frame, no lock, no wake-up); the first reader
//! makes it hand the feed (headers, GOP cache) over to the shared [`StreamLive`], and every
//! frame is then appended under one short lock and announced with one `Notify`. Each viewer
//! is a cursor into that ring: a slow one is skipped ahead to a keyframe, never waited for.
//!
//! Live HLS is built only while someone asks for it: the first playlist request starts a
//! builder task (an internal reader muxing TS segments in memory), which stops after
//! [`HLS_IDLE`] without requests. The first request waits up to [`HLS_FIRST_WAIT`] for the
//! first segment, else gets 503 with `Retry-After`.

use crate::config::LiveConfig;
use bytes::Bytes;
use livetape_live::{
    DEFAULT_HLS_TARGET_MS, DEFAULT_HLS_WINDOW, Feed, FeedConfig, LiveHls, RateMeter, ReadStatus,
    StreamInfo, ViewerId,
};
use livetape_media::{AudioPacket, MediaFrame, MediaKind, VideoPacket};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes a viewer takes from the ring per read (then it yields to the socket).
pub const FLV_READ_BYTES: usize = 256 * 1024;
/// Live HLS stops being built after this long without a playlist or segment request.
pub const HLS_IDLE: Duration = Duration::from_secs(30);
/// An HLS client counts as a viewer for this long after its last request.
pub const HLS_VIEWER_WINDOW: Duration = Duration::from_secs(10);
/// Cap on remembered HLS client addresses per stream.
const MAX_HLS_CLIENTS: usize = 4096;
/// Bytes the HLS builder takes from the ring per read.
const HLS_READ_BYTES: usize = 1 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-update; the state is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Viewer counts, rates and codecs of one live stream, for `GET /v1/streams` and API 3.0's
/// `DescribeLiveStreamPushInfoList`.
#[derive(Clone, Debug, Default)]
pub struct LiveStats {
    pub bitrate_kbps: u64,
    pub video_codec: &'static str,
    pub audio_codec: &'static str,
    pub width: u32,
    pub height: u32,
    pub viewers: u64,
    /// Per track, over the same ~5 s of media time as `bitrate_kbps`.
    pub video_kbps: u64,
    pub audio_kbps: u64,
    pub video_fps: u64,
    pub audio_fps: u64,
    pub sample_rate: u32,
    /// What the publisher's `onMetaData` declares.
    pub declared: livetape_flv::DeclaredRates,
}

/// The shared side of one live stream (in the hub while it is published).
pub struct StreamLive {
    feed: Mutex<Feed>,
    notify: Notify,
    /// Attached feed readers (FLV viewers and the HLS builder): the publisher reads this once
    /// per frame to know whether anyone is listening.
    readers: AtomicUsize,
    flv_viewers: AtomicUsize,
    bitrate_kbps: AtomicU64,
    /// `[video kbps, audio kbps, video fps, audio fps]`, each stored when its meter's second
    /// closes.
    track_rates: [AtomicU64; 4],
    /// Updated only when a sequence header changes.
    info: Mutex<StreamInfo>,
    hls: Mutex<HlsState>,
}

impl std::fmt::Debug for StreamLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLive")
            .field("readers", &self.readers.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct HlsState {
    builder: Option<Arc<HlsBuilder>>,
    clients: HashMap<IpAddr, Instant>,
}

struct HlsBuilder {
    hls: Mutex<LiveHls>,
    /// A segment closed (or the builder stopped).
    ready: Notify,
    last_request: Mutex<Instant>,
    done: AtomicBool,
}

impl StreamLive {
    pub fn stats(&self) -> LiveStats {
        let info = lock(&self.info).clone();
        let now = Instant::now();
        let hls = lock(&self.hls)
            .clients
            .values()
            .filter(|t| now.duration_since(**t) < HLS_VIEWER_WINDOW)
            .count();
        LiveStats {
            bitrate_kbps: self.bitrate_kbps.load(Ordering::Relaxed),
            video_codec: info.video_codec.unwrap_or(""),
            audio_codec: info.audio_codec.unwrap_or(""),
            width: info.width,
            height: info.height,
            viewers: (self.flv_viewers.load(Ordering::Relaxed) + hls) as u64,
            video_kbps: self.track_rates[0].load(Ordering::Relaxed),
            audio_kbps: self.track_rates[1].load(Ordering::Relaxed),
            video_fps: self.track_rates[2].load(Ordering::Relaxed),
            audio_fps: self.track_rates[3].load(Ordering::Relaxed),
            sample_rate: info.sample_rate,
            declared: info.declared,
        }
    }

    fn attach(&self) -> ViewerId {
        let mut feed = lock(&self.feed);
        // Counted under the lock, so the publisher's detach check (also under it) is exact.
        self.readers.fetch_add(1, Ordering::AcqRel);
        feed.attach()
    }

    fn detach(&self, id: ViewerId) {
        let mut feed = lock(&self.feed);
        if feed.detach(id) {
            self.readers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Waits until `read` has something (or the feed ended / the viewer is gone).
    async fn read_wait(&self, mut read: impl FnMut(&mut Feed) -> ReadStatus) -> ReadStatus {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before reading: a push between the read and the await still wakes us.
            notified.as_mut().enable();
            let status = read(&mut lock(&self.feed));
            match status {
                ReadStatus::Pending => notified.await,
                s => return s,
            }
        }
    }

    fn touch_hls_client(&self, client: Option<IpAddr>) -> Option<Arc<HlsBuilder>> {
        let mut h = lock(&self.hls);
        let now = Instant::now();
        if let Some(ip) = client {
            if h.clients.len() >= MAX_HLS_CLIENTS {
                h.clients
                    .retain(|_, t| now.duration_since(*t) < HLS_VIEWER_WINDOW);
            }
            if h.clients.len() < MAX_HLS_CLIENTS {
                h.clients.insert(ip, now);
            }
        }
        let b = h.builder.clone()?;
        *lock(&b.last_request) = now;
        Some(b)
    }

    /// The running HLS builder, started if there is none.
    fn hls_builder(self: &Arc<Self>, client: Option<IpAddr>) -> Arc<HlsBuilder> {
        // A builder that stopped because the stream ended keeps serving its final playlist.
        let usable = |b: &HlsBuilder| !b.done.load(Ordering::Acquire) || lock(&b.hls).is_ended();
        if let Some(b) = self.touch_hls_client(client)
            && usable(&b)
        {
            return b;
        }
        let mut h = lock(&self.hls);
        if let Some(b) = &h.builder
            && usable(b)
        {
            return b.clone();
        }
        let b = Arc::new(HlsBuilder {
            hls: Mutex::new(LiveHls::new(DEFAULT_HLS_TARGET_MS, DEFAULT_HLS_WINDOW)),
            ready: Notify::new(),
            last_request: Mutex::new(Instant::now()),
            done: AtomicBool::new(false),
        });
        h.builder = Some(b.clone());
        tokio::spawn(build_hls(self.clone(), b.clone()));
        b
    }
}

/// Feeds live HLS from the ring until nobody asked for [`HLS_IDLE`] or the stream ends.
async fn build_hls(live: Arc<StreamLive>, b: Arc<HlsBuilder>) {
    let id = live.attach();
    let mut frames = Vec::new();
    loop {
        let notified = live.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let status = lock(&live.feed).read_frames(id, &mut frames, HLS_READ_BYTES);
        if !frames.is_empty() {
            let mut closed = false;
            let mut hls = lock(&b.hls);
            for f in frames.drain(..) {
                match hls.push(&f) {
                    Ok(c) => closed |= c,
                    Err(e) => tracing::debug!(error = %e, "live hls skipped a frame"),
                }
            }
            drop(hls);
            if closed {
                b.ready.notify_waiters();
            }
        }
        if lock(&b.last_request).elapsed() > HLS_IDLE {
            break;
        }
        match status {
            ReadStatus::Data => {}
            ReadStatus::Pending => {
                // Timed so an idle builder of a stalled stream still notices it is unwatched.
                let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
            }
            ReadStatus::Ended | ReadStatus::Gone => {
                lock(&b.hls).finish();
                break;
            }
        }
    }
    b.done.store(true, Ordering::Release);
    b.ready.notify_waiters();
    live.detach(id);
    let mut h = lock(&live.hls);
    if h.builder.as_ref().is_some_and(|x| Arc::ptr_eq(x, &b)) && !lock(&b.hls).is_ended() {
        h.builder = None;
    }
}

/// The publisher's end: owned by the ingest task, fed every frame.
pub struct Publisher {
    live: Arc<StreamLive>,
    /// The feed while nobody reads (then `live.feed` holds none of the media).
    private: Feed,
    attached: bool,
    meter: RateMeter,
    video_meter: RateMeter,
    audio_meter: RateMeter,
}

impl Publisher {
    pub fn new(cfg: &LiveConfig) -> Self {
        let fc = FeedConfig {
            gop_cache: cfg.gop_cache,
            ..FeedConfig::default()
        };
        Self {
            live: Arc::new(StreamLive {
                feed: Mutex::new(Feed::new_detached(fc)),
                notify: Notify::new(),
                readers: AtomicUsize::new(0),
                flv_viewers: AtomicUsize::new(0),
                bitrate_kbps: AtomicU64::new(0),
                track_rates: Default::default(),
                info: Mutex::new(StreamInfo::default()),
                hls: Mutex::new(HlsState::default()),
            }),
            private: Feed::new(fc),
            attached: false,
            meter: RateMeter::default(),
            video_meter: RateMeter::default(),
            audio_meter: RateMeter::default(),
        }
    }

    pub fn shared(&self) -> Arc<StreamLive> {
        self.live.clone()
    }

    /// One frame from the publisher. Without readers: no lock, no wake-up, and a copy into
    /// the GOP arena only if the GOP cache is on.
    pub fn push(&mut self, frame: &MediaFrame) {
        let (dts, len) = (frame.dts_ms, frame.payload.len());
        if let Some(kbps) = self.meter.push(dts, len) {
            self.live.bitrate_kbps.store(kbps, Ordering::Relaxed);
        }
        // Per track: coded frames of the default track only (a sequence header is no frame,
        // and Enhanced RTMP's other tracks are not what the stream's fps means).
        let track = match frame.kind {
            MediaKind::Video => frame
                .video()
                .and_then(Result::ok)
                .filter(|v| v.packet == VideoPacket::Frame && v.track == 0)
                .map(|_| (&mut self.video_meter, 0)),
            MediaKind::Audio => frame
                .audio()
                .and_then(Result::ok)
                .filter(|a| a.packet == AudioPacket::Frame && a.track == 0)
                .map(|_| (&mut self.audio_meter, 1)),
            MediaKind::Script => None,
        };
        if let Some((m, i)) = track
            && let Some(kbps) = m.push(dts, len)
        {
            let rates = &self.live.track_rates;
            rates[i].store(kbps, Ordering::Relaxed);
            rates[i + 2].store(m.fps(), Ordering::Relaxed);
        }
        let readers = self.live.readers.load(Ordering::Acquire) > 0;
        if !readers && !self.attached {
            if self.private.push(frame) {
                *lock(&self.live.info) = self.private.info().clone();
            }
            return;
        }
        let mut feed = lock(&self.live.feed);
        if !self.attached {
            self.private.hand_over(&mut feed);
            self.attached = true;
        }
        if feed.push(frame) {
            *lock(&self.live.info) = feed.info().clone();
        }
        if feed.viewer_count() == 0 {
            // The last reader left: take the media back private.
            feed.hand_over(&mut self.private);
            self.attached = false;
            return;
        }
        drop(feed);
        self.live.notify.notify_waiters();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        lock(&self.live.feed).end();
        self.live.notify.notify_waiters();
    }
}

/// An HTTP-FLV viewer; dropping it (the response body, when the client goes) detaches it.
struct FlvViewer {
    live: Arc<StreamLive>,
    id: ViewerId,
}

impl FlvViewer {
    fn attach(live: Arc<StreamLive>) -> Self {
        let id = live.attach();
        live.flv_viewers.fetch_add(1, Ordering::Relaxed);
        Self { live, id }
    }
}

impl Drop for FlvViewer {
    fn drop(&mut self) {
        self.live.flv_viewers.fetch_sub(1, Ordering::Relaxed);
        self.live.detach(self.id);
    }
}

impl StreamLive {
    /// An HTTP-FLV viewer's bytes: the FLV header, metadata and headers, then whole tags as
    /// they arrive. The viewer is attached (and counted) until the stream is dropped.
    pub fn flv_stream(
        self: Arc<Self>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
        let viewer = (FlvViewer::attach(self), metrics.viewer(), metrics);
        futures_util::stream::unfold(
            (viewer, VecDeque::<Bytes>::new(), Vec::new()),
            |(v, mut queue, mut buf)| async move {
                loop {
                    if let Some(b) = queue.pop_front() {
                        v.2.add_bytes_out(b.len() as u64);
                        return Some((b, (v, queue, buf)));
                    }
                    let id = v.0.id;
                    match v
                        .0
                        .live
                        .read_wait(|f| f.read_flv(id, &mut buf, FLV_READ_BYTES))
                        .await
                    {
                        ReadStatus::Data => queue.extend(buf.drain(..)),
                        _ => return None,
                    }
                }
            },
        )
    }

    /// Live HLS for a client (started if nobody asked yet): waits up to `wait` for the first
    /// segment, then the playlist, its segment URIs made by `uri`. `None`: no segment yet.
    pub async fn hls_playlist(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        wait: Duration,
        uri: impl Fn(u64) -> String,
    ) -> Option<String> {
        let b = self.hls_builder(client);
        let deadline = Instant::now() + wait;
        loop {
            let ready = b.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(p) = lock(&b.hls).playlist(&uri) {
                return Some(p);
            }
            if b.done.load(Ordering::Acquire)
                || tokio::time::timeout_at(deadline, ready).await.is_err()
            {
                return None;
            }
        }
    }

    /// One live HLS segment, if it is still in the window.
    pub fn hls_segment(&self, client: Option<IpAddr>, index: u64) -> Option<Bytes> {
        let b = self.touch_hls_client(client)?;
        lock(&b.hls).segment(index)
    }
}
