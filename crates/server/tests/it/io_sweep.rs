//! The I/O-error sweep, the way SQLite tests itself: one push's life on the real binary, with
//! the Nth call at one file-system or catalogue site failing once
//! (`LIVETAPE_IO_FAIL_AT=SITE:N`, see the `livetape-failpoint` crate), for every site and
//! N = 1, 2, … until a run makes fewer than N calls there. After each run (ended by SIGTERM)
//! and a restart, ARCHITECTURE.md's invariants must hold:
//!
//! - no spool is left and nothing is quarantined;
//! - every recording on disk is catalogued, and every catalogued one is on disk;
//! - every catalogued file decodes clean with ffmpeg and is announced (event 100) exactly once;
//!   no event 100 names anything else;
//! - event 1 and event 0 come at most once each and together, 1 first, 0 before every 100;
//! - no silent loss: each format holds every frame of the clip, or the loss was announced
//!   (event 332 `record_error` / `record_start_failed` for that format), or the push was
//!   refused before it began (no event 1, nothing recorded).

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Formats and their Tencent `file_format` codes (event 332's `record_detail`).
const FORMATS: [(&str, i64); 3] = [("flv", 1), ("hls", 2), ("mp4", 3)];

fn write_config(dir: &Path, receiver: &str) -> PathBuf {
    binary_config(
        dir,
        receiver,
        "shutdown_flush_s = 5",
        "[[record_template]]\nname = \"default\"\nformats = [\"flv\", \"mp4\", \"hls\"]\nhls_target_s = 1\n",
    )
}

/// SIGTERM (a clean stop: recordings finalized, callbacks flushed), then waits for the exit.
fn terminate(p: &mut Proc) {
    let pid = p.child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = p.child.wait().unwrap();
    assert!(
        status.success(),
        "the server's clean stop failed: {status:?}"
    );
}

/// Waits until the server has taken the push (accepted or refused it) and it has ended: ffmpeg
/// exits as soon as its bytes are in the socket, before the server has read them.
async fn pushed_and_gone(http: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = reqwest::get(format!("{http}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let taken =
            sum("livetape_rtmp_publishes_total") + sum("livetape_rtmp_publish_refused_total");
        if taken > 0.0 && sum("livetape_live_streams ") == 0.0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the push never ended");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Everything under `records/`, as catalogue-relative paths: files, and HLS directories.
fn recorded(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            let is_hls = p.extension().is_some_and(|x| x == "hls");
            if p.is_dir() && !is_hls {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    let records = root.join("records");
    if records.exists() {
        walk(root, &records, &mut out);
    }
    out.sort();
    out
}

/// The file ffmpeg decodes for a recording at `path` (an HLS directory: its playlist).
fn decodable(data: &Path, path: &str) -> PathBuf {
    let p = data.join(path);
    if p.is_dir() {
        p.join("playlist.m3u8")
    } else {
        p
    }
}

/// One push with call `n` failing (`errno`); checks the invariants after a restart. Returns
/// the site that failed, or `None` when the run made fewer than `n` calls.
async fn run(site: &str, n: u64, errno: &str, clip: &Path, full: (u64, u64)) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(dir.path(), &rx.url);
    let report = dir.path().join("injected");
    let n_str = format!("{site}:{n}");
    let report_str = report.to_string_lossy().into_owned();
    let env = [
        ("LIVETAPE_IO_FAIL_AT", n_str.as_str()),
        ("LIVETAPE_IO_FAIL_ERRNO", errno),
        ("LIVETAPE_IO_REPORT", report_str.as_str()),
        // ~180 runs, each logging the failure it was made to have: errors only.
        ("LIVETAPE_LOG", "error"),
    ];
    let mut server = spawn_env(&cfg, &env, None)
        .unwrap_or_else(|| panic!("call {n} failing ({errno}) stopped the server starting"));
    publish(server.rtmp, "live", "sweep", clip, Pace::Fast).await;
    pushed_and_gone(&format!("http://{}", server.http)).await;
    terminate(&mut server);
    let site = std::fs::read_to_string(&report)
        .ok()
        .map(|s| s.split_whitespace().nth(1).unwrap().to_owned());
    let what = format!("call {n} ({errno}, {})", site.as_deref().unwrap_or("none"));

    // A clean start on the same data: recovery, then every event delivered.
    let server = spawn(&cfg, None);
    let http = format!("http://{}", server.http);
    let deadline = std::time::Instant::now() + WAIT;
    while metric(&http, "livetape_outbox_pending").await > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: outbox never drained"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&http, "livetape_outbox_dead").await, 0.0, "{what}");
    let mut events = Vec::new();
    while let Some(d) = rx.try_next() {
        events.push(d.body);
    }

    let data = dir.path().join("data");
    let spool: Vec<_> = std::fs::read_dir(data.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(spool.is_empty(), "{what}: spool left: {spool:?}");

    let list: Value = reqwest::get(format!("{http}/v1/recordings?page_size=100"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recs = list["recordings"].as_array().unwrap();
    // Final names end in `_<first 8 hex of the file id>.<ext>`.
    let on_disk = recorded(&data);
    let path_of = |r: &Value| -> String {
        let id = r["file_id"].as_str().unwrap();
        let short = &id.rsplit('_').next().unwrap()[..8];
        let suffix = format!("_{short}.{}", r["format"].as_str().unwrap());
        let hits: Vec<&String> = on_disk.iter().filter(|p| p.ends_with(&suffix)).collect();
        assert_eq!(hits.len(), 1, "{what}: {id} on disk: {on_disk:?}");
        hits[0].clone()
    };
    assert_eq!(
        on_disk.len(),
        recs.len(),
        "{what}: disk {on_disk:?} vs catalogue {recs:?}"
    );

    let of_type = |t: i64| -> Vec<usize> {
        (0..events.len())
            .filter(|&i| events[i]["event_type"] == t)
            .collect()
    };
    let (begins, ends, files) = (of_type(1), of_type(0), of_type(100));
    assert!(begins.len() <= 1, "{what}: {} events 1", begins.len());
    assert_eq!(begins.len(), ends.len(), "{what}: events 1 and 0 pair up");
    if let Some(&b) = begins.first() {
        assert_eq!(b, 0, "{what}: event 1 first");
    }
    let mut announced: Vec<&str> = files
        .iter()
        .map(|&i| events[i]["file_id"].as_str().unwrap())
        .collect();
    announced.sort();
    let mut ids: Vec<&str> = recs
        .iter()
        .map(|r| r["file_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(announced, ids, "{what}: each recording announced once");

    let mut frames: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in recs {
        let p = decodable(&data, &path_of(r));
        assert_eq!(decode_errors(&p), "", "{what}: {} decodes", p.display());
        let (v, a) = probe_counts(&p);
        let e = frames.entry(r["format"].as_str().unwrap()).or_default();
        (e.0, e.1) = (e.0 + v, e.1 + a);
    }
    let pushed = !begins.is_empty();
    for (format, code) in FORMATS {
        let got = frames.get(format).copied().unwrap_or_default();
        let announced_loss = events.iter().any(|e| {
            e["event_type"] == 332
                && e["record_event"] != "record_start_succeeded"
                && e["record_event"] != "record_ended"
                && serde_json::from_str::<Value>(e["record_detail"].as_str().unwrap())
                    .is_ok_and(|d| d["file_format"] == code)
        });
        // Audio: HLS and FLV/MP4 may differ by the one frame a muxer holds back at the end.
        let whole = got.0 == full.0 && got.1 + 2 >= full.1;
        assert!(
            whole || announced_loss || (!pushed && got == (0, 0)),
            "{what}: {format} has {got:?} of {full:?} frames and no event 332 said so"
        );
        // A file that ended with the push is announced after its event 0 (one that a failed
        // write closed earlier is announced when it closed, as a split file is).
        if pushed && !announced_loss {
            let e = ends[0];
            let late = files.iter().all(|&f| {
                let r = recs.iter().find(|r| r["file_id"] == events[f]["file_id"]);
                r.is_none_or(|r| r["format"] != format) || f > e
            });
            assert!(late, "{what}: {format}'s event 100 before event 0");
        }
    }
    site
}

async fn sweep(errno: &str) {
    let clip = fixture(CLIP_2S);
    let full = probe_counts(&clip);
    let mut calls: BTreeMap<&str, u64> = BTreeMap::new();
    for site in livetape::failpoint::SITES {
        // A failed catalogue write is the same "not committed" error whatever the errno
        // (`livetape-failpoint` maps it): swept once, with ENOSPC.
        if site == "catalog.write" && errno != "ENOSPC" {
            continue;
        }
        let mut n = 1;
        while run(site, n, errno, &clip, full).await.is_some() {
            n += 1;
            assert!(n < 1000, "the sweep never ends at {site}");
        }
        calls.insert(site, n - 1);
    }
    eprintln!(
        "I/O-error sweep ({errno}): {} injection points along one push ({} sites): {calls:?}",
        calls.values().sum::<u64>(),
        calls.len()
    );
    // Every site is on a push's path: one never reached means the sweep (or the
    // instrumentation) is broken.
    for (site, n) in &calls {
        assert!(*n > 0, "the sweep never reached {site}: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_io_call_of_a_push_can_fail_with_enospc() {
    sweep("ENOSPC").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_io_call_of_a_push_can_fail_with_eio() {
    sweep("EIO").await;
}
