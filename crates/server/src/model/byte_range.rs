//! A `Range: bytes=…` request header (RFC 9110 §14.1.2) as `/vod` serves it from a bucket:
//! one range is served partially; several, or a malformed header, get the whole object (as
//! the RFC allows). Pure, and fuzzed (`fuzz/fuzz_targets/http_range.rs`).

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (end exclusive here).
    Bounded(Range<u64>),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The header's value; `None`: serve the whole object.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.trim().split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
            (Some(a), Some(b)) if a <= b => Some(ByteRange::Bounded(a..b.saturating_add(1))),
            (Some(a), None) if b.is_empty() => Some(ByteRange::From(a)),
            (None, Some(n)) if a.is_empty() => Some(ByteRange::Suffix(n)),
            _ => None,
        }
    }

    /// The bytes of an object of `size` this asks for: `None` when unsatisfiable (416).
    pub fn resolve(&self, size: u64) -> Option<Range<u64>> {
        let (start, end) = match self {
            ByteRange::Bounded(r) => (r.start, r.end.min(size)),
            ByteRange::From(o) => (*o, size),
            ByteRange::Suffix(n) => (size.saturating_sub(*n), size),
        };
        (start < end).then_some(start..end)
    }
}
