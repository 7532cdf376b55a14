//! RTMP ingest: the thin tokio driver around the sans-IO `livetape-rtmp` session.
//!
//! One task per connection: read → session → events (publish → `push::begin`, media →
//! `Push::media`) → one write-out per read (`Push::after_read`) → replies. A push ends
//! (`Push::end`) however the connection does.

use crate::config::{PUBLISH_DEADLINE, WRITE_TIMEOUT};
use crate::metrics::Refusal;
use crate::net::budget::Charge;
use crate::net::{ConnLimits, MemoryBudget, WriteTimeout};
use crate::push::{self, PublishRequest, Push};
use crate::state::AppState;
use bytes::BytesMut;
use livetape_rtmp::{Event, ServerSession, SessionConfig};
use livetape_tencent::errcode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// `limits`: the `[server] rtmp_max_connections*` caps, fitted to the descriptor limit.
pub(crate) async fn serve(state: Arc<AppState>, listener: TcpListener, limits: Arc<ConnLimits>) {
    let budget = MemoryBudget::new(state.cfg.server.rtmp_pre_publish_budget_bytes);
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
        let permit = match limits.try_open(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                state.metrics.rtmp_refused(Refusal::ConnectionLimit);
                tracing::warn!(%peer, reason = %why, "rtmp connection refused");
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        state.metrics.rtmp_connection();
        let st = state.clone();
        let charge = budget.charge();
        state.tasks.spawn(async move {
            let _permit = permit;
            let mut conn = Connection::new(st, peer, charge);
            let (errcode, reason) = conn.run(WriteTimeout::new(sock, WRITE_TIMEOUT)).await;
            if let Some(p) = conn.push.take() {
                p.end(errcode, &reason).await;
            }
        });
    }
}

struct Connection {
    st: Arc<AppState>,
    peer: SocketAddr,
    push: Option<Push>,
    /// The server's stop, or this push cut through the API (`Hub::cut`).
    cut: tokio_util::sync::CancellationToken,
    /// What this connection holds until it publishes (then released: a publisher's memory
    /// is bounded per stream instead).
    charge: Charge,
}

impl Connection {
    fn new(st: Arc<AppState>, peer: SocketAddr, charge: Charge) -> Self {
        Self {
            cut: st.stop.child_token(),
            st,
            peer,
            push: None,
            charge,
        }
    }

    /// Why [`Self::cut`] fired: the server stops, or the API dropped the stream.
    fn cut_reason(&self) -> (i32, String) {
        if self.st.stop.is_cancelled() {
            (errcode::INTERNAL_ERROR, "server shutting down".into())
        } else {
            (errcode::DROPPED, errcode::errmsg(errcode::DROPPED).into())
        }
    }

    /// Runs the connection until it ends; returns the Tencent errcode and message for event 0.
    async fn run(&mut self, mut sock: WriteTimeout<TcpStream>) -> (i32, String) {
        let idle = Duration::from_secs(self.st.cfg.server.idle_timeout_s);
        let publish_by = tokio::time::Instant::now() + PUBLISH_DEADLINE;
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
                    _ = self.cut.cancelled() => return self.cut_reason(),
                    () = tokio::time::sleep_until(next_tick(tokio::time::Instant::now())) => {}
                }
            }
            make_room(&mut buf, want);
            let offered = buf.capacity() - buf.len();
            let read = tokio::select! {
                _ = self.cut.cancelled() => return self.cut_reason(),
                r = tokio::time::timeout(idle, sock.read_buf(&mut buf)) => r,
                () = tokio::time::sleep_until(publish_by), if self.push.is_none() => {
                    self.st.metrics.rtmp_refused(Refusal::PublishDeadline);
                    tracing::info!(peer = %self.peer, "rtmp: no publish within {} s; closed", PUBLISH_DEADLINE.as_secs());
                    return (errcode::NO_DATA_TIMEOUT, format!("no publish within {} s", PUBLISH_DEADLINE.as_secs()));
                }
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
            if self.push.is_none() && !self.charge.set(buf.capacity() + session.buffered_bytes()) {
                self.st.metrics.rtmp_refused(Refusal::MemoryBudget);
                tracing::warn!(peer = %self.peer, "rtmp: connections that have not published hold the whole pre-publish memory budget; closed");
                return (
                    errcode::INTERNAL_ERROR,
                    "pre-publish memory budget exhausted".into(),
                );
            }
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
            if let Some(p) = self.push.as_mut() {
                p.after_read();
            }
            while let Some(out) = session.take_output() {
                if let Err(e) = sock.write_all(&out).await {
                    return (errcode::NETWORK_ERROR, format!("send() error: {e}"));
                }
            }
            if let Some(r) = end {
                return r;
            }
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
                if let Some(p) = self.push.as_mut() {
                    p.media(&frame).await;
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
        if self.push.is_some() {
            let _ = session.reject_publish(
                "NetStream.Publish.BadName",
                "this connection is already publishing",
            );
            return None;
        }
        let req = PublishRequest {
            app,
            stream,
            stream_param,
            tc_url,
            peer: self.peer,
            cut: self.cut.clone(),
        };
        match push::begin(&self.st, req).await {
            Ok(p) => {
                let _ = session.accept_publish();
                self.push = Some(p);
                self.charge.set(0);
                None
            }
            Err(refused) => {
                let _ = session.reject_publish(refused.code, &refused.description);
                Some((refused.errcode, refused.reason))
            }
        }
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
}
