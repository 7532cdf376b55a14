//! Test support for every suite and bench of the workspace (a dev-dependency only).
//!
//! * **Fixtures** ([`Clip`], [`clip_10s`], [`clip_60s`]): media generated with Debian's ffmpeg
//!   from lavfi sources with deterministic arguments (one x264 thread, bit-exact flags), so
//!   the same ffmpeg build makes the same bytes; cached under `target/testkit/fixtures` and
//!   built on first use. No test reads anything outside the repository.
//! * **Probes** ([`probe_counts`], [`count_packets`], [`decode_errors`]): what real
//!   ffprobe/ffmpeg make of a file.
//! * **Tools** ([`ffmpeg9`]): the pinned ffmpeg 9 (PyPI `imageio-ffmpeg`) that
//!   `scripts/test.sh` installs into `target/testkit/venv`: Enhanced RTMP v2, AV1, Opus, SRT,
//!   WHIP, RTMPS — and it reads Enhanced FLV, which Debian's ffprobe 5.1 cannot.
//!
//! Depends on nothing of livetape, so every crate can use it.

mod fixtures;
mod probe;

pub use fixtures::{
    CLIP_10S, CLIP_60S, CLIPS, Clip, clip_10s, clip_60s, fixture, generated, target_dir,
};
pub use probe::{Counts, count_packets, decode_errors, ffmpeg9, probe_counts};
