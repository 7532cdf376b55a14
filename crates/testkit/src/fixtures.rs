//! Deterministic media fixtures, generated once per target dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One generated clip: testsrc2 video (H.264 High, CBR, fixed GOP, no scene-cut keyframes) and
/// a 1 kHz sine (AAC-LC 128 kbit/s, 48 kHz stereo), in FLV, with ffmpeg arguments that give
/// the same bytes on every run of the same ffmpeg build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clip {
    /// File name stem, also the cache key: change it when the arguments change.
    pub name: &'static str,
    pub seconds: u32,
    pub size: &'static str,
    pub fps: u32,
    pub video_kbps: u32,
    /// Keyframe interval in frames.
    pub gop: u32,
}

/// 10 s, 640x360@30, ~1 Mbit/s, a keyframe every 2 s: 300 video and 470 audio packets.
pub const CLIP_10S: Clip = Clip {
    name: "clip-10s-1M",
    seconds: 10,
    size: "640x360",
    fps: 30,
    video_kbps: 1000,
    gop: 60,
};

/// 60 s, 1280x720@30, ~2.5 Mbit/s, a keyframe every 2 s: 1800 video and 2814 audio packets.
pub const CLIP_60S: Clip = Clip {
    name: "clip-60s",
    seconds: 60,
    size: "1280x720",
    fps: 30,
    video_kbps: 2500,
    gop: 60,
};

/// 2 s, 320x180@30, ~300 kbit/s, a keyframe every second: 60 video packets. Small, for the
/// I/O-error sweep, which runs one push per injected fault.
pub const CLIP_2S: Clip = Clip {
    name: "clip-2s-300k",
    seconds: 2,
    size: "320x180",
    fps: 30,
    video_kbps: 300,
    gop: 30,
};

/// Every named clip (for [`crate::fixture`] by name, e.g. from the `fixture` binary).
pub const CLIPS: [Clip; 3] = [CLIP_2S, CLIP_10S, CLIP_60S];

pub fn clip_10s() -> PathBuf {
    fixture(&CLIP_10S)
}

pub fn clip_60s() -> PathBuf {
    fixture(&CLIP_60S)
}

/// `target/` of this workspace (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // crates/testkit → the workspace root.
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
            root.unwrap_or(Path::new(".")).join("target")
        })
}

/// Serialises generation inside one test binary; across processes the atomic rename makes
/// a concurrent build harmless (same bytes, last rename wins).
static BUILDING: Mutex<()> = Mutex::new(());

/// The clip's path, generating it first if it is not cached yet.
pub fn fixture(clip: &Clip) -> PathBuf {
    let kbps = clip.video_kbps;
    let mut args: Vec<String> = ["-f", "lavfi", "-i"].map(String::from).to_vec();
    args.push(format!("testsrc2=size={}:rate={}", clip.size, clip.fps));
    let rest: &[&str] = &[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-t",
        &clip.seconds.to_string(),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-b:v",
        &format!("{kbps}k"),
        "-minrate",
        &format!("{kbps}k"),
        "-maxrate",
        &format!("{kbps}k"),
        "-bufsize",
        &format!("{}k", kbps * 2),
        "-x264-params",
        "nal-hrd=cbr:force-cfr=1",
        "-g",
        &clip.gop.to_string(),
        "-keyint_min",
        &clip.gop.to_string(),
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-ar",
        "48000",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-f",
        "flv",
    ];
    args.extend(rest.iter().map(|a| (*a).to_owned()));
    generated(&format!("{}.flv", clip.name), Path::new("ffmpeg"), &args)
}

/// A file made by `program args… OUT` (OUT appended), cached under `target/testkit/fixtures`
/// as `name` (built once; a different argument list is a different cache entry). For fixtures
/// only a particular encoder makes, e.g. [`crate::ffmpeg9`] with libsvtav1 or multitrack audio.
pub fn generated(name: &str, program: &Path, args: &[String]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (program, args).hash(&mut h);
    let dir = target_dir().join("testkit/fixtures");
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
    // The first fixtures keep their plain names (README and benches point at them).
    let path = if program == Path::new("ffmpeg") {
        dir.join(name)
    } else {
        dir.join(format!("{stem}-{:08x}.{ext}", h.finish() as u32))
    };
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("create target/testkit/fixtures");
    let tmp = dir.join(format!(".{stem}.{}.tmp.{ext}", std::process::id()));
    let out = Command::new(program)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&tmp)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} to build fixture {name}: {e} (apt-get install ffmpeg)",
                program.display()
            )
        });
    assert!(
        out.status.success(),
        "{} failed to build fixture {name}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).expect("move the fixture into place");
    path
}
