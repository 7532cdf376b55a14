//! RTMP ingest: the thin tokio driver around the sans-IO `livetape-rtmp` session.
//!
//! One task per connection: read → session → (auth, hub lease, catalogue, recorder) → write.

use crate::AppState;
use crate::events::{self, PushFacts};
use crate::hub::{LiveStream, PublishLease};
use crate::metrics::Refusal;
use crate::model::StreamKey;
use crate::record::{ClosedFile, RecordContext, Recorder};
use bytes::BytesMut;
use livetape_catalog::NewPush;
use livetape_rtmp::{Event, ServerSession, SessionConfig};
use livetape_tencent::errcode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Free space offered to each socket read, at least. Media payloads are split off the read
/// buffer zero-copy and live on (queued for the spool) until written, so a slow stream's reads
/// stay small…
pub const READ_BUFFER_MIN: usize = 16 * 1024;
/// …while a read that fills its space doubles it, up to this: a fast sender is read in large
/// gulps (few syscalls per MB).
pub const READ_BUFFER_MAX: usize = 256 * 1024;
/// While publishing, a socket that had less than a full read waiting is read again only after
/// this pause: the frames sent in between are taken in one read. A 30 fps stream then wakes
/// its task ~25 times a second instead of ~80 (one per frame), which is most of what a
/// real-time stream costs. Adds at most this much latency; recordings are unaffected.
pub const READ_COALESCE: Duration = Duration::from_millis(40);

pub async fn serve(state: Arc<AppState>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = state.stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "rtmp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        state.metrics.rtmp_connection();
        let st = state.clone();
        state.tasks.spawn(async move {
            let mut conn = Connection::new(st, peer);
            let (errcode, reason) = conn.run(sock).await;
            conn.end_push(errcode, &reason).await;
        });
    }
}

struct ActivePush {
    _lease: PublishLease,
    facts: PushFacts,
    started_ms: i64,
    recorder: Option<Recorder>,
    /// Live viewing; dropped after the lease, which ends its viewers.
    live: Option<crate::live::Publisher>,
}

struct Connection {
    st: Arc<AppState>,
    peer: SocketAddr,
    push: Option<ActivePush>,
    closed: Vec<ClosedFile>,
    errors: Vec<crate::record::RecordError>,
}

impl Connection {
    fn new(st: Arc<AppState>, peer: SocketAddr) -> Self {
        Self {
            st,
            peer,
            push: None,
            closed: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Runs the connection until it ends; returns the Tencent errcode and message for event 0.
    async fn run(&mut self, mut sock: TcpStream) -> (i32, String) {
        let idle = Duration::from_secs(self.st.cfg.server.idle_timeout_s);
        let mut session = ServerSession::new(SessionConfig {
            handshake_random: rand::random(),
            ..SessionConfig::default()
        });
        let mut buf = BytesMut::with_capacity(READ_BUFFER_MIN);
        let mut want = READ_BUFFER_MIN;
        let mut coalesce = false;
        let mut events = Vec::new();
        loop {
            if coalesce {
                tokio::select! {
                    _ = self.st.stop.cancelled() => {
                        return (errcode::INTERNAL_ERROR, "server shutting down".into());
                    }
                    () = tokio::time::sleep_until(next_tick(tokio::time::Instant::now())) => {}
                }
            }
            make_room(&mut buf, want);
            let offered = buf.capacity() - buf.len();
            let read = tokio::select! {
                _ = self.st.stop.cancelled() => {
                    return (errcode::INTERNAL_ERROR, "server shutting down".into());
                }
                r = tokio::time::timeout(idle, sock.read_buf(&mut buf)) => r,
            };
            let n = match read {
                Err(_) => {
                    return (
                        errcode::NO_DATA_TIMEOUT,
                        format!("no data for {} s", idle.as_secs()),
                    );
                }
                Ok(Err(e)) => return (errcode::CLIENT_RECV_ERROR, format!("recv() error: {e}")),
                Ok(Ok(0)) => return (errcode::CLIENT_DISCONNECTED, "recv() return 0".into()),
                Ok(Ok(n)) => n,
            };
            // Once per read, not per frame: one relaxed atomic add.
            self.st.metrics.add_bytes_in(n);
            // A full read: more is waiting, read again at once with more room.
            coalesce = n < offered && self.push.is_some();
            want = if n == offered && offered >= want {
                (want * 2).min(READ_BUFFER_MAX)
            } else {
                READ_BUFFER_MIN
            };
            // Zero-copy: complete chunks are split off `buf` as `Bytes`; a partial one stays.
            if let Err(e) = session.handle_input_buf(&mut buf, n, &mut events) {
                tracing::info!(peer = %self.peer, error = %e, "rtmp protocol error");
                return (errcode::BAD_RTMP_CONTENT, e.to_string());
            }
            let mut end = None;
            for ev in events.drain(..) {
                if let Some(r) = self.on_event(&mut session, ev).await {
                    end = Some(r);
                    break;
                }
            }
            // One writev per read: the payloads just split off `buf` reach the spool before
            // the next read, so the buffer is reused in place and a stream holds no media.
            if let Some(rec) = self.push.as_mut().and_then(|p| p.recorder.as_mut()) {
                rec.write_out(self.st.clock.now_ms(), &mut self.closed, &mut self.errors);
                for e in self.errors.drain(..) {
                    tracing::error!(error = %e, "recording stopped");
                }
            }
            while let Some(out) = session.take_output() {
                if let Err(e) = sock.write_all(&out).await {
                    return (errcode::NETWORK_ERROR, format!("send() error: {e}"));
                }
            }
            if let Some(r) = end {
                return r;
            }
            self.spawn_finalize(None);
        }
    }

    /// Handles one session event; `Some` ends the connection.
    async fn on_event(&mut self, session: &mut ServerSession, ev: Event) -> Option<(i32, String)> {
        match ev {
            Event::PublishRequested {
                app,
                stream_name,
                stream_param,
                tc_url,
                ..
            } => {
                self.on_publish(session, app, stream_name, stream_param, tc_url)
                    .await
            }
            Event::Media(frame) => {
                if let Some(live) = self.push.as_mut().and_then(|p| p.live.as_mut()) {
                    live.push(&frame);
                }
                if let Some(rec) = self.push.as_mut().and_then(|p| p.recorder.as_mut()) {
                    let now = self.st.clock.now_ms();
                    if self.st.disk.low() && !rec.stopped() {
                        let reason = format!(
                            "free space {} B below min_free_bytes {} B",
                            self.st.disk.free(),
                            self.st.disk.floor()
                        );
                        tracing::warn!(stream = rec.context().stream, reason, "recording stopped");
                        rec.stop(&reason, now, &mut self.closed, &mut self.errors);
                    }
                    rec.push(&frame, now, &mut self.closed, &mut self.errors);
                    for e in self.errors.drain(..) {
                        tracing::error!(error = %e, "recording stopped");
                    }
                    if rec.has_statuses() {
                        let (ctx, statuses) = (rec.context().clone(), rec.take_statuses());
                        crate::emit_statuses(&self.st, &ctx, statuses).await;
                    }
                }
                None
            }
            Event::Unpublished { .. } => {
                if self.push.is_some() {
                    Some((
                        errcode::CLIENT_DELETE_STREAM,
                        errcode::errmsg(errcode::CLIENT_DELETE_STREAM).into(),
                    ))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    async fn on_publish(
        &mut self,
        session: &mut ServerSession,
        app: String,
        stream: String,
        stream_param: String,
        tc_url: String,
    ) -> Option<(i32, String)> {
        let st = self.st.clone();
        let now = st.clock.now_ms();
        if self.push.is_some() {
            let _ = session.reject_publish(
                "NetStream.Publish.BadName",
                "this connection is already publishing",
            );
            return None;
        }
        if stream.is_empty()
            || stream.len() > crate::model::MAX_NAME_LEN
            || app.len() > crate::model::MAX_NAME_LEN
        {
            tracing::warn!(peer = %self.peer, app, "publish refused: bad stream name");
            st.metrics.rtmp_refused(Refusal::BadName);
            let _ = session.reject_publish(
                "NetStream.Publish.BadName",
                "stream name is empty or too long",
            );
            return Some((errcode::BAD_RTMP_CONTENT, "bad stream name".into()));
        }
        if let Some(pa) = &st.cfg.push_auth {
            let auth = livetape_tencent::sign::PushAuth {
                key: pa.key.clone(),
                backup_key: pa.backup_key.clone(),
                auth_delta_s: pa.auth_delta_s,
            };
            if let Err(e) =
                livetape_tencent::sign::verify_push(&auth, &stream, &stream_param, now / 1000)
            {
                tracing::warn!(peer = %self.peer, app, stream, error = %e, "publish refused: push auth");
                st.metrics.rtmp_refused(Refusal::Auth);
                let _ = session.reject_publish(
                    "NetStream.Publish.Unauthorized",
                    &format!("push auth failed: {e}"),
                );
                return Some((errcode::AUTH_FAILED, e.to_string()));
            }
        }
        let sequence = new_sequence();
        let live = st
            .cfg
            .live
            .enabled
            .then(|| crate::live::Publisher::new(&st.cfg.live));
        let lease = match st.hub.claim(LiveStream {
            app: app.clone(),
            stream: stream.clone(),
            sequence: sequence.clone(),
            client_ip: self.peer.ip().to_string(),
            started_at_ms: now,
            live: live.as_ref().map(|l| l.shared()),
            ..Default::default()
        }) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(peer = %self.peer, app, stream, "publish refused: already live");
                st.metrics.rtmp_refused(Refusal::Duplicate);
                let _ = session.reject_publish("NetStream.Publish.BadName", &e.to_string());
                return Some((errcode::BAD_RTMP_CONTENT, e.to_string()));
            }
        };
        // Cluster-wide: one publisher per stream across nodes (taken before the session row
        // is written, released after it is ended; see `cluster`).
        let lease_key = livetape_catalog::stream_lease_key(&app, &stream);
        match st
            .catalog
            .acquire_stream_lease(
                &lease_key,
                &st.node_id,
                now,
                crate::cluster::lease_ms(&st.cfg),
            )
            .await
        {
            Ok(None) => {}
            Ok(Some(holder)) => {
                tracing::warn!(peer = %self.peer, app, stream, holder, "publish refused: live on another node");
                st.metrics.rtmp_refused(Refusal::Duplicate);
                let msg = format!("stream {stream} is already being published (node {holder})");
                let _ = session.reject_publish("NetStream.Publish.BadName", &msg);
                return Some((errcode::BAD_RTMP_CONTENT, msg));
            }
            Err(e) => {
                tracing::error!(stream, error = %e, "publish refused: catalogue unavailable");
                st.metrics.rtmp_refused(Refusal::Internal);
                let _ = session.reject_publish("NetStream.Publish.Failed", "server error");
                return Some((errcode::INTERNAL_ERROR, e.to_string()));
            }
        }
        let domain = if st.cfg.server.domain.is_empty() {
            host_of(&tc_url)
        } else {
            st.cfg.server.domain.clone()
        };
        let snapshot = st.templates.snapshot();
        let callbacks = snapshot.callback_template_for(&app);
        let facts = PushFacts {
            callbacks: callbacks.clone(),
            domain: domain.clone(),
            appname: app.clone(),
            stream: stream.clone(),
            sequence: sequence.clone(),
            node: st.node.clone(),
            user_ip: self.peer.ip().to_string(),
            stream_param: stream_param.clone(),
            width: 0,
            height: 0,
        };
        let begin = NewPush {
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
            .begin_push(&begin, events::push_begin(&st.cfg, &facts, now))
            .await
        {
            tracing::error!(stream, error = %e, "publish refused: catalogue unavailable");
            st.metrics.rtmp_refused(Refusal::Internal);
            let _ = st
                .catalog
                .release_stream_lease(&lease_key, &st.node_id)
                .await;
            let _ = session.reject_publish("NetStream.Publish.Failed", "server error");
            return Some((errcode::INTERNAL_ERROR, e.to_string()));
        }
        st.notifier.wake();
        let key = StreamKey {
            app: app.clone(),
            stream: stream.clone(),
        };
        let recorder = match st.parking.take(&key) {
            Some(mut rec) => {
                tracing::info!(app, stream, "push resumes the parked recording");
                rec.resume();
                Some(rec)
            }
            None => snapshot.record_template_for(&app, &stream).map(|t| {
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
                    },
                    &t,
                    st.storage.spool_dir(),
                )
                .with_meters(st.metrics.record_meters())
            }),
        };
        let mut recorder = recorder;
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
            rec.refuse(&reason);
            let (ctx, statuses) = (rec.context().clone(), rec.take_statuses());
            crate::emit_statuses(&st, &ctx, statuses).await;
        }
        tracing::info!(peer = %self.peer, app, stream, sequence, recording = recorder.is_some(), "publish started");
        let _ = session.accept_publish();
        st.metrics.rtmp_publish();
        self.push = Some(ActivePush {
            _lease: lease,
            facts,
            started_ms: now,
            recorder,
            live,
        });
        None
    }

    /// Hands closed files to the blocking pool for finalize + catalogue (after `after`, if
    /// given, is cancelled).
    fn spawn_finalize(&mut self, after: Option<&CancellationToken>) {
        for c in self.closed.drain(..) {
            let st = self.st.clone();
            self.st
                .tasks
                .spawn(crate::commit_file(st, c, after.cloned()));
        }
    }

    /// Push over: close the recording, record the end and its event 0.
    async fn end_push(&mut self, errcode: i32, reason: &str) {
        let Some(mut p) = self.push.take() else {
            return;
        };
        let st = self.st.clone();
        let now = st.clock.now_ms();
        // Files closed now (and any a split closed in the last read) are finalized at once,
        // alongside the commits below; their rows wait for event 0: `pushed_end`, cancelled
        // on every way out of here.
        let pushed_end = CancellationToken::new();
        let _open_gate = pushed_end.clone().drop_guard();
        // The recording's last status events (332) go in with event 0, in one commit.
        let mut statuses = Vec::new();
        if let Some(mut rec) = p.recorder.take() {
            if let Some((_, w, h)) = rec.video_info() {
                p.facts.width = w;
                p.facts.height = h;
            }
            if rec.resume_ms() > 0 {
                rec.flush(now, &mut self.closed, &mut self.errors);
                // Parked before the lease is released, so a reconnect always finds it.
                let key = StreamKey {
                    app: p.facts.appname.clone(),
                    stream: p.facts.stream.clone(),
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
                        crate::emit_statuses(&st2, &ctx, statuses).await;
                    }
                    for e in errors {
                        tracing::error!(error = %e, "recording stopped");
                    }
                    for c in closed {
                        st2.tasks.spawn(crate::commit_file(st2.clone(), c, None));
                    }
                });
            } else {
                rec.finish(now, &mut self.closed, &mut self.errors);
                let changes = rec.take_statuses();
                statuses = crate::status_events(&st, rec.context(), changes);
            }
        }
        self.spawn_finalize(Some(&pushed_end));
        for e in self.errors.drain(..) {
            tracing::error!(error = %e, "recording stopped");
        }
        let duration = (now - p.started_ms).max(0) as u64;
        let ev = events::push_end(&st.cfg, &p.facts, duration, errcode, reason, now);
        if let Err(e) = st
            .catalog
            .end_push_after(
                &p.facts.sequence,
                now,
                errcode,
                reason,
                statuses,
                ev.into_iter().collect(),
            )
            .await
        {
            tracing::error!(sequence = p.facts.sequence, error = %e, "could not record push end");
        }
        pushed_end.cancel();
        st.notifier.wake();
        // After the end is recorded: a session is never open without its lease.
        let lease_key = livetape_catalog::stream_lease_key(&p.facts.appname, &p.facts.stream);
        if let Err(e) = st
            .catalog
            .release_stream_lease(&lease_key, &st.node_id)
            .await
        {
            // It expires on its own within `lease_s`.
            tracing::warn!(stream = p.facts.stream, error = %e, "could not release the stream lease");
        }
        tracing::info!(
            stream = p.facts.stream,
            sequence = p.facts.sequence,
            errcode,
            reason,
            duration_ms = duration,
            "publish ended"
        );
    }
}

/// The next point on a process-wide grid of [`READ_COALESCE`] steps after `now`. Every
/// connection sleeps until a grid point, so their timers fire together: the runtime wakes once
/// per step for all streams, not once per stream (a thread wake-up is a context switch, which
/// is most of what a sleeping-then-reading stream costs).
fn next_tick(now: tokio::time::Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    let step = READ_COALESCE.as_nanos();
    let ticks = now.duration_since(epoch).as_nanos() / step + 1;
    epoch + Duration::from_nanos(u64::try_from(ticks * step).unwrap_or(u64::MAX))
}

/// Makes room for a read of `want` bytes without growing an allocation in place (`reserve`
/// doubles, so a long-lived connection would creep up to several times `want`): the buffer is
/// reclaimed when nothing split off it is alive any more, else the unparsed tail (at most a
/// partial chunk) moves to a fresh buffer of `want` plus the tail.
fn make_room(buf: &mut BytesMut, want: usize) {
    if buf.capacity() - buf.len() >= want || buf.try_reclaim(want) {
        return;
    }
    let mut fresh = BytesMut::with_capacity(want + buf.len());
    fresh.extend_from_slice(buf);
    *buf = fresh;
}

/// Tencent-style push session id: a decimal u63.
pub fn new_sequence() -> String {
    (rand::random::<u64>() >> 1).to_string()
}

/// `rtmp://host:port/app` → `host`.
fn host_of(tc_url: &str) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn read_buffer_never_grows_past_want_plus_tail() {
        let mut buf = bytes::BytesMut::new();
        let mut alive = Vec::new();
        for round in 0..100 {
            super::make_room(&mut buf, super::READ_BUFFER_MIN);
            assert!(buf.capacity() - buf.len() >= super::READ_BUFFER_MIN);
            assert!(
                buf.capacity() <= super::READ_BUFFER_MIN + 1000,
                "round {round}"
            );
            // A read fills most of it; the parser splits off all but a partial chunk, and the
            // split-off payload is still alive (queued) on every other round.
            buf.resize(buf.len() + super::READ_BUFFER_MIN - 10, round as u8);
            let keep = buf.split_to(buf.len() - 1000).freeze();
            if round % 2 == 1 {
                alive.push(keep);
            }
        }
    }

    #[test]
    fn ticks_fall_on_one_grid() {
        let t0 = tokio::time::Instant::now();
        let a = super::next_tick(t0);
        let b = super::next_tick(t0 + std::time::Duration::from_millis(7));
        let c = super::next_tick(a);
        assert!(a > t0 && a - t0 <= super::READ_COALESCE);
        // Two connections sleeping at different moments within a step wake together.
        assert!(b == a || b == c);
        assert_eq!(c - a, super::READ_COALESCE);
    }

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
