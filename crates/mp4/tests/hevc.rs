//! H.265 over Enhanced RTMP end to end: x265 + AAC → Enhanced FLV (our fixture builder) →
//! `FlvReader` frames → fragmented spool → faststart file, with ffprobe/ffmpeg as oracles.

use bytes::Bytes;
use livetape_flv::FlvReader;
use livetape_flv::build::eflv_from_annexb_hevc;
use livetape_media::{MediaFrame, VideoPacket};
use livetape_mp4::{AudioTrack, FragmentWriter, VideoTrack, plan_faststart};
use std::path::Path;
use std::process::Command;

fn tool(name: &str, args: &[&str], dir: &Path) -> (String, String) {
    let out = Command::new(name)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ffmpeg installed");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ffmpeg(args: &[&str], dir: &Path) -> (String, String) {
    let mut a = vec!["-nostdin", "-v", "error", "-y"];
    a.extend_from_slice(args);
    tool("ffmpeg", &a, dir)
}

/// `codec_name,codec_type,codec_tag_string,width,height,nb_read_packets` per stream.
fn probe(file: &str, dir: &Path) -> Vec<String> {
    let (out, _) = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_packets",
            "-of",
            "csv=p=0",
            "-show_entries",
            "stream=codec_type,codec_name,codec_tag_string,width,height,nb_read_packets",
            file,
        ],
        dir,
    );
    out.lines().map(str::to_owned).collect()
}

fn decoded_md5(file: &str, dir: &Path) -> String {
    ffmpeg(&["-i", file, "-map", "0:v", "-f", "md5", "-"], dir).0
}

#[test]
fn hevc_eflv_to_faststart_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
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
            "bframes=0:aud=1:keyint=30:min-keyint=30:scenecut=0:log-level=error",
            "-f",
            "hevc",
            "v.hevc",
        ],
        d,
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
        d,
    );
    let adts = probe("a.aac", d);
    let audio_packets: u64 = adts[0].rsplit(',').next().unwrap().parse().unwrap();
    assert!((187..=190).contains(&audio_packets), "{adts:?}");
    let flv = eflv_from_annexb_hevc(
        &std::fs::read(d.join("v.hevc")).unwrap(),
        30,
        Some(&std::fs::read(d.join("a.aac")).unwrap()),
    )
    .unwrap();

    // What the server sees: frames with the wire tag bodies.
    let mut r = FlvReader::new();
    r.feed(&flv);
    let frames: Vec<MediaFrame> = std::iter::from_fn(|| r.next_tag())
        .filter_map(|t| t.unwrap().into_frame())
        .collect();
    let (mut hvcc, mut asc) = (None, None);
    for f in &frames {
        if let Some(Ok(t)) = f.video()
            && t.packet == VideoPacket::SequenceHeader
        {
            hvcc = Some(f.payload.slice(t.header_len..));
        }
        if let Some(Ok(t)) = f.audio()
            && t.is_sequence_header()
        {
            asc = Some(f.payload.slice(t.header_len..));
        }
    }
    let v = VideoTrack::hevc(hvcc.unwrap()).unwrap();
    assert_eq!((v.width, v.height), (640, 360));
    let a = AudioTrack::aac(asc.unwrap()).unwrap();
    let mut w = FragmentWriter::new(Some(v), Some(a), 0).unwrap();
    let mut spool = w.init_segment().to_vec();
    let mut out: Vec<Bytes> = Vec::new();
    let (mut fragments, mut samples) = (0, 0);
    for f in &frames {
        if w.should_flush_before(f) {
            w.flush(&mut out);
            fragments += 1;
        }
        samples += u64::from(w.push(f).unwrap());
    }
    w.flush(&mut out);
    for b in out {
        spool.extend_from_slice(&b);
    }
    assert_eq!(samples, 120 + audio_packets);
    // A keyframe every second starts a fragment.
    assert!((4..=8).contains(&fragments), "{fragments}");
    std::fs::write(d.join("rec.mp4.part"), &spool).unwrap();

    let plan = plan_faststart(&spool).unwrap();
    assert_eq!(
        (u64::from(plan.video_samples), u64::from(plan.audio_samples)),
        (120, audio_packets)
    );
    let mut fin = plan.prefix.to_vec();
    for c in &plan.copy_ranges {
        fin.extend_from_slice(&spool[c.offset as usize..(c.offset + c.len) as usize]);
    }
    std::fs::write(d.join("final.mp4"), &fin).unwrap();

    let want = [
        "hevc,video,hvc1,640,360,120".to_owned(),
        format!("aac,audio,mp4a,{audio_packets}"),
    ];
    assert_eq!(probe("rec.mp4.part", d), want);
    assert_eq!(probe("final.mp4", d), want);
    for f in ["rec.mp4.part", "final.mp4"] {
        let (_, errors) = ffmpeg(&["-xerror", "-i", f, "-f", "null", "-"], d);
        assert_eq!(errors, "", "{f}");
    }
    // moov before mdat, and the pictures are bit-exact the encoder's.
    let moov = fin.windows(4).position(|b| b == b"moov").unwrap();
    let mdat = fin.windows(4).position(|b| b == b"mdat").unwrap();
    assert!(moov < mdat);
    assert_eq!(decoded_md5("final.mp4", d), decoded_md5("v.hevc", d));
    assert!(
        plan.duration_ms.abs_diff(4000) <= 50,
        "{}",
        plan.duration_ms
    );
    // Video timestamps survived: the last picture is at 119/30 s.
    let (last, _) = ffmpeg(
        &["-i", "final.mp4", "-map", "0:v", "-f", "framemd5", "-"],
        d,
    );
    let last = last.lines().last().unwrap().to_owned();
    let pts: u64 = last.split(',').nth(2).unwrap().trim().parse().unwrap();
    assert_eq!(pts, 119, "{last}");
}
