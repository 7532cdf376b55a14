//! HEVC records against x265 output, with ffmpeg's own `hvcC` and ffprobe as oracles.

use livetape_media::hevc::{self, HevcConfig, NAL_PPS, NAL_SPS, NAL_VPS};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("ffmpeg/ffprobe installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// 1 s of x265 (with AUDs) as a raw Annex-B stream.
fn encode(dir: &Path, size: &str, params: &str) -> PathBuf {
    let path = dir.join(format!("{size}.hevc"));
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30"))
        .args(["-t", "1", "-c:v", "libx265", "-x265-params"])
        .arg(format!("aud=1:log-level=error:{params}"))
        .args(["-f", "hevc"])
        .arg(&path));
    path
}

fn first(nals: &[&[u8]], ty: u8) -> Vec<u8> {
    nals.iter()
        .find(|n| hevc::nal_type(n) == Some(ty))
        .unwrap()
        .to_vec()
}

/// The `hvcC` body ffmpeg writes when it muxes the stream into MP4.
fn ffmpeg_hvcc(dir: &Path, input: &Path) -> Vec<u8> {
    let mp4 = dir.join("ff.mp4");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-c", "copy", "-tag:v", "hvc1"])
        .arg(&mp4));
    let b = std::fs::read(mp4).unwrap();
    let at = b.windows(4).position(|w| w == b"hvcC").unwrap();
    let size = u32::from_be_bytes(b[at - 4..at].try_into().unwrap()) as usize;
    b[at + 4..at - 4 + size].to_vec()
}

fn check(size: &str, params: &str, want: (u32, u32), reorder: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = encode(dir.path(), size, params);
    let es = std::fs::read(&path).unwrap();
    let nals: Vec<&[u8]> = hevc::split_annexb(&es).collect();
    // 30 pictures, each preceded by an AUD (aud=1).
    assert_eq!(
        nals.iter()
            .filter(|n| hevc::nal_type(n) == Some(hevc::NAL_AUD))
            .count(),
        30
    );
    let hvcc = hevc::build_hvcc(
        &first(&nals, NAL_VPS),
        &first(&nals, NAL_SPS),
        &first(&nals, NAL_PPS),
    )
    .unwrap();
    let ours = HevcConfig::parse(&hvcc).unwrap();
    assert_eq!((ours.width, ours.height), want);
    assert_eq!(ours.max_num_reorder_pics > 0, reorder);
    assert!(
        ours.codec_string().starts_with("hvc1.1.6.L"),
        "{}",
        ours.codec_string()
    );

    // ffmpeg's record of the same stream describes the same thing.
    let theirs = HevcConfig::parse(&ffmpeg_hvcc(dir.path(), &path)).unwrap();
    assert_eq!(ours.codec_string(), theirs.codec_string());
    assert_eq!((theirs.width, theirs.height), want);
    assert_eq!(
        (
            ours.chroma_format_idc,
            ours.bit_depth_luma,
            ours.bit_depth_chroma
        ),
        (
            theirs.chroma_format_idc,
            theirs.bit_depth_luma,
            theirs.bit_depth_chroma
        )
    );

    let probe = String::from_utf8(run(Command::new("ffprobe")
        .args(["-v", "error", "-of", "csv=p=0", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height,level"])
        .arg(&path)))
    .unwrap();
    assert_eq!(
        probe.trim(),
        format!("{},{},{}", want.0, want.1, ours.level_idc)
    );
}

#[test]
fn x265_640x360_record() {
    // 360 is not a multiple of 8: x265 codes 368 rows and crops with a conformance window.
    check("640x360", "bframes=0", (640, 360), false);
}

#[test]
fn x265_odd_size_with_sub_layers() {
    // A temporal sub-layer (x265 puts unreferenced B-frames there) exercises the sub-layer
    // profile_tier_level skip and per-layer ordering info.
    check("318x238", "bframes=3:temporal-layers=1", (318, 238), true);
}
