//! Sans-IO RTMP *publishing* client: the mirror image of [`crate::ServerSession`], used by load
//! generators and relays to push [`MediaFrame`]s to an RTMP server.
//!
//! Output is an iovec (`Vec<Bytes>`): chunk headers are written into a small shared buffer and
//! media payloads are appended as `Bytes` slices of the caller's frames, so a `writev` sends
//! frame data without it ever being copied in user space.

use crate::amf0::{self, Amf0Value};
use crate::chunk::{ChunkDecoder, EXTENDED, INITIAL_CHUNK_SIZE, RawMessage, write_message};
use crate::handshake::RTMP_VERSION;
use crate::wire::Reader;
use crate::{
    DEFAULT_WINDOW_ACK_SIZE, HANDSHAKE_RANDOM_LEN, HANDSHAKE_SIZE, MAX_MESSAGE_SIZE, RtmpError,
};
use crate::{
    SUPPORTED_FOUR_CCS,
    session::{
        ACKNOWLEDGEMENT, AUDIO, COMMAND_AMF0, COMMAND_AMF3, DATA_AMF0, PING_REQUEST, PING_RESPONSE,
        SET_CHUNK_SIZE, SET_PEER_BANDWIDTH, USER_CONTROL, VIDEO, WINDOW_ACK_SIZE,
    },
};
use bytes::{BufMut, Bytes, BytesMut};
use livetape_media::{MediaFrame, MediaKind};

/// Chunk size the client announces right after the handshake (ffmpeg and OBS use 4096 too).
pub const CLIENT_CHUNK_SIZE: u32 = 4096;
/// Chunk payload pieces shorter than this are copied next to their header instead of becoming
/// their own iovec entry: a memcpy of a few hundred bytes is cheaper than an extra slice.
const COPY_THRESHOLD: usize = 256;
/// Capacity reserved at a time for chunk headers and small messages.
const HEADER_BUF_CAPACITY: usize = 16 * 1024;
/// Largest frame payload: the 24-bit message length minus room for the `@setDataFrame` prefix.
const MAX_FRAME_LEN: usize = 0x00ff_ffff - 16;
/// Bytes of S0+S1+S2.
const SERVER_HANDSHAKE_LEN: usize = 1 + 2 * HANDSHAKE_SIZE;

// Outbound chunk stream ids, as ffmpeg assigns them.
const CSID_CONTROL: u8 = 2;
const CSID_COMMAND: u8 = 3;
const CSID_AUDIO: u8 = 4;
const CSID_DATA: u8 = 5;
const CSID_VIDEO: u8 = 6;
const CSID_STREAM: u8 = 8;

// Transaction ids of the calls whose answers we wait for.
const TXN_CONNECT: f64 = 1.0;
const TXN_RELEASE_STREAM: f64 = 2.0;
const TXN_FC_PUBLISH: f64 = 3.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const TXN_PUBLISH: f64 = 5.0;
const TXN_FC_UNPUBLISH: f64 = 6.0;
const TXN_DELETE_STREAM: f64 = 7.0;

/// What to connect and publish to. `Default` has an all-zero C1 filler and no `fourCcList`.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `app` of the connect command (may carry `?query`).
    pub app: String,
    /// `tcUrl`, e.g. `rtmp://host:1935/app`.
    pub tc_url: String,
    /// Publish name including any `?query`, e.g. `stream?txSecret=..`.
    pub stream: String,
    pub flash_ver: String,
    /// Enhanced RTMP codecs to offer in `connect`; empty = legacy client (not sent).
    pub four_cc_list: Vec<String>,
    /// Time field of C1.
    pub handshake_time_ms: u32,
    /// C1 filler (echoed by the server in S2; the simple handshake does not check it).
    pub handshake_random: [u8; HANDSHAKE_RANDOM_LEN],
    /// Our outbound chunk size, announced right after the handshake.
    pub chunk_size: u32,
    /// Largest inbound message accepted; clamped to [`MAX_MESSAGE_SIZE`].
    pub max_message_size: u32,
    /// Send `onMetaData` behind `@setDataFrame` (what OBS and ffmpeg do); `false` sends the
    /// bare `onMetaData` data message older encoders use.
    pub set_data_frame: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            app: String::new(),
            tc_url: String::new(),
            stream: String::new(),
            flash_ver: "FMLE/3.0 (compatible; livetape)".into(),
            four_cc_list: Vec::new(),
            handshake_time_ms: 0,
            handshake_random: [0; HANDSHAKE_RANDOM_LEN],
            chunk_size: CLIENT_CHUNK_SIZE,
            max_message_size: MAX_MESSAGE_SIZE,
            set_data_frame: true,
        }
    }
}

impl ClientConfig {
    /// Offers every FourCC we can ingest ourselves (`hvc1`, `avc1`, `av01`).
    pub fn with_enhanced_rtmp(mut self) -> Self {
        self.four_cc_list = ["hvc1", "avc1", "av01"].map(String::from).to_vec();
        debug_assert!(
            self.four_cc_list
                .iter()
                .all(|c| SUPPORTED_FOUR_CCS.contains(&c.as_str()))
        );
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded; `four_cc_list` is the server's E-RTMP answer (`None` if it sent none).
    Connected { four_cc_list: Option<Vec<String>> },
    /// NetStream.Publish.Start: [`ClientSession::send_frame`] may be called from now on.
    Publishing,
    /// The server refused `connect`, `createStream` or `publish`; close the connection.
    Rejected { code: String, description: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshake,
    Connecting,
    CreatingStream,
    PublishPending,
    Publishing,
    Rejected,
    Finished,
}

/// Header state of one outbound chunk stream, for choosing the smallest header format.
#[derive(Clone, Copy, Default)]
struct OutStream {
    /// `None` until the first message (which must use format 0).
    timestamp: Option<u32>,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// Delta of the last format 1/2 header; a format 3 header may start a new message only when
    /// its delta is this one. `None` after format 0, whose implied delta servers disagree on.
    delta: Option<u32>,
}

/// One publishing connection, sans-IO. Drive it like the server session: feed received bytes to
/// [`Self::handle_input`], write what [`Self::take_output`] returns.
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    failed: bool,
    inbuf: BytesMut,
    chunks: ChunkDecoder,
    /// Small writes (headers, commands) accumulate here; frozen into `out` before each payload.
    hdr: BytesMut,
    out: Vec<Bytes>,
    out_streams: [OutStream; 3],
    stream_id: u32,
    bytes_received: u64,
    bytes_sent: u64,
    ack_window: u32,
    last_ack_sent: u64,
    /// Bytes the server acknowledged, unwrapped from its 32-bit sequence numbers.
    acked: u64,
    last_ack_seq: u32,
    /// Window Ack Size we last told the server (answering Set Peer Bandwidth).
    announced_window: Option<u32>,
}

impl ClientSession {
    /// Starts the session; C0+C1 are ready in [`Self::take_output`] right away.
    pub fn new(mut config: ClientConfig) -> Self {
        config.max_message_size = config.max_message_size.min(MAX_MESSAGE_SIZE);
        config.chunk_size = config
            .chunk_size
            .clamp(INITIAL_CHUNK_SIZE, MAX_MESSAGE_SIZE);
        let mut s = Self {
            state: State::Handshake,
            failed: false,
            inbuf: BytesMut::new(),
            chunks: ChunkDecoder::new(config.max_message_size),
            hdr: BytesMut::with_capacity(HEADER_BUF_CAPACITY),
            out: Vec::new(),
            out_streams: [OutStream::default(); 3],
            stream_id: 0,
            bytes_received: 0,
            bytes_sent: 0,
            ack_window: DEFAULT_WINDOW_ACK_SIZE,
            last_ack_sent: 0,
            acked: 0,
            last_ack_seq: 0,
            announced_window: None,
            config,
        };
        s.reserve(1 + HANDSHAKE_SIZE);
        s.hdr.put_u8(RTMP_VERSION);
        s.hdr.put_u32(s.config.handshake_time_ms);
        s.hdr.put_u32(0);
        s.hdr.put_slice(&s.config.handshake_random);
        s.bytes_sent = (1 + HANDSHAKE_SIZE) as u64;
        s
    }

    /// True once NetStream.Publish.Start arrived (and until [`Self::finish`]).
    pub fn is_publishing(&self) -> bool {
        self.state == State::Publishing
    }

    /// Message stream id the server assigned in `createStream` (0 before).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Bytes handed out by [`Self::take_output`] so far plus any still pending.
    pub fn bytes_queued(&self) -> u64 {
        self.bytes_sent
    }

    /// Total bytes fed in, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Bytes the server has acknowledged receiving (its Acknowledgement messages).
    pub fn acked_bytes(&self) -> u64 {
        self.acked
    }

    /// Appends the pending output pieces to `dst` (in order) and clears them.
    pub fn take_output_into(&mut self, dst: &mut Vec<Bytes>) {
        self.freeze_hdr();
        dst.append(&mut self.out);
    }

    /// Pending output pieces, in order (empty if nothing is pending).
    pub fn take_output(&mut self) -> Vec<Bytes> {
        self.freeze_hdr();
        std::mem::take(&mut self.out)
    }

    /// Feeds received bytes. Events are appended to `events`. Errors are fatal for the connection.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), RtmpError> {
        if self.failed {
            return Err(RtmpError::Failed);
        }
        self.inbuf.extend_from_slice(input);
        self.bytes_received += input.len() as u64;
        let mut buf = std::mem::take(&mut self.inbuf);
        let result = self.process(&mut buf, events);
        self.inbuf = buf;
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Sends one frame as an RTMP audio/video message, or `onMetaData` script data as an
    /// `@setDataFrame` data message (see [`ClientConfig::set_data_frame`]). Timestamps are the low 32 bits of `dts_ms` (RTMP wraps).
    pub fn send_frame(&mut self, frame: &MediaFrame) -> Result<(), RtmpError> {
        if self.state != State::Publishing {
            return Err(RtmpError::InvalidState("send_frame while not publishing"));
        }
        if frame.payload.len() > MAX_FRAME_LEN {
            return Err(RtmpError::Protocol(
                "frame larger than an RTMP message can carry",
            ));
        }
        // Truncation is the RTMP timestamp wrap; the server unwraps it again.
        let ts = frame.dts_ms as u32;
        match frame.kind {
            MediaKind::Audio => self.write_media(0, CSID_AUDIO, AUDIO, ts, &frame.payload),
            MediaKind::Video => self.write_media(1, CSID_VIDEO, VIDEO, ts, &frame.payload),
            MediaKind::Script if !self.config.set_data_frame => {
                self.write_media(2, CSID_DATA, DATA_AMF0, ts, &frame.payload)
            }
            MediaKind::Script => {
                // Script data is rare (metadata), so one copy to prepend the handler is fine.
                let mut body = BytesMut::with_capacity(16 + frame.payload.len());
                Amf0Value::String("@setDataFrame".into()).encode(&mut body);
                body.put_slice(&frame.payload);
                self.write_media(2, CSID_DATA, DATA_AMF0, ts, &body.freeze());
            }
        }
        Ok(())
    }

    /// Ends the publish: FCUnpublish + deleteStream. The driver should flush the output, then
    /// read until the server closes (or a grace period passes) before closing the socket.
    pub fn finish(&mut self) -> Result<(), RtmpError> {
        if self.state != State::Publishing {
            return Err(RtmpError::InvalidState("finish without an active publish"));
        }
        let name = Amf0Value::String(self.config.stream.clone());
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                str_value("FCUnpublish"),
                Amf0Value::Number(TXN_FC_UNPUBLISH),
                Amf0Value::Null,
                name,
            ],
        );
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                str_value("deleteStream"),
                Amf0Value::Number(TXN_DELETE_STREAM),
                Amf0Value::Null,
                Amf0Value::Number(f64::from(self.stream_id)),
            ],
        );
        self.state = State::Finished;
        Ok(())
    }

    fn process(
        &mut self,
        buf: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), RtmpError> {
        if self.state == State::Handshake {
            if let Some(&s0) = buf.first()
                && s0 != RTMP_VERSION
            {
                return Err(RtmpError::UnsupportedVersion(s0));
            }
            if buf.len() < SERVER_HANDSHAKE_LEN {
                return Ok(());
            }
            let server = buf.split_to(SERVER_HANDSHAKE_LEN);
            // C2 echoes S1; S2 (our C1 echoed) is not verified, as in the simple handshake.
            let s1 = server.get(1..1 + HANDSHAKE_SIZE).unwrap_or_default();
            self.reserve(HANDSHAKE_SIZE);
            self.hdr.put_slice(s1);
            self.bytes_sent += HANDSHAKE_SIZE as u64;
            self.send_control(SET_CHUNK_SIZE, &self.config.chunk_size.to_be_bytes());
            self.send_connect();
            self.state = State::Connecting;
        }
        while let Some(msg) = self.chunks.decode(buf)? {
            self.on_message(msg, events)?;
        }
        if self.ack_window > 0
            && self.bytes_received - self.last_ack_sent >= u64::from(self.ack_window)
        {
            self.last_ack_sent = self.bytes_received;
            // Sequence numbers are the byte count modulo 2^32.
            self.send_control(ACKNOWLEDGEMENT, &(self.bytes_received as u32).to_be_bytes());
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        m: RawMessage,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), RtmpError> {
        match m.type_id {
            SET_CHUNK_SIZE => {
                let size = be_u32("Set Chunk Size", &m.payload)?;
                if size == 0 || size > 0x7fff_ffff {
                    return Err(RtmpError::InvalidChunkSize(size));
                }
                self.chunks.set_chunk_size(size);
            }
            crate::session::ABORT => self.chunks.abort(be_u32("Abort Message", &m.payload)?),
            ACKNOWLEDGEMENT => {
                let seq = be_u32("Acknowledgement", &m.payload)?;
                self.acked += u64::from(seq.wrapping_sub(self.last_ack_seq));
                self.last_ack_seq = seq;
            }
            WINDOW_ACK_SIZE => self.ack_window = be_u32("Window Ack Size", &m.payload)?,
            SET_PEER_BANDWIDTH => {
                // RTMP §5.4.5: answer with Window Ack Size if it differs from what we announced.
                let size = be_u32("Set Peer Bandwidth", &m.payload)?;
                if self.announced_window != Some(size) {
                    self.announced_window = Some(size);
                    self.send_control(WINDOW_ACK_SIZE, &size.to_be_bytes());
                }
            }
            USER_CONTROL => {
                let mut r = Reader::new(&m.payload);
                let short = RtmpError::ShortMessage {
                    what: "User Control",
                    len: m.payload.len(),
                };
                if r.u16().ok_or(short.clone())? == PING_REQUEST {
                    let ts = r.u32().ok_or(short)?;
                    let mut pong = [0u8; 6];
                    pong[..2].copy_from_slice(&PING_RESPONSE.to_be_bytes());
                    pong[2..].copy_from_slice(&ts.to_be_bytes());
                    self.send_control(USER_CONTROL, &pong);
                }
            }
            COMMAND_AMF0 => self.on_command(&m.payload, events)?,
            COMMAND_AMF3 => self.on_command(m.payload.get(1..).unwrap_or_default(), events)?,
            // Media, data and anything else a server might send a publisher: not ours to handle.
            _ => {}
        }
        Ok(())
    }

    fn on_command(
        &mut self,
        payload: &[u8],
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), RtmpError> {
        let mut values = amf0::decode_all(payload)?.into_iter();
        let Some(Amf0Value::String(name)) = values.next() else {
            return Ok(());
        };
        let txn = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let props = values.next().unwrap_or(Amf0Value::Null);
        let info = values.next().unwrap_or(Amf0Value::Null);
        match (name.as_str(), self.state) {
            ("_result", State::Connecting) if txn == TXN_CONNECT => {
                // E-RTMP servers answer in the information object; accept the properties too.
                let four_cc_list =
                    [&info, &props]
                        .into_iter()
                        .find_map(|o| match o.get("fourCcList") {
                            Some(Amf0Value::StrictArray(l)) => Some(
                                l.iter()
                                    .filter_map(|v| v.as_str().map(str::to_owned))
                                    .collect(),
                            ),
                            _ => None,
                        });
                events.push(ClientEvent::Connected { four_cc_list });
                let stream = str_value(&self.config.stream);
                for (cmd, txn) in [
                    ("releaseStream", TXN_RELEASE_STREAM),
                    ("FCPublish", TXN_FC_PUBLISH),
                ] {
                    self.send_command(
                        CSID_COMMAND,
                        0,
                        &[
                            str_value(cmd),
                            Amf0Value::Number(txn),
                            Amf0Value::Null,
                            stream.clone(),
                        ],
                    );
                }
                self.send_command(
                    CSID_COMMAND,
                    0,
                    &[
                        str_value("createStream"),
                        Amf0Value::Number(TXN_CREATE_STREAM),
                        Amf0Value::Null,
                    ],
                );
                self.state = State::CreatingStream;
            }
            ("_result", State::CreatingStream) if txn == TXN_CREATE_STREAM => {
                let id = info
                    .as_number()
                    .filter(|n| (0.0..=f64::from(u32::MAX)).contains(n))
                    .ok_or(RtmpError::Protocol(
                        "createStream result without a stream id",
                    ))?;
                self.stream_id = id as u32;
                self.send_command(
                    CSID_STREAM,
                    self.stream_id,
                    &[
                        str_value("publish"),
                        Amf0Value::Number(TXN_PUBLISH),
                        Amf0Value::Null,
                        str_value(&self.config.stream),
                        str_value("live"),
                    ],
                );
                self.state = State::PublishPending;
            }
            ("_error", State::Connecting | State::CreatingStream | State::PublishPending)
                if txn == TXN_CONNECT || txn == TXN_CREATE_STREAM || txn == TXN_PUBLISH =>
            {
                self.reject(&info, events);
            }
            ("onStatus", State::PublishPending | State::Publishing) => {
                let code = info.get("code").and_then(Amf0Value::as_str).unwrap_or("");
                let level = info.get("level").and_then(Amf0Value::as_str).unwrap_or("");
                if code == "NetStream.Publish.Start" && self.state == State::PublishPending {
                    self.state = State::Publishing;
                    events.push(ClientEvent::Publishing);
                } else if level == "error" {
                    self.reject(&info, events);
                }
            }
            // Results of releaseStream/FCPublish/FCUnpublish, onBWDone, onFCPublish, …
            _ => {}
        }
        Ok(())
    }

    fn reject(&mut self, info: &Amf0Value, events: &mut Vec<ClientEvent>) {
        let text = |k| {
            info.get(k)
                .and_then(Amf0Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        self.state = State::Rejected;
        events.push(ClientEvent::Rejected {
            code: text("code"),
            description: text("description"),
        });
    }

    fn send_connect(&mut self) {
        let c = &self.config;
        let mut obj = vec![
            ("app".into(), str_value(&c.app)),
            ("type".into(), str_value("nonprivate")),
            ("flashVer".into(), str_value(&c.flash_ver)),
            ("tcUrl".into(), str_value(&c.tc_url)),
        ];
        if !c.four_cc_list.is_empty() {
            let list = c.four_cc_list.iter().map(|s| str_value(s)).collect();
            obj.push(("fourCcList".into(), Amf0Value::StrictArray(list)));
        }
        self.send_command(
            CSID_COMMAND,
            0,
            &[
                str_value("connect"),
                Amf0Value::Number(TXN_CONNECT),
                Amf0Value::Object(obj),
            ],
        );
    }

    fn send_command(&mut self, csid: u8, stream_id: u32, values: &[Amf0Value]) {
        let mut body = BytesMut::new();
        values.iter().for_each(|v| v.encode(&mut body));
        self.write_small(csid, COMMAND_AMF0, stream_id, &body);
    }

    fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        self.write_small(CSID_CONTROL, type_id, 0, payload);
    }

    /// Control and command messages: always format 0 on their own chunk streams, copied.
    fn write_small(&mut self, csid: u8, type_id: u8, stream_id: u32, payload: &[u8]) {
        self.reserve(payload.len() + 64);
        let before = self.hdr.len();
        write_message(
            &mut self.hdr,
            self.config.chunk_size,
            csid,
            0,
            type_id,
            stream_id,
            payload,
        );
        self.bytes_sent += (self.hdr.len() - before) as u64;
    }

    /// Chunks one media message with the smallest header its chunk stream allows; chunk payloads
    /// are `Bytes` slices of `payload` unless tiny.
    fn write_media(&mut self, slot: usize, csid: u8, type_id: u8, ts: u32, payload: &Bytes) {
        let len = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .min(0x00ff_ffff);
        let sid = self.stream_id;
        let Some(prev) = self.out_streams.get(slot).copied() else {
            return;
        };
        let delta = prev.timestamp.map(|p| ts.wrapping_sub(p));
        // Format 0 for the first message, a new stream id, or a step that is backwards or too
        // large for a 24-bit delta; otherwise the shortest header that inherits correctly.
        let fmt = match delta {
            Some(d) if prev.stream_id == sid && (d as i32) >= 0 && d < EXTENDED => {
                if prev.len == len && prev.type_id == type_id {
                    if prev.delta == Some(d) { 3 } else { 2 }
                } else {
                    1
                }
            }
            _ => 0,
        };
        let extended = fmt == 0 && ts >= EXTENDED;
        self.reserve(18);
        let before = self.hdr.len();
        self.hdr.put_u8((fmt << 6) | (csid & 0x3f));
        match fmt {
            0 => {
                self.hdr.put_uint(u64::from(ts.min(EXTENDED)), 3);
                self.hdr.put_uint(u64::from(len), 3);
                self.hdr.put_u8(type_id);
                self.hdr.put_u32_le(sid);
                if extended {
                    self.hdr.put_u32(ts);
                }
            }
            1 => {
                self.hdr.put_uint(u64::from(delta.unwrap_or(0)), 3);
                self.hdr.put_uint(u64::from(len), 3);
                self.hdr.put_u8(type_id);
            }
            2 => self.hdr.put_uint(u64::from(delta.unwrap_or(0)), 3),
            _ => {}
        }
        self.bytes_sent += (self.hdr.len() - before) as u64;
        if let Some(s) = self.out_streams.get_mut(slot) {
            *s = OutStream {
                timestamp: Some(ts),
                len,
                type_id,
                stream_id: sid,
                delta: if fmt == 0 { None } else { delta },
            };
        }

        let chunk = self.config.chunk_size as usize;
        let mut pos = 0;
        let end = len as usize;
        loop {
            let n = chunk.min(end - pos);
            self.push_payload(payload.slice(pos..pos + n));
            pos += n;
            if pos >= end {
                break;
            }
            self.reserve(5);
            self.hdr.put_u8(0xc0 | (csid & 0x3f));
            self.bytes_sent += 1;
            // Continuations repeat the extended timestamp, as ffmpeg and librtmp expect.
            if extended {
                self.hdr.put_u32(ts);
                self.bytes_sent += 4;
            }
        }
    }

    fn push_payload(&mut self, piece: Bytes) {
        self.bytes_sent += piece.len() as u64;
        if piece.len() < COPY_THRESHOLD {
            self.reserve(piece.len());
            self.hdr.put_slice(&piece);
        } else {
            self.freeze_hdr();
            self.out.push(piece);
        }
    }

    fn freeze_hdr(&mut self) {
        if !self.hdr.is_empty() {
            self.out.push(self.hdr.split().freeze());
        }
    }

    /// Makes room in the header buffer without reallocating in place: a fresh block is started
    /// when the current one is exhausted, earlier frozen pieces keep theirs.
    fn reserve(&mut self, n: usize) {
        if self.hdr.capacity() - self.hdr.len() < n {
            self.freeze_hdr();
            self.hdr = BytesMut::with_capacity(HEADER_BUF_CAPACITY.max(n));
        }
    }
}

fn str_value(s: &str) -> Amf0Value {
    Amf0Value::String(s.to_owned())
}

fn be_u32(what: &'static str, payload: &[u8]) -> Result<u32, RtmpError> {
    Reader::new(payload).u32().ok_or(RtmpError::ShortMessage {
        what,
        len: payload.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ServerSession, SessionConfig};
    use proptest::prelude::*;

    /// Drives a client against a real server session until it is publishing.
    fn publishing_client(config: ClientConfig) -> (ClientSession, ServerSession) {
        let mut c = ClientSession::new(config);
        let mut s = ServerSession::new(SessionConfig::default());
        let (mut ce, mut se) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            s.handle_input(&c.take_output().concat(), &mut se).unwrap();
            if se
                .iter()
                .any(|e| matches!(e, crate::Event::PublishRequested { .. }))
            {
                // Errors once accepted already; only the first call matters.
                let _ = s.accept_publish();
            }
            if let Some(out) = s.take_output() {
                c.handle_input(&out, &mut ce).unwrap();
            }
        }
        assert!(c.is_publishing(), "{ce:?}");
        (c, s)
    }

    fn cfg() -> ClientConfig {
        ClientConfig {
            app: "live".into(),
            tc_url: "rtmp://h/live".into(),
            stream: "s".into(),
            ..ClientConfig::default()
        }
    }

    /// Decodes client output, following its Set Chunk Size.
    fn decode(bytes: &[u8], d: &mut ChunkDecoder) -> Vec<RawMessage> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf).unwrap() {
            if m.type_id == SET_CHUNK_SIZE {
                d.set_chunk_size(be_u32("", &m.payload).unwrap());
            }
            out.push(m);
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn handshake_then_chunk_size_and_connect() {
        let mut c = ClientSession::new(cfg().with_enhanced_rtmp());
        let c01 = c.take_output().concat();
        assert_eq!(c01.len(), 1 + HANDSHAKE_SIZE);
        assert_eq!(c01[0], 3);
        let mut events = Vec::new();
        // Wrong S0 is fatal, and stays fatal.
        let mut bad = ClientSession::new(cfg());
        assert_eq!(
            bad.handle_input(&[6], &mut events),
            Err(RtmpError::UnsupportedVersion(6))
        );
        assert_eq!(bad.handle_input(&[3], &mut events), Err(RtmpError::Failed));

        let mut s = vec![3u8];
        s.extend((0..HANDSHAKE_SIZE).map(|i| (i * 3) as u8)); // S1
        s.extend(std::iter::repeat_n(0u8, HANDSHAKE_SIZE)); // S2
        c.handle_input(&s[..100], &mut events).unwrap();
        assert!(c.take_output().is_empty());
        c.handle_input(&s[100..], &mut events).unwrap();
        let out = c.take_output().concat();
        assert_eq!(
            &out[..HANDSHAKE_SIZE],
            &s[1..1 + HANDSHAKE_SIZE],
            "C2 echoes S1"
        );
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let msgs = decode(&out[HANDSHAKE_SIZE..], &mut d);
        assert_eq!(msgs[0].type_id, SET_CHUNK_SIZE);
        assert_eq!(&msgs[0].payload[..], 4096u32.to_be_bytes());
        let v = amf0::decode_all(&msgs[1].payload).unwrap();
        assert_eq!(v[0], str_value("connect"));
        assert_eq!(v[2].get("type"), Some(&str_value("nonprivate")));
        assert_eq!(v[2].get("tcUrl"), Some(&str_value("rtmp://h/live")));
        assert_eq!(
            v[2].get("fourCcList"),
            Some(&Amf0Value::StrictArray(
                ["hvc1", "avc1", "av01"].map(str_value).to_vec()
            ))
        );
        assert_eq!(c.bytes_queued(), (c01.len() + out.len()) as u64);
    }

    #[test]
    fn header_formats_extended_timestamps_and_zero_copy() {
        let (mut c, _) = publishing_client(cfg());
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        d.set_chunk_size(CLIENT_CHUNK_SIZE);
        c.take_output();
        let big = Bytes::from(vec![7u8; 9000]);
        let small = Bytes::from_static(&[0xaf, 1, 2, 3]);
        let base = 0x00ff_fff0u64;
        let frames = [
            (MediaKind::Video, 0, big.clone()),                  // fmt 0
            (MediaKind::Video, 40, big.clone()),                 // fmt 2: same length and type
            (MediaKind::Video, 80, big.clone()),                 // fmt 3: same delta
            (MediaKind::Video, 100, small.clone()),              // fmt 1: new length
            (MediaKind::Video, 90, small.clone()),               // fmt 0: backwards
            (MediaKind::Video, base, big.clone()),               // fmt 1 with a 24-bit delta
            (MediaKind::Video, base + 0x0100_0000, big.clone()), // fmt 0, extended
            (MediaKind::Video, 1 << 32, small.clone()),          // wraps to 0: backwards → fmt 0
        ];
        let mut firsts = Vec::new();
        let mut pieces = Vec::new();
        for (kind, dts, p) in &frames {
            c.send_frame(&MediaFrame::new(*kind, *dts, p.clone()))
                .unwrap();
            let out = c.take_output();
            firsts.push(out[0][0] >> 6);
            pieces.extend(out);
        }
        assert_eq!(firsts, [0, 2, 3, 1, 0, 1, 0, 0]);
        // Payload chunks are slices of the frame's buffer, not copies.
        let range = big.as_ptr() as usize..big.as_ptr() as usize + big.len();
        let shared = pieces
            .iter()
            .filter(|p| range.contains(&(p.as_ptr() as usize)))
            .count();
        assert_eq!(shared, 5 * 3, "3 chunk payloads per big frame");
        let msgs = decode(&pieces.concat(), &mut d);
        let got: Vec<_> = msgs
            .iter()
            .map(|m| (m.timestamp, m.payload.len()))
            .collect();
        let want: Vec<_> = frames
            .iter()
            .map(|(_, t, p)| (*t as u32, p.len()))
            .collect();
        assert_eq!(got, want);
        assert!(msgs.iter().zip(&frames).all(|(m, f)| m.payload == f.2));
    }

    #[test]
    fn pings_are_answered_and_acks_sent_per_window() {
        let (mut c, _) = publishing_client(cfg());
        c.take_output();
        let mut srv = BytesMut::new();
        write_message(
            &mut srv,
            128,
            2,
            0,
            WINDOW_ACK_SIZE,
            0,
            &1000u32.to_be_bytes(),
        );
        write_message(
            &mut srv,
            128,
            2,
            0,
            USER_CONTROL,
            0,
            &[0, 6, 0, 0, 0x12, 0x34],
        );
        write_message(
            &mut srv,
            128,
            2,
            0,
            ACKNOWLEDGEMENT,
            0,
            &777u32.to_be_bytes(),
        );
        let mut events = Vec::new();
        c.handle_input(&srv, &mut events).unwrap();
        assert_eq!(c.acked_bytes(), 777);
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        d.set_chunk_size(CLIENT_CHUNK_SIZE);
        let msgs = decode(&c.take_output().concat(), &mut d);
        let got: Vec<_> = msgs
            .iter()
            .map(|m| (m.type_id, m.payload.to_vec()))
            .collect();
        // More than 1000 bytes were received since the handshake began → one ack.
        let seq = (c.bytes_received() as u32).to_be_bytes().to_vec();
        assert_eq!(
            got,
            [
                (USER_CONTROL, vec![0, 7, 0, 0, 0x12, 0x34]),
                (ACKNOWLEDGEMENT, seq)
            ]
        );
        // The next ack only after another window.
        let mut more = BytesMut::new();
        write_message(
            &mut more,
            128,
            2,
            0,
            ACKNOWLEDGEMENT,
            0,
            &5u32.to_be_bytes(),
        );
        c.handle_input(&more, &mut events).unwrap();
        assert!(c.take_output().is_empty());
        // Sequence numbers wrap at 2^32; the unwrapped count keeps growing.
        assert_eq!(c.acked_bytes(), 777 + (5u64 + (1 << 32) - 777));
        assert!(events.is_empty());
    }

    proptest! {
        #[test]
        fn garbage_from_server_never_panics(b in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut c = ClientSession::new(cfg());
            let mut events = Vec::new();
            let mut input = vec![3u8];
            input.resize(1 + 2 * HANDSHAKE_SIZE, 0);
            input.extend(b);
            let _ = c.handle_input(&input, &mut events);
        }
    }
}
