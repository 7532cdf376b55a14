//! `build::eflv_from_annexb_hevc` on real x265 + AAC output. Debian's ffmpeg 5.1 cannot demux
//! Enhanced FLV, so the file is checked with our reader, and its video is turned back into an
//! Annex-B stream that ffmpeg must decode cleanly.

use livetape_flv::FlvReader;
use livetape_flv::amf0::Amf0Value;
use livetape_flv::build::{BuildError, eflv_from_annexb_hevc};
use livetape_media::hevc::{self, HevcConfig};
use livetape_media::{MediaKind, VideoCodec, VideoPacket};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

fn ffmpeg(args: &[&str], dir: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ffmpeg installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn count_packets(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-of", "csv=p=0"])
        .args(["-show_entries", "stream=nb_read_packets"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// 4 s of 640x360@30 H.265 (keyframe every second, no B-frames) and 48 kHz AAC.
fn sources(dir: &Path, x265: &str) -> (Vec<u8>, Vec<u8>) {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "4",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            x265,
            "-f",
            "hevc",
            "v.hevc",
        ],
        dir,
    );
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-c:a",
            "aac",
            "-f",
            "adts",
            "a.aac",
        ],
        dir,
    );
    (
        std::fs::read(dir.join("v.hevc")).unwrap(),
        std::fs::read(dir.join("a.aac")).unwrap(),
    )
}

const X265: &str = "bframes=0:aud=1:keyint=30:min-keyint=30:scenecut=0:log-level=error";

#[test]
fn hevc_and_aac_to_enhanced_flv() {
    let dir = tempfile::tempdir().unwrap();
    let (v, a) = sources(dir.path(), X265);
    let adts_frames = count_packets(&dir.path().join("a.aac"));
    assert!((187..=190).contains(&adts_frames), "{adts_frames}");
    let flv = eflv_from_annexb_hevc(&v, 30, Some(&a)).unwrap();

    let mut r = FlvReader::new();
    r.feed(&flv);
    let tags: Vec<_> = std::iter::from_fn(|| r.next_tag())
        .map(Result::unwrap)
        .collect();
    assert_eq!(r.position(), flv.len() as u64);
    let h = r.header().unwrap();
    assert!(h.has_audio && h.has_video);

    // onMetaData first, then the two sequence headers at 0.
    assert_eq!(tags[0].kind(), Some(MediaKind::Script));
    let meta = Amf0Value::decode_all_lenient(&tags[0].body).unwrap();
    assert_eq!(meta[0].as_str(), Some("onMetaData"));
    assert_eq!(
        meta[1].get("width").and_then(Amf0Value::as_number),
        Some(640.0)
    );
    assert_eq!(
        meta[1].get("height").and_then(Amf0Value::as_number),
        Some(360.0)
    );

    let frames: Vec<_> = tags
        .into_iter()
        .skip(1)
        .filter_map(|t| t.into_frame())
        .collect();
    let mut hvcc = None;
    let (mut video, mut keys, mut audio, mut last_ts) = (0u64, 0u64, 0u64, 0u64);
    let mut annexb = Vec::new();
    for f in &frames {
        assert!(f.dts_ms >= last_ts, "interleaved by timestamp");
        last_ts = f.dts_ms;
        match f.kind {
            MediaKind::Video => {
                let t = f.video().unwrap().unwrap();
                assert_eq!(t.codec, VideoCodec::Hevc);
                let payload = &f.payload[t.header_len..];
                match t.packet {
                    VideoPacket::SequenceHeader => {
                        assert_eq!(f.payload[0], 0x90);
                        let c = HevcConfig::parse(payload).unwrap();
                        for arr in &c.arrays {
                            for n in &arr.nalus {
                                annexb.extend_from_slice(&[0, 0, 0, 1]);
                                annexb.extend_from_slice(n);
                            }
                        }
                        hvcc = Some(c);
                    }
                    VideoPacket::Frame => {
                        assert_eq!(f.payload[0] & 0x0f, 3, "CodedFramesX");
                        assert_eq!((t.header_len, t.cts_ms), (5, 0));
                        assert_eq!(f.dts_ms, video * 1000 / 30);
                        assert_eq!(t.keyframe, video % 30 == 0, "frame {video}");
                        video += 1;
                        keys += u64::from(t.keyframe);
                        // Length-prefixed NAL units that tile the payload, parameter sets out.
                        let mut p = payload;
                        while !p.is_empty() {
                            let len = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
                            let nal = &p[4..4 + len];
                            let ty = hevc::nal_type(nal).unwrap();
                            assert!(!(32..=35).contains(&ty), "NAL type {ty} in a frame");
                            annexb.extend_from_slice(&[0, 0, 0, 1]);
                            annexb.extend_from_slice(nal);
                            p = &p[4 + len..];
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            MediaKind::Audio => {
                let t = f.audio().unwrap().unwrap();
                if t.is_sequence_header() {
                    // AAC-LC, 48 kHz, mono.
                    assert_eq!(&f.payload[..], &[0xaf, 0, 0x11, 0x88]);
                } else {
                    assert_eq!(f.dts_ms, audio * 1024 * 1000 / 48_000);
                    audio += 1;
                }
            }
            MediaKind::Script => panic!("one onMetaData only"),
        }
    }
    let hvcc = hvcc.expect("sequence start");
    assert_eq!((hvcc.width, hvcc.height), (640, 360));
    assert_eq!((video, keys, audio), (120, 4, adts_frames));

    // The video, back in Annex-B form, decodes cleanly to 120 pictures.
    let es = dir.path().join("back.hevc");
    std::fs::write(&es, &annexb).unwrap();
    assert_eq!(count_packets(&es), 120);
    let errors = ffmpeg(
        &[
            "-xerror",
            "-f",
            "hevc",
            "-i",
            "back.hevc",
            "-f",
            "null",
            "-",
        ],
        dir.path(),
    );
    assert_eq!(errors, "");
}

#[test]
fn video_only_and_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = sources(
        dir.path(),
        "bframes=2:aud=0:keyint=30:min-keyint=30:scenecut=0:log-level=error",
    );
    // B-frames need composition times that CodedFramesX cannot carry.
    assert_eq!(
        eflv_from_annexb_hevc(&v, 30, None),
        Err(BuildError::Reordering)
    );
    assert_eq!(
        eflv_from_annexb_hevc(&v, 0, None),
        Err(BuildError::BadFrameRate(0))
    );
    assert!(matches!(
        eflv_from_annexb_hevc(&[0, 0, 1, 0x40, 1], 30, None),
        Err(BuildError::Missing(_))
    ));
    // Without AUDs, access units split at first_slice_segment_in_pic_flag.
    let (v, a) = sources(
        dir.path(),
        "bframes=0:aud=0:keyint=30:min-keyint=30:scenecut=0:log-level=error",
    );
    assert!(matches!(
        eflv_from_annexb_hevc(&v, 30, Some(&a[..a.len() - 1])),
        Err(BuildError::Adts { .. })
    ));
    let flv = eflv_from_annexb_hevc(&v, 25, None).unwrap();
    let mut r = FlvReader::new();
    r.feed(&flv);
    let tags: Vec<_> = std::iter::from_fn(|| r.next_tag())
        .map(Result::unwrap)
        .collect();
    assert!(!r.header().unwrap().has_audio);
    let video: Vec<_> = tags.iter().filter(|t| t.tag_type == 9).collect();
    assert_eq!(video.len(), 121); // sequence start + 120 pictures
    assert_eq!(video.last().unwrap().timestamp_ms, 119 * 1000 / 25);
}

proptest! {
    #[test]
    fn garbage_never_panics(
        v in proptest::collection::vec(any::<u8>(), 0..256),
        a in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = eflv_from_annexb_hevc(&v, 30, Some(&a));
        let mut v = v;
        v.splice(0..0, [0, 0, 1, 0x26, 1, 0x80]); // an IDR slice start
        let _ = eflv_from_annexb_hevc(&v, 30, None);
    }
}
