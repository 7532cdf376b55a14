//! End-to-end checks of the spool writer, finalisation and recovery with real ffmpeg/ffprobe.

use bytes::Bytes;
use livetape_flv::amf0::Amf0Value;
use livetape_flv::{FinalizePlan, FlvFileWriter, FlvReader, FlvTag, Recovery};
use livetape_media::{AudioTag, MediaFrame, VideoPacket, VideoTag};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    livetape_testkit::clip_10s()
}

fn read_tags(data: &[u8]) -> Vec<FlvTag> {
    let mut r = FlvReader::new();
    r.feed(data);
    let tags: Vec<FlvTag> = std::iter::from_fn(|| r.next_tag())
        .map(|t| t.expect("valid FLV"))
        .collect();
    assert_eq!(r.buffered(), 0, "no trailing bytes");
    tags
}

/// Packets ffmpeg's FLV demuxer emits: codec config and empty (end-of-sequence) tags are not
/// packets.
fn media_packets(tags: &[FlvTag]) -> (usize, usize) {
    let video = tags
        .iter()
        .filter(|t| t.tag_type == 9)
        .filter(|t| {
            VideoTag::parse(&t.body).is_ok_and(|v| {
                v.packet != VideoPacket::SequenceHeader && t.body.len() > v.header_len
            })
        })
        .count();
    let audio = tags
        .iter()
        .filter(|t| t.tag_type == 8)
        .filter(|t| {
            AudioTag::parse(&t.body)
                .is_ok_and(|a| !a.is_sequence_header() && t.body.len() > a.header_len)
        })
        .count();
    (video, audio)
}

fn ffprobe_json(path: &Path, entries: &str) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries", entries])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (video, audio) packet counts as ffprobe reads them.
fn ffprobe_counts(path: &Path) -> (usize, usize) {
    let j = ffprobe_json(path, "stream=codec_type,nb_read_packets");
    let count = |kind: &str| {
        j["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == kind)
            .map_or(0, |s| {
                s["nb_read_packets"].as_str().unwrap().parse().unwrap()
            })
    };
    (count("video"), count("audio"))
}

/// The recording inputs the server would have: publisher metadata, sequence headers, frames.
struct Source {
    metadata: Bytes,
    vsh: Bytes,
    ash: Bytes,
    frames: Vec<MediaFrame>,
}

fn source() -> Source {
    let data = fs::read(fixture()).expect("fixture present");
    let tags = read_tags(&data);
    let meta = tags.iter().find(|t| t.tag_type == 18).unwrap();
    let vsh = tags
        .iter()
        .find(|t| {
            t.tag_type == 9
                && VideoTag::parse(&t.body).unwrap().packet == VideoPacket::SequenceHeader
        })
        .unwrap();
    let ash = tags
        .iter()
        .find(|t| t.tag_type == 8 && AudioTag::parse(&t.body).unwrap().is_sequence_header())
        .unwrap();
    let skip = [meta.offset, vsh.offset, ash.offset];
    let frames = tags
        .iter()
        .filter(|t| !skip.contains(&t.offset))
        .map(|t| t.clone().into_frame().unwrap())
        .collect();
    Source {
        metadata: meta.body.clone(),
        vsh: vsh.body.clone(),
        ash: ash.body.clone(),
        frames,
    }
}

/// Records `src` into a spool in memory (pieces as a vectored-write driver would get them).
fn record(src: &Source, base: u64) -> (FlvFileWriter, Vec<u8>) {
    record_reserving(src, base, 0)
}

fn record_reserving(src: &Source, base: u64, reserve: usize) -> (FlvFileWriter, Vec<u8>) {
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut w = FlvFileWriter::start(
        base,
        Some(&src.metadata),
        Some(&src.vsh),
        Some(&src.ash),
        reserve,
        &mut pieces,
    )
    .unwrap();
    for f in &src.frames {
        let f = MediaFrame::new(f.kind, f.dts_ms + base, f.payload.clone());
        w.push(&f, &mut pieces).unwrap();
    }
    // Zero-copy: every payload piece is the frame's own buffer, not a copy.
    for f in &src.frames {
        assert!(pieces.iter().any(|p| p.as_ptr() == f.payload.as_ptr()));
    }
    let spool = pieces.concat();
    assert_eq!(w.spool_len(), spool.len() as u64);
    (w, spool)
}

/// Does what the driver does: prefix, then copy the planned spool range.
fn finalize_file(plan: &FinalizePlan, spool: &Path, dst: &Path) {
    let mut out = File::create(dst).unwrap();
    out.write_all(&plan.prefix).unwrap();
    let mut src = File::open(spool).unwrap();
    src.seek(SeekFrom::Start(plan.copy_from)).unwrap();
    let copied = std::io::copy(&mut src.take(plan.copy_len), &mut out).unwrap();
    assert_eq!(copied, plan.copy_len);
    assert_eq!(out.metadata().unwrap().len(), plan.final_len);
}

/// The tag's name and value; a reserved tag has zero padding after them.
fn on_metadata(tags: &[FlvTag]) -> Amf0Value {
    let t = &tags[0];
    assert_eq!(t.tag_type, 18);
    let (name, used) = Amf0Value::decode_lenient(&t.body).unwrap();
    assert_eq!(name, Amf0Value::String("onMetaData".into()));
    let (value, used2) = Amf0Value::decode_lenient(&t.body[used..]).unwrap();
    assert!(t.body[used + used2..].iter().all(|&b| b == 0), "padding");
    value
}

#[test]
fn fixture_spool_and_final_file_play_and_seek() {
    check_spool_and_final_file(0);
}

/// With room reserved for the final metadata, the final file is the spool with its head
/// overwritten (no copy), byte for byte what the copying plan produces, and ffmpeg plays and
/// indexes it the same.
#[test]
fn reserved_metadata_finalizes_in_place() {
    let src = source();
    let (w, _) = record_reserving(&src, 0, livetape_flv::metadata_reserve(16));
    assert!(w.finalize_plan().in_place());
    let (w, _) = record_reserving(&src, 0, 300);
    assert!(
        !w.finalize_plan().in_place(),
        "the final metadata cannot fit 300 bytes"
    );
    check_spool_and_final_file(livetape_flv::metadata_reserve(16));
}

fn check_spool_and_final_file(reserve: usize) {
    let src = source();
    let (w, spool) = record_reserving(&src, 0, reserve);
    let dir = tempfile::tempdir().unwrap();
    let spool_path = dir.path().join("x.flv.part");
    let final_path = dir.path().join("x.flv");
    fs::write(&spool_path, &spool).unwrap();

    // The spool alone is a valid recording.
    assert_eq!(media_packets(&read_tags(&spool)), (300, 470));
    assert_eq!(ffprobe_counts(&spool_path), (300, 470));

    let plan = w.finalize_plan();
    assert_eq!(plan.in_place(), reserve > 0);
    finalize_file(&plan, &spool_path, &final_path);
    if plan.in_place() {
        let mut in_place = spool.clone();
        in_place[..plan.prefix.len()].copy_from_slice(&plan.prefix);
        assert_eq!(in_place, fs::read(&final_path).unwrap());
    }
    assert_eq!(ffprobe_counts(&final_path), (300, 470));

    // Decodes cleanly, and ffmpeg accepts our metadata (it warns on a bad keyframes object).
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-i"])
        .arg(&final_path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let j = ffprobe_json(&final_path, "format=duration");
    let dur: f64 = j["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((dur - 10.0).abs() <= 0.1, "duration {dur}");
    assert!((plan.duration_ms as f64 / 1000.0 - 10.0).abs() <= 0.1);

    let data = fs::read(&final_path).unwrap();
    let tags = read_tags(&data);
    let m = on_metadata(&tags);
    let num = |k: &str| m.get(k).and_then(Amf0Value::as_number);
    assert_eq!(num("filesize"), Some(data.len() as f64));
    assert_eq!((num("width"), num("height")), (Some(640.0), Some(360.0)));
    assert_eq!(num("framerate"), Some(30.0));
    assert_eq!(num("audiosamplerate"), Some(48000.0));
    assert_eq!(m.get("stereo"), Some(&Amf0Value::Boolean(true)));
    assert_eq!(
        (num("videocodecid"), num("audiocodecid")),
        (Some(7.0), Some(10.0))
    );

    let kf = m.get("keyframes").unwrap();
    let arr = |k: &str| -> Vec<f64> {
        kf.get(k)
            .and_then(Amf0Value::as_array)
            .unwrap()
            .iter()
            .map(|v| v.as_number().unwrap())
            .collect()
    };
    let (pos, times) = (arr("filepositions"), arr("times"));
    assert_eq!(pos.len(), times.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let mut coded_keyframes = Vec::new();
    for (&p, &t) in pos.iter().zip(&times) {
        let tag = tags
            .iter()
            .find(|tag| tag.offset == p as u64)
            .unwrap_or_else(|| panic!("filepositions entry {p} is not a tag start"));
        let v = VideoTag::parse(&tag.body).unwrap();
        assert!(
            tag.tag_type == 9 && v.keyframe,
            "entry {p} is not a video keyframe"
        );
        assert_eq!(f64::from(tag.timestamp_ms) / 1000.0, t);
        if v.packet == VideoPacket::Frame {
            coded_keyframes.push(t);
        }
    }
    // GOP of 2 s; the AVC sequence header (a keyframe-flagged tag) leads the index, as in
    // yamdi/flvmeta output.
    assert_eq!(coded_keyframes, [0.0, 2.0, 4.0, 6.0, 8.0]);
    assert_eq!(pos.len(), 6);
}

#[test]
fn frames_are_rebased_to_the_file_start() {
    let src = source();
    let (_, spool0) = record(&src, 0);
    let (w, spool5) = record(&src, 5000);
    assert_eq!(w.base_dts_ms(), 5000);
    // Same file whatever the stream's absolute time.
    assert_eq!(spool0, spool5);
    let first_frame = &read_tags(&spool5)[3];
    assert_eq!(first_frame.timestamp_ms, 0);
}

/// xorshift64*, deterministic.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn recover(bytes: &[u8]) -> livetape_flv::Recovered {
    let mut r = Recovery::new();
    for chunk in bytes.chunks(64 * 1024) {
        r.feed(chunk);
    }
    r.finish().unwrap()
}

#[test]
fn recovery_after_torn_write() {
    let src = source();
    let (w, spool) = record(&src, 0);
    let tags = read_tags(&spool);
    let ends: Vec<u64> = tags.iter().map(FlvTag::end_offset).collect();

    // Untouched spool: recovery reproduces the live writer's plan exactly.
    assert_eq!(recover(&spool).writer.finalize_plan(), w.finalize_plan());

    let dir = tempfile::tempdir().unwrap();
    // Mid-file and early (inside the first GOP) tears, checked with ffprobe.
    for (i, victim) in [tags.len() * 3 / 5, 9].into_iter().enumerate() {
        let t = &tags[victim];
        let cut = t.offset + 11 + t.body.len() as u64 / 2;
        let rec = recover(&spool[..cut as usize]);
        assert_eq!(
            rec.valid_len, t.offset,
            "valid_len is the end of the last complete tag"
        );
        assert_eq!(rec.torn_bytes, cut - t.offset);
        assert!(rec.stopped_by.is_none());

        let spool_path = dir.path().join(format!("torn{i}.flv.part"));
        fs::write(&spool_path, &spool[..cut as usize]).unwrap();
        // The driver truncates the torn tail, then finalises.
        File::options()
            .write(true)
            .open(&spool_path)
            .unwrap()
            .set_len(rec.valid_len)
            .unwrap();
        let plan = rec.writer.finalize_plan();
        let final_path = dir.path().join(format!("torn{i}.flv"));
        finalize_file(&plan, &spool_path, &final_path);
        let expect = media_packets(&tags[..victim]);
        assert_eq!(ffprobe_counts(&final_path), expect);
        assert_eq!(
            media_packets(&read_tags(&fs::read(&final_path).unwrap())),
            expect
        );
    }

    // Random tear points: never panics, always the last complete boundary.
    let mut seed = 0x5eed_u64;
    for _ in 0..20 {
        let cut = rng(&mut seed) % spool.len() as u64;
        let rec = recover(&spool[..cut as usize]);
        let expect = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut)
            .max()
            .unwrap_or(13);
        assert_eq!(rec.valid_len, expect, "cut at {cut}");
        let plan = rec.writer.finalize_plan();
        let mut f = plan.prefix.to_vec();
        f.extend_from_slice(
            &spool[plan.copy_from as usize..(plan.copy_from + plan.copy_len) as usize],
        );
        assert_eq!(f.len() as u64, plan.final_len);
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        // Final = new metadata + every complete tag after the spool's own metadata.
        assert_eq!(read_tags(&f).len(), complete.max(1));
    }
}
