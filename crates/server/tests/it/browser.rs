//! The web console in a real browser: Debian's chromium, driven by playwright-core
//! (`tests/browser/console.mjs`), against a real server with real recordings.
//!
//! Needs `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in `crates/server/tests/browser`.
//! Without them the test fails, unless `LIVETAPE_SKIP_BROWSER=1` says to skip it.

use crate::common::{CLIP_10S, CLIP_60S, Pace, Receiver, TestServer, WAIT, fixture, publish};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const API_KEY: &str = "console-test-key";
/// The whole browser script (launch, three players, live, deletes) stays well under this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium and node_modules, or a clear failure; `None` when explicitly skipped.
fn prerequisites() -> Option<PathBuf> {
    if std::env::var("LIVETAPE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("LIVETAPE_SKIP_BROWSER=1: browser test skipped");
        return None;
    }
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    assert!(
        chromium.exists(),
        "{} not found: `apt-get install chromium` (or set CHROMIUM=path, or LIVETAPE_SKIP_BROWSER=1 to skip)",
        chromium.display()
    );
    let modules = browser_dir().join("node_modules/playwright-core");
    assert!(
        modules.exists(),
        "{} missing: run `npm ci` in {} (or LIVETAPE_SKIP_BROWSER=1 to skip)",
        modules.display(),
        browser_dir().display()
    );
    Some(chromium)
}

async fn get(srv: &TestServer, path: &str) -> Value {
    reqwest::Client::new()
        .get(srv.http(path))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `path` until `done` holds for its JSON (no event exists for these states).
async fn until(srv: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = get(srv, path).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out on {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_plays_seeks_and_manages_recordings_in_chromium() {
    let Some(chromium) = prerequisites() else {
        return;
    };
    // The push's event 0 is refused and, with no retries, goes dead: the page retries it. (Its
    // URL gets no other callback before that, which would revive it: see push/dead.rs.)
    let receiver = Receiver::start().await;
    receiver.script("/end", &[500]);
    let srv = TestServer::start_with(
        "",
        &format!(
            r#"
            [api]
            key = "{API_KEY}"
            [[record_template]]
            name = "default"
            formats = ["mp4", "flv", "hls"]
            [[callback_template]]
            name = "cb"
            key = "k"
            stream_end_url = "{u}/end"
            retry_count = 0
            [[callback_rule]]
            template = "cb"
            "#,
            u = receiver.url
        ),
        false,
    )
    .await;
    assert!(srv.publish("live", "demo", &fixture(CLIP_10S)).await);
    until(&srv, "/v1/recordings?stream_id=demo", |v| v["total"] == 3).await;
    until(&srv, "/v1/deliveries?status=dead", |v| v["total"] == 1).await;

    // A live push for the Live page, for as long as the script runs.
    let (addr, clip) = (srv.rtmp(), fixture(CLIP_60S));
    let live =
        tokio::spawn(async move { publish(addr, "live", "cam", &clip, Pace::Realtime).await });
    until(&srv, "/v1/streams", |v| {
        v["streams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["stream"] == "cam"))
    })
    .await;

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser-artifacts");
    let artifacts = std::env::var("LIVETAPE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or(artifacts);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
    // The README's screenshot is written when missing or on request, not on every run.
    let update_docs = !docs.exists() || std::env::var("LIVETAPE_UPDATE_DOCS").as_deref() == Ok("1");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("console.mjs")
        .current_dir(browser_dir())
        .env("LIVETAPE_URL", srv.http(""))
        .env("LIVETAPE_API_KEY", API_KEY)
        .env("LIVETAPE_FORMATS", "mp4,flv,hls")
        .env("LIVETAPE_LIVE_STREAM", "live/cam")
        .env("LIVETAPE_EXPECT_DEAD", "1")
        .env("LIVETAPE_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true);
    if update_docs {
        cmd.env("LIVETAPE_DOCS_SCREENSHOT", &docs);
    }
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .expect("browser script timed out")
        .expect("node runs (apt-get install nodejs)");
    live.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "console.mjs failed:\n{stdout}\n{stderr}"
    );
    // What the script claims, checked on the server side too.
    assert!(stdout.contains("mp4 recording via native"), "{stdout}");
    assert!(stdout.contains("flv recording via flv"), "{stdout}");
    assert!(stdout.contains("hls recording via hls"), "{stdout}");
    // The live stream pushed by ffmpeg played in the page (HTTP-FLV through mpegts.js).
    assert!(stdout.contains("live live/cam via "), "{stdout}");
    assert!(artifacts.join("console.png").exists());
    let dead = get(&srv, "/v1/deliveries?status=dead").await;
    assert_eq!(dead["total"], 0, "the page's retry revived it: {dead}");
    let left = get(&srv, "/v1/recordings?stream_id=demo").await;
    assert_eq!(left["total"], 2, "the page deleted one recording: {left}");
    srv.running.shutdown().await;
}
