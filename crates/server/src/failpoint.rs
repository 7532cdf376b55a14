//! Crash injection for the crash tests: with `LIVETAPE_CRASH_AT=<point>` in its environment
//! the process aborts (no cleanup, like `kill -9`) the first time it reaches `<point>`.
//! Unset, each point costs one load of an initialised `OnceLock`.

use std::sync::OnceLock;

static TARGET: OnceLock<Option<String>> = OnceLock::new();

/// The points, in the order a recording meets them.
pub const POINTS: [&str; 7] = [
    "record.split",      // a file was closed at a split, its successor not yet opened
    "finalize.copied",   // the final file is written and fsynced, not yet catalogued
    "commit.catalogued", // row + event 100 committed, spool not yet removed
    "notify.acked",      // the receiver answered 200, the outbox row is not yet marked
    "recover.spool",     // start-up recovery is about to finalize a spool
    "upload.part",       // s3: two multipart parts sent, the upload not completed
    "upload.stored",     // s3: the object is in the bucket, not yet catalogued
];

pub fn hit(point: &'static str) {
    let target = TARGET.get_or_init(|| std::env::var("LIVETAPE_CRASH_AT").ok());
    if target.as_deref() == Some(point) {
        eprintln!("livetape: crash injected at {point}");
        std::process::abort();
    }
}
