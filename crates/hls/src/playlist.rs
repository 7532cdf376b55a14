//! HLS media playlist rendering (RFC 8216), written in-house: the subset a recording needs.

use crate::SegmentInfo;
use std::fmt::Write;

/// The URI of segment `index`, relative to the playlist: the one place HLS file names are
/// made ([`parse_segment_uri`] reads them back).
pub fn segment_uri(index: u64) -> String {
    format!("seg-{index:05}.ts")
}

/// The index of a segment file name made by [`segment_uri`]; `None` for any other name (so a
/// name from a URL can never be a path trick).
pub fn parse_segment_uri(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".ts")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// Renders a playlist from closed segments. While recording (`ended == false`) the type is
/// `EVENT` (segments are only ever appended); a finished recording is `VOD` with
/// `EXT-X-ENDLIST`. `EXT-X-TARGETDURATION` is the ceiling of the longest segment (never below
/// `min_target_ms`, so it stays stable while recording), which bounds every EXTINF however a
/// client rounds it.
pub(crate) fn render(segments: &[SegmentInfo], ended: bool, min_target_ms: u64) -> String {
    let longest = segments.iter().map(|s| s.duration_ms).max().unwrap_or(0);
    let target = longest.max(min_target_ms).div_ceil(1000).max(1);
    let mut p = String::with_capacity(160 + segments.len() * 40);
    // Writing to a String cannot fail.
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:{}\n",
        if ended { "VOD" } else { "EVENT" }
    );
    for s in segments {
        if s.discontinuity {
            p.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = write!(
            p,
            "#EXTINF:{}.{:03},\n{}\n",
            s.duration_ms / 1000,
            s.duration_ms % 1000,
            s.uri
        );
    }
    if ended {
        p.push_str("#EXT-X-ENDLIST\n");
    }
    p
}

/// Rebuilds a playlist from segment records alone, e.g. after a crash, from
/// [`crate::probe_segment`] measurements of the files on disk.
pub fn rebuild_playlist(segments: &[SegmentInfo], ended: bool) -> String {
    render(segments, ended, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(index: u64, duration_ms: u64, discontinuity: bool) -> SegmentInfo {
        SegmentInfo {
            index,
            uri: segment_uri(index),
            duration_ms,
            bytes: 0,
            discontinuity,
            first_dts_ms: 0,
        }
    }

    #[test]
    fn renders_vod_with_discontinuity() {
        let p = rebuild_playlist(&[seg(0, 6006, false), seg(1, 2500, true)], true);
        assert_eq!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:7\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.006,\nseg-00000.ts\n#EXT-X-DISCONTINUITY\n\
             #EXTINF:2.500,\nseg-00001.ts\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn event_playlist_while_recording() {
        let p = render(&[seg(0, 1000, false)], false, 6000);
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(p.contains("#EXT-X-TARGETDURATION:6\n"));
        assert!(!p.contains("ENDLIST"));
        assert!(render(&[], false, 0).contains("#EXT-X-TARGETDURATION:1\n"));
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_nothing_else_parses() {
        for i in [0, 7, 99_999, 123_456] {
            assert_eq!(parse_segment_uri(&segment_uri(i)), Some(i));
        }
        for bad in [
            "seg-.ts",
            "seg-1a.ts",
            "seg-1.ts.bak",
            "../seg-1.ts",
            "seg-+1.ts",
            "x.ts",
        ] {
            assert_eq!(parse_segment_uri(bad), None, "{bad}");
        }
    }
}
