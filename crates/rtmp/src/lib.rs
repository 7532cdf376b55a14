//! Sans-IO RTMP server core for the publisher side: it accepts pushes from ffmpeg, OBS and other
//! librtmp-style encoders and turns them into [`livetape_media::MediaFrame`]s.
//!
//! Layers, bottom up (each one only sees what the one below hands it):
//!
//! 1. **Handshake** (`handshake`): the simple "version 3" form. C0+C1 in, S0+S1+S2 out, C2 in.
//!    S1 is `time, 0, filler` with time and filler supplied by the caller, so there is no clock or
//!    RNG inside; zero version bytes tell ffmpeg/librtmp not to expect the digest handshake.
//! 2. **Chunk stream** (`chunk`): basic/message headers (formats 0–3), extended timestamps,
//!    chunk size, abort, and reassembly of interleaved chunk streams into messages. Every buffer is
//!    bounded by the limits below and grows only as data arrives. A message that arrives in one
//!    chunk is split out of the input buffer without copying.
//! 3. **Message** (in `session`): protocol control (chunk size, abort, ack window, user control
//!    ping/pong), media (8/9), data (18) and AMF0 commands (20; 17 with its AMF3 prefix skipped).
//!    RTMP's 32-bit timestamps are unwrapped to monotonic `u64` ms per message stream.
//! 4. **Session** ([`ServerSession`]): connect → releaseStream/FCPublish → createStream → publish.
//!    A publish is surfaced as [`Event::PublishRequested`]; the driver decides with
//!    [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`]. Media flows as
//!    [`Event::Media`] only after acceptance.
//!
//! 5. **Client** ([`ClientSession`]): the publishing side (handshake, connect with optional
//!    E-RTMP `fourCcList`, createStream, publish, chunked media out as an iovec of `Bytes`), for
//!    load generators and relays.
//!
//! IO model: the driver reads from the socket and calls [`ServerSession::handle_input`] (copies
//! into an internal buffer) or [`ServerSession::handle_input_buf`] (consumes complete chunks from
//! the driver's own `BytesMut`, so single-chunk media payloads share the read buffer), then writes
//! whatever [`ServerSession::take_output`] returns. Errors are fatal: close the connection.

pub mod amf0;
mod chunk;
mod client;
mod error;
mod handshake;
mod session;
mod wire;

pub use amf0::Amf0Value;
pub use client::{CLIENT_CHUNK_SIZE, ClientConfig, ClientEvent, ClientSession};
pub use error::RtmpError;
pub use session::{Event, SUPPORTED_FOUR_CCS, ServerSession, SessionConfig, UnpublishReason};

/// Size of C1/C2/S1/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// Bytes of caller-supplied filler in S1 (after the 4-byte time and 4 zero bytes).
pub const HANDSHAKE_RANDOM_LEN: usize = HANDSHAKE_SIZE - 8;
/// Largest message we reassemble. Tencent rejects frames over 1 MiB (errcode 7); 8 MiB leaves room
/// for 4K keyframes while keeping a hostile peer's cost bounded.
pub const MAX_MESSAGE_SIZE: u32 = 8 * 1024 * 1024;
/// Inbound chunk sizes above this are clamped. Lossless: a chunk never carries more than one
/// message and messages are capped at [`MAX_MESSAGE_SIZE`], which is smaller.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Distinct chunk stream ids a peer may use (real encoders use 2–8).
pub const MAX_CHUNK_STREAMS: usize = 128;
/// Messages that may be partially received at the same time (one per chunk stream at most).
pub const MAX_PARTIAL_MESSAGES: usize = 64;
/// Total bytes held in partially received messages.
pub const MAX_PARTIAL_BYTES: usize = 2 * MAX_MESSAGE_SIZE as usize;
/// Until the peer has sent its `publish` command (nothing authenticated yet) it sends only
/// commands, which are small: messages above this are refused, which also bounds a chunk and
/// so the driver's read buffer. A peer cannot make the server hold megabytes before auth.
pub const PRE_PUBLISH_MAX_MESSAGE_SIZE: u32 = 64 * 1024;
/// Bytes of partially received messages held before the `publish` command.
pub const PRE_PUBLISH_MAX_PARTIAL_BYTES: usize = 2 * PRE_PUBLISH_MAX_MESSAGE_SIZE as usize;
/// Message streams whose timestamps we track for unwrapping (publishers use one).
pub const MAX_MESSAGE_STREAMS: usize = 8;
pub use livetape_media::amf0::MAX_AMF0_DEPTH;
/// Window Acknowledgement Size we announce and use until the peer announces its own.
pub const DEFAULT_WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Our outbound chunk size, announced right after `connect`.
pub const DEFAULT_OUT_CHUNK_SIZE: u32 = 60_000;
