//! Fault injection, for tests of the real binary. Two kinds, both driven by the environment
//! and each costing one load of an initialised `OnceLock` when unset:
//!
//! - **Crash points** ([`hit`]): with `LIVETAPE_CRASH_AT=<point>` the process aborts (no
//!   cleanup, like `kill -9`) the first time it reaches `<point>`.
//! - **I/O-error sweep** ([`io`]): every file-system or catalogue call along a recording's
//!   life that can fail in production calls [`io`] with its site name ([`SITES`]) first.
//!   With `LIVETAPE_IO_FAIL_AT=SITE:N` the Nth call at that site (counting from 1) fails
//!   once with `LIVETAPE_IO_FAIL_ERRNO` (`ENOSPC` by default, or `EIO`, `EMFILE`,
//!   `ECONNRESET`), as SQLite's own I/O-error tests fail every call in turn; `N` alone counts
//!   all sites together. The failing call is written to `LIVETAPE_IO_REPORT` (a file path),
//!   so a sweep knows what it hit, and when it ran past the last call (no report). Per site,
//!   the sweep is deterministic: the order of one site's calls does not depend on timing.
//!
//! Why in-house: the crates for this (`fail`, `fail-parallel`) name points by string and
//! trigger by configuration per point; the sweep needs one global call counter across crates
//! (the catalogue's writer and the server's recorders), which is a dozen lines.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The crash points, in the order a recording meets them.
pub const POINTS: [&str; 7] = [
    "record.split",      // a file was closed at a split, its successor not yet opened
    "finalize.copied",   // the final file is written and fsynced, not yet catalogued
    "commit.catalogued", // row + event 100 committed, spool not yet removed
    "notify.acked",      // the receiver answered 200, the outbox row is not yet marked
    "recover.spool",     // start-up recovery is about to finalize a spool
    "upload.part",       // s3: two multipart parts sent, the upload not completed
    "upload.stored",     // s3: the object is in the bucket, not yet catalogued
];

/// Aborts the process here if `LIVETAPE_CRASH_AT` names `point`.
pub fn hit(point: &'static str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var("LIVETAPE_CRASH_AT").ok());
    if target.as_deref() == Some(point) {
        eprintln!("livetape: crash injected at {point}");
        std::process::abort();
    }
}

/// The I/O sites, in the order a recording meets them.
pub const SITES: [&str; 13] = [
    "catalog.write",  // any catalogue write (session, events, rows, leases, outbox)
    "spool.meta",     // the metadata beside a spool
    "spool.create",   // a spool file or HLS directory created
    "spool.segment",  // an HLS segment file opened
    "spool.write",    // a batch written to a spool
    "spool.beside",   // the HLS EVENT playlist rewritten beside the segments
    "finalize.copy",  // a final file materialised from its spool (MP4, big FLV index)
    "finalize.fsync", // that copy fsynced
    "finalize.head",  // an FLV spool's head rewritten in place
    "finalize.adopt", // a spool renamed into records/
    "finalize.hls_playlist", // the final HLS VOD playlist written
    "finalize.hls_rename", // the HLS directory renamed into records/
    "spool.remove",   // a spool and its metadata removed once catalogued
];

struct Sweep {
    /// `None`: count every site together.
    site: Option<String>,
    fail_at: u64,
    errno: i32,
    report: Option<String>,
    calls: AtomicU64,
}

fn sweep() -> Option<&'static Sweep> {
    static SWEEP: OnceLock<Option<Sweep>> = OnceLock::new();
    SWEEP
        .get_or_init(|| {
            let spec = std::env::var("LIVETAPE_IO_FAIL_AT").ok()?;
            let (site, n) = match spec.rsplit_once(':') {
                Some((site, n)) => (Some(site.to_owned()), n),
                None => (None, spec.as_str()),
            };
            let fail_at = n.parse().ok()?;
            let errno = match std::env::var("LIVETAPE_IO_FAIL_ERRNO").as_deref() {
                Ok("EIO") => 5,
                Ok("EMFILE") => 24,
                Ok("ECONNRESET") => 104,
                _ => 28, // ENOSPC
            };
            Some(Sweep {
                site,
                fail_at,
                errno,
                report: std::env::var("LIVETAPE_IO_REPORT").ok(),
                calls: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Called before a file-system or catalogue call at `site`: `Err` if this is the call the
/// sweep fails (see the crate docs), else `Ok(())`.
pub fn io(site: &'static str) -> io::Result<()> {
    let Some(s) = sweep() else { return Ok(()) };
    if s.site.as_deref().is_some_and(|want| want != site) {
        return Ok(());
    }
    let n = s.calls.fetch_add(1, Ordering::Relaxed) + 1;
    if n != s.fail_at {
        return Ok(());
    }
    let e = io::Error::from_raw_os_error(s.errno);
    eprintln!("livetape: I/O error injected at call {n} ({site}): {e}");
    if let Some(p) = &s.report {
        let _ = std::fs::write(p, format!("{n} {site}\n"));
    }
    Err(e)
}
