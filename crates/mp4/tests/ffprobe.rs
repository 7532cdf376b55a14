//! End-to-end: fixture FLV → fragmented spool → faststart file, with ffprobe/ffmpeg as oracles.

use bytes::Bytes;
use livetape_media::{AudioTag, MediaFrame, MediaKind, VideoPacket, VideoTag};
use livetape_mp4::{
    AudioTrack, FinalizePlan, FragmentWriter, Mp4Error, ScanStep, SpoolScanner, VideoTrack,
    plan_faststart,
};
use std::path::Path;
use std::process::Command;

struct Clip {
    frames: Vec<MediaFrame>,
    avcc: Bytes,
    asc: Bytes,
}

/// A tiny FLV tag loop (9-byte header + PreviousTagSize0, then 11-byte tag headers).
fn read_flv(path: &std::path::Path) -> Clip {
    let data = Bytes::from(std::fs::read(path).unwrap());
    let mut pos = 13;
    let (mut frames, mut avcc, mut asc) = (Vec::new(), None, None);
    while pos + 11 <= data.len() {
        let h = &data[pos..pos + 11];
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        let ts =
            u64::from(h[7]) << 24 | u64::from(h[4]) << 16 | u64::from(h[5]) << 8 | u64::from(h[6]);
        let body = data.slice(pos + 11..pos + 11 + len);
        pos += 11 + len + 4;
        let Some(kind) = MediaKind::from_tag_type(h[0] & 0x1f) else {
            continue;
        };
        match kind {
            MediaKind::Video => {
                let t = VideoTag::parse(&body).unwrap();
                if t.packet == VideoPacket::SequenceHeader {
                    avcc.get_or_insert(body.slice(t.header_len..));
                }
            }
            MediaKind::Audio => {
                let t = AudioTag::parse(&body).unwrap();
                if t.is_sequence_header() {
                    asc.get_or_insert(body.slice(t.header_len..));
                }
            }
            MediaKind::Script => {}
        }
        frames.push(MediaFrame::new(kind, ts, body));
    }
    Clip {
        frames,
        avcc: avcc.unwrap(),
        asc: asc.unwrap(),
    }
}

/// End offset and (video, audio) sample counts of each fragment.
struct Frag {
    end: u64,
    bytes: u64,
    video: u32,
    audio: u32,
}

fn write_spool(clip: &Clip, video: bool, audio: bool) -> (Vec<u8>, Vec<Frag>) {
    let v = video.then(|| VideoTrack::avc(clip.avcc.clone()).unwrap());
    let a = audio.then(|| AudioTrack::aac(clip.asc.clone()).unwrap());
    let base = clip.frames.first().unwrap().dts_ms;
    let mut w = FragmentWriter::new(v, a, base).unwrap();
    let mut spool = w.init_segment().to_vec();
    let mut frags = Vec::new();
    let (mut nv, mut na) = (0, 0);
    let mut out = Vec::new();
    let mut emit = |w: &mut FragmentWriter, spool: &mut Vec<u8>, nv: &mut u32, na: &mut u32| {
        if !w.has_pending() {
            return;
        }
        w.flush(&mut out);
        let before = spool.len() as u64;
        for b in out.drain(..) {
            spool.extend_from_slice(&b);
        }
        assert_eq!(w.spool_len(), spool.len() as u64);
        frags.push(Frag {
            end: spool.len() as u64,
            bytes: spool.len() as u64 - before,
            video: std::mem::take(nv),
            audio: std::mem::take(na),
        });
    };
    for f in &clip.frames {
        if w.should_flush_before(f) {
            emit(&mut w, &mut spool, &mut nv, &mut na);
        }
        if w.push(f).unwrap() {
            match f.kind {
                MediaKind::Video => nv += 1,
                _ => na += 1,
            }
        }
    }
    emit(&mut w, &mut spool, &mut nv, &mut na);
    let span = clip.frames.iter().map(|f| f.dts_ms).max().unwrap() - base;
    assert!(
        (w.duration_ms() as i64 - span as i64).abs() < 100,
        "{}",
        w.duration_ms()
    );
    (spool, frags)
}

/// Drives the scanner like the server does (pread), checking it never reads media bytes.
fn plan_by_steps(spool: &[u8]) -> (Result<FinalizePlan, Mp4Error>, u64) {
    let mut s = SpoolScanner::new(spool.len() as u64);
    let mut read = 0u64;
    while let ScanStep::Read { offset, len } = s.next_step() {
        let start = offset as usize;
        let end = (start + len).min(spool.len());
        read += (end - start) as u64;
        s.feed(&spool[start..end]).unwrap();
    }
    (s.finish(), read)
}

fn assemble(spool: &[u8], plan: &FinalizePlan) -> Vec<u8> {
    let mut out = plan.prefix.to_vec();
    for r in &plan.copy_ranges {
        out.extend_from_slice(&spool[r.offset as usize..(r.offset + r.len) as usize]);
    }
    assert_eq!(out.len() as u64, plan.final_len);
    out
}

struct Probe {
    video: Option<u64>,
    audio: Option<u64>,
    size: Option<(u64, u64)>,
    duration: f64,
}

fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-of", "json"])
        .args([
            "-show_entries",
            "stream=codec_type,nb_read_packets,width,height:format=duration",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut p = Probe {
        video: None,
        audio: None,
        size: None,
        duration: j["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(-1.0),
    };
    for s in j["streams"].as_array().unwrap() {
        let n = s["nb_read_packets"].as_str().unwrap().parse().unwrap();
        match s["codec_type"].as_str().unwrap() {
            "video" => {
                p.video = Some(n);
                p.size = Some((s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()));
            }
            "audio" => p.audio = Some(n),
            other => panic!("unexpected stream {other}"),
        }
    }
    p
}

fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn top_level_boxes(b: &[u8]) -> Vec<String> {
    let mut pos = 0usize;
    let mut kinds = Vec::new();
    while pos + 8 <= b.len() {
        let size = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&b[pos + 4..pos + 8]).into_owned());
        assert!(size >= 8);
        pos += size;
    }
    assert_eq!(pos, b.len(), "boxes must tile the file");
    kinds
}

fn check_final(
    dir: &Path,
    name: &str,
    spool: &[u8],
    video: Option<u64>,
    audio: Option<u64>,
) -> FinalizePlan {
    let (plan, read) = plan_by_steps(spool);
    let plan = plan.unwrap();
    // Only headers are read: far less than the media.
    assert!(
        read * 20 < spool.len() as u64,
        "scanner read {read} of {}",
        spool.len()
    );
    assert_eq!(plan, plan_faststart(spool).unwrap());
    assert_eq!(plan.valid_spool_len, spool.len() as u64);
    assert_eq!(video.map_or(0, |v| v as u32), plan.video_samples);
    assert_eq!(audio.map_or(0, |a| a as u32), plan.audio_samples);
    let bytes = assemble(spool, &plan);
    assert_eq!(
        top_level_boxes(&bytes),
        ["ftyp", "moov", "mdat"],
        "faststart layout"
    );
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    let p = ffprobe(&path);
    assert_eq!((p.video, p.audio), (video, audio));
    assert!((p.duration - 10.0).abs() <= 0.1, "duration {}", p.duration);
    assert!((plan.duration_ms as f64 / 1000.0 - p.duration).abs() < 0.01);
    if video.is_some() {
        assert_eq!(p.size, Some((640, 360)));
    }
    assert_eq!(decode_errors(&path), "");
    plan
}

#[test]
fn clip_spool_is_playable_and_finalises_to_faststart() {
    let clip = read_flv(&livetape_testkit::clip_10s());
    let (spool, frags) = write_spool(&clip, true, true);
    // Keyframe every 2 s plus the 1 s bound: about 10-11 fragments for 10 s.
    assert!((9..=22).contains(&frags.len()), "{} fragments", frags.len());
    let dir = tempfile::tempdir().unwrap();
    let spool_path = dir.path().join("rec.mp4.part");
    std::fs::write(&spool_path, &spool).unwrap();
    let p = ffprobe(&spool_path);
    assert_eq!((p.video, p.audio), (Some(300), Some(470)));
    assert_eq!(p.size, Some((640, 360)));
    assert_eq!(decode_errors(&spool_path), "");

    check_final(dir.path(), "rec.mp4", &spool, Some(300), Some(470));
}

#[test]
fn video_only_and_audio_only() {
    let clip = read_flv(&livetape_testkit::clip_10s());
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = write_spool(&clip, true, false);
    check_final(dir.path(), "v.mp4", &spool, Some(300), None);
    let (spool, frags) = write_spool(&clip, false, true);
    // Audio-only flushes on the 1 s bound alone.
    assert!((9..=11).contains(&frags.len()), "{} fragments", frags.len());
    check_final(dir.path(), "a.mp4", &spool, None, Some(470));
}

#[test]
fn torn_spool_recovers_complete_fragments() {
    let clip = read_flv(&livetape_testkit::clip_10s());
    let (spool, frags) = write_spool(&clip, true, true);
    let init_len = frags[0].end - frags[0].bytes;
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut cuts: Vec<u64> = (0..18)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % spool.len() as u64
        })
        .collect();
    // Exact fragment boundaries and one byte short of one.
    cuts.push(frags[3].end);
    cuts.push(frags[3].end - 1);
    for (i, &cut) in cuts.iter().enumerate() {
        let torn = &spool[..cut as usize];
        let complete: Vec<&Frag> = frags.iter().filter(|f| f.end <= cut).collect();
        let result = plan_faststart(torn);
        if cut < init_len {
            assert_eq!(result, Err(Mp4Error::NoInit), "cut {cut}");
            continue;
        }
        let Some(last) = complete.last() else {
            assert_eq!(result, Err(Mp4Error::Empty), "cut {cut}");
            continue;
        };
        let plan = result.unwrap();
        let v: u32 = complete.iter().map(|f| f.video).sum();
        let a: u32 = complete.iter().map(|f| f.audio).sum();
        assert_eq!(
            (plan.video_samples, plan.audio_samples),
            (v, a),
            "cut {cut}"
        );
        assert_eq!(plan.valid_spool_len, last.end);
        let bytes = assemble(torn, &plan);
        let path = dir.path().join(format!("torn{i}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        let p = ffprobe(&path);
        assert_eq!(p.video, (v > 0).then_some(u64::from(v)), "cut {cut}");
        assert_eq!(p.audio, (a > 0).then_some(u64::from(a)), "cut {cut}");
        if i % 5 == 0 {
            assert_eq!(decode_errors(&path), "");
        }
    }
}

#[test]
fn negative_composition_offsets_use_ctts_v1() {
    let mut clip = read_flv(&livetape_testkit::clip_10s());
    // Shift every video cts by -100 ms: the first frames get negative composition offsets.
    for f in &mut clip.frames {
        let Some(Ok(t)) = f.video() else { continue };
        if t.packet != VideoPacket::Frame {
            continue;
        }
        let mut b = f.payload.to_vec();
        let cts = (t.cts_ms - 100).to_be_bytes();
        b[2..5].copy_from_slice(&cts[1..4]);
        f.payload = Bytes::from(b);
    }
    let (spool, _) = write_spool(&clip, true, true);
    let plan = plan_faststart(&spool).unwrap();
    let bytes = assemble(&spool, &plan);
    let ctts = bytes
        .windows(4)
        .position(|w| w == b"ctts")
        .expect("ctts box");
    assert_eq!(bytes[ctts + 4], 1, "negative offsets need ctts v1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("neg.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let p = ffprobe(&path);
    assert_eq!((p.video, p.audio), (Some(300), Some(470)));
    assert!((p.duration - 10.0).abs() <= 0.1, "duration {}", p.duration);
    assert_eq!(decode_errors(&path), "");
}
