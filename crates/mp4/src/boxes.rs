//! Box writing (a size-patching [`BoxWriter`]) and bounded box reading ([`Rd`], [`next_box`]).

use crate::Mp4Error;

pub(crate) type FourCc = [u8; 4];

/// Appends ISO-BMFF boxes to a `Vec<u8>`, patching each box's 32-bit size when it is closed.
/// Every box we build is bounded by the crate's limits far below 4 GiB (only `mdat` can be
/// larger, and its header is written separately).
#[derive(Default)]
pub(crate) struct BoxWriter {
    pub(crate) buf: Vec<u8>,
}

impl BoxWriter {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn boxed(&mut self, kind: &FourCc, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(kind);
        body(self);
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub(crate) fn full(
        &mut self,
        kind: &FourCc,
        version: u8,
        flags: u32,
        body: impl FnOnce(&mut Self),
    ) {
        self.boxed(kind, |w| {
            w.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
            body(w);
        });
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// `mdat` header for a payload of `payload_len` bytes: 8 bytes, or 16 with a 64-bit size.
pub(crate) fn mdat_header(payload_len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(16);
    match u32::try_from(payload_len + 8) {
        Ok(size) => {
            h.extend_from_slice(&size.to_be_bytes());
            h.extend_from_slice(b"mdat");
        }
        Err(_) => {
            h.extend_from_slice(&1u32.to_be_bytes());
            h.extend_from_slice(b"mdat");
            h.extend_from_slice(&(payload_len + 16).to_be_bytes());
        }
    }
    h
}

/// A bounds-checked big-endian reader over one box body.
pub(crate) struct Rd<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        if self.buf.len() < n {
            return Err(Mp4Error::Malformed {
                what: self.what,
                reason: "truncated",
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Mp4Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Mp4Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// Version and flags of a full box.
    pub(crate) fn full_header(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// A 32- or 64-bit field depending on the full box version.
    pub(crate) fn versioned(&mut self, version: u8) -> Result<u64, Mp4Error> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
}

/// A parsed box header: type, header length and total size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BoxHeader {
    pub(crate) kind: FourCc,
    pub(crate) header_len: u64,
    /// Total size including the header; `None` for size 0 ("extends to the end").
    pub(crate) size: Option<u64>,
}

/// Parses a box header from the start of `b`. `Ok(None)` if `b` is too short to tell.
pub(crate) fn parse_header(b: &[u8]) -> Result<Option<BoxHeader>, Mp4Error> {
    let Some(h) = b.get(..8) else {
        return Ok(None);
    };
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let kind = [h[4], h[5], h[6], h[7]];
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => {
            let Some(l) = b.get(8..16) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(l);
            (16, Some(u64::from_be_bytes(a)))
        }
        s => (8, Some(u64::from(s))),
    };
    if size.is_some_and(|s| s < header_len) {
        return Err(Mp4Error::Malformed {
            what: "box header",
            reason: "size smaller than header",
        });
    }
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// One child box inside a parent body: its type, body and whole bytes (header included).
pub(crate) struct Child<'a> {
    pub(crate) kind: FourCc,
    pub(crate) body: &'a [u8],
    pub(crate) whole: &'a [u8],
}

/// Splits the next child box off `buf`. `Ok(None)` at the end of the parent.
pub(crate) fn next_box<'a>(buf: &mut &'a [u8]) -> Result<Option<Child<'a>>, Mp4Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    let truncated = || Mp4Error::Malformed {
        what: "child box",
        reason: "truncated",
    };
    let h = parse_header(buf)?.ok_or_else(truncated)?;
    let size = match h.size {
        None => buf.len(),
        Some(s) => usize::try_from(s).map_err(|_| truncated())?,
    };
    if size > buf.len() {
        return Err(truncated());
    }
    let (whole, rest) = buf.split_at(size);
    *buf = rest;
    Ok(Some(Child {
        kind: h.kind,
        // header_len <= size was checked in parse_header (and size 0 means the whole rest >= 8).
        body: whole.get(h.header_len as usize..).unwrap_or(&[]),
        whole,
    }))
}

/// Finds the first child of `kind`.
pub(crate) fn find<'a>(mut buf: &'a [u8], kind: &FourCc) -> Result<Option<Child<'a>>, Mp4Error> {
    while let Some(c) = next_box(&mut buf)? {
        if &c.kind == kind {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

pub(crate) const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
pub(crate) const MOVIE_TIMESCALE: u32 = 1000;

pub(crate) fn write_ftyp(w: &mut BoxWriter, brands: &[&FourCc]) {
    w.boxed(b"ftyp", |w| {
        w.bytes(b"isom");
        w.u32(0x200);
        for b in brands {
            w.bytes(*b);
        }
    });
}

pub(crate) fn write_mvhd(w: &mut BoxWriter, duration: u64, next_track_id: u32) {
    let v1 = duration > u64::from(u32::MAX);
    w.full(b"mvhd", u8::from(v1), 0, |w| {
        if v1 {
            w.zeros(16);
            w.u32(MOVIE_TIMESCALE);
            w.u64(duration);
        } else {
            w.zeros(8);
            w.u32(MOVIE_TIMESCALE);
            w.u32(duration as u32);
        }
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(10);
        for m in MATRIX {
            w.u32(m);
        }
        w.zeros(24);
        w.u32(next_track_id);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_patches_sizes_and_reader_walks_them() {
        let mut w = BoxWriter::default();
        w.boxed(b"moov", |w| {
            w.full(b"mvhd", 0, 0, |w| w.u32(7));
            w.boxed(b"free", |_| {});
        });
        assert_eq!(&w.buf[..8], &[0, 0, 0, 32, b'm', b'o', b'o', b'v']);
        let mut top: &[u8] = &w.buf;
        let moov = next_box(&mut top).unwrap().unwrap();
        assert!(top.is_empty());
        let mvhd = find(moov.body, b"mvhd").unwrap().unwrap();
        let mut r = Rd::new(mvhd.body, "mvhd");
        assert_eq!(r.full_header().unwrap(), (0, 0));
        assert_eq!(r.u32().unwrap(), 7);
        assert!(r.u32().is_err());
        assert!(find(moov.body, b"trak").unwrap().is_none());
    }

    #[test]
    fn bad_child_sizes_are_errors() {
        let mut b: &[u8] = &[0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        assert!(next_box(&mut b).is_err());
        let mut b: &[u8] = &[0, 0, 0, 40, b'f', b'r', b'e', b'e'];
        assert!(next_box(&mut b).is_err());
        let mut b: &[u8] = &[0, 0, 0, 1, b'f', b'r', b'e', b'e', 0, 0, 0, 0, 0, 0, 0, 16];
        assert_eq!(next_box(&mut b).unwrap().unwrap().body.len(), 0);
    }

    #[test]
    fn large_mdat_header() {
        assert_eq!(mdat_header(10), vec![0, 0, 0, 18, b'm', b'd', b'a', b't']);
        let h = mdat_header(u64::from(u32::MAX));
        assert_eq!(h.len(), 16);
        assert_eq!(&h[8..], &(u64::from(u32::MAX) + 16).to_be_bytes());
    }
}
