//! `ClientSession` ↔ `ServerSession` wired back to back in memory: whatever the client publishes
//! must come out of the server as identical frames, for any chunk size and any way the byte
//! streams are split.

use bytes::Bytes;
use livetape_flv::FlvReader;
use livetape_media::{MediaFrame, MediaKind};
use livetape_rtmp::{
    ClientConfig, ClientEvent, ClientSession, Event, ServerSession, SessionConfig,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn fixture() -> &'static [MediaFrame] {
    static FRAMES: OnceLock<Vec<MediaFrame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let data = std::fs::read(livetape_testkit::clip_10s()).expect("fixture");
        let mut r = FlvReader::new();
        r.feed(&data);
        let mut frames = Vec::new();
        while let Some(tag) = r.next_tag() {
            frames.extend(tag.expect("valid fixture").into_frame());
        }
        frames
    })
}

/// E-RTMP enhanced video tags (IsExHeader | keyframe, FourCC hvc1) the server must pass through
/// untouched, with timestamps beyond the 24-bit field and payloads spanning several chunks.
fn enhanced_tags(start_dts: u64) -> Vec<MediaFrame> {
    [5usize, 300, 4096, 4097, 9000, 20_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut p = vec![0x90, b'h', b'v', b'c', b'1'];
            p.extend((0..len).map(|j| (j * 31 + i) as u8));
            MediaFrame::new(MediaKind::Video, start_dts + i as u64 * 40, Bytes::from(p))
        })
        .collect()
}

struct Wire {
    client: ClientSession,
    server: ServerSession,
    client_events: Vec<ClientEvent>,
    server_events: Vec<Event>,
    /// Feed sizes used in turn for both directions (cycled), so reads split anywhere.
    cuts: Vec<usize>,
    cut_idx: usize,
    reject: Option<(&'static str, &'static str)>,
}

impl Wire {
    fn new(config: ClientConfig, server: SessionConfig) -> Self {
        Self {
            client: ClientSession::new(config),
            server: ServerSession::new(server),
            client_events: Vec::new(),
            server_events: Vec::new(),
            cuts: vec![usize::MAX],
            cut_idx: 0,
            reject: None,
        }
    }

    fn next_cut(&mut self) -> usize {
        let c = self.cuts[self.cut_idx % self.cuts.len()].max(1);
        self.cut_idx += 1;
        c
    }

    /// Moves bytes both ways until neither side has anything more to say.
    fn run(&mut self) {
        loop {
            let c2s: Vec<u8> = self.client.take_output().concat();
            let s2c = self.server.take_output().unwrap_or_default();
            if c2s.is_empty() && s2c.is_empty() {
                return;
            }
            let mut rest = &c2s[..];
            while !rest.is_empty() {
                let n = self.next_cut().min(rest.len());
                let before = self.server_events.len();
                self.server
                    .handle_input(&rest[..n], &mut self.server_events)
                    .expect("server accepts client bytes");
                rest = &rest[n..];
                let requested = self.server_events[before..]
                    .iter()
                    .any(|e| matches!(e, Event::PublishRequested { .. }));
                if requested {
                    match self.reject {
                        None => self.server.accept_publish().unwrap(),
                        Some((code, desc)) => self.server.reject_publish(code, desc).unwrap(),
                    }
                }
            }
            let mut rest = &s2c[..];
            while !rest.is_empty() {
                let n = self.next_cut().min(rest.len());
                self.client
                    .handle_input(&rest[..n], &mut self.client_events)
                    .expect("client accepts server bytes");
                rest = &rest[n..];
            }
        }
    }

    fn media(&self) -> Vec<&MediaFrame> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                Event::Media(f) => Some(f),
                _ => None,
            })
            .collect()
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        app: "live?vhost=v.example".into(),
        tc_url: "rtmp://127.0.0.1:1935/live?vhost=v.example".into(),
        stream: "cam1?txSecret=abc&txTime=5F5E0FFF".into(),
        ..ClientConfig::default()
    }
}

fn publish_all(wire: &mut Wire, frames: &[MediaFrame]) {
    wire.run();
    assert!(wire.client.is_publishing(), "{:?}", wire.client_events);
    for (i, f) in frames.iter().enumerate() {
        wire.client.send_frame(f).unwrap();
        // Deliver in irregular batches so acks and media interleave.
        if i % 7 == 0 {
            wire.run();
        }
    }
    wire.client.finish().unwrap();
    wire.run();
}

fn assert_same(got: &[&MediaFrame], want: &[MediaFrame]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!((g.kind, g.dts_ms), (w.kind, w.dts_ms), "frame {i}");
        assert!(g.payload == w.payload, "frame {i} payload differs");
    }
}

#[test]
fn fixture_and_enhanced_tags_arrive_identical() {
    let mut frames = fixture().to_vec();
    // ffprobe's packet counts, plus the two sequence headers and the AVC end-of-sequence tag.
    let count = |k| frames.iter().filter(|f| f.kind == k).count();
    let counts = [MediaKind::Video, MediaKind::Audio, MediaKind::Script].map(count);
    assert_eq!(counts, [302, 471, 1]);
    // Continue past the 24-bit timestamp field (0xFFFFFF ms ≈ 4.66 h).
    frames.extend(enhanced_tags(0x00ff_ff00));

    let mut wire = Wire::new(config().with_enhanced_rtmp(), SessionConfig::default());
    publish_all(&mut wire, &frames);

    assert_eq!(
        wire.client_events,
        [
            ClientEvent::Connected {
                four_cc_list: Some(vec!["avc1".into(), "hvc1".into(), "av01".into()])
            },
            ClientEvent::Publishing
        ]
    );
    assert_eq!(wire.server.four_cc_list(), ["hvc1", "avc1", "av01"]);
    match &wire.server_events[..2] {
        [
            Event::Connected {
                app,
                app_param,
                tc_url,
                ..
            },
            Event::PublishRequested {
                stream_name,
                stream_param,
                publish_type,
                ..
            },
        ] => {
            assert_eq!(
                (app.as_str(), app_param.as_str()),
                ("live", "vhost=v.example")
            );
            assert_eq!(tc_url, "rtmp://127.0.0.1:1935/live?vhost=v.example");
            assert_eq!(stream_name, "cam1");
            assert_eq!(stream_param, "txSecret=abc&txTime=5F5E0FFF");
            assert_eq!(publish_type, "live");
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert_same(&wire.media(), &frames);
    assert!(matches!(
        wire.server_events.last(),
        Some(Event::Unpublished { .. })
    ));
    // Everything the client queued was consumed by the server.
    assert_eq!(wire.client.bytes_queued(), wire.server.bytes_received());
}

#[test]
fn legacy_connect_gets_no_four_cc_list() {
    let mut wire = Wire::new(config(), SessionConfig::default());
    wire.run();
    assert_eq!(
        wire.client_events,
        [
            ClientEvent::Connected { four_cc_list: None },
            ClientEvent::Publishing
        ]
    );
    assert!(wire.server.four_cc_list().is_empty());
}

#[test]
fn rejected_publish_is_reported() {
    let mut wire = Wire::new(config(), SessionConfig::default());
    wire.reject = Some(("NetStream.Publish.Unauthorized", "bad txSecret"));
    wire.run();
    assert_eq!(
        wire.client_events.last(),
        Some(&ClientEvent::Rejected {
            code: "NetStream.Publish.Unauthorized".into(),
            description: "bad txSecret".into()
        })
    );
    assert!(!wire.client.is_publishing());
    assert!(wire.client.send_frame(&fixture()[0]).is_err());
    assert!(wire.client.finish().is_err());
    assert!(wire.media().is_empty());
}

#[test]
fn server_acks_are_counted_and_window_respected() {
    let server = SessionConfig {
        window_ack_size: 100_000,
        // The client answers Set Peer Bandwidth with this as its Window Ack Size (RTMP §5.4.5),
        // which then sets the server's ack window.
        peer_bandwidth: 100_000,
        ..SessionConfig::default()
    };
    let mut wire = Wire::new(config(), server);
    let frames = &fixture()[..200];
    publish_all(&mut wire, frames);
    let sent = wire.client.bytes_queued();
    let acked = wire.client.acked_bytes();
    assert!(sent > 300_000, "{sent}");
    assert!(
        acked <= sent && sent - acked < 100_000,
        "acked {acked} of {sent}"
    );
    assert_same(&wire.media(), frames);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_chunk_size_and_split_gives_identical_frames(
        client_chunk in prop_oneof![Just(128u32), 129u32..5000, Just(4096), 60_000u32..70_000],
        server_chunk in prop_oneof![Just(128u32), 129u32..70_000],
        cuts in prop::collection::vec(1usize..9000, 1..8),
        start in 0usize..700,
    ) {
        let mut frames = fixture()[start..start + 60].to_vec();
        let last = frames.last().map_or(0, |f| f.dts_ms);
        frames.extend(enhanced_tags(last + 40));
        frames.extend(enhanced_tags(0x00ff_fff0));
        let cfg = ClientConfig { chunk_size: client_chunk, ..config() };
        let srv = SessionConfig { out_chunk_size: server_chunk, ..SessionConfig::default() };
        let mut wire = Wire::new(cfg, srv);
        wire.cuts = cuts;
        publish_all(&mut wire, &frames);
        let got = wire.media();
        prop_assert_eq!(got.len(), frames.len());
        for (g, w) in got.iter().zip(&frames) {
            prop_assert_eq!((g.kind, g.dts_ms), (w.kind, w.dts_ms));
            prop_assert!(g.payload == w.payload);
        }
    }
}
