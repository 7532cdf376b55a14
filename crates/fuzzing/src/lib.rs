//! One function per fuzz target: arbitrary bytes in, no panic, no unbounded allocation, and
//! the properties each parser promises (restartable input, stable re-encoding). `fuzz/` runs
//! them under libFuzzer (`scripts/fuzz.sh`); `tests/corpora.rs` replays the committed corpora
//! on stable so CI checks every input ever found interesting.

use livetape_media::amf0::Amf0Value;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the corpus directory under `fuzz/corpus/`).
pub const TARGETS: [(&str, Target); 8] = [
    ("rtmp_session", rtmp_session),
    ("amf0", amf0),
    ("flv_tags", flv_tags),
    ("codec_configs", codec_configs),
    ("mp4_spool_scan", mp4_spool_scan),
    ("hls_ts_recovery", hls_ts_recovery),
    ("filelist_params", filelist_params),
    ("http_range", http_range),
];

/// RTMP server session input after a valid handshake, fed in two pieces (the first byte says
/// where to cut), so restartable parsing is covered.
pub fn rtmp_session(data: &[u8]) {
    use livetape_rtmp::{HANDSHAKE_SIZE, ServerSession, SessionConfig};
    let mut session = ServerSession::new(SessionConfig::default());
    let mut events = Vec::new();
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * HANDSHAKE_SIZE, 0);
    if session.handle_input(&handshake, &mut events).is_err() {
        return;
    }
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(split);
    if session.handle_input(a, &mut events).is_ok() {
        let _ = session.handle_input(b, &mut events);
    }
    let _ = session.take_output();
}

/// AMF0, strict and lenient; whatever decodes re-encodes to bytes that decode to the same
/// encoding again.
pub fn amf0(data: &[u8]) {
    let _ = Amf0Value::decode_all(data);
    if let Ok(values) = Amf0Value::decode_all_lenient(data) {
        let mut once = Vec::new();
        for v in &values {
            v.encode(&mut once);
        }
        let again = Amf0Value::decode_all_lenient(&once).expect("our own encoding decodes");
        let mut twice = Vec::new();
        for v in &again {
            v.encode(&mut twice);
        }
        assert_eq!(once, twice, "re-encoding is stable");
    }
    let _ = livetape_media::amf0::leading_string(data);
}

/// FLV streams (header, tags, E-FLV bodies) fed in two pieces: the same tags as in one piece.
pub fn flv_tags(data: &[u8]) {
    use livetape_flv::FlvReader;
    let tags = |pieces: &[&[u8]]| {
        let mut r = FlvReader::with_max_tag_size(1 << 20);
        let mut out = Vec::new();
        for p in pieces {
            r.feed(p);
            while let Some(t) = r.next_tag() {
                match t {
                    Ok(t) => out.push((t.tag_type, t.timestamp_ms, t.body.clone(), t.offset)),
                    Err(_) => return out,
                }
            }
        }
        out
    };
    let split = data.len() / 2;
    let whole = tags(&[data]);
    assert_eq!(
        whole,
        tags(&[&data[..split], &data[split..]]),
        "restartable"
    );
    for (kind, ts, body, offset) in whole {
        match kind {
            8 => {
                let _ = livetape_media::AudioTag::parse(&body);
            }
            9 => {
                let _ = livetape_media::VideoTag::parse(&body);
            }
            18 => {
                let _ = livetape_flv::declared_tracks(&body);
            }
            _ => {}
        }
        let tag = livetape_flv::FlvTag {
            tag_type: kind,
            timestamp_ms: ts,
            body,
            offset,
        };
        let _ = tag.into_frame().map(|f| (f.is_video_keyframe(), f.kind));
    }
}

/// Codec configuration records: the first byte picks AVC, HEVC, AV1 or AAC.
pub fn codec_configs(data: &[u8]) {
    use livetape_media::{aac::AacConfig, av1::Av1Config, avc::AvcConfig, hevc::HevcConfig};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = AvcConfig::parse(rest).map(|c| c.codec_string());
        }
        1 => {
            let _ = HevcConfig::parse(rest).map(|c| c.codec_string());
            for nal in livetape_media::hevc::split_annexb(rest) {
                let _ = livetape_media::hevc::nal_type(nal);
            }
        }
        2 => {
            let _ = Av1Config::parse(rest).map(|c| c.codec_string());
        }
        _ => {
            let _ = AacConfig::parse(rest).map(|c| c.samples_per_frame());
        }
    }
}

/// MP4 spool recovery: the scanner walks a torn or garbled spool as it would on disk.
pub fn mp4_spool_scan(data: &[u8]) {
    use livetape_mp4::{ScanStep, SpoolScanner};
    let mut s = SpoolScanner::new(data.len() as u64);
    while let ScanStep::Read { offset, len } = s.next_step() {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        if s.feed(&data[start..end]).is_err() {
            return;
        }
    }
    if let Ok(plan) = s.finish() {
        for r in &plan.copy_ranges {
            assert!(
                r.offset + r.len <= data.len() as u64,
                "a range inside the spool"
            );
        }
    }
    let _ = livetape_mp4::plan_faststart(data);
}

/// HLS segment recovery: the cut never grows the segment, nor does cutting the cut. (Not
/// idempotent by design: a last PES of undeclared length may be torn, so it always goes.)
pub fn hls_ts_recovery(data: &[u8]) {
    let n = livetape_hls::whole_frames_len(data);
    assert!(n <= data.len());
    assert!(
        n == data.len() || n.is_multiple_of(188),
        "cut at a packet boundary"
    );
    assert!(livetape_hls::whole_frames_len(&data[..n]) <= n);
    let _ = livetape_hls::probe_segment(data);
}

/// `Live_Tape_GetFilelist` business parameters from a query string.
pub fn filelist_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params: Vec<(String, String)> = text
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    if let Ok(req) = livetape_tencent::filelist::parse_filelist_params(&params) {
        let _ = (req.sort_desc(), req.offset());
    }
}

/// A `Range` header of `/vod` (bucket objects): what it resolves to lies inside the object.
pub fn http_range(data: &[u8]) {
    use livetape::model::ByteRange;
    let (size, value) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_le_bytes(*n), rest),
        None => (1000, data),
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    if let Some(r) = ByteRange::parse(value)
        && let Some(got) = r.resolve(size)
    {
        assert!(
            got.start < got.end && got.end <= size,
            "{r:?} of {size}: {got:?}"
        );
    }
}
