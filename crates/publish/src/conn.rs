//! The IO shell around one `ClientSession`: a queue of outbound `Bytes` pieces written with
//! `writev`, and a read side that is always polled so pings and acks are answered while we send.

use crate::{PublishError, STALL_TIMEOUT};
use bytes::{Buf, Bytes, BytesMut};
use livetape_rtmp::{ClientConfig, ClientEvent, ClientSession};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, sleep_until};

/// Pieces handed to one `writev` (well under IOV_MAX = 1024).
const MAX_IOV: usize = 128;
/// Queued bytes above which sending frames waits for the socket.
const HIGH_WATER: usize = 256 * 1024;
/// Read buffer; servers send publishers only small control messages.
const READ_CAPACITY: usize = 16 * 1024;

pub(crate) struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    pub(crate) session: ClientSession,
    pub(crate) events: Vec<ClientEvent>,
    queue: VecDeque<Bytes>,
    queued: usize,
    pieces: Vec<Bytes>,
    inbuf: BytesMut,
    eof: bool,
    pub(crate) written: u64,
}

enum Io {
    Read(usize),
    Wrote(usize),
    Deadline,
    Stalled,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, config: ClientConfig) -> Self {
        let (rd, wr) = stream.into_split();
        Self {
            rd,
            wr,
            session: ClientSession::new(config),
            events: Vec::new(),
            queue: VecDeque::new(),
            queued: 0,
            pieces: Vec::new(),
            inbuf: BytesMut::with_capacity(READ_CAPACITY),
            eof: false,
            written: 0,
        }
    }

    fn collect_output(&mut self) {
        self.session.take_output_into(&mut self.pieces);
        for p in self.pieces.drain(..) {
            self.queued += p.len();
            self.queue.push_back(p);
        }
    }

    /// One IO event: a read (handled), a write, or `deadline` passing. Reads are preferred so
    /// the server's pings and acks never wait behind our media.
    pub(crate) async fn step(
        &mut self,
        deadline: Option<Instant>,
        during: &'static str,
    ) -> Result<(), PublishError> {
        self.collect_output();
        let stall = Instant::now() + STALL_TIMEOUT;
        let wake = deadline.map_or(stall, |d| d.min(stall));
        let io = {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (slot, piece) in slices.iter_mut().zip(&self.queue) {
                *slot = IoSlice::new(piece);
                n += 1;
            }
            let (rd, wr, inbuf) = (&mut self.rd, &mut self.wr, &mut self.inbuf);
            if inbuf.capacity() - inbuf.len() < 1024 {
                inbuf.reserve(READ_CAPACITY);
            }
            tokio::select! {
                biased;
                r = rd.read_buf(inbuf), if !self.eof => {
                    Io::Read(r.map_err(|source| PublishError::Io { during, source })?)
                }
                r = wr.write_vectored(&slices[..n]), if n > 0 => {
                    Io::Wrote(r.map_err(|source| PublishError::Io { during, source })?)
                }
                _ = sleep_until(wake) => {
                    // Idle is fine (a long gap between frames); stuck output is not.
                    if deadline.is_some_and(|d| d <= Instant::now()) || n == 0 {
                        Io::Deadline
                    } else {
                        Io::Stalled
                    }
                }
            }
        };
        match io {
            Io::Read(0) => {
                self.eof = true;
                return Err(PublishError::Closed(during));
            }
            Io::Read(_) => {
                let res = self.session.handle_input(&self.inbuf, &mut self.events);
                self.inbuf.clear();
                res?;
            }
            Io::Wrote(0) => {
                return Err(PublishError::Io {
                    during,
                    source: std::io::ErrorKind::WriteZero.into(),
                });
            }
            Io::Wrote(n) => self.advance(n),
            Io::Deadline => {}
            Io::Stalled => return Err(PublishError::Timeout("waiting for the socket")),
        }
        Ok(())
    }

    fn advance(&mut self, mut n: usize) {
        self.written += n as u64;
        self.queued -= n.min(self.queued);
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.queue.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// The server's refusal (onStatus error), if one arrived.
    pub(crate) fn take_rejection(&mut self) -> Option<PublishError> {
        self.events.drain(..).find_map(|e| match e {
            ClientEvent::Rejected { code, description } => {
                Some(PublishError::Rejected { code, description })
            }
            ClientEvent::Connected { .. } | ClientEvent::Publishing => None,
        })
    }

    /// Lets frames accumulate into big `writev`s, but never more than [`HIGH_WATER`] bytes.
    pub(crate) async fn backpressure(&mut self) -> Result<(), PublishError> {
        self.collect_output();
        while self.queued >= HIGH_WATER {
            self.step(None, "publishing").await?;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self, during: &'static str) -> Result<(), PublishError> {
        self.collect_output();
        while !self.queue.is_empty() {
            self.step(None, during).await?;
            self.collect_output();
        }
        Ok(())
    }

    /// Half-closes, then reads until the server closes or `grace` passes, so that closing never
    /// leaves unread bytes behind (which would turn our FIN into an RST).
    /// Reads (without closing our side) until the server closes or `limit` passes.
    pub(crate) async fn wait_for_close(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.eof {
            self.inbuf.clear();
            if self.inbuf.capacity() < 1024 {
                self.inbuf.reserve(READ_CAPACITY);
            }
            match tokio::time::timeout_at(deadline, self.rd.read_buf(&mut self.inbuf)).await {
                Ok(Ok(0)) => {
                    self.eof = true;
                    break;
                }
                Ok(Err(_)) | Err(_) => break,
                Ok(Ok(_)) => {
                    let _ = self.session.handle_input(&self.inbuf, &mut self.events);
                }
            }
        }
    }

    pub(crate) async fn close_gracefully(&mut self, grace: Duration) {
        let _ = self.wr.shutdown().await;
        let deadline = Instant::now() + grace;
        while !self.eof {
            self.inbuf.clear();
            if self.inbuf.capacity() < 1024 {
                self.inbuf.reserve(READ_CAPACITY);
            }
            match tokio::time::timeout_at(deadline, self.rd.read_buf(&mut self.inbuf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(_)) => {
                    // Only to keep ack counters current; replies can no longer be sent.
                    let _ = self.session.handle_input(&self.inbuf, &mut self.events);
                }
            }
        }
    }
}
