//! Message layer and the publish-side session state machine.

use crate::amf0::{self, Amf0Value};
use crate::chunk::{ChunkDecoder, INITIAL_CHUNK_SIZE, RawMessage, write_message};
use crate::handshake::Handshake;
use crate::wire::Reader;
use crate::{
    DEFAULT_OUT_CHUNK_SIZE, DEFAULT_WINDOW_ACK_SIZE, HANDSHAKE_RANDOM_LEN, MAX_MESSAGE_SIZE,
    MAX_MESSAGE_STREAMS, MAX_PARTIAL_BYTES, PRE_PUBLISH_MAX_MESSAGE_SIZE,
    PRE_PUBLISH_MAX_PARTIAL_BYTES, RtmpError,
};
use bytes::{Bytes, BytesMut};
use livetape_media::{MediaFrame, MediaKind};

// Message type ids (RTMP spec §5.4, §6.2, §7.1).
pub(crate) const SET_CHUNK_SIZE: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const ACKNOWLEDGEMENT: u8 = 3;
pub(crate) const USER_CONTROL: u8 = 4;
pub(crate) const WINDOW_ACK_SIZE: u8 = 5;
pub(crate) const SET_PEER_BANDWIDTH: u8 = 6;
pub(crate) const AUDIO: u8 = 8;
pub(crate) const VIDEO: u8 = 9;
pub(crate) const COMMAND_AMF3: u8 = 17;
pub(crate) const DATA_AMF0: u8 = 18;
pub(crate) const COMMAND_AMF0: u8 = 20;
const AGGREGATE: u8 = 22;

// User control event types.
const STREAM_BEGIN: u16 = 0;
pub(crate) const PING_REQUEST: u16 = 6;
pub(crate) const PING_RESPONSE: u16 = 7;

// Outbound chunk stream ids, as nginx-rtmp/SRS use them.
const CSID_CONTROL: u8 = 2;
const CSID_COMMAND: u8 = 3;
const CSID_STATUS: u8 = 5;

/// The stream id `createStream` hands out.
const PUBLISH_STREAM_ID: u32 = 1;
/// Initial capacity of the internal input buffer.
const INPUT_CAPACITY: usize = 64 * 1024;

/// Per-connection settings. `Default` uses the crate constants and an all-zero S1 filler.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Time field of S1 (the driver's clock, e.g. ms since process start; any value works).
    pub handshake_time_ms: u32,
    /// S1 filler. Clients echo it in C2 and do not check it in the simple handshake, so it need
    /// not be cryptographically random.
    pub handshake_random: [u8; HANDSHAKE_RANDOM_LEN],
    /// Largest inbound message accepted; clamped to [`MAX_MESSAGE_SIZE`].
    pub max_message_size: u32,
    /// Window Acknowledgement Size we announce; also our ack window until the peer sets one.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth value we announce (limit type dynamic).
    pub peer_bandwidth: u32,
    /// Our outbound chunk size, announced after `connect`.
    pub out_chunk_size: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            handshake_time_ms: 0,
            handshake_random: [0; HANDSHAKE_RANDOM_LEN],
            max_message_size: MAX_MESSAGE_SIZE,
            window_ack_size: DEFAULT_WINDOW_ACK_SIZE,
            peer_bandwidth: DEFAULT_WINDOW_ACK_SIZE,
            out_chunk_size: DEFAULT_OUT_CHUNK_SIZE,
        }
    }
}

/// Why a publish ended (the command the client sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpublishReason {
    FcUnpublish,
    DeleteStream,
    CloseStream,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `connect` was answered with NetConnection.Connect.Success.
    Connected {
        /// `app` with any `?query` removed.
        app: String,
        /// The query string after `?` in `app`, verbatim; empty if none.
        app_param: String,
        tc_url: String,
        object_encoding: f64,
    },
    /// The client wants to publish; answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`]. Media is dropped until accepted.
    PublishRequested {
        app: String,
        stream_name: String,
        /// The query string after `?` in the publish name, verbatim (no `?`); empty if none.
        stream_param: String,
        tc_url: String,
        /// "live", "record" or "append" as the client sent it.
        publish_type: String,
    },
    /// Audio, video or `onMetaData` script data (as FLV stores it, `@setDataFrame` removed).
    Media(MediaFrame),
    /// The client ended the publish. Emitted once per publish.
    Unpublished { reason: UnpublishReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Connected,
    PublishPending,
    Publishing,
}

/// Unwraps 32-bit RTMP timestamps into a monotonic-ish u64 by taking each step as the signed
/// 32-bit difference from the previous timestamp: a drop by more than 2^31 is a wrap forward,
/// while small backward steps (audio/video interleaving) stay backward.
#[derive(Clone, Copy, Debug)]
struct Unwrapper {
    stream_id: u32,
    last_raw: u32,
    last: u64,
}

impl Unwrapper {
    fn unwrap(&mut self, raw: u32) -> u64 {
        let delta = i64::from(raw.wrapping_sub(self.last_raw) as i32);
        self.last = self.last.saturating_add_signed(delta);
        self.last_raw = raw;
        self.last
    }
}

/// One RTMP server connection (publisher side), sans-IO.
pub struct ServerSession {
    config: SessionConfig,
    handshake: Handshake,
    failed: bool,
    state: State,
    inbuf: BytesMut,
    out: BytesMut,
    chunks: ChunkDecoder,
    out_chunk_size: u32,
    bytes_received: u64,
    ack_window: u32,
    last_ack: u64,
    app: String,
    tc_url: String,
    four_cc_list: Vec<String>,
    publish_stream_id: u32,
    clocks: Vec<Unwrapper>,
}

impl ServerSession {
    pub fn new(config: SessionConfig) -> Self {
        let max_message_size = config.max_message_size.min(MAX_MESSAGE_SIZE);
        Self {
            handshake: Handshake::WaitC0C1,
            failed: false,
            state: State::AwaitingConnect,
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            chunks: {
                let mut c = ChunkDecoder::new(max_message_size);
                c.set_limits(
                    max_message_size.min(PRE_PUBLISH_MAX_MESSAGE_SIZE),
                    PRE_PUBLISH_MAX_PARTIAL_BYTES,
                );
                c
            },
            out_chunk_size: INITIAL_CHUNK_SIZE,
            bytes_received: 0,
            ack_window: config.window_ack_size,
            last_ack: 0,
            app: String::new(),
            tc_url: String::new(),
            four_cc_list: Vec::new(),
            publish_stream_id: PUBLISH_STREAM_ID,
            clocks: Vec::new(),
            config,
        }
    }

    /// Feeds received bytes (copied into an internal buffer). Events are appended to `events`;
    /// replies accumulate for [`Self::take_output`]. Any error is fatal for the connection.
    pub fn handle_input(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<(), RtmpError> {
        let mut buf = std::mem::take(&mut self.inbuf);
        if buf.capacity() == 0 {
            buf.reserve(INPUT_CAPACITY.max(input.len()));
        }
        buf.extend_from_slice(input);
        self.bytes_received += input.len() as u64;
        let result = self.process(&mut buf, events);
        self.inbuf = buf;
        result
    }

    /// Zero-copy variant: `buf` holds everything received and not yet consumed (the driver reads
    /// into it with e.g. `read_buf`). Complete chunks are split off the front and single-chunk
    /// media payloads share `buf`'s allocation; an incomplete tail stays in `buf` for the next
    /// call. `new_bytes` is how many bytes were appended since the last call (for acks).
    /// Do not mix with [`Self::handle_input`] on one session.
    pub fn handle_input_buf(
        &mut self,
        buf: &mut BytesMut,
        new_bytes: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        self.bytes_received += new_bytes as u64;
        self.process(buf, events)
    }

    /// Outbound bytes produced so far (handshake, replies, acks), if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Bytes the session holds for the peer: partially received messages and, with
    /// [`Self::handle_input`], unconsumed input (the driver's own buffer is the driver's).
    pub fn buffered_bytes(&self) -> usize {
        self.chunks.partial_bytes() + self.inbuf.len()
    }

    /// Total bytes fed in, handshake included (what acknowledgements count).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// `fourCcList` from the connect command object (Enhanced RTMP), if the client sent one.
    pub fn four_cc_list(&self) -> &[String] {
        &self.four_cc_list
    }

    /// Accepts the pending publish: Stream Begin + onStatus NetStream.Publish.Start.
    pub fn accept_publish(&mut self) -> Result<(), RtmpError> {
        if self.state != State::PublishPending {
            return Err(RtmpError::InvalidState(
                "accept_publish without a pending publish",
            ));
        }
        let sid = self.publish_stream_id;
        let mut uc = [0u8; 6];
        uc[..2].copy_from_slice(&STREAM_BEGIN.to_be_bytes());
        uc[2..].copy_from_slice(&sid.to_be_bytes());
        self.send_control(USER_CONTROL, &uc);
        self.send_on_status("status", "NetStream.Publish.Start", "Start publishing");
        self.state = State::Publishing;
        self.clocks.clear();
        Ok(())
    }

    /// Rejects the pending publish with an onStatus of level "error" (e.g. code
    /// "NetStream.Publish.BadName" or "NetStream.Publish.Unauthorized"). The driver should flush
    /// the output and close.
    pub fn reject_publish(&mut self, code: &str, description: &str) -> Result<(), RtmpError> {
        if self.state != State::PublishPending {
            return Err(RtmpError::InvalidState(
                "reject_publish without a pending publish",
            ));
        }
        self.send_on_status("error", code, description);
        self.state = State::Connected;
        Ok(())
    }

    fn process(&mut self, buf: &mut BytesMut, events: &mut Vec<Event>) -> Result<(), RtmpError> {
        if self.failed {
            return Err(RtmpError::Failed);
        }
        let result = self.process_inner(buf, events);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn process_inner(
        &mut self,
        buf: &mut BytesMut,
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        if self.handshake != Handshake::Done {
            self.handshake.advance(
                buf,
                &mut self.out,
                self.config.handshake_time_ms,
                &self.config.handshake_random,
            )?;
            if self.handshake != Handshake::Done {
                return Ok(());
            }
        }
        while let Some(msg) = self.chunks.decode(buf)? {
            self.on_message(msg, events)?;
        }
        // Acknowledge once per window so publishers that wait for acks never stall.
        if self.ack_window > 0 && self.bytes_received - self.last_ack >= u64::from(self.ack_window)
        {
            self.last_ack = self.bytes_received;
            // The sequence number is the byte count modulo 2^32 (it wraps on the wire).
            self.send_control(ACKNOWLEDGEMENT, &(self.bytes_received as u32).to_be_bytes());
        }
        Ok(())
    }

    fn on_message(&mut self, m: RawMessage, events: &mut Vec<Event>) -> Result<(), RtmpError> {
        match m.type_id {
            SET_CHUNK_SIZE => {
                let size = be_u32("Set Chunk Size", &m.payload)?;
                if size == 0 || size > 0x7fff_ffff {
                    return Err(RtmpError::InvalidChunkSize(size));
                }
                self.chunks.set_chunk_size(size);
            }
            ABORT => self.chunks.abort(be_u32("Abort Message", &m.payload)?),
            ACKNOWLEDGEMENT | SET_PEER_BANDWIDTH => {}
            WINDOW_ACK_SIZE => self.ack_window = be_u32("Window Ack Size", &m.payload)?,
            USER_CONTROL => self.on_user_control(&m.payload)?,
            AUDIO | VIDEO => {
                let kind = if m.type_id == AUDIO {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                self.emit_media(kind, m.stream_id, m.timestamp, m.payload, events)?;
            }
            DATA_AMF0 => self.on_data(m.stream_id, m.timestamp, m.payload, events)?,
            COMMAND_AMF0 => self.on_command(m.stream_id, &m.payload, events)?,
            // AMF3 commands start with a 0 format byte, then AMF0 values in practice.
            COMMAND_AMF3 => {
                let body = m.payload.get(1..).unwrap_or_default();
                self.on_command(m.stream_id, body, events)?;
            }
            AGGREGATE => self.on_aggregate(&m, events)?,
            // AMF3 data/shared objects and unknown types: nothing a publisher needs from us.
            _ => {}
        }
        Ok(())
    }

    fn on_user_control(&mut self, payload: &[u8]) -> Result<(), RtmpError> {
        let mut r = Reader::new(payload);
        let event = r.u16().ok_or(RtmpError::ShortMessage {
            what: "User Control",
            len: payload.len(),
        })?;
        if event == PING_REQUEST {
            let ts = r.u32().ok_or(RtmpError::ShortMessage {
                what: "Ping Request",
                len: payload.len(),
            })?;
            let mut pong = [0u8; 6];
            pong[..2].copy_from_slice(&PING_RESPONSE.to_be_bytes());
            pong[2..].copy_from_slice(&ts.to_be_bytes());
            self.send_control(USER_CONTROL, &pong);
        }
        Ok(())
    }

    fn emit_media(
        &mut self,
        kind: MediaKind,
        stream_id: u32,
        timestamp: u32,
        payload: Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        // Empty tags carry nothing and would only make downstream tag parsers fail.
        if self.state != State::Publishing || payload.is_empty() {
            return Ok(());
        }
        let dts_ms = self.unwrap_timestamp(stream_id, timestamp)?;
        events.push(Event::Media(MediaFrame::new(kind, dts_ms, payload)));
        Ok(())
    }

    fn unwrap_timestamp(&mut self, stream_id: u32, raw: u32) -> Result<u64, RtmpError> {
        if let Some(c) = self.clocks.iter_mut().find(|c| c.stream_id == stream_id) {
            return Ok(c.unwrap(raw));
        }
        if self.clocks.len() >= MAX_MESSAGE_STREAMS {
            return Err(RtmpError::TooManyMessageStreams {
                max: MAX_MESSAGE_STREAMS,
            });
        }
        self.clocks.push(Unwrapper {
            stream_id,
            last_raw: raw,
            last: u64::from(raw),
        });
        Ok(u64::from(raw))
    }

    /// Data messages: keep `onMetaData` (bare or behind `@setDataFrame`, which is stripped so
    /// the payload is the script tag body FLV stores); other data (`@clearDataFrame`,
    /// `|RtmpSampleAccess`, malformed) is dropped.
    fn on_data(
        &mut self,
        stream_id: u32,
        timestamp: u32,
        payload: Bytes,
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        let body = match amf0::read_string(&payload) {
            Some(("@setDataFrame", n)) => payload.slice(n..),
            Some(("onMetaData", _)) => payload,
            _ => return Ok(()),
        };
        if matches!(amf0::read_string(&body), Some(("onMetaData", _))) {
            self.emit_media(MediaKind::Script, stream_id, timestamp, body, events)?;
        }
        Ok(())
    }

    /// Aggregate message: a run of FLV tags (11-byte header, body, 4-byte back pointer) whose
    /// timestamps are rebased onto the message's.
    fn on_aggregate(&mut self, m: &RawMessage, events: &mut Vec<Event>) -> Result<(), RtmpError> {
        let truncated = RtmpError::Protocol("truncated aggregate message");
        let mut r = Reader::new(&m.payload);
        let mut first_ts = None;
        while r.remaining() > 0 {
            let (Some(tag_type), Some(size), Some(ts_low), Some(ts_high), Some(_stream)) =
                (r.u8(), r.u24(), r.u24(), r.u8(), r.u24())
            else {
                return Err(truncated);
            };
            let ts = ts_low | (u32::from(ts_high) << 24);
            let base = *first_ts.get_or_insert(ts);
            let start = r.pos;
            r.take(size as usize).ok_or(truncated.clone())?;
            let body = m.payload.slice(start..r.pos);
            // The back pointer is absent after the last tag in some encoders' output.
            let _ = r.take(4);
            let timestamp = m.timestamp.wrapping_add(ts.wrapping_sub(base));
            match tag_type {
                AUDIO => self.emit_media(MediaKind::Audio, m.stream_id, timestamp, body, events)?,
                VIDEO => self.emit_media(MediaKind::Video, m.stream_id, timestamp, body, events)?,
                DATA_AMF0 => self.on_data(m.stream_id, timestamp, body, events)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn on_command(
        &mut self,
        stream_id: u32,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        let mut values = amf0::decode_all(payload)?.into_iter();
        let Some(Amf0Value::String(name)) = values.next() else {
            return Ok(());
        };
        let txn = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        let mut args = values;
        if name == "connect" {
            return self.on_connect(txn, &command_object, events);
        }
        if self.state == State::AwaitingConnect {
            return Err(RtmpError::Protocol("command before connect"));
        }
        match name.as_str() {
            "releaseStream" | "FCPublish" => self.reply_result(txn, Amf0Value::Undefined),
            "createStream" => {
                self.send_command(
                    0,
                    &[
                        Amf0Value::String("_result".into()),
                        Amf0Value::Number(txn),
                        Amf0Value::Null,
                        Amf0Value::Number(f64::from(PUBLISH_STREAM_ID)),
                    ],
                );
            }
            "publish" => {
                if matches!(self.state, State::PublishPending | State::Publishing) {
                    return Err(RtmpError::Protocol("publish while already publishing"));
                }
                let name = args.next();
                let name = name.as_ref().and_then(Amf0Value::as_str).unwrap_or("");
                let publish_type = args.next();
                let publish_type = publish_type
                    .as_ref()
                    .and_then(Amf0Value::as_str)
                    .unwrap_or("live");
                let (stream_name, stream_param) = split_query(name);
                self.state = State::PublishPending;
                // Media may follow: the full bounds apply from here on.
                self.chunks.set_limits(
                    self.config.max_message_size.min(MAX_MESSAGE_SIZE),
                    MAX_PARTIAL_BYTES,
                );
                self.publish_stream_id = stream_id;
                events.push(Event::PublishRequested {
                    app: self.app.clone(),
                    stream_name: stream_name.to_owned(),
                    stream_param: stream_param.to_owned(),
                    tc_url: self.tc_url.clone(),
                    publish_type: publish_type.to_owned(),
                });
            }
            "FCUnpublish" => {
                self.reply_result(txn, Amf0Value::Undefined);
                self.unpublish(UnpublishReason::FcUnpublish, events);
            }
            "deleteStream" => self.unpublish(UnpublishReason::DeleteStream, events),
            "closeStream" => self.unpublish(UnpublishReason::CloseStream, events),
            // Replies to calls we never make; answering them could start a loop.
            "_result" | "_error" | "onStatus" | "onBWDone" => {}
            // `_checkbw`, `play`, `getStreamLength`, …: unsupported here.
            _ => {
                if txn > 0.0 {
                    self.send_command(
                        0,
                        &[
                            Amf0Value::String("_error".into()),
                            Amf0Value::Number(txn),
                            Amf0Value::Null,
                            status_object(
                                "error",
                                "NetConnection.Call.Failed",
                                "Method not supported",
                            ),
                        ],
                    );
                }
            }
        }
        Ok(())
    }

    fn on_connect(
        &mut self,
        txn: f64,
        obj: &Amf0Value,
        events: &mut Vec<Event>,
    ) -> Result<(), RtmpError> {
        if self.state != State::AwaitingConnect {
            return Err(RtmpError::Protocol("second connect on one connection"));
        }
        let text = |key| obj.get(key).and_then(Amf0Value::as_str).unwrap_or("");
        let (app, app_param) = split_query(text("app"));
        let (app, app_param) = (app.to_owned(), app_param.to_owned());
        let tc_url = text("tcUrl").to_owned();
        let object_encoding = obj
            .get("objectEncoding")
            .and_then(Amf0Value::as_number)
            .unwrap_or(0.0);
        if let Some(Amf0Value::StrictArray(list)) = obj.get("fourCcList") {
            self.four_cc_list = list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }

        self.send_control(WINDOW_ACK_SIZE, &self.config.window_ack_size.to_be_bytes());
        let mut bw = [2u8; 5]; // limit type 2 = dynamic
        bw[..4].copy_from_slice(&self.config.peer_bandwidth.to_be_bytes());
        self.send_control(SET_PEER_BANDWIDTH, &bw);
        let chunk_size = self.config.out_chunk_size.clamp(128, 0x7fff_ffff);
        self.send_control(SET_CHUNK_SIZE, &chunk_size.to_be_bytes());
        self.out_chunk_size = chunk_size;
        let mut info = status_object(
            "status",
            "NetConnection.Connect.Success",
            "Connection succeeded.",
        );
        if let Amf0Value::Object(props) = &mut info {
            props.push(("objectEncoding".into(), Amf0Value::Number(object_encoding)));
            // E-RTMP v1: a client that offers fourCcList gets back the subset we can ingest.
            if obj.get("fourCcList").is_some() {
                let list = negotiate_four_ccs(&self.four_cc_list)
                    .map(|c| Amf0Value::String(c.to_owned()))
                    .collect();
                props.push(("fourCcList".into(), Amf0Value::StrictArray(list)));
            }
        }
        self.send_command(
            0,
            &[
                Amf0Value::String("_result".into()),
                Amf0Value::Number(txn),
                Amf0Value::Object(vec![
                    ("fmsVer".into(), Amf0Value::String("FMS/3,0,1,123".into())),
                    ("capabilities".into(), Amf0Value::Number(31.0)),
                ]),
                info,
            ],
        );
        self.state = State::Connected;
        self.app.clone_from(&app);
        self.tc_url.clone_from(&tc_url);
        events.push(Event::Connected {
            app,
            app_param,
            tc_url,
            object_encoding,
        });
        Ok(())
    }

    fn unpublish(&mut self, reason: UnpublishReason, events: &mut Vec<Event>) {
        // FCUnpublish and deleteStream usually both arrive; report the publish ending once.
        if matches!(self.state, State::PublishPending | State::Publishing) {
            self.state = State::Connected;
            events.push(Event::Unpublished { reason });
        }
    }

    fn reply_result(&mut self, txn: f64, value: Amf0Value) {
        // Transaction id 0 means the client expects no reply.
        if txn > 0.0 {
            self.send_command(
                0,
                &[
                    Amf0Value::String("_result".into()),
                    Amf0Value::Number(txn),
                    Amf0Value::Null,
                    value,
                ],
            );
        }
    }

    fn send_on_status(&mut self, level: &str, code: &str, description: &str) {
        let values = [
            Amf0Value::String("onStatus".into()),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            status_object(level, code, description),
        ];
        let mut body = BytesMut::new();
        values.iter().for_each(|v| v.encode(&mut body));
        let sid = self.publish_stream_id;
        write_message(
            &mut self.out,
            self.out_chunk_size,
            CSID_STATUS,
            0,
            COMMAND_AMF0,
            sid,
            &body,
        );
    }

    fn send_command(&mut self, stream_id: u32, values: &[Amf0Value]) {
        let mut body = BytesMut::new();
        values.iter().for_each(|v| v.encode(&mut body));
        write_message(
            &mut self.out,
            self.out_chunk_size,
            CSID_COMMAND,
            0,
            COMMAND_AMF0,
            stream_id,
            &body,
        );
    }

    fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        write_message(
            &mut self.out,
            self.out_chunk_size,
            CSID_CONTROL,
            0,
            type_id,
            0,
            payload,
        );
    }
}

/// Video FourCCs ingest understands (E-RTMP v1 enhanced video tags and legacy AVC).
pub const SUPPORTED_FOUR_CCS: [&str; 3] = ["avc1", "hvc1", "av01"];

/// The client's offer intersected with [`SUPPORTED_FOUR_CCS`], in our order; `"*"` offers all.
fn negotiate_four_ccs(offer: &[String]) -> impl Iterator<Item = &'static str> + '_ {
    let all = offer.iter().any(|c| c == "*");
    SUPPORTED_FOUR_CCS
        .into_iter()
        .filter(move |ours| all || offer.iter().any(|c| c == ours))
}

fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::Object(vec![
        ("level".into(), Amf0Value::String(level.into())),
        ("code".into(), Amf0Value::String(code.into())),
        ("description".into(), Amf0Value::String(description.into())),
    ])
}

/// `"name?a=b"` → `("name", "a=b")`; no `?` → `(name, "")`.
fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

fn be_u32(what: &'static str, payload: &[u8]) -> Result<u32, RtmpError> {
    Reader::new(payload).u32().ok_or(RtmpError::ShortMessage {
        what,
        len: payload.len(),
    })
}

#[cfg(test)]
mod tests;
