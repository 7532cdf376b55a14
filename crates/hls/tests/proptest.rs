//! Random and garbage frames never panic, and the output stays well-formed TS.

use bytes::Bytes;
use livetape_hls::{HlsConfig, HlsOutput, HlsWriter, probe_segment};
use livetape_media::{MediaFrame, MediaKind};
use proptest::prelude::*;

const AVC_SEQ: &[u8] = &[
    0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x03, 0x67, 0x64, 0x00, 0x01, 0x00,
    0x02, 0x68, 0xef,
];
const AAC_SEQ: &[u8] = &[0xaf, 0, 0x11, 0x90];

#[derive(Debug, Clone)]
enum Op {
    Frame(u8, u64, Vec<u8>),
    Discontinuity,
}

fn dts() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..20_000, 1 => any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    let body = proptest::collection::vec(any::<u8>(), 0..400);
    prop_oneof![
        // Raw garbage of any kind.
        (0u8..3, dts(), body.clone()).prop_map(|(k, d, b)| Op::Frame(k, d, b)),
        // Plausible AVC frames: valid tag header, maybe-valid NALU lengths.
        (any::<bool>(), dts(), body.clone()).prop_map(|(key, d, b)| {
            let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
            v.extend_from_slice(&(b.len() as u32).to_be_bytes());
            v.extend_from_slice(&b);
            Op::Frame(1, d, v)
        }),
        (dts(), body).prop_map(|(d, b)| {
            let mut v = vec![0xaf, 1];
            v.extend_from_slice(&b);
            Op::Frame(0, d, v)
        }),
        (dts()).prop_map(|d| Op::Frame(1, d, AVC_SEQ.to_vec())),
        (dts()).prop_map(|d| Op::Frame(0, d, AAC_SEQ.to_vec())),
        Just(Op::Discontinuity),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_frames_never_panic(ops in proptest::collection::vec(op(), 0..120)) {
        let mut w = HlsWriter::new(HlsConfig { target_duration_ms: 1_000 });
        let mut out = HlsOutput::default();
        let mut segment = Vec::new();
        let kinds = [MediaKind::Audio, MediaKind::Video, MediaKind::Script];
        let check = |out: &mut HlsOutput, segment: &mut Vec<u8>| {
            if let Some(c) = out.closed.take() {
                prop_assert_eq!(c.bytes as usize, segment.len());
                let _ = probe_segment(segment);
                segment.clear();
            }
            out.opened = None;
            prop_assert_eq!(out.data.len() % 188, 0);
            prop_assert!(out.data.iter().step_by(188).all(|b| *b == 0x47));
            segment.extend_from_slice(&out.data);
            out.data.clear();
            Ok(())
        };
        for op in ops {
            match op {
                Op::Frame(k, dts, body) => {
                    let f = MediaFrame::new(kinds[usize::from(k)], dts, Bytes::from(body));
                    let _ = w.push(&f, &mut out);
                }
                Op::Discontinuity => w.mark_discontinuity(&mut out),
            }
            check(&mut out, &mut segment)?;
        }
        w.finish(&mut out);
        check(&mut out, &mut segment)?;
        let p = w.playlist(true);
        prop_assert_eq!(p.matches("#EXTINF:").count(), w.segments().len());
    }

    #[test]
    fn probe_never_panics(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = probe_segment(&b);
        let mut b = b;
        for i in (0..b.len()).step_by(188) { b[i] = 0x47; }
        let _ = probe_segment(&b);
    }
}
