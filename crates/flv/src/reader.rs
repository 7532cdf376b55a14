//! Push-style FLV demuxer: feed bytes in chunks of any size, pull complete tags.

use crate::{
    FlvError, MAX_HEADER_DATA_OFFSET, MAX_TAG_DATA_SIZE, PREV_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
use bytes::{Bytes, BytesMut};
use livetape_media::{MediaFrame, MediaKind};

/// The parsed 9-byte FLV file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvHeader {
    pub has_audio: bool,
    pub has_video: bool,
    pub data_offset: u32,
}

/// One complete tag. `body` shares the reader's buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlvTag {
    /// Raw TagType (8 audio, 9 video, 18 script; others are passed through).
    pub tag_type: u8,
    /// Full 32-bit timestamp (24-bit field plus extension byte).
    pub timestamp_ms: u32,
    pub body: Bytes,
    /// Stream offset of the tag header.
    pub offset: u64,
}

impl FlvTag {
    pub fn kind(&self) -> Option<MediaKind> {
        MediaKind::from_tag_type(self.tag_type)
    }

    /// Stream offset just past this tag's PreviousTagSize.
    pub fn end_offset(&self) -> u64 {
        self.offset + (TAG_HEADER_LEN + PREV_TAG_SIZE_LEN) as u64 + self.body.len() as u64
    }

    /// The tag as a frame (`None` for unknown tag types). Timestamps are not unwrapped.
    pub fn into_frame(self) -> Option<MediaFrame> {
        Some(MediaFrame::new(
            self.kind()?,
            u64::from(self.timestamp_ms),
            self.body,
        ))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    Tags,
    Failed,
}

/// Incremental FLV reader. After an error it stays failed: `next_tag` returns `None` and fed
/// bytes are dropped, so a corrupt stream cannot make it buffer without bound.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    pos: u64,
    state: State,
    header: Option<FlvHeader>,
    max_tag_size: u32,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvReader {
    pub fn new() -> Self {
        Self::with_max_tag_size(MAX_TAG_DATA_SIZE)
    }

    /// A reader that rejects tags with more than `max` body bytes (bounds its buffer).
    pub fn with_max_tag_size(max: u32) -> Self {
        Self {
            buf: BytesMut::new(),
            pos: 0,
            state: State::Header,
            header: None,
            max_tag_size: max.min(MAX_TAG_DATA_SIZE),
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.state != State::Failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// The file header, once parsed.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Stream offset just past the last complete item (header or tag) returned so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes fed but not yet returned as a complete tag (a torn tail at end of input).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The next complete tag, `None` if more input is needed (or after an error).
    pub fn next_tag(&mut self) -> Option<Result<FlvTag, FlvError>> {
        let r = match self.state {
            State::Failed => return None,
            State::Header => match self.parse_header() {
                Ok(true) => self.parse_tag(),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            },
            State::Tags => self.parse_tag(),
        };
        match r {
            Ok(t) => t.map(Ok),
            Err(e) => {
                self.state = State::Failed;
                self.buf = BytesMut::new();
                Some(Err(e))
            }
        }
    }

    /// Ok(true) once the header and PreviousTagSize0 are consumed.
    fn parse_header(&mut self) -> Result<bool, FlvError> {
        // Check the signature as soon as the bytes are there so garbage fails fast.
        let sig_len = self.buf.len().min(3);
        if self.buf[..sig_len] != b"FLV"[..sig_len] {
            return Err(FlvError::BadSignature);
        }
        let Some(h) = self.buf.get(..9) else {
            return Ok(false);
        };
        if h[3] != 1 {
            return Err(FlvError::UnsupportedVersion(h[3]));
        }
        let flags = h[4];
        let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
        if !(9..=MAX_HEADER_DATA_OFFSET).contains(&data_offset) {
            return Err(FlvError::BadDataOffset(data_offset));
        }
        // PreviousTagSize0 follows the (possibly padded) header; its value is not checked
        // because writers disagree and it carries no information.
        let total = data_offset as usize + PREV_TAG_SIZE_LEN;
        if self.buf.len() < total {
            return Ok(false);
        }
        let _ = self.buf.split_to(total);
        self.pos += total as u64;
        self.header = Some(FlvHeader {
            has_audio: flags & 4 != 0,
            has_video: flags & 1 != 0,
            data_offset,
        });
        self.state = State::Tags;
        Ok(true)
    }

    fn parse_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        let Some(h) = self.buf.get(..TAG_HEADER_LEN) else {
            return Ok(None);
        };
        let offset = self.pos;
        // Bits 7-6 are reserved; bit 5 is the filter (encryption) flag.
        if h[0] & 0x20 != 0 {
            return Err(FlvError::Encrypted { offset });
        }
        let tag_type = h[0] & 0x1f;
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        if size > self.max_tag_size {
            return Err(FlvError::TagTooLarge {
                offset,
                size,
                max: self.max_tag_size,
            });
        }
        let total = TAG_HEADER_LEN + size as usize + PREV_TAG_SIZE_LEN;
        let Some(pts) = self.buf.get(total - PREV_TAG_SIZE_LEN..total) else {
            return Ok(None);
        };
        let found = u32::from_be_bytes([pts[0], pts[1], pts[2], pts[3]]);
        let expected = size + TAG_HEADER_LEN as u32;
        if found != expected {
            return Err(FlvError::PrevTagSizeMismatch {
                offset,
                expected,
                found,
            });
        }
        let tag = self.buf.split_to(total).freeze();
        self.pos += total as u64;
        Ok(Some(FlvTag {
            tag_type,
            timestamp_ms,
            body: tag.slice(TAG_HEADER_LEN..TAG_HEADER_LEN + size as usize),
            offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{file_header, write_tag};
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut f = file_header(true, true).to_vec();
        write_tag(
            &mut f,
            MediaKind::Video,
            0x0100_0002,
            &Bytes::from_static(&[0x17, 1, 0, 0, 0, 9]),
            0,
        )
        .unwrap();
        write_tag(
            &mut f,
            MediaKind::Audio,
            3,
            &Bytes::from_static(&[0xaf, 1]),
            0,
        )
        .unwrap();
        f
    }

    fn read_all(r: &mut FlvReader) -> Vec<Result<FlvTag, FlvError>> {
        std::iter::from_fn(|| r.next_tag()).collect()
    }

    #[test]
    fn reads_tags_in_one_chunk_and_byte_by_byte() {
        let f = sample();
        let mut a = FlvReader::new();
        a.feed(&f);
        let whole = read_all(&mut a);
        let mut b = FlvReader::new();
        let mut bytewise = Vec::new();
        for byte in &f {
            b.feed(&[*byte]);
            bytewise.extend(read_all(&mut b));
        }
        assert_eq!(whole, bytewise);
        assert_eq!(whole.len(), 2);
        let v = whole[0].as_ref().unwrap();
        assert_eq!(
            (v.tag_type, v.timestamp_ms, v.offset, v.end_offset()),
            (9, 0x0100_0002, 13, 13 + 11 + 6 + 4)
        );
        assert_eq!(&v.body[..], &[0x17, 1, 0, 0, 0, 9]);
        assert_eq!(whole[1].as_ref().unwrap().offset, v.end_offset());
        assert_eq!(a.position(), f.len() as u64);
        assert_eq!(a.buffered(), 0);
        assert_eq!(
            a.header(),
            Some(FlvHeader {
                has_audio: true,
                has_video: true,
                data_offset: 9
            })
        );
    }

    #[test]
    fn torn_tail_is_not_returned() {
        let f = sample();
        let mut r = FlvReader::new();
        r.feed(&f[..f.len() - 1]);
        assert_eq!(read_all(&mut r).len(), 1);
        assert_eq!(r.position(), 13 + 21);
        assert_eq!(r.buffered(), f.len() - 1 - 34);
    }

    #[test]
    fn prev_tag_size_mismatch() {
        let mut f = sample();
        let n = f.len();
        f[n - 1] ^= 1;
        let mut r = FlvReader::new();
        r.feed(&f);
        let got = read_all(&mut r);
        assert!(got[0].is_ok());
        assert_eq!(
            got[1],
            Err(FlvError::PrevTagSizeMismatch {
                offset: 34,
                expected: 13,
                found: 12
            })
        );
        assert!(r.is_failed());
        r.feed(&f);
        assert!(r.next_tag().is_none());
    }

    #[test]
    fn header_errors() {
        let mut r = FlvReader::new();
        r.feed(b"FLX");
        assert_eq!(r.next_tag(), Some(Err(FlvError::BadSignature)));
        let mut r = FlvReader::new();
        r.feed(b"F");
        assert_eq!(r.next_tag(), None);
        let mut h = file_header(true, true);
        h[3] = 2;
        let mut r = FlvReader::new();
        r.feed(&h);
        assert_eq!(r.next_tag(), Some(Err(FlvError::UnsupportedVersion(2))));
        let mut h = file_header(true, true);
        h[8] = 3;
        let mut r = FlvReader::new();
        r.feed(&h);
        assert_eq!(r.next_tag(), Some(Err(FlvError::BadDataOffset(3))));
    }

    #[test]
    fn size_limit_and_encryption() {
        let f = sample();
        let mut r = FlvReader::with_max_tag_size(4);
        r.feed(&f);
        assert_eq!(
            r.next_tag(),
            Some(Err(FlvError::TagTooLarge {
                offset: 13,
                size: 6,
                max: 4
            }))
        );
        let mut f = sample();
        f[13] |= 0x20;
        let mut r = FlvReader::new();
        r.feed(&f);
        assert_eq!(r.next_tag(), Some(Err(FlvError::Encrypted { offset: 13 })));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            b in proptest::collection::vec(any::<u8>(), 0..512),
            split in 0usize..512,
        ) {
            let mut r = FlvReader::with_max_tag_size(256);
            let split = split.min(b.len());
            r.feed(&b[..split]);
            while let Some(t) = r.next_tag() { if t.is_err() { break; } }
            r.feed(&b[split..]);
            while let Some(t) = r.next_tag() { if t.is_err() { break; } }
            prop_assert!(r.position() <= b.len() as u64);
        }

        #[test]
        fn valid_prefix_then_garbage_never_panics(
            g in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut f = sample();
            f.extend_from_slice(&g);
            let mut r = FlvReader::new();
            r.feed(&f);
            let got = read_all(&mut r);
            prop_assert!(got.len() >= 2);
            prop_assert!(got[0].is_ok() && got[1].is_ok());
        }
    }
}
