//! The feed's GOP cache, fan-out and lag policy, through the public API.

use bytes::Bytes;
use livetape_live::{Feed, FeedConfig, ReadStatus};
use livetape_media::{MediaFrame, MediaKind};
use proptest::prelude::*;

/// avcC of the 10 s fixture (x264 640x360 High@3.0).
const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x25, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
    0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xe0, 0x60,
    0x00, 0xf4, 0x24, 0x00, 0x1e, 0x84, 0xe6, 0xa3, 0x00, 0x78, 0xb1, 0x6c, 0xb0, 0x01, 0x00, 0x04,
    0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
];

fn video_sh() -> MediaFrame {
    let mut b = vec![0x17, 0, 0, 0, 0];
    b.extend_from_slice(AVCC);
    MediaFrame::new(MediaKind::Video, 0, Bytes::from(b))
}
fn audio_sh() -> MediaFrame {
    MediaFrame::new(
        MediaKind::Audio,
        0,
        Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
    )
}
fn video(dts: u64, key: bool, size: usize) -> MediaFrame {
    let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    b.resize(5 + size, 0xab);
    MediaFrame::new(MediaKind::Video, dts, Bytes::from(b))
}
fn audio(dts: u64) -> MediaFrame {
    MediaFrame::new(
        MediaKind::Audio,
        dts,
        Bytes::from_static(&[0xaf, 1, 1, 2, 3]),
    )
}

/// Tags of an FLV byte stream (the file header skipped if present): (type, timestamp, body).
fn tags(chunks: &[Bytes]) -> Vec<(u8, u32, Vec<u8>)> {
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let mut pos = if all.starts_with(b"FLV") { 13 } else { 0 };
    let mut out = Vec::new();
    while pos + 11 <= all.len() {
        let h = &all[pos..pos + 11];
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body = all[pos + 11..pos + 11 + size].to_vec();
        let prev = u32::from_be_bytes(all[pos + 11 + size..pos + 15 + size].try_into().unwrap());
        assert_eq!(prev as usize, size + 11, "PreviousTagSize");
        out.push((h[0], ts, body));
        pos += 15 + size;
    }
    assert_eq!(pos, all.len(), "whole tags only");
    out
}

fn is_key(t: &(u8, u32, Vec<u8>)) -> bool {
    t.0 == 9 && t.2[0] == 0x17 && t.2[1] == 1
}

fn read_all(feed: &mut Feed, id: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    while feed.read_flv(id, &mut out, 64 * 1024) == ReadStatus::Data {}
    out
}

/// Pushes `secs` seconds of 25 fps video with a keyframe every 2 s, plus audio.
fn push_av(feed: &mut Feed, from_ms: u64, secs: u64) {
    for i in 0..secs * 25 {
        let t = from_ms + i * 40;
        feed.push(&video(t, t.is_multiple_of(2000), 1000));
        feed.push(&audio(t + 1));
    }
}

#[test]
fn new_viewer_starts_with_headers_then_the_last_keyframe() {
    let mut feed = Feed::new(FeedConfig::default());
    feed.push(&MediaFrame::new(
        MediaKind::Script,
        0,
        Bytes::from_static(b"\x02\x00\x0aonMetaData"),
    ));
    feed.push(&video_sh());
    feed.push(&audio_sh());
    push_av(&mut feed, 0, 3);
    let info = feed.info().clone();
    assert_eq!(
        (info.video_codec, info.audio_codec),
        (Some("h264"), Some("aac"))
    );
    assert_eq!((info.width, info.height), (640, 360));
    assert_eq!(
        info.sample_rate, 48_000,
        "from the AudioSpecificConfig, not the FLV bits"
    );
    let id = feed.attach();
    let out = read_all(&mut feed, id);
    assert_eq!(&out[0][..5], b"FLV\x01\x05", "audio+video header");
    let t = tags(&out);
    assert_eq!(t[0].0, 18, "metadata first");
    assert_eq!((t[1].0, t[1].2[1]), (9, 0), "AVC sequence header");
    assert_eq!((t[2].0, t[2].2[1]), (8, 0), "AAC sequence header");
    assert_eq!(t[1].1, 2000, "headers stamped with the first frame's time");
    assert!(
        is_key(&t[3]) && t[3].1 == 2000,
        "starts at the last keyframe"
    );
    // 2000..=2960 ms: 25 video + 25 audio frames, the GOP only.
    assert_eq!(t.len() - 3, 50);
    // Live frames follow, once, in order.
    push_av(&mut feed, 3000, 1);
    let more = tags(&read_all(&mut feed, id));
    assert_eq!(more.len(), 50);
    assert_eq!(more[0].1, 3000);
    assert_eq!(feed.skips(id), Some(0));
}

#[test]
fn without_viewers_the_gop_cache_holds_one_gop_and_off_holds_nothing() {
    let mut on = Feed::new(FeedConfig::default());
    let mut off = Feed::new(FeedConfig {
        gop_cache: false,
        ..FeedConfig::default()
    });
    for f in [&mut on, &mut off] {
        f.push(&video_sh());
        push_av(f, 0, 5);
    }
    // 4000..4960: one GOP of 25 video + 25 audio frames.
    assert_eq!(on.buffered_frames(), 50);
    assert_eq!(off.buffered_frames(), 0);
    assert_eq!(off.buffered_bytes(), 0);
    // Without the cache a viewer waits for the next keyframe.
    let id = off.attach();
    let mut out = Vec::new();
    assert_eq!(off.read_flv(id, &mut out, 1 << 20), ReadStatus::Pending);
    off.push(&video(5000 - 40 + 1, false, 10));
    assert_eq!(off.read_flv(id, &mut out, 1 << 20), ReadStatus::Pending);
    push_av(&mut off, 6000, 1);
    let t = tags(&read_all(&mut off, id));
    assert!(is_key(&t[1]) && t[1].1 == 6000, "{:?}", &t[..2]);
}

#[test]
fn a_stalled_viewer_skips_to_a_keyframe_and_never_holds_others_back() {
    let mut feed = Feed::new(FeedConfig {
        max_lag_ms: 1_000,
        ..FeedConfig::default()
    });
    feed.push(&video_sh());
    feed.push(&audio_sh());
    let slow = feed.attach();
    let fast = feed.attach();
    push_av(&mut feed, 0, 1);
    let mut fast_tags = tags(&read_all(&mut feed, fast));
    let slow_first = tags(&read_all(&mut feed, slow));
    assert_eq!(slow_first.len(), fast_tags.len());
    for s in 1..8 {
        // The fast viewer reads after every second, the slow one not at all.
        push_av(&mut feed, s * 1000, 1);
        fast_tags.extend(tags(&read_all(&mut feed, fast)));
        // Memory is bounded by the lag bound / GOP, not by the stalled viewer.
        assert!(
            feed.buffered_frames() <= 2 * 50 + 2,
            "{}",
            feed.buffered_frames()
        );
    }
    // Every frame reached the fast viewer exactly once, in order.
    let media: Vec<_> = fast_tags.iter().filter(|t| t.2[1] != 0).collect();
    assert_eq!(media.len(), 8 * 50);
    assert!(media.windows(2).all(|w| w[0].1 <= w[1].1 + 1));
    assert_eq!(feed.skips(fast), Some(0));
    // The slow one resumes at the newest keyframe, with codec headers again, no FLV header.
    let resumed = read_all(&mut feed, slow);
    assert_ne!(&resumed[0][..3], b"FLV");
    let t = tags(&resumed);
    assert_eq!(feed.skips(slow), Some(1));
    assert_eq!((t[0].2[1], t[1].2[1]), (0, 0), "sequence headers");
    assert!(is_key(&t[2]) && t[2].1 == 6000, "{:?}", t[2].1);
}

#[test]
fn the_byte_cap_bounds_a_huge_gop() {
    let cap = 100_000;
    let mut feed = Feed::new(FeedConfig {
        max_buffer_bytes: cap,
        ..FeedConfig::default()
    });
    feed.push(&video_sh());
    feed.push(&video(0, true, 5_000));
    for i in 1..200 {
        feed.push(&video(i * 40, false, 5_000));
    }
    assert!(feed.buffered_bytes() <= cap, "{}", feed.buffered_bytes());
    // The keyframe is gone: a new viewer waits for the next one.
    let id = feed.attach();
    assert_eq!(
        feed.read_flv(id, &mut Vec::new(), 1 << 20),
        ReadStatus::Pending
    );
    feed.push(&video(8000, true, 5_000));
    let t = tags(&read_all(&mut feed, id));
    assert!(is_key(&t[1]) && t[1].1 == 8000);
}

#[test]
fn audio_only_streams_start_at_any_audio_frame() {
    let mut feed = Feed::new(FeedConfig::default());
    feed.push(&audio_sh());
    for i in 0..10 {
        feed.push(&audio(i * 23));
    }
    assert_eq!(feed.buffered_frames(), 1, "each audio frame is a GOP");
    let id = feed.attach();
    let out = read_all(&mut feed, id);
    assert_eq!(out[0][4], 4, "audio-only FLV header");
    let t = tags(&out);
    assert_eq!((t[0].2[1], t[1].1), (0, 207));
}

#[test]
fn hand_over_moves_the_cache_and_end_drains_then_ends() {
    let mut private = Feed::new(FeedConfig::default());
    let mut shared = Feed::new_detached(FeedConfig::default());
    let id = shared.attach();
    private.push(&video_sh());
    push_av(&mut private, 0, 3);
    assert_eq!(
        shared.read_flv(id, &mut Vec::new(), 1 << 20),
        ReadStatus::Pending
    );
    private.hand_over(&mut shared);
    assert_eq!(private.buffered_frames(), 0);
    shared.push(&video(3000, false, 10));
    shared.end();
    let t = tags(&read_all(&mut shared, id));
    assert!(is_key(&t[1]) && t[1].1 == 2000);
    assert_eq!(t.last().unwrap().1, 3000);
    assert_eq!(
        shared.read_flv(id, &mut Vec::new(), 1 << 20),
        ReadStatus::Ended
    );
    assert!(shared.detach(id));
    assert_eq!(
        shared.read_flv(id, &mut Vec::new(), 1 << 20),
        ReadStatus::Gone
    );
}

#[test]
fn frames_read_back_as_media_frames_with_headers_first() {
    let mut feed = Feed::new(FeedConfig::default());
    feed.push(&video_sh());
    feed.push(&audio_sh());
    push_av(&mut feed, 0, 1);
    let id = feed.attach();
    let mut frames = Vec::new();
    assert_eq!(feed.read_frames(id, &mut frames, 1 << 20), ReadStatus::Data);
    assert_eq!(frames[0].payload, video_sh().payload);
    assert_eq!(frames[1].payload, audio_sh().payload);
    assert!(frames[2].is_video_keyframe());
    assert_eq!(frames[2], video(0, true, 1000));
    assert_eq!(frames.len(), 2 + 50);
}

#[derive(Debug, Clone)]
enum Op {
    Frame(u8, bool, Vec<u8>),
    Read(usize, usize),
    Attach,
    Detach(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(k, key, b)| Op::Frame(k, key, b)),
        2 => (0usize..4, 1usize..5000).prop_map(|(v, n)| Op::Read(v, n)),
        1 => Just(Op::Attach),
        1 => (0usize..4).prop_map(Op::Detach),
    ]
}

proptest! {
    /// Any frames (garbage included) and any read pattern: no panic, bounded memory, every
    /// viewer's stream is whole FLV tags that (re)start at a keyframe and never go back.
    #[test]
    fn random_use_keeps_the_invariants(
        ops in proptest::collection::vec(op(), 0..200),
        gop_cache in any::<bool>(),
    ) {
        let cap = 20_000;
        let mut feed = Feed::new(FeedConfig { gop_cache, max_lag_ms: 500, max_buffer_bytes: cap });
        let mut viewers: Vec<(u64, Vec<Bytes>, u64)> = Vec::new();
        let mut dts = 0;
        for op in ops {
            match op {
                Op::Frame(kind, key, mut body) => {
                    dts += 20;
                    let frame = match kind {
                        0 => video(dts, key, body.len()),
                        1 => audio(dts),
                        2 => { body.insert(0, 0x17); MediaFrame::new(MediaKind::Video, dts, body.into()) }
                        _ => MediaFrame::new(MediaKind::Audio, dts, body.into()),
                    };
                    feed.push(&frame);
                    prop_assert!(feed.buffered_bytes() <= cap + 400);
                }
                Op::Read(v, n) => {
                    if let Some((id, out, skips)) = viewers.get_mut(v) {
                        let before = out.len();
                        let st = feed.read_flv(*id, out, n);
                        prop_assert_ne!(st, ReadStatus::Gone);
                        let new_skips = feed.skips(*id).unwrap();
                        if new_skips != *skips || before == 0 {
                            // A (re)start: headers, then a start point.
                            let t = tags(&out[before..]);
                            if let Some(first) = t.iter().find(|t| t.2.get(1) != Some(&0)) {
                                prop_assert!(is_key(first) || first.0 == 8, "{:?}", first);
                            }
                        }
                        *skips = new_skips;
                    }
                }
                Op::Attach => viewers.push((feed.attach(), Vec::new(), 0)),
                Op::Detach(v) => {
                    if v < viewers.len() {
                        let (id, ..) = viewers.remove(v);
                        prop_assert!(feed.detach(id));
                    }
                }
            }
        }
        for (_, out, _) in &viewers {
            let t = tags(out);
            prop_assert!(t.windows(2).all(|w| w[0].1 <= w[1].1 || w[1].2.get(1) == Some(&0)));
        }
    }
}
