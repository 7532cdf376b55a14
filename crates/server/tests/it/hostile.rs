//! Hostile clients against a real server: each limit of SECURITY.md exceeded on purpose, and
//! what is recording meanwhile unharmed.

use crate::common::{CLIP_10S, TestServer, assert_signed, fixture, metric};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for a server to close a socket it should close (a hang fails, not blocks).
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection (or resets it); true if it did in time.
async fn closed_by_server(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, read_to_end).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_idle_and_slow_header_connections_are_closed() {
    let srv = TestServer::start_with("http_idle_timeout_s = 1", "", false).await;
    let addr = srv.http("").trim_start_matches("http://").to_owned();
    // A connection that never sends a byte.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    // A request head that never ends (slow-loris).
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A keep-alive connection after one whole request.
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(closed_by_server(&mut idle).await, "idle connection kept");
    assert!(closed_by_server(&mut slow).await, "slow header kept");
    assert!(closed_by_server(&mut kept).await, "idle keep-alive kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_caps_are_closed_at_once() {
    let srv = TestServer::start_with(
        "http_max_connections_per_ip = 4\nrtmp_max_connections_per_ip = 2",
        "",
        false,
    )
    .await;
    let addr = srv.http("").trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut over = TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_by_server(&mut over).await,
        "5th HTTP connection kept"
    );
    // A freed place is usable again.
    drop(held.pop());
    let ok = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            if let Ok(r) = reqwest::Client::new()
                .get(srv.http("/healthz"))
                .header("connection", "close")
                .send()
                .await
            {
                return r.status();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(ok, 200);
    drop(held);

    let rtmp1 = TcpStream::connect(srv.rtmp()).await.unwrap();
    let rtmp2 = TcpStream::connect(srv.rtmp()).await.unwrap();
    let mut rtmp3 = TcpStream::connect(srv.rtmp()).await.unwrap();
    assert!(
        closed_by_server(&mut rtmp3).await,
        "3rd RTMP connection kept"
    );
    assert_eq!(
        metric(
            &srv.http(""),
            "livetape_rtmp_publish_refused_total{reason=\"connection_limit\"}"
        )
        .await,
        1.0
    );
    drop((rtmp1, rtmp2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtmp_client_that_does_not_publish_in_time_is_closed_and_pushes_go_on() {
    let mut srv = TestServer::start("").await;
    // Slow-loris: C0C1 one byte at a time, far slower than any encoder.
    let mut loris = TcpStream::connect(srv.rtmp()).await.unwrap();
    let trickle = async {
        for _ in 0..1537 {
            if loris.write_all(&[3]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let started = tokio::time::Instant::now();
    tokio::time::timeout(CLOSE_WAIT, trickle)
        .await
        .expect("slow handshake kept past the publish deadline");
    assert!(closed_by_server(&mut loris).await);
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert_eq!(
        metric(
            &srv.http(""),
            "livetape_rtmp_publish_refused_total{reason=\"publish_deadline\"}"
        )
        .await,
        1.0
    );
    // Meanwhile a real publisher is unaffected.
    assert!(srv.publish("live", "fine", &fixture(CLIP_10S)).await);
    assert_eq!(srv.receiver.next_of(100).await.body["stream_id"], "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_has_no_wildcard_cors_and_never_shows_a_callback_key() {
    // The harness's receiver is on loopback: allowed here, as an operator with a backend on
    // the same machine would.
    let mut srv = TestServer::start("[callbacks]\nallow_targets = [\"127.0.0.1\"]").await;
    let client = reqwest::Client::new();
    let evil = "http://evil.example";
    let r = client
        .get(srv.http("/v1/recordings"))
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );
    // Playback stays open to players on any origin.
    let r = client
        .get(srv.http("/vod/none/f0.mp4"))
        .header("origin", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // The harness's template (key CALLBACK_KEY) shows `***`, in the list and alone.
    let list: Value = client
        .get(srv.http("/v1/callback-templates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &list["templates"][0];
    assert_eq!(t["key"], "***", "{list}");
    let name = t["name"].as_str().unwrap().to_owned();
    let one: Value = client
        .get(srv.http(&format!("/v1/callback-templates/{name}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["key"], "***");
    // Sending the template back as shown keeps the real key: callbacks are still signed
    // with it.
    let mut back = one.clone();
    let obj = back.as_object_mut().unwrap();
    obj.remove("created_at_ms");
    obj.remove("updated_at_ms");
    let r = client
        .put(srv.http(&format!("/v1/callback-templates/{name}")))
        .json(&back)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(srv.publish("live", "signed", &fixture(CLIP_10S)).await);
    assert_signed(&srv.receiver.next_of(100).await.body);
    // A key too long for a signing key, and `***` where there is no stored key, are refused.
    for body in [
        serde_json::json!({"name": "long", "key": "k".repeat(257), "record_url": "http://h/x"}),
        serde_json::json!({"name": "fresh", "key": "***", "record_url": "http://h/x"}),
        serde_json::json!({"name": "url", "record_url": format!("http://h/{}", "x".repeat(2048))}),
        // A cloud metadata address, and loopback outside the allowed address.
        serde_json::json!({"name": "meta", "record_url": "http://169.254.169.254/latest"}),
        serde_json::json!({"name": "lo", "stream_end_url": "http://127.0.0.2:22/"}),
        serde_json::json!({"name": "lo6", "record_url": "http://[::1]:6379/"}),
        serde_json::json!({"name": "lh", "record_url": "http://localhost:5432/"}),
    ] {
        let r = client
            .post(srv.http("/v1/callback-templates"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    }
    // A page number past any catalogue is a client error, not an internal one.
    let r = client
        .get(srv.http("/v1/recordings?page=18446744073709551615"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_may_call_the_api_from_a_browser() {
    let srv = TestServer::start(
        r#"
        [api]
        cors_origins = ["https://admin.example"]
        "#,
    )
    .await;
    let client = reqwest::Client::new();
    let r = client
        .request(reqwest::Method::OPTIONS, srv.http("/v1/recordings"))
        .header("origin", "https://admin.example")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    let r = client
        .get(srv.http("/v1/recordings"))
        .header("origin", "https://other.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// This machine's address on its default route, if it has one (no packet is sent).
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_api_key_only_this_machine_may_change_anything() {
    let Some(lan) = lan_address() else {
        eprintln!("SKIPPED: this machine has no non-loopback address to call from");
        return;
    };
    let srv = TestServer::start_with("http_listen = \"0.0.0.0:0\"", "", false).await;
    let port = srv.http("").rsplit(':').next().unwrap().to_owned();
    let from_lan = format!("http://{lan}:{port}");
    let from_here = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let r = client
        .delete(format!(
            "{from_lan}/v1/recordings/1250000000_00000000000000000000000000000000"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("[api] key"));
    let r = client
        .post(format!("{from_lan}/v1/record-templates"))
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Reads are open; the same delete from this machine reaches the handler (404: no such file).
    let r = client
        .get(format!("{from_lan}/v1/recordings"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .delete(format!(
            "{from_here}/v1/recordings/1250000000_00000000000000000000000000000000"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // And `/` leads a newcomer to the console.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{from_here}/"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/console");
}

/// The issue's EMFILE attack with the real binary under `prlimit --nofile=256`: idle HTTP
/// connections far beyond the descriptor limit. The caps fitted to the limit refuse the
/// excess, so a push during the flood is recorded, catalogued and announced, and one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_beyond_the_descriptor_limit_costs_no_recording() {
    use crate::common::{Pace, publish, spawn_with};
    // Idle connections are not timed out here: only the caps can keep the descriptors.
    let prepared = livetape_testkit::Scenario::new()
        .server("http_idle_timeout_s = 3600")
        .prepare()
        .await;
    let mut receiver = prepared.receiver;
    let cfg = prepared.dir.path().join("livetape.toml");
    std::fs::write(&cfg, &prepared.toml).unwrap();
    let server = spawn_with(&cfg, None, Some(256)).expect("server started");
    let mut flood = Vec::new();
    for _ in 0..400 {
        match TcpStream::connect(server.http).await {
            Ok(s) => flood.push(s),
            Err(_) => break, // our own side's limit: enough
        }
    }
    assert!(
        flood.len() >= 300,
        "only {} connections opened",
        flood.len()
    );
    for stream in ["during", "after"] {
        if stream == "after" {
            flood.clear();
        }
        assert!(publish(server.rtmp, "live", stream, &fixture(CLIP_10S), Pace::Fast).await);
        let ev = loop {
            let d = receiver.next_of(100).await.body;
            if d["stream_id"] == stream {
                break d;
            }
        };
        assert_signed(&ev);
        assert!(ev["file_size"].as_u64().unwrap() > 100_000, "{ev}");
    }
}

/// A push whose only media no format but FLV can hold (MP3 audio): the formats that refuse it
/// report 332 record_start_failed and leave nothing behind in the spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_of_unsupported_media_leaves_no_spool_behind() {
    let mut srv = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv", "mp4", "hls", "aac"]
        "#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("mp3.flv");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=3",
        ])
        .args(["-c:a", "libmp3lame", "-f", "flv"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(srv.publish("live", "mp3", &clip).await);
    let flv = srv.receiver.next_of(100).await.body;
    assert_eq!(flv["file_format"], "flv");
    let spool = srv.data_path("spool");
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    loop {
        let left: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left in the spool: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A publisher's `txSecret` goes to the callback receiver (as Tencent's callbacks carry it),
/// never into an API answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_secret_is_in_callbacks_only() {
    let mut srv = TestServer::start("").await;
    let secret = "0123456789abcdef0123456789abcdef";
    assert!(
        srv.publish(
            "live",
            &format!("sec?txSecret={secret}&txTime=7FFFFFFF&room=9"),
            &fixture(CLIP_10S)
        )
        .await
    );
    let ev = srv.receiver.next_of(100).await.body;
    assert!(
        ev["stream_param"].as_str().unwrap().contains(secret),
        "{ev}"
    );
    for path in [
        "/v1/recordings?stream_id=sec",
        "/v1/deliveries?stream=sec&page_size=100",
    ] {
        let text = reqwest::get(srv.http(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(secret), "{path} shows the secret: {text}");
        assert!(text.contains("room=9"), "{path}: {text}");
    }
}

/// Templates and rules are read whole by every push: each kind holds at most 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_and_rule_counts_are_capped() {
    // The harness's "cb" template and its rule, plus 999 of each from the config file.
    let mut extra = String::new();
    for i in 0..999 {
        extra.push_str(&format!(
            "[[callback_template]]\nname = \"t{i}\"\nrecord_url = \"http://hooks.example/{i}\"\n\
             [[callback_rule]]\napp = \"app{i}\"\ntemplate = \"t{i}\"\n"
        ));
    }
    let srv = TestServer::start(&extra).await;
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: serde_json::Value| {
        let r = client.post(srv.http(path)).json(&body).send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = post(
        "/v1/callback-templates",
        serde_json::json!({"name": "one-more", "record_url": "http://hooks.example/x"}),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("1000"), "{text}");
    let (status, text) = post(
        "/v1/callback-rules",
        serde_json::json!({"app": "more", "template": "t1"}),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    // Changing one that exists is fine; after a delete there is room again.
    let r = client
        .put(srv.http("/v1/callback-templates/t5"))
        .json(&serde_json::json!({"record_url": "http://hooks.example/5b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rules: Value = client
        .get(srv.http("/v1/callback-rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = rules["rules"][10]["id"].as_i64().unwrap();
    let r = client
        .delete(srv.http(&format!("/v1/callback-rules/{id}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (status, text) = post(
        "/v1/callback-rules",
        serde_json::json!({"app": "more", "template": "t1"}),
    )
    .await;
    assert_eq!(status, 201, "{text}");
}

/// Connections that never publish share one memory budget: past it, new ones are closed and
/// counted, while a real publisher still gets in once they are gone... and the ones already
/// within the budget stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_rtmp_connections_share_one_memory_budget() {
    // Each handshaking connection holds at least its 16 KiB read buffer: 4 fit in 70 000 bytes.
    let mut srv = TestServer::start_with("rtmp_pre_publish_budget_bytes = 70000", "", true).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(srv.rtmp()).await.unwrap();
        s.write_all(&[3u8; 100]).await.unwrap(); // the start of C0C1
        held.push(s);
    }
    let mut closed = 0;
    for s in &mut held {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 4, "4 connections over the budget closed");
    assert_eq!(
        metric(
            &srv.http(""),
            "livetape_rtmp_publish_refused_total{reason=\"memory_budget\"}"
        )
        .await,
        4.0
    );
    drop(held);
    assert!(srv.publish("live", "after", &fixture(CLIP_10S)).await);
    assert_eq!(srv.receiver.next_of(100).await.body["stream_id"], "after");
}
