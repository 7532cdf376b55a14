//! End-to-end: record FLV input to segments + playlist on disk, then check with ffprobe/ffmpeg,
//! mpeg2ts and m3u8-rs as oracles.

mod common;

use bytes::Bytes;
use common::*;
use livetape_hls::{SegmentInfo, probe_segment, rebuild_playlist};
use livetape_media::{MediaFrame, MediaKind};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const PID_VIDEO: u16 = 0x100;
const PID_AUDIO: u16 = 0x101;

/// Packet-level checks with an independent TS reader: every packet parses, CCs are
/// consecutive per PID, and the segment starts PAT, PMT, then a keyframe PES with a PCR.
fn check_ts_structure(bytes: &[u8], has_video: bool) {
    assert_eq!(bytes.len() % 188, 0);
    let mut r = TsPacketReader::new(bytes);
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut n = 0;
    let mut last_pcr: Option<u64> = None;
    while let Some(p) = r.read_ts_packet().expect("mpeg2ts parses every packet") {
        let pid = p.header.pid.as_u16();
        let c = p.header.continuity_counter.as_u8();
        if let Some(prev) = cc.get(&pid) {
            let want = if p.payload.is_some() {
                (prev + 1) % 16
            } else {
                *prev
            };
            assert_eq!(c, want, "CC on PID {pid:#x} at packet {n}");
        }
        cc.insert(pid, c);
        if let Some(pcr) = p.adaptation_field.as_ref().and_then(|a| a.pcr) {
            let pcr = pcr.as_u64();
            assert!(last_pcr.is_none_or(|l| pcr >= l), "PCR went backwards");
            last_pcr = Some(pcr);
        }
        match n {
            0 => assert!(matches!(p.payload, Some(TsPayload::Pat(_))), "first is PAT"),
            1 => match &p.payload {
                Some(TsPayload::Pmt(pmt)) => {
                    let want = if has_video { PID_VIDEO } else { PID_AUDIO };
                    assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(want));
                }
                other => panic!("second is PMT, got {other:?}"),
            },
            2 => {
                let Some(TsPayload::PesStart(pes)) = &p.payload else {
                    panic!("third packet starts a PES");
                };
                let af = p.adaptation_field.as_ref().expect("adaptation field");
                assert!(af.pcr.is_some(), "first PES carries a PCR");
                if has_video {
                    assert_eq!(pid, PID_VIDEO);
                    assert!(af.random_access_indicator);
                    let pts = pes.header.pts.expect("pts").as_u64();
                    let dts = pes.header.dts.map_or(pts, |d| d.as_u64());
                    assert!(pts >= dts);
                    // AUD, then SPS: the keyframe is decodable on its own.
                    assert!(pes.data.starts_with(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1]));
                    assert_eq!(pes.data[10] & 0x1f, 7, "SPS after AUD");
                } else {
                    assert_eq!(pid, PID_AUDIO);
                }
            }
            _ => {}
        }
        n += 1;
    }
    assert_eq!(n * 188, bytes.len());
}

/// First DTS to last DTS + duration of one track, as ffprobe reports the segment's packets.
fn track_span_ms(path: &Path, kind: &str) -> f64 {
    let pkts: Vec<_> = ffprobe_packets(path)
        .into_iter()
        .filter(|p| p.0 == kind)
        .collect();
    let (first, last) = (pkts.first().unwrap(), pkts.last().unwrap());
    last.2 + last.3 - first.2
}

fn check_playlist(rec: &Recording) {
    let parsed = m3u8_rs::parse_playlist_res(rec.playlist_text.as_bytes()).expect("m3u8 parses");
    let m3u8_rs::Playlist::MediaPlaylist(pl) = parsed else {
        panic!("not a media playlist");
    };
    assert!(pl.end_list);
    assert_eq!(pl.segments.len(), rec.segments.len());
    for (s, info) in pl.segments.iter().zip(&rec.segments) {
        assert_eq!(s.uri, info.uri);
        assert!(pl.target_duration >= s.duration.ceil() as u64);
        assert!((f64::from(s.duration) * 1000.0 - info.duration_ms as f64).abs() < 1.0);
        assert_eq!(s.discontinuity, info.discontinuity);
    }
}

fn check_segments(rec: &Recording, has_video: bool) {
    for s in &rec.segments {
        let path = rec.seg_path(s);
        let bytes = std::fs::read(&path).unwrap();
        check_ts_structure(&bytes, has_video);
        assert_eq!(
            ffmpeg_decode_errors(&path),
            "",
            "segment {} decodes alone",
            s.uri
        );
        let media = track_span_ms(&path, if has_video { "video" } else { "audio" });
        assert!(
            (media - s.duration_ms as f64).abs() <= 33.0,
            "{}: EXTINF {} ms vs media {media} ms",
            s.uri,
            s.duration_ms
        );
        // The recovery probe measures the same duration from the file alone.
        let probe = probe_segment(&bytes).expect("probe");
        if s.index + 1 < rec.segments.len() as u64 {
            let next = std::fs::read(rec.seg_path(&rec.segments[s.index as usize + 1])).unwrap();
            let next = probe_segment(&next).unwrap();
            if !rec.segments[s.index as usize + 1].discontinuity {
                // Audio can begin a little before the keyframe; allow one audio frame.
                let d = next.first_dts_ms as i64 - probe.first_dts_ms as i64;
                assert!(
                    (d - s.duration_ms as i64).abs() <= 22,
                    "{d} vs {}",
                    s.duration_ms
                );
            }
        }
        assert_eq!(probe.discontinuity, s.discontinuity);
    }
}

#[test]
fn clip_2s_target_gives_five_gop_segments() {
    let rec = record(&[read_flv(&clip())], 2_000);
    assert_eq!(rec.segments.len(), 5);
    // GOP = 2 s; the last segment is measured on video too (last DTS + one frame).
    for s in &rec.segments {
        assert_eq!(s.duration_ms, 2_000);
    }
    assert!(
        rec.playlist_text.contains("#EXT-X-TARGETDURATION:2\n"),
        "{}",
        rec.playlist_text
    );
    assert_eq!(ffprobe_counts(&rec.playlist), (300, 470));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_playlist(&rec);
    check_segments(&rec, true);
}

#[test]
fn clip_6s_target_gives_two_segments_and_rebuild_matches() {
    let rec = record(&[read_flv(&clip())], 6_000);
    assert_eq!(rec.segments.len(), 2);
    assert_eq!(rec.segments[0].duration_ms, 6_000);
    assert_eq!(ffprobe_counts(&rec.playlist), (300, 470));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_playlist(&rec);
    check_segments(&rec, true);
    // Crash recovery: rebuilding from the files gives the same playlist.
    let rebuilt: Vec<SegmentInfo> = rec
        .segments
        .iter()
        .map(|s| {
            let bytes = std::fs::read(rec.seg_path(s)).unwrap();
            let p = probe_segment(&bytes).unwrap();
            assert!(p.duration_ms.abs_diff(s.duration_ms) <= 1, "{p:?} vs {s:?}");
            SegmentInfo {
                duration_ms: p.duration_ms,
                bytes: bytes.len() as u64,
                discontinuity: p.discontinuity,
                first_dts_ms: p.first_dts_ms,
                ..s.clone()
            }
        })
        .collect();
    assert_eq!(rebuild_playlist(&rebuilt, true), rec.playlist_text);
}

#[test]
fn discontinuity_between_two_sessions() {
    let clip = read_flv(&clip());
    let rec = record(&[clip.clone(), clip], 6_000);
    assert_eq!(rec.segments.len(), 4);
    assert_eq!(
        rec.playlist_text.matches("#EXT-X-DISCONTINUITY\n").count(),
        1
    );
    assert!(rec.segments[2].discontinuity);
    // The second session is rebased after the first: one monotonic timeline.
    assert!(
        rec.segments[2].first_dts_ms >= rec.segments[1].first_dts_ms + rec.segments[1].duration_ms
    );
    assert_eq!(ffprobe_counts(&rec.playlist), (600, 940));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_playlist(&rec);
    check_segments(&rec, true);
}

#[test]
fn audio_only_and_video_only() {
    let clip = read_flv(&clip());
    let audio: Vec<MediaFrame> = clip
        .iter()
        .filter(|f| f.kind == MediaKind::Audio)
        .cloned()
        .collect();
    let rec = record(&[audio], 2_000);
    assert_eq!(rec.segments.len(), 5, "{}", rec.playlist_text);
    assert_eq!(ffprobe_counts(&rec.playlist), (0, 470));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_playlist(&rec);
    check_segments(&rec, false);

    let video: Vec<MediaFrame> = clip
        .iter()
        .filter(|f| f.kind == MediaKind::Video)
        .cloned()
        .collect();
    let rec = record(&[video], 2_000);
    assert_eq!(rec.segments.len(), 5);
    assert_eq!(ffprobe_counts(&rec.playlist), (300, 0));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_playlist(&rec);
    check_segments(&rec, true);
}

fn ffmpeg(args: &[&str]) {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn b_frames_keep_pts_above_monotonic_dts() {
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("b.flv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-bf",
        "2",
        "-g",
        "30",
        "-f",
        "flv",
        flv.to_str().unwrap(),
    ]);
    let frames = read_flv(flv.to_str().unwrap());
    let cts: Vec<i32> = frames
        .iter()
        .filter_map(|f| f.video()?.ok())
        .filter(|v| v.packet == livetape_media::VideoPacket::Frame)
        .map(|v| v.cts_ms)
        .collect();
    assert!(cts.iter().any(|&c| c > 33), "the clip really has B-frames");
    let rec = record(&[frames], 1_000);
    assert_eq!(rec.segments.len(), 3);
    let pkts = ffprobe_packets(&rec.playlist);
    assert_eq!(pkts.len(), 90);
    let mut last_dts = f64::MIN;
    for (i, (kind, pts, dts, _, _)) in pkts.iter().enumerate() {
        assert_eq!(kind, "video");
        assert!(*dts > last_dts, "dts monotonic at {i}");
        assert!(pts >= dts, "pts >= dts at {i}");
        // The composition offset survives exactly (ms → 90 kHz), plus the constant decode
        // lead that leaves room for negative offsets.
        let lead = livetape_hls::VIDEO_DECODE_LEAD_MS as f64;
        assert!(
            (pts - dts - f64::from(cts[i]) - lead).abs() < 0.5,
            "cts at {i}"
        );
        last_dts = *dts;
    }
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    check_segments(&rec, true);
}

/// Splits Annex B into NAL units (without start codes).
fn annex_b_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |n| n - 3);
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        nals.push(&data[s..e]);
    }
    nals
}

#[test]
fn hevc_from_enhanced_rtmp_tags() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("x.hevc");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
        "-t",
        "2",
        "-c:v",
        "libx265",
        "-x265-params",
        "bframes=0:keyint=30:min-keyint=30:scenecut=0:aud=1:log-level=error",
        "-f",
        "hevc",
        raw.to_str().unwrap(),
    ]);
    let data = std::fs::read(&raw).unwrap();
    let mut params: [Vec<&[u8]>; 3] = Default::default();
    let mut aus: Vec<(bool, Vec<u8>)> = Vec::new();
    for nal in annex_b_nals(&data) {
        let t = (nal[0] >> 1) & 0x3f;
        match t {
            35 => aus.push((false, Vec::new())),
            32..=34 => params[usize::from(t - 32)].push(nal),
            _ => {
                let au = aus.last_mut().expect("AUD first");
                au.0 |= (16..=23).contains(&t);
                au.1.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                au.1.extend_from_slice(nal);
            }
        }
    }
    assert_eq!(aus.len(), 60);
    // hvcC: 22 fixed bytes (4-byte NALU lengths), then VPS/SPS/PPS arrays.
    let mut hvcc = vec![0u8; 22];
    hvcc[0] = 1;
    hvcc[21] = 0x03;
    hvcc.push(3);
    for (i, set) in params.iter().enumerate() {
        hvcc.extend_from_slice(&[0x80 | (32 + i as u8), 0, set.len() as u8]);
        for nal in set {
            hvcc.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            hvcc.extend_from_slice(nal);
        }
    }
    let mut sh = vec![0x80 | 0x10, b'h', b'v', b'c', b'1'];
    sh.extend_from_slice(&hvcc);
    let mut frames = vec![MediaFrame::new(MediaKind::Video, 0, Bytes::from(sh))];
    for (i, (key, au)) in aus.iter().enumerate() {
        let mut body = vec![
            0x80 | if *key { 0x10 } else { 0x20 } | 1,
            b'h',
            b'v',
            b'c',
            b'1',
            0,
            0,
            0,
        ];
        body.extend_from_slice(au);
        frames.push(MediaFrame::new(
            MediaKind::Video,
            i as u64 * 1000 / 30,
            Bytes::from(body),
        ));
    }
    let rec = record(&[frames], 1_000);
    assert_eq!(rec.segments.len(), 2);
    assert_eq!(ffprobe_counts(&rec.playlist), (60, 0));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    for s in &rec.segments {
        let path = rec.seg_path(s);
        assert_eq!(ffmpeg_decode_errors(&path), "", "{} decodes alone", s.uri);
        let o = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| *l == "hevc,320"),
            "{out}"
        );
    }
}

#[test]
fn sparse_video_still_gets_a_pcr_every_100ms() {
    // Audio plus only the IDR frames (one every 2 s): the PCR PID (video) is nearly silent.
    let frames: Vec<MediaFrame> = read_flv(&clip())
        .into_iter()
        .filter(|f| f.kind != MediaKind::Video || f.video().unwrap().unwrap().keyframe)
        .collect();
    let rec = record(&[frames], 6_000);
    assert_eq!(ffprobe_counts(&rec.playlist), (5, 470));
    assert_eq!(ffmpeg_decode_errors(&rec.playlist), "");
    for s in &rec.segments {
        let bytes = std::fs::read(rec.seg_path(s)).unwrap();
        check_ts_structure(&bytes, true);
        let mut r = TsPacketReader::new(&bytes[..]);
        let mut pcrs = Vec::new();
        while let Some(p) = r.read_ts_packet().unwrap() {
            if let Some(pcr) = p.adaptation_field.and_then(|a| a.pcr) {
                assert_eq!(
                    p.header.pid.as_u16(),
                    PID_VIDEO,
                    "PCR only on the video PID"
                );
                pcrs.push(pcr.as_u64() / 27_000);
            }
        }
        assert!(pcrs.len() > 10);
        for w in pcrs.windows(2) {
            assert!(w[1] >= w[0] && w[1] - w[0] <= 100, "PCR gap {w:?} ms");
        }
    }
}
