//! A push's life, whatever protocol carries it. Ingest drivers (`ingest::rtmp` today; RTMPS,
//! SRT and WHIP beside it) only move bytes and call, in order:
//!
//! ```text
//! let push = push::begin(&st, request).await?;   // or tell the publisher why not
//! for each read: push.media(&frame).await … ; push.after_read();
//! push.end(errcode, reason).await;               // exactly once, however the push ended
//! ```
//!
//! [`begin`]: name limits, push auth (`txSecret`/`txTime`), a ban (`ForbidLiveStream`), one publisher per stream on this
//! node (hub) and across nodes (a catalogue lease, see [`leases`]), the session row with its
//! event 1, the recorder (or the parked one a reconnect takes back), the free-space floor.
//! [`Push::media`]: live viewing, the recorder, status events (332). [`Push::after_read`]:
//! the spools' write-out (payloads leave the read buffer before it is reused) and closed files
//! handed to [`commit`]. [`Push::end`]: the recording closed or parked for its reconnect window,
//! event 0 committed with the last statuses, files catalogued after it, the lease released.

mod commit;
pub(crate) mod dead;
pub(crate) mod events;
pub(crate) mod leases;
pub(crate) mod notifier;
mod retry;
mod status;

pub(crate) use commit::{commit_file, is_known};
pub(crate) use retry::until_written;
pub(crate) use status::{emit_statuses, status_events};

use crate::hub::{LiveStream, PublishLease};
use crate::metrics::Refusal;
use crate::model::{MAX_NAME_LEN, StreamKey};
use crate::record::{ClosedFile, RecordContext, RecordError, Recorder};
use crate::state::AppState;
use events::PushFacts;
use livetape_catalog::{AuthKind, NewPush};
use livetape_media::MediaFrame;
use livetape_tencent::errcode;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A publisher asks to publish `app/stream`.
pub(crate) struct PublishRequest {
    pub app: String,
    pub stream: String,
    /// The query string of the publish name, e.g. `txSecret=..&txTime=..`.
    pub stream_param: String,
    /// Where the publisher connected to (its host is the push domain unless configured).
    pub tc_url: String,
    pub peer: SocketAddr,
    /// Cancelled to cut this push from outside (Tencent API `DropLiveStream`); a child of
    /// the server's stop token, so the driver waits on this one alone.
    pub cut: CancellationToken,
}

/// Why a publish was refused: the status to answer (RTMP `onStatus` code and text) and the
/// Tencent errcode and reason the connection ends with.
#[derive(Debug)]
pub(crate) struct Refused {
    pub code: &'static str,
    pub description: String,
    pub errcode: i32,
    pub reason: String,
}

impl Refused {
    fn new(
        code: &'static str,
        description: impl Into<String>,
        errcode: i32,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            code,
            description: description.into(),
            errcode,
            reason: reason.into(),
        }
    }
}

/// A push in progress. Dropping it without [`Push::end`] still frees the stream name (the
/// hub lease), but writes no end: drivers always call `end`.
pub(crate) struct Push {
    st: Arc<AppState>,
    _lease: PublishLease,
    facts: PushFacts,
    started_ms: i64,
    recorder: Option<Recorder>,
    /// Live viewing; dropped after the lease, which ends its viewers.
    live: Option<crate::hub::live::Publisher>,
    closed: Vec<ClosedFile>,
    errors: Vec<RecordError>,
    /// The free-space reading that stopped (or refused) the recording: only a later reading
    /// above the floor resumes it, never the cached one it was judged against.
    floor_reading: u64,
}

/// Tencent-style push session id: a decimal u63.
pub fn new_sequence() -> String {
    (rand::random::<u64>() >> 1).to_string()
}

/// `rtmp://host:port/app` → `host`.
pub(crate) fn host_of(tc_url: &str) -> String {
    let rest = tc_url.split_once("://").map_or(tc_url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host.to_owned()
}

/// Refuses a stream forbidden by `ForbidLiveStream` (a catalogue row, so the ban holds
/// across restarts and nodes). A catalogue that cannot answer refuses too, as the session
/// row right after would.
async fn forbidden(
    st: &AppState,
    domain: &str,
    app: &str,
    stream: &str,
    now: i64,
    peer: SocketAddr,
) -> Result<(), Refused> {
    match st.catalog.forbidden(domain, app, stream, now).await {
        Ok(None) => Ok(()),
        Ok(Some(ban)) => {
            tracing::warn!(%peer, app, stream, reason = ban.reason, "publish refused: forbidden");
            st.metrics.rtmp_refused(Refusal::Forbidden);
            let why = format!(
                "stream is forbidden until {}",
                livetape_tencent::iso::format_utc(ban.resume_at_ms / 1000)
            );
            Err(Refused::new(
                "NetStream.Publish.Unauthorized",
                why.clone(),
                errcode::DROPPED,
                why,
            ))
        }
        Err(e) => {
            tracing::error!(stream, error = %e, "publish refused: catalogue unavailable");
            st.metrics.rtmp_refused(Refusal::Internal);
            Err(Refused::new(
                "NetStream.Publish.Failed",
                "server error",
                errcode::INTERNAL_ERROR,
                e.to_string(),
            ))
        }
    }
}

/// Starts a push, or says why not (the caller answers the publisher and closes).
pub(crate) async fn begin(st: &Arc<AppState>, req: PublishRequest) -> Result<Push, Refused> {
    let PublishRequest {
        app,
        stream,
        stream_param,
        tc_url,
        peer,
        cut,
    } = req;
    let now = st.clock.now_ms();
    if stream.is_empty() || stream.len() > MAX_NAME_LEN || app.len() > MAX_NAME_LEN {
        tracing::warn!(%peer, app, "publish refused: bad stream name");
        st.metrics.rtmp_refused(Refusal::BadName);
        return Err(Refused::new(
            "NetStream.Publish.BadName",
            "stream name is empty or too long",
            errcode::BAD_RTMP_CONTENT,
            "bad stream name",
        ));
    }
    let sequence = new_sequence();
    let domain = if st.cfg.server.domain.is_empty() {
        host_of(&tc_url)
    } else {
        st.cfg.server.domain.clone()
    };
    // The domain's key set: the file's `[push_auth]`, or one set over API 3.0.
    if let Some(auth) = st.keys.get(AuthKind::Push, &domain).auth()
        && let Err(e) =
            livetape_tencent::sign::verify_push(&auth, &stream, &stream_param, now / 1000)
    {
        tracing::warn!(%peer, app, stream, error = %e, "publish refused: push auth");
        st.metrics.rtmp_refused(Refusal::Auth);
        return Err(Refused::new(
            "NetStream.Publish.Unauthorized",
            format!("push auth failed: {e}"),
            errcode::AUTH_FAILED,
            e.to_string(),
        ));
    }
    forbidden(st, &domain, &app, &stream, now, peer).await?;
    let live = st
        .cfg
        .live
        .enabled
        .then(|| crate::hub::live::Publisher::new(&st.cfg.live));
    let lease = match st.hub.claim(LiveStream {
        app: app.clone(),
        stream: stream.clone(),
        domain: domain.clone(),
        sequence: sequence.clone(),
        client_ip: peer.ip().to_string(),
        started_at_ms: now,
        live: live.as_ref().map(|l| l.shared()),
        cut,
        ..Default::default()
    }) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%peer, app, stream, "publish refused: already live");
            st.metrics.rtmp_refused(Refusal::Duplicate);
            return Err(Refused::new(
                "NetStream.Publish.BadName",
                e.to_string(),
                errcode::BAD_RTMP_CONTENT,
                e.to_string(),
            ));
        }
    };
    // Cluster-wide: one publisher per stream across nodes (taken before the session row is
    // written, released after it is ended; see `leases`).
    let lease_key = livetape_catalog::stream_lease_key(&app, &stream);
    match st
        .catalog
        .acquire_stream_lease(&lease_key, &st.node_id, now, leases::lease_ms(&st.cfg))
        .await
    {
        Ok(None) => {}
        Ok(Some(holder)) => {
            tracing::warn!(%peer, app, stream, holder, "publish refused: live on another node");
            st.metrics.rtmp_refused(Refusal::Duplicate);
            let msg = format!("stream {stream} is already being published (node {holder})");
            return Err(Refused::new(
                "NetStream.Publish.BadName",
                msg.clone(),
                errcode::BAD_RTMP_CONTENT,
                msg,
            ));
        }
        Err(e) => {
            tracing::error!(stream, error = %e, "publish refused: catalogue unavailable");
            st.metrics.rtmp_refused(Refusal::Internal);
            return Err(Refused::new(
                "NetStream.Publish.Failed",
                "server error",
                errcode::INTERNAL_ERROR,
                e.to_string(),
            ));
        }
    }
    let snapshot = st.templates.snapshot();
    let callbacks = snapshot.callback_template_for(&domain, &app);
    let facts = PushFacts {
        callbacks: callbacks.clone(),
        domain: domain.clone(),
        appname: app.clone(),
        stream: stream.clone(),
        sequence: sequence.clone(),
        node: st.node.clone(),
        user_ip: peer.ip().to_string(),
        stream_param: stream_param.clone(),
        width: 0,
        height: 0,
    };
    let session = NewPush {
        sequence: sequence.clone(),
        app: domain.clone(),
        appname: app.clone(),
        stream_id: stream.clone(),
        stream_param: stream_param.clone(),
        client_ip: facts.user_ip.clone(),
        node: facts.node.clone(),
        started_at_ms: now,
        width: 0,
        height: 0,
    };
    if let Err(e) = st
        .catalog
        .begin_push(&session, events::push_begin(&st.cfg, &facts, now))
        .await
    {
        tracing::error!(stream, error = %e, "publish refused: catalogue unavailable");
        st.metrics.rtmp_refused(Refusal::Internal);
        let _ = st
            .catalog
            .release_stream_lease(&lease_key, &st.node_id)
            .await;
        return Err(Refused::new(
            "NetStream.Publish.Failed",
            "server error",
            errcode::INTERNAL_ERROR,
            e.to_string(),
        ));
    }
    st.notifier.wake();
    let key = StreamKey {
        app: app.clone(),
        stream: stream.clone(),
    };
    let mut recorder = match st.parking.take(&key) {
        Some(mut rec) => {
            tracing::info!(app, stream, "push resumes the parked recording");
            rec.resume();
            Some(rec)
        }
        None => snapshot
            .record_template_for(&domain, &app, &stream)
            .map(|t| {
                Recorder::new(
                    RecordContext {
                        appid: st.cfg.server.appid,
                        domain,
                        appname: app.clone(),
                        stream: stream.clone(),
                        sequence: sequence.clone(),
                        stream_param: stream_param.clone(),
                        callbacks,
                        storage_days: t.storage_days,
                        template_id: snapshot.record_template_id(&t.name),
                    },
                    &t,
                    st.storage.spool_dir(),
                )
                .with_meters(st.metrics.record_meters())
            }),
    };
    let mut floor_reading = 0;
    if let Some(rec) = recorder.as_mut()
        && rec.last_dts_is_none()
        && st.disk.refresh() < st.disk.floor()
    {
        let reason = format!(
            "free space {} B below min_free_bytes {} B",
            st.disk.free(),
            st.disk.floor()
        );
        tracing::warn!(app, stream, reason, "push not recorded");
        floor_reading = st.disk.reading();
        rec.refuse(&reason);
        let (ctx, statuses) = (rec.context().clone(), rec.take_statuses());
        emit_statuses(st, &ctx, statuses).await;
    }
    tracing::info!(%peer, app, stream, sequence, recording = recorder.is_some(), "publish started");
    st.metrics.rtmp_publish();
    Ok(Push {
        st: st.clone(),
        _lease: lease,
        facts,
        started_ms: now,
        recorder,
        live,
        closed: Vec::new(),
        errors: Vec::new(),
        floor_reading,
    })
}

impl Push {
    /// One frame from the publisher: to live viewers, then the recorder.
    pub async fn media(&mut self, frame: &MediaFrame) {
        if let Some(live) = self.live.as_mut() {
            live.push(frame);
        }
        let Some(rec) = self.recorder.as_mut() else {
            return;
        };
        let st = &self.st;
        let now = st.clock.now_ms();
        if st.disk.low() && !rec.stopped() {
            let reason = format!(
                "free space {} B below min_free_bytes {} B",
                st.disk.free(),
                st.disk.floor()
            );
            tracing::warn!(stream = rec.context().stream, reason, "recording stopped");
            self.floor_reading = st.disk.reading();
            rec.stop(&reason, now, &mut self.closed, &mut self.errors);
        } else if rec.paused() && st.disk.reading() > self.floor_reading && !st.disk.low() {
            // The space is back: this push is recorded again, from its next keyframe.
            tracing::info!(
                stream = rec.context().stream,
                free = st.disk.free(),
                "free space back above min_free_bytes; recording resumes"
            );
            rec.resume_after_floor();
        }
        rec.push(frame, now, &mut self.closed, &mut self.errors);
        for e in self.errors.drain(..) {
            tracing::error!(error = %e, "recording stopped");
        }
        if rec.has_statuses() {
            let (ctx, statuses) = (rec.context().clone(), rec.take_statuses());
            emit_statuses(st, &ctx, statuses).await;
        }
    }

    /// After each socket read: one writev per spool (the payloads just parsed leave the read
    /// buffer before it is reused), and files a split closed go to finalize.
    pub fn after_read(&mut self) {
        if let Some(rec) = self.recorder.as_mut() {
            rec.write_out(self.st.clock.now_ms(), &mut self.closed, &mut self.errors);
            for e in self.errors.drain(..) {
                tracing::error!(error = %e, "recording stopped");
            }
        }
        self.spawn_finalize(None);
    }

    /// Hands closed files to the blocking pool for finalize + catalogue (after `after`, if
    /// given, is cancelled).
    fn spawn_finalize(&mut self, after: Option<&CancellationToken>) {
        for c in self.closed.drain(..) {
            let st = self.st.clone();
            self.st.tasks.spawn(commit_file(st, c, after.cloned()));
        }
    }

    /// Push over: close the recording (or park it for its reconnect window), record the end
    /// and its event 0, release the stream.
    pub async fn end(mut self, errcode: i32, reason: &str) {
        let st = self.st.clone();
        let now = st.clock.now_ms();
        // Files closed now (and any a split closed in the last read) are finalized at once,
        // alongside the commits below; their rows wait for event 0: `pushed_end`, cancelled
        // on every way out of here.
        let pushed_end = CancellationToken::new();
        let _open_gate = pushed_end.clone().drop_guard();
        // The recording's last status events (332) go in with event 0, in one commit.
        let mut statuses = Vec::new();
        if let Some(mut rec) = self.recorder.take() {
            if let Some((_, w, h)) = rec.video_info() {
                self.facts.width = w;
                self.facts.height = h;
            }
            if rec.resume_ms() > 0 {
                rec.flush(now, &mut self.closed, &mut self.errors);
                // Parked before the lease is released, so a reconnect always finds it.
                let key = StreamKey {
                    app: self.facts.appname.clone(),
                    stream: self.facts.stream.clone(),
                };
                let window = std::time::Duration::from_millis(rec.resume_ms());
                let generation = st.parking.park(key.clone(), rec);
                let st2 = st.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    let (mut closed, mut errors) = (Vec::new(), Vec::new());
                    let now = st2.clock.now_ms();
                    if let Some((ctx, statuses)) =
                        st2.parking
                            .expire(&key, generation, now, &mut closed, &mut errors)
                    {
                        tracing::info!(
                            stream = key.stream,
                            "reconnect window passed; recording closed"
                        );
                        emit_statuses(&st2, &ctx, statuses).await;
                    }
                    for e in errors {
                        tracing::error!(error = %e, "recording stopped");
                    }
                    for c in closed {
                        st2.tasks.spawn(commit_file(st2.clone(), c, None));
                    }
                });
            } else {
                rec.finish(now, &mut self.closed, &mut self.errors);
                let changes = rec.take_statuses();
                statuses = status_events(&st, rec.context(), changes);
            }
        }
        self.spawn_finalize(Some(&pushed_end));
        for e in self.errors.drain(..) {
            tracing::error!(error = %e, "recording stopped");
        }
        let duration = (now - self.started_ms).max(0) as u64;
        let p = &self.facts;
        let ev = events::push_end(&st.cfg, p, duration, errcode, reason, now);
        let events: Vec<_> = ev.into_iter().collect();
        let fact = crate::store::journal::Fact::EndPush {
            sequence: p.sequence.clone(),
            ended_at_ms: now,
            errcode,
            errmsg: reason.to_owned(),
            first: statuses,
            events,
        };
        let ended = until_written(&st, "end_push", &p.sequence, Some(&fact), || {
            fact.apply(&st.catalog)
        })
        .await;
        if let Err(e) = ended {
            tracing::error!(sequence = p.sequence, error = %e, "could not record push end");
        }
        pushed_end.cancel();
        st.notifier.wake();
        // After the end is recorded: a session is never open without its lease.
        let lease_key = livetape_catalog::stream_lease_key(&p.appname, &p.stream);
        if let Err(e) = st
            .catalog
            .release_stream_lease(&lease_key, &st.node_id)
            .await
        {
            // It expires on its own within `lease_s`.
            tracing::warn!(stream = p.stream, error = %e, "could not release the stream lease");
        }
        tracing::info!(
            stream = p.stream,
            sequence = p.sequence,
            errcode,
            reason,
            duration_ms = duration,
            "publish ended"
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_tc_url() {
        assert_eq!(
            super::host_of("rtmp://example.com:1935/live"),
            "example.com"
        );
        assert_eq!(super::host_of("rtmp://127.0.0.1/live?x=1"), "127.0.0.1");
        assert_eq!(super::host_of(""), "");
    }
}
