//! Live HLS: a sliding window of in-memory MPEG-TS segments.

use crate::LiveError;
use bytes::Bytes;
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter};
use livetape_media::MediaFrame;
use std::collections::VecDeque;
use std::fmt::Write;

/// A closed segment in the window.
#[derive(Clone, Debug)]
pub struct LiveSegment {
    pub index: u64,
    pub duration_ms: u64,
    pub discontinuity: bool,
    pub data: Bytes,
}

/// Frames in (sequence headers first), closed segments kept in a window of `max_segments`.
#[derive(Debug)]
pub struct LiveHls {
    writer: HlsWriter,
    out: HlsOutput,
    window: VecDeque<LiveSegment>,
    max_segments: usize,
    /// `EXT-X-TARGETDURATION` may never decrease while a client plays (RFC 8216 §6.2.1).
    target_s: u64,
    /// Discontinuities that slid out of the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_seq: u64,
    ended: bool,
}

impl LiveHls {
    pub fn new(target_ms: u64, max_segments: usize) -> Self {
        Self {
            writer: HlsWriter::new(HlsConfig {
                target_duration_ms: target_ms,
            }),
            out: HlsOutput::default(),
            window: VecDeque::with_capacity(max_segments + 1),
            max_segments: max_segments.max(1),
            target_s: target_ms.div_ceil(1000).max(1),
            discontinuity_seq: 0,
            ended: false,
        }
    }

    /// Feeds one frame; `Ok(true)` when a segment closed. An `Err` frame is skipped.
    pub fn push(&mut self, frame: &MediaFrame) -> Result<bool, LiveError> {
        let before = self.out.data.len();
        let r = self.writer.push(frame, &mut self.out);
        let closed = self.take_closed(before);
        r?;
        Ok(closed)
    }

    /// The stream ended: closes the open segment; the playlist gets `EXT-X-ENDLIST`.
    pub fn finish(&mut self) {
        let before = self.out.data.len();
        self.writer.finish(&mut self.out);
        self.take_closed(before);
        self.ended = true;
    }

    /// Bytes written before this call belong to the segment that `closed` (the output never
    /// straddles a close), so they are split off zero-copy.
    fn take_closed(&mut self, before: usize) -> bool {
        let Some(info) = self.out.closed.take() else {
            return false;
        };
        let data = self.out.data.split_to(before).freeze();
        self.target_s = self.target_s.max(info.duration_ms.div_ceil(1000));
        self.window.push_back(LiveSegment {
            index: info.index,
            duration_ms: info.duration_ms,
            discontinuity: info.discontinuity,
            data,
        });
        while self.window.len() > self.max_segments {
            if self.window.pop_front().is_some_and(|s| s.discontinuity) {
                self.discontinuity_seq += 1;
            }
        }
        self.writer.forget_segments(1);
        true
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn segments(&self) -> impl Iterator<Item = &LiveSegment> {
        self.window.iter()
    }

    pub fn segment(&self, index: u64) -> Option<Bytes> {
        let first = self.window.front()?.index;
        let i = usize::try_from(index.checked_sub(first)?).ok()?;
        self.window.get(i).map(|s| s.data.clone())
    }

    /// The live playlist, `None` before the first segment closed. `uri` names segment `i`.
    pub fn playlist(&self, uri: impl Fn(u64) -> String) -> Option<String> {
        let first = self.window.front()?;
        let mut p = String::with_capacity(200 + self.window.len() * 60);
        // Writing to a String cannot fail.
        let _ = write!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.target_s, first.index
        );
        if self.discontinuity_seq > 0 {
            let _ = writeln!(
                p,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_seq
            );
        }
        for s in &self.window {
            if s.discontinuity {
                p.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = write!(
                p,
                "#EXTINF:{}.{:03},\n{}\n",
                s.duration_ms / 1000,
                s.duration_ms % 1000,
                uri(s.index)
            );
        }
        if self.ended {
            p.push_str("#EXT-X-ENDLIST\n");
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livetape_media::MediaKind;

    #[test]
    fn window_slides_and_playlist_counts_on() {
        // Audio-only AAC: segments are cut at any frame past the target.
        let mut h = LiveHls::new(1_000, 3);
        let sh = MediaFrame::new(
            MediaKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
        );
        h.push(&sh).unwrap();
        assert!(h.playlist(|i| format!("{i}.ts")).is_none());
        let mut closed = 0;
        for i in 0..500u64 {
            let f = MediaFrame::new(
                MediaKind::Audio,
                i * 23,
                Bytes::from_static(&[0xaf, 1, 9, 9]),
            );
            closed += usize::from(h.push(&f).unwrap());
        }
        assert!(closed >= 10, "{closed}");
        let segs: Vec<_> = h.segments().map(|s| s.index).collect();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[2], closed as u64 - 1);
        let p = h.playlist(|i| format!("s/{i}.ts")).unwrap();
        assert!(
            p.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", segs[0])),
            "{p}"
        );
        assert!(p.contains(&format!("s/{}.ts\n", segs[2])));
        assert!(!p.contains("ENDLIST"));
        let seg = h.segment(segs[1]).unwrap();
        assert_eq!(seg[0], 0x47);
        assert_eq!(seg.len() % 188, 0);
        assert!(h.segment(0).is_none());
        h.finish();
        assert!(
            h.playlist(|i| format!("{i}.ts"))
                .unwrap()
                .ends_with("#EXT-X-ENDLIST\n")
        );
    }
}
