//! RTMP chunk stream: splits the byte stream into chunks and reassembles messages
//! (RTMP spec §5.3), plus the (simple) outbound chunk writer.

use crate::wire::Reader;
use crate::{
    MAX_CHUNK_SIZE, MAX_CHUNK_STREAMS, MAX_PARTIAL_BYTES, MAX_PARTIAL_MESSAGES, RtmpError,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::HashMap;

/// Chunk size both directions start with (RTMP spec §5.4.1).
pub(crate) const INITIAL_CHUNK_SIZE: u32 = 128;
/// A 24-bit timestamp field with this value means "see the 32-bit extended timestamp".
pub(crate) const EXTENDED: u32 = 0x00ff_ffff;
/// A message split over several chunks is reassembled into one allocation of its declared
/// length, so the payload handed out wastes nothing while it waits to be written. The length is
/// the peer's word: at most this much is reserved up front (bigger messages grow as chunks
/// arrive), which bounds what `MAX_PARTIAL_MESSAGES` unfinished messages can reserve.
const REASSEMBLY_PREALLOC: usize = 256 * 1024;

/// A reassembled message with its raw (wrapping) 32-bit timestamp.
#[derive(Debug)]
pub(crate) struct RawMessage {
    pub(crate) type_id: u8,
    pub(crate) stream_id: u32,
    pub(crate) timestamp: u32,
    pub(crate) payload: Bytes,
}

#[derive(Default)]
struct ChunkStream {
    /// Timestamp of the current/last message (wraps like the wire value).
    timestamp: u32,
    /// Delta re-used by format 3 headers that start a new message.
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// The raw extended-timestamp value of the last format 0–2 header, if it had one; format 3
    /// chunks then carry it again.
    ext: Option<u32>,
    /// Bytes of the current message received so far; 0 = no message in progress.
    received: u32,
    buf: BytesMut,
}

pub(crate) struct ChunkDecoder {
    chunk_size: u32,
    max_message_size: u32,
    streams: HashMap<u32, ChunkStream>,
    partial_messages: usize,
    partial_bytes: usize,
    max_partial_bytes: usize,
}

impl ChunkDecoder {
    pub(crate) fn new(max_message_size: u32) -> Self {
        Self {
            chunk_size: INITIAL_CHUNK_SIZE,
            max_message_size,
            streams: HashMap::new(),
            partial_messages: 0,
            partial_bytes: 0,
            max_partial_bytes: MAX_PARTIAL_BYTES,
        }
    }

    /// Bytes held in partially received messages.
    pub(crate) fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Replaces the message-size and partial-bytes bounds (tighter before `publish`).
    pub(crate) fn set_limits(&mut self, max_message_size: u32, max_partial_bytes: usize) {
        self.max_message_size = max_message_size;
        self.max_partial_bytes = max_partial_bytes;
    }

    /// Applies a peer's Set Chunk Size (the caller validated 1..=0x7fffffff).
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Abort Message: drop the partial message on `csid`.
    pub(crate) fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid)
            && s.received > 0
        {
            // Saturating: these counters are invariants, never worth a panic.
            self.partial_messages = self.partial_messages.saturating_sub(1);
            self.partial_bytes = self.partial_bytes.saturating_sub(s.buf.len());
            s.buf.clear();
            s.received = 0;
        }
    }

    /// Consumes complete chunks from the front of `buf` until a message is complete (returned)
    /// or only a partial chunk is left (`Ok(None)`; feed more bytes and call again). A chunk is
    /// only consumed once it is entirely in `buf`, so the call is restartable at any byte.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RawMessage>, RtmpError> {
        loop {
            let Some(h) = self.parse_header(buf)? else {
                return Ok(None);
            };
            let Some(body) = buf.get(h.header_len..h.header_len + h.payload_len) else {
                return Ok(None);
            };
            let single = !h.in_progress && h.payload_len as u32 == h.msg.len;
            if !self.streams.contains_key(&h.csid) && self.streams.len() >= MAX_CHUNK_STREAMS {
                return Err(RtmpError::TooManyChunkStreams {
                    max: MAX_CHUNK_STREAMS,
                });
            }
            if !single {
                if !h.in_progress && self.partial_messages >= MAX_PARTIAL_MESSAGES {
                    return Err(RtmpError::TooManyPartialMessages {
                        max: MAX_PARTIAL_MESSAGES,
                    });
                }
                if self.partial_bytes + h.payload_len > self.max_partial_bytes {
                    return Err(RtmpError::PartialBytesExceeded {
                        max: self.max_partial_bytes,
                    });
                }
            }
            let s = self.streams.entry(h.csid).or_default();
            if !h.in_progress {
                s.timestamp = h.msg.timestamp;
                s.delta = h.msg.delta;
                s.len = h.msg.len;
                s.type_id = h.msg.type_id;
                s.stream_id = h.msg.stream_id;
                if h.fmt < 3 {
                    s.ext = h.ext;
                }
            }
            let message = |s: &ChunkStream, payload| RawMessage {
                type_id: s.type_id,
                stream_id: s.stream_id,
                timestamp: s.timestamp,
                payload,
            };
            if single {
                buf.advance(h.header_len);
                // Zero copy: the payload shares the input buffer's allocation.
                let payload = buf.split_to(h.payload_len).freeze();
                return Ok(Some(message(s, payload)));
            }
            if !h.in_progress {
                s.buf = BytesMut::with_capacity((h.msg.len as usize).min(REASSEMBLY_PREALLOC));
            }
            s.buf.extend_from_slice(body);
            buf.advance(h.header_len + h.payload_len);
            if !h.in_progress {
                self.partial_messages += 1;
            }
            self.partial_bytes += h.payload_len;
            s.received += h.payload_len as u32;
            if s.received == s.len {
                // The next message gets its own allocation; none is kept between messages.
                let payload = std::mem::take(&mut s.buf).freeze();
                s.received = 0;
                self.partial_messages = self.partial_messages.saturating_sub(1);
                self.partial_bytes = self.partial_bytes.saturating_sub(payload.len());
                return Ok(Some(message(s, payload)));
            }
        }
    }

    /// Parses the chunk header at the front of `buf` without consuming anything.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<ChunkHeader>, RtmpError> {
        let mut r = Reader::new(buf);
        let Some(b0) = r.u8() else { return Ok(None) };
        let fmt = b0 >> 6;
        let csid = match b0 & 0x3f {
            0 => match r.u8() {
                Some(b) => 64 + u32::from(b),
                None => return Ok(None),
            },
            1 => match r.u16() {
                // Little-endian on the wire, unlike everything else.
                Some(v) => 64 + u32::from(v.swap_bytes()),
                None => return Ok(None),
            },
            n => u32::from(n),
        };
        let prev = self.streams.get(&csid);
        if prev.is_none() && fmt >= 2 {
            return Err(RtmpError::MissingPreviousHeader { csid, fmt });
        }
        let in_progress = prev.is_some_and(|s| s.received > 0);
        if in_progress && fmt != 3 {
            return Err(RtmpError::HeaderInsideMessage { csid, fmt });
        }
        let p = prev.map_or(Prev::default(), |s| Prev {
            timestamp: s.timestamp,
            delta: s.delta,
            len: s.len,
            type_id: s.type_id,
            stream_id: s.stream_id,
            ext: s.ext,
            received: s.received,
        });

        let Some(fields) = (|| {
            Some(match fmt {
                0 => (
                    Some(r.u24()?),
                    Some(r.u24()?),
                    Some(r.u8()?),
                    Some(r.u32_le()?),
                ),
                1 => (Some(r.u24()?), Some(r.u24()?), Some(r.u8()?), None),
                2 => (Some(r.u24()?), None, None, None),
                _ => (None, None, None, None),
            })
        })() else {
            return Ok(None);
        };
        let (ts_field, len, type_id, stream_id) = fields;

        let ext = match ts_field {
            Some(EXTENDED) => match r.u32() {
                Some(v) => Some(v),
                None => return Ok(None),
            },
            Some(_) => None,
            None => match p.ext {
                // Continuation chunks: ffmpeg and librtmp repeat the extended timestamp, some
                // encoders do not. Like SRS, consume the 4 bytes only if they repeat it.
                Some(v) if in_progress => match r.peek_u32() {
                    None => return Ok(None),
                    Some(x) if x == v => r.u32(),
                    Some(_) => None,
                },
                Some(_) => match r.u32() {
                    Some(v) => Some(v),
                    None => return Ok(None),
                },
                None => None,
            },
        };

        let msg = if in_progress {
            MessageHeader {
                timestamp: p.timestamp,
                delta: p.delta,
                len: p.len,
                type_id: p.type_id,
                stream_id: p.stream_id,
            }
        } else {
            let field = ext.or(ts_field);
            let (timestamp, delta) = match fmt {
                // Like ffmpeg and SRS, a type 0 field doubles as the delta for a following type 3.
                0 => {
                    let t = field.unwrap_or(0);
                    (t, t)
                }
                _ => {
                    let d = field.unwrap_or(p.delta);
                    (p.timestamp.wrapping_add(d), d)
                }
            };
            MessageHeader {
                timestamp,
                delta,
                len: len.unwrap_or(p.len),
                type_id: type_id.unwrap_or(p.type_id),
                stream_id: stream_id.unwrap_or(p.stream_id),
            }
        };
        if msg.len > self.max_message_size {
            return Err(RtmpError::MessageTooLarge {
                csid,
                len: msg.len,
                max: self.max_message_size,
            });
        }
        let received = if in_progress { p.received } else { 0 };
        let payload_len = (msg.len - received).min(self.chunk_size) as usize;
        Ok(Some(ChunkHeader {
            csid,
            fmt,
            header_len: r.pos,
            payload_len,
            in_progress,
            ext,
            msg,
        }))
    }
}

#[derive(Default)]
struct Prev {
    timestamp: u32,
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    ext: Option<u32>,
    received: u32,
}

struct MessageHeader {
    timestamp: u32,
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
}

struct ChunkHeader {
    csid: u32,
    fmt: u8,
    header_len: usize,
    payload_len: usize,
    in_progress: bool,
    ext: Option<u32>,
    msg: MessageHeader,
}

/// Writes one message as a format 0 chunk followed by format 3 continuations. `csid` must be in
/// 2..=63 (we only use fixed low ids). Extended timestamps are repeated in continuations, as
/// ffmpeg and librtmp expect.
pub(crate) fn write_message(
    out: &mut BytesMut,
    chunk_size: u32,
    csid: u8,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
) {
    debug_assert!((2..64).contains(&csid));
    let extended = timestamp >= EXTENDED;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(payload.len() + 16 + payload.len() / chunk_size.max(1) as usize * 5);
    out.put_u8(csid & 0x3f);
    out.put_uint(u64::from(timestamp.min(EXTENDED)), 3);
    out.put_uint(u64::from(len.min(0x00ff_ffff)), 3);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    let mut chunks = payload.chunks(chunk_size.max(1) as usize);
    if let Some(first) = chunks.next() {
        out.put_slice(first);
    }
    for c in chunks {
        out.put_u8(0xc0 | (csid & 0x3f));
        if extended {
            out.put_u32(timestamp);
        }
        out.put_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_MESSAGE_SIZE;

    fn decode_all(d: &mut ChunkDecoder, bytes: &[u8]) -> Vec<RawMessage> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
        out
    }

    fn fmt0(csid: u8, ts: u32, len: u32, ty: u8, msid: u32) -> Vec<u8> {
        let mut v = vec![csid];
        v.extend_from_slice(&ts.min(EXTENDED).to_be_bytes()[1..]);
        v.extend_from_slice(&len.to_be_bytes()[1..]);
        v.push(ty);
        v.extend_from_slice(&msid.to_le_bytes());
        if ts >= EXTENDED {
            v.extend_from_slice(&ts.to_be_bytes());
        }
        v
    }

    #[test]
    fn all_header_formats_accumulate_deltas() {
        let mut b = fmt0(4, 1000, 3, 8, 1);
        b.extend_from_slice(b"abc");
        // fmt 1: delta 20, len 2, type 9
        b.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 2, 9]);
        b.extend_from_slice(b"de");
        // fmt 2: delta 30, same len/type
        b.extend_from_slice(&[0x84, 0, 0, 30]);
        b.extend_from_slice(b"fg");
        // fmt 3 starting a new message: reuses delta 30
        b.push(0xc4);
        b.extend_from_slice(b"hi");
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let m = decode_all(&mut d, &b);
        let got: Vec<_> = m
            .iter()
            .map(|m| (m.timestamp, m.type_id, m.stream_id, &m.payload[..]))
            .collect();
        assert_eq!(
            got,
            [
                (1000, 8, 1, &b"abc"[..]),
                (1020, 9, 1, b"de"),
                (1050, 9, 1, b"fg"),
                (1080, 9, 1, b"hi")
            ]
        );
    }

    #[test]
    fn single_chunk_message_is_zero_copy() {
        let mut b = fmt0(6, 0, 4, 9, 1);
        b.extend_from_slice(b"wxyz");
        let mut buf = BytesMut::from(&b[..]);
        let base = buf.as_ptr() as usize;
        let m = ChunkDecoder::new(MAX_MESSAGE_SIZE)
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(m.payload.as_ptr() as usize, base + 12);
    }

    #[test]
    fn multi_chunk_reassembly_and_byte_by_byte_feeding() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        write_message(&mut out, 128, 6, 5, 9, 1, &payload);
        assert_eq!(out.len(), 12 + 300 + 2);
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &byte in out.iter() {
            buf.put_u8(byte);
            while let Some(m) = d.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].payload[..], &payload[..]);
        assert_eq!(got[0].timestamp, 5);
        assert_eq!((d.partial_messages, d.partial_bytes), (0, 0));
    }

    #[test]
    fn extended_timestamp_with_and_without_repetition() {
        let ts = 0x0100_0000;
        let payload = [7u8; 200];
        // ffmpeg style: continuation repeats the extended timestamp.
        let mut out = BytesMut::new();
        write_message(&mut out, 128, 4, ts, 8, 1, &payload);
        assert_eq!(out.len(), 12 + 4 + 200 + 1 + 4);
        let m = decode_all(&mut ChunkDecoder::new(MAX_MESSAGE_SIZE), &out);
        assert_eq!((m[0].timestamp, m[0].payload.len()), (ts, 200));

        // Without repetition in the continuation chunk.
        let mut b = fmt0(4, ts, 200, 8, 1);
        b.extend_from_slice(&payload[..128]);
        b.push(0xc4);
        b.extend_from_slice(&payload[128..]);
        let m = decode_all(&mut ChunkDecoder::new(MAX_MESSAGE_SIZE), &b);
        assert_eq!((m[0].timestamp, &m[0].payload[..]), (ts, &payload[..]));

        // A type 3 header starting a new message after an extended fmt 0 must carry it.
        let mut b = fmt0(4, ts, 1, 8, 1);
        b.push(1);
        b.push(0xc4);
        b.extend_from_slice(&ts.to_be_bytes());
        b.push(2);
        let m = decode_all(&mut ChunkDecoder::new(MAX_MESSAGE_SIZE), &b);
        assert_eq!(m[1].timestamp, ts.wrapping_mul(2));
        assert_eq!(&m[1].payload[..], [2]);
    }

    #[test]
    fn timestamp_delta_wraps() {
        let mut b = fmt0(4, 0xffff_fff0, 1, 8, 1);
        b.push(0);
        b.extend_from_slice(&[0x84, 0, 0, 0x20, 1]);
        let m = decode_all(&mut ChunkDecoder::new(MAX_MESSAGE_SIZE), &b);
        assert_eq!(m[1].timestamp, 0x10);
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let payload = [1u8; 1000];
        let mut out = BytesMut::new();
        write_message(&mut out, 128, 6, 0, 9, 1, &payload);
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let first = decode_all(&mut d, &out);
        assert_eq!(first[0].payload.len(), 1000);
        d.set_chunk_size(4096);
        let mut big = BytesMut::new();
        write_message(&mut big, 4096, 6, 40, 9, 1, &[2u8; 5000]);
        assert_eq!(big.len(), 12 + 5000 + 1);
        let m = decode_all(&mut d, &big);
        assert_eq!((m[0].payload.len(), m[0].timestamp), (5000, 40));
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a: Vec<u8> = vec![0xaa; 300];
        let b: Vec<u8> = vec![0xbb; 200];
        let mut wa = BytesMut::new();
        write_message(&mut wa, 128, 4, 10, 8, 1, &a);
        let mut wb = BytesMut::new();
        write_message(&mut wb, 128, 6, 20, 9, 1, &b);
        // Chunk boundaries: a = [12+128][1+128][1+44], b = [12+128][1+72]
        let mut s = Vec::new();
        s.extend_from_slice(&wa[..140]);
        s.extend_from_slice(&wb[..140]);
        s.extend_from_slice(&wa[140..269]);
        s.extend_from_slice(&wb[140..]);
        s.extend_from_slice(&wa[269..]);
        let m = decode_all(&mut ChunkDecoder::new(MAX_MESSAGE_SIZE), &s);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].timestamp, &m[0].payload[..]), (20, &b[..]));
        assert_eq!((m[1].timestamp, &m[1].payload[..]), (10, &a[..]));
    }

    #[test]
    fn two_and_three_byte_basic_headers() {
        let mut b = vec![0x00, 5]; // csid 69
        b.extend_from_slice(&fmt0(0, 1, 1, 8, 1)[1..]);
        b.push(9);
        b.extend_from_slice(&[0x01, 0xff, 0xff]); // csid 65599
        b.extend_from_slice(&fmt0(0, 2, 1, 8, 1)[1..]);
        b.push(10);
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let m = decode_all(&mut d, &b);
        assert!(d.streams.contains_key(&69) && d.streams.contains_key(&65599));
        assert_eq!(
            (&m[0].payload[..], &m[1].payload[..]),
            (&[9u8][..], &[10u8][..])
        );
    }

    #[test]
    fn abort_discards_partial_message() {
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let mut out = BytesMut::new();
        write_message(&mut out, 128, 4, 0, 8, 1, &[1u8; 200]);
        let mut first = out.split_to(140);
        assert!(d.decode(&mut first).unwrap().is_none());
        assert_eq!(d.partial_messages, 1);
        d.abort(4);
        assert_eq!((d.partial_messages, d.partial_bytes), (0, 0));
        // A fresh message on the same chunk stream decodes normally.
        let mut b = fmt0(4, 0, 2, 8, 1);
        b.extend_from_slice(b"ok");
        assert_eq!(&decode_all(&mut d, &b)[0].payload[..], b"ok");
    }

    #[test]
    fn limit_violations() {
        let mut d = ChunkDecoder::new(1000);
        let mut b = BytesMut::from(&fmt0(4, 0, 1001, 8, 1)[..]);
        assert!(matches!(
            d.decode(&mut b),
            Err(RtmpError::MessageTooLarge { len: 1001, .. })
        ));

        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let mut b = BytesMut::from(&[0x84u8, 0, 0, 1][..]);
        assert!(matches!(
            d.decode(&mut b),
            Err(RtmpError::MissingPreviousHeader { csid: 4, fmt: 2 })
        ));

        // fmt 0 inside a partial message.
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let mut b = fmt0(4, 0, 200, 8, 1);
        b.extend_from_slice(&[0; 128]);
        b.extend_from_slice(&fmt0(4, 0, 1, 8, 1));
        b.push(0);
        let mut b = BytesMut::from(&b[..]);
        assert!(matches!(
            d.decode(&mut b),
            Err(RtmpError::HeaderInsideMessage { csid: 4, fmt: 0 })
        ));

        // Too many partial messages: start one per chunk stream.
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        let mut b = Vec::new();
        for csid in 2..(2 + MAX_PARTIAL_MESSAGES as u8 + 1) {
            let mut h = vec![0, csid];
            h.extend_from_slice(&fmt0(0, 0, 200, 8, 1)[1..]);
            b.extend_from_slice(&h);
            b.extend_from_slice(&[0; 128]);
        }
        let mut b = BytesMut::from(&b[..]);
        let err = d.decode(&mut b).unwrap_err();
        assert!(matches!(err, RtmpError::TooManyPartialMessages { .. }));
    }

    #[test]
    fn partial_bytes_limit() {
        // Three messages of MAX_MESSAGE_SIZE, each sent as a first chunk one byte short: the
        // third pushes the buffered total over MAX_PARTIAL_BYTES.
        let mut d = ChunkDecoder::new(MAX_MESSAGE_SIZE);
        d.set_chunk_size(MAX_MESSAGE_SIZE - 1);
        let body = vec![0u8; MAX_MESSAGE_SIZE as usize - 1];
        let mut b = Vec::new();
        for csid in 2..5u8 {
            b.extend_from_slice(&fmt0(csid, 0, MAX_MESSAGE_SIZE, 9, 1));
            b.extend_from_slice(&body);
        }
        let mut buf = BytesMut::from(&b[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(RtmpError::PartialBytesExceeded { .. })
        ));
        assert_eq!(d.partial_messages, 2);
    }
}
