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
//! * Feature `net`: a real callback [`Receiver`], the ffmpeg [`publish`]er, a real
//!   S3-compatible server ([`S3Server`], `s3s-fs`) and the [`Scenario`] builder of a test
//!   server's config, and [`Tmpfs`]: a real small file system to fill up or make read-only.
//! * Feature `postgres`: throwaway databases ([`PgDatabase`]) through `TEST_DATABASE_URL`, and
//!   private clusters to stop and start ([`PgCluster`], Debian's `pg_createcluster`).
//!
//! Depends on nothing of livetape, so every crate can use it.

mod fixtures;
#[cfg(feature = "postgres")]
mod pg;
mod probe;
#[cfg(feature = "net")]
mod publisher;
#[cfg(feature = "net")]
mod receiver;
#[cfg(feature = "net")]
mod s3;
#[cfg(feature = "net")]
mod scenario;
#[cfg(feature = "net")]
mod tmpfs;

pub use fixtures::{
    CLIP_2S, CLIP_10S, CLIP_60S, CLIPS, Clip, clip_10s, clip_60s, fixture, generated, target_dir,
};
#[cfg(feature = "postgres")]
pub use pg::{DATABASE_URL_ENV, PgCluster, PgDatabase, admin_url, pg_admin};
pub use probe::{Counts, count_packets, decode_errors, ffmpeg9, probe_counts, venv_python};
#[cfg(feature = "net")]
pub use publisher::{Pace, publish};
#[cfg(feature = "net")]
pub use receiver::{Delivery, EVENT_ID_HEADER, HANG, RECEIVE_WAIT, Receiver};
#[cfg(feature = "net")]
pub use s3::{S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, S3Server, free_port};
#[cfg(feature = "net")]
pub use scenario::{CALLBACK_KEY, Prepared, Scenario};
#[cfg(feature = "net")]
pub use tmpfs::Tmpfs;
