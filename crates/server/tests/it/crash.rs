//! Crash recovery with the real binary: kill -9 while recording, and during a reconnect
//! window; the next start turns the spools into catalogued recordings with their event 100.

use crate::common::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

fn write_config(dir: &Path, receiver: &str, extra: &str) -> std::path::PathBuf {
    binary_config(dir, receiver, "", extra)
}

async fn fetch(http: SocketAddr, video_url: &str, to: &Path) {
    let path = video_url.split_once("/vod/").unwrap().1;
    let b = reqwest::get(format!("http://{http}/vod/{path}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(to, &b).unwrap();
}

/// Truncates the newest segment of the HLS spool in `spool` one packet into its last
/// multi-packet PES (audio or video), so that frame is partial.
fn tear_last_hls_frame(spool: &Path) {
    const PACKET: usize = 188;
    let dir = std::fs::read_dir(spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("an HLS spool directory");
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ts"))
        .max_by_key(|p| livetape_hls::parse_segment_uri(p.file_name().unwrap().to_str().unwrap()))
        .expect("a segment");
    let data = std::fs::read(&seg).unwrap();
    let n = data.len() / PACKET;
    let head = |k: usize| {
        let p = &data[k * PACKET..];
        (
            p[1] & 0x40 != 0,
            u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]),
        )
    };
    let cut = (0..n.saturating_sub(1))
        .rev()
        .find(|&k| {
            let (pusi, pid) = head(k);
            let (next_pusi, next_pid) = head(k + 1);
            pusi && pid != 0 && pid != 0x1000 && next_pid == pid && !next_pusi
        })
        .expect("a multi-packet PES");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(((cut + 2) * PACKET) as u64)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_recording_loses_at_most_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"flv\", \"mp4\", \"hls\"]\nhls_target_s = 2\n",
    );
    let mut server = spawn(&cfg, None);
    let rtmp = server.rtmp;
    let pushing = tokio::spawn(async move {
        publish(rtmp, "live", "cut", &fixture(CLIP_10S), Pace::Realtime).await
    });
    // Wait until about 4 s of media reached the spools, then pull the plug.
    let spool = dir.path().join("data/spool");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let size: u64 = std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        // Two file formats of a ~1.2 Mbit/s clip: 1.2 MB ≈ 4 s.
        if size > 1_200_000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "spools never grew");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.kill(); // SIGKILL
    let _ = pushing.await;
    // And a write cut short, as a full disk leaves it: the HLS spool's last segment ends
    // inside a frame (whole TS packets, a partial PES). Recovery must cut that frame.
    tear_last_hls_frame(&spool);

    let mut server = spawn(&cfg, None);
    let mut files = Vec::new();
    let mut ends = Vec::new();
    let mut begin = None;
    while files.len() < 3 || ends.is_empty() {
        let d = rx.next().await;
        match d.body["event_type"].as_i64() {
            Some(100) => files.push(d.body),
            Some(0) => ends.push(d.body),
            Some(1) => begin = Some(d.body),
            _ => {}
        }
    }
    // The push the crash cut gets its event 0 from the next start, paired with its event 1.
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["errcode"], 5);
    assert_eq!(ends[0]["errmsg"], "server restart");
    assert_eq!(
        ends[0]["sequence"],
        begin.expect("event 1 before the crash")["sequence"]
    );
    let (mut video_counts, mut audio_counts) = (Vec::new(), Vec::new());
    for f in &files {
        assert_signed(f);
        let url = f["video_url"].as_str().unwrap();
        let p = if f["file_format"] == "hls" {
            // ffprobe reads the playlist and its segments over HTTP.
            std::path::PathBuf::from(format!(
                "http://{}/vod/{}",
                server.http,
                url.split_once("/vod/").unwrap().1
            ))
        } else {
            let p = dir
                .path()
                .join(format!("got.{}", f["file_format"].as_str().unwrap()));
            fetch(server.http, url, &p).await;
            p
        };
        let (v, a) = probe_counts(&p);
        assert_eq!(decode_errors(&p), "", "{}", f["file_format"]);
        assert!(
            (90..300).contains(&v),
            "{}: {v} video frames",
            f["file_format"]
        );
        video_counts.push(v);
        audio_counts.push(a);
    }
    eprintln!(
        "recovered video frames per format after kill -9: {video_counts:?}, audio {audio_counts:?}"
    );
    // Both formats lost at most ~1 s (the unflushed buffer) relative to each other.
    let spread = video_counts.iter().max().unwrap() - video_counts.iter().min().unwrap();
    assert!(spread <= 31, "{video_counts:?}");
    assert!(
        std::fs::read_dir(&spool).unwrap().next().is_none(),
        "spool emptied"
    );

    // Recovery is idempotent: another start finds nothing to do and lists the same 2 files.
    server.kill();
    let mut server = spawn(&cfg, None);
    let v: Value = reqwest::get(format!(
        "http://{}/v1/recordings?stream_id=cut",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["total"], 3);
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_reconnect_window_finalizes_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\"]\nresume_s = 600\n",
    );
    let mut server = spawn(&cfg, None);
    assert!(
        publish(
            server.rtmp,
            "live",
            "parked",
            &fixture(CLIP_10S),
            Pace::Fast
        )
        .await
    );
    rx.next_of(0).await; // the push ended; its recording waits for a reconnect
    server.kill();

    let mut server = spawn(&cfg, None);
    let f = rx.next_of(100).await.body;
    let p = dir.path().join("parked.mp4");
    fetch(server.http, f["video_url"].as_str().unwrap(), &p).await;
    assert_eq!(probe_counts(&p), (300, 470), "the whole push, recovered");
    assert_eq!(decode_errors(&p), "");
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finalizes_recordings_and_delivers_their_callbacks_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\", \"hls\"]\nresume_s = 600\n",
    );
    let mut server = spawn(&cfg, None);
    let rtmp = server.rtmp;
    // A push that ended and waits in its reconnect window...
    assert!(publish(rtmp, "live", "parked", &fixture(CLIP_10S), Pace::Fast).await);
    rx.next_of(0).await;
    // ...and one still live.
    let live = tokio::spawn(async move {
        publish(rtmp, "live", "live", &fixture(CLIP_10S), Pace::Realtime).await
    });
    let spool = dir.path().join("data/spool");
    let deadline = std::time::Instant::now() + WAIT;
    while std::fs::read_dir(&spool).unwrap().count() < 8 {
        // 2 recordings × 2 formats × (spool + metadata): both are being written.
        assert!(
            std::time::Instant::now() < deadline,
            "recordings never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful stop exits 0: {exit:?}");
    let _ = live.await;

    // Everything was finalized by the stop itself, not left for recovery...
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "no spool left behind"
    );
    // ...and its callbacks were delivered before the process exited.
    let mut got = Vec::new();
    while let Some(d) = rx.try_next() {
        got.push(d.body);
    }
    let files: Vec<_> = got.iter().filter(|b| b["event_type"] == 100).collect();
    assert_eq!(files.len(), 4, "2 streams × mp4+hls: {got:?}");
    let end = got
        .iter()
        .find(|b| b["event_type"] == 0 && b["stream_id"] == "live")
        .expect("event 0 for the cut push");
    assert_eq!(end["errcode"], 5, "closed by the server: {end}");
}

/// One crash scenario: run 1 aborts at `point` while streams `a` (pushed whole first) and `b`
/// (pushed meanwhile) record FLV, MP4 and HLS; run 2 aborts inside start-up recovery if there
/// is anything to recover; run 3 is clean. Then every recording is valid and catalogued once,
/// every event was delivered (duplicates only under the same event id), and `a` is whole.
async fn crash_scenario(point: &str, a_is_whole: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"flv\", \"mp4\", \"hls\"]\nhls_target_s = 2\n",
    );
    let mut run1 = spawn_maybe(&cfg, Some(point)).unwrap();
    let rtmp = run1.rtmp;
    let a = publish(rtmp, "live", "a", &fixture(CLIP_10S), Pace::Fast).await;
    assert!(
        a || !a_is_whole,
        "{point}: stream a was pushed whole before the crash"
    );
    let b = tokio::spawn(async move {
        publish(rtmp, "live", "b", &fixture(CLIP_10S), Pace::Realtime).await
    });
    let status = tokio::task::spawn_blocking(move || {
        let s = run1.child.wait().unwrap();
        drop(run1);
        s
    })
    .await
    .unwrap();
    assert!(!status.success(), "{point}: run 1 must crash: {status:?}");
    let _ = b.await;
    // Run 2 crashes in recovery when a spool is left; run 3 always serves.
    let server = match spawn_maybe(&cfg, Some("recover.spool")) {
        Some(p) => p,
        None => spawn(&cfg, None),
    };
    let v: Value = reqwest::get(format!(
        "http://{}/v1/recordings?page_size=100",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let recs = v["recordings"].as_array().unwrap().clone();
    // Every catalogued file gets its event 100 (at least once, always the same event id).
    let mut announced: std::collections::HashMap<String, String> = Default::default();
    let mut all: Vec<Delivery> = Vec::new();
    let redelivered = |all: &[Delivery]| {
        all.iter().any(|d| {
            all.iter()
                .filter(|e| e.event_id == d.event_id && e.status == 200)
                .count()
                > 1
        })
    };
    while announced.len() < recs.len() || (point == "notify.acked" && !redelivered(&all)) {
        let d = rx.next().await;
        all.push(d.clone());
        if d.status != 200 || d.body["event_type"] != 100 {
            continue;
        }
        let fid = d.body["file_id"].as_str().unwrap().to_owned();
        if let Some(id) = announced.insert(fid.clone(), d.event_id.clone()) {
            assert_eq!(
                id, d.event_id,
                "{point}: a duplicate delivery keeps its event id"
            );
        }
        assert!(
            recs.iter().any(|r| r["file_id"] == fid),
            "{point}: {fid} announced but not catalogued"
        );
    }
    let mut counts: std::collections::HashMap<(String, String), (u64, u64)> = Default::default();
    for r in &recs {
        let url = r["video_url"].as_str().unwrap();
        let local = format!(
            "http://{}/vod/{}",
            server.http,
            url.split_once("/vod/").unwrap().1
        );
        let p = if r["format"] == "hls" {
            std::path::PathBuf::from(local)
        } else {
            let p = dir.path().join(format!(
                "{}.{}",
                r["file_id"].as_str().unwrap(),
                r["format"].as_str().unwrap()
            ));
            fetch(server.http, url, &p).await;
            p
        };
        assert_eq!(decode_errors(&p), "", "{point}: {r}");
        let c = probe_counts(&p);
        let e = counts
            .entry((
                r["stream_id"].as_str().unwrap().to_owned(),
                r["format"].as_str().unwrap().to_owned(),
            ))
            .or_default();
        *e = (e.0 + c.0, e.1 + c.1);
    }
    // No file twice: one recording per stream and format (10 s, no split).
    assert_eq!(counts.len(), recs.len(), "{point}: {recs:?}");
    if a_is_whole {
        for fmt in ["flv", "mp4", "hls"] {
            let got = counts.get(&("a".into(), fmt.into())).copied();
            assert_eq!(got, Some((300, 470)), "{point}: stream a, {fmt}");
        }
    }
    // notify.acked: the receiver acknowledged an event, then the process died before
    // recording that; the loop above only ends once it was sent again, under the same id.

    // Stream b was cut by the crash somewhere: its formats agree to within ~1 s.
    let b: Vec<u64> = ["flv", "mp4", "hls"]
        .iter()
        .filter_map(|f| counts.get(&("b".into(), (*f).into())).map(|c| c.0))
        .collect();
    if let (Some(lo), Some(hi)) = (b.iter().min(), b.iter().max()) {
        assert!(hi - lo <= 31, "{point}: stream b {b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_final_file_is_written() {
    crash_scenario("finalize.copied", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_catalogue_commit() {
    crash_scenario("commit.catalogued", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_acknowledgement_and_outbox_update() {
    // The first acknowledgement (event 1 of stream a) comes before any media, so a is cut.
    crash_scenario("notify.acked", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_a_split_loses_no_frame_of_the_closed_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\"]\ninterval_s = 30\n",
    );
    let mut run1 = spawn_maybe(&cfg, Some("record.split")).unwrap();
    let pushed = publish(run1.rtmp, "live", "s", &fixture(CLIP_60S), Pace::Rate(12)).await;
    assert!(!run1.child.wait().unwrap().success() || !pushed);
    let server = spawn(&cfg, None);
    let f = rx.next_of(100).await.body;
    let p = dir.path().join("first.mp4");
    fetch(server.http, f["video_url"].as_str().unwrap(), &p).await;
    // The file closed at the split holds exactly the first 30 s (GOP 2 s): 900 frames.
    assert_eq!(probe_counts(&p).0, 900);
    assert_eq!(decode_errors(&p), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_the_next_start_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    // The receiver refuses everything at first, so a graceful stop would wait out
    // shutdown_flush_s (60 s here) trying to deliver.
    rx.script("/record", &[503; 1000]);
    rx.script("/end", &[503; 1000]);
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"mp4\"]\n",
    );
    let extra = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[server]",
        "[server]\nshutdown_flush_s = 60",
        1,
    );
    std::fs::write(&cfg, extra).unwrap();
    let mut server = spawn(&cfg, None);
    let rtmp = server.rtmp;
    let live = tokio::spawn(async move {
        publish(rtmp, "live", "twice", &fixture(CLIP_10S), Pace::Realtime).await
    });
    // Recording has started once its record_start_succeeded (332) is attempted.
    while rx.next().await.body["event_type"] != 332 {}
    let pid = server.child.id().to_string();
    let started = std::time::Instant::now();
    let term = || {
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    term();
    // The stop is under way once the publisher was closed (its event 0 is being sent).
    while rx.next().await.body["event_type"] != 0 {}
    term();
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "second signal: immediate exit");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let _ = live.await;
    // The next start (receiver healthy now) has everything: the file and its events.
    rx.clear_script("/record");
    rx.clear_script("/end");
    let server = spawn(&cfg, None);
    let f = rx.next_of(100).await.body;
    let p = dir.path().join("twice.mp4");
    fetch(server.http, f["video_url"].as_str().unwrap(), &p).await;
    assert_eq!(decode_errors(&p), "");
    assert!(probe_counts(&p).0 > 0);
}

/// The catalogue file made unwritable for the server (it runs as `nobody`; `chmod 0444` on
/// the SQLite files, as a wrong owner, mode or a read-only mount leaves it) after a crash
/// mid-push: the next start refuses at once, naming the file, and touches nothing — the
/// spool stays; once the file is writable again, the start recovers the recording whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_catalogue_is_refused_at_start_and_costs_no_recording() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let mut rx = Receiver::start().await;
    let cfg = write_config(
        dir.path(),
        &rx.url,
        "[[record_template]]\nname = \"default\"\nformats = [\"flv\"]\n",
    );
    let mut server = spawn_as_nobody(&cfg).expect("serves as nobody");
    let rtmp = server.rtmp;
    let pushing = tokio::spawn(async move {
        publish(rtmp, "live", "ro", &fixture(CLIP_10S), Pace::Realtime).await
    });
    rx.next_of(1).await;
    let spool = dir.path().join("data/spool");
    let spooled = || -> u64 {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while spooled() < 600_000 {
        assert!(std::time::Instant::now() < deadline, "spool never grew");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.kill();
    let _ = pushing.await;

    let db_files: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("catalog.db")
        })
        .collect();
    assert!(!db_files.is_empty());
    let mode = |m: u32| {
        for f in &db_files {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(m)).unwrap();
        }
    };
    mode(0o444);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_livetape"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a read-only catalogue: {err}"
    );
    assert!(
        err.contains("catalog.db") && err.contains("readonly"),
        "the error names the file and why: {err}"
    );
    assert!(spooled() >= 600_000, "the spool is untouched");

    mode(0o644);
    let server = spawn_as_nobody(&cfg).expect("serves once writable");
    let file = rx.next_of(100).await.body;
    let p = dir.path().join("got.flv");
    fetch(server.http, file["video_url"].as_str().unwrap(), &p).await;
    let (v, _) = probe_counts(&p);
    assert!(v >= 60, "{v} video frames recovered (~4 s spooled)");
    assert_eq!(decode_errors(&p), "");
    assert_eq!(spooled(), 0, "spool recovered");
}
