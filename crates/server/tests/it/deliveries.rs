//! `/v1/deliveries` (the outbox over REST, with "retry now") and the console's asset serving,
//! against a real server, a real callback receiver and a real ffmpeg push.

use crate::common::{CLIP_10S, Receiver, TestServer, WAIT, fixture};
use serde_json::Value;
use std::time::Duration;

const API_KEY: &str = "deliveries-key";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(srv: &TestServer, path: &str) -> (u16, Value) {
    let r = client()
        .get(srv.http(path))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn retry(srv: &TestServer, id: i64) -> (u16, Value) {
    let r = client()
        .post(srv.http(&format!("/v1/deliveries/{id}/retry")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Polls until `done` holds (the outbox state has no event to await from outside).
async fn until(srv: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, v) = get(srv, path).await;
        assert_eq!(status, 200, "{path}: {v}");
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out on {path}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_callback_is_listed_and_retried_now() {
    // Every POST to record_url (event 100, and the 332 statuses that share the URL) is
    // refused once and, with no retries, dies.
    let mut receiver = Receiver::start().await;
    receiver.script("/record", &[500; 16]);
    let srv = TestServer::start_with(
        "",
        &format!(
            r#"
            [api]
            key = "{API_KEY}"
            [[callback_template]]
            name = "cb"
            key = "k"
            stream_begin_url = "{u}/begin"
            record_url = "{u}/record"
            retry_count = 0
            retry_interval_s = 3600
            [[callback_rule]]
            template = "cb"
            "#,
            u = receiver.url
        ),
        false,
    )
    .await;

    // The key guards the data, not the console's shell.
    let r = client()
        .get(srv.http("/v1/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(srv.http("/v1/deliveries/1/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert!(srv.publish("live", "s1", &fixture(CLIP_10S)).await);
    let refused = loop {
        let d = receiver.next().await;
        if d.body["event_type"] == 100 {
            break d;
        }
    };
    assert_eq!(refused.status, 500);

    let dead = until(&srv, "/v1/deliveries?status=dead&stream=s1", |v| {
        v["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["event_type"] == 100))
    })
    .await;
    let rows = dead["deliveries"].as_array().unwrap();
    assert!(rows.iter().all(|d| d["status"] == "dead"), "{dead}");
    let row = rows.iter().find(|d| d["event_type"] == 100).unwrap();
    assert_eq!(row["stream_id"], "s1");
    assert_eq!(row["event_id"], refused.event_id.as_str());
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["max_attempts"], 1);
    assert!(row["next_attempt_at_ms"].is_null(), "dead: no next attempt");
    assert!(row["last_error"].as_str().unwrap().contains("500"), "{row}");
    assert!(row.get("sign_key").is_none(), "keys never leave the server");
    assert_eq!(row["url"], format!("{}/record", receiver.url));
    let id = row["id"].as_i64().unwrap();

    // Event 1 (another URL) went through; the listing is newest first.
    let ok = until(&srv, "/v1/deliveries?status=delivered&stream=s1", |v| {
        v["total"] == 1
    })
    .await;
    assert_eq!(ok["deliveries"][0]["event_type"], 1);
    let (_, all) = get(&srv, "/v1/deliveries?stream=s1&page_size=100").await;
    let ids: Vec<i64> = all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(all["total"].as_u64().unwrap() as usize, ids.len());
    let (_, page2) = get(&srv, "/v1/deliveries?stream=s1&page_size=1&page=2").await;
    assert_eq!(page2["deliveries"][0]["id"], ids[1]);
    let (_, other) = get(&srv, "/v1/deliveries?stream=nobody").await;
    assert_eq!(other["total"], 0);

    receiver.clear_script("/record");
    // Retry now: pending, due now, the notifier woken (no retry interval of an hour waited).
    let (status, row) = retry(&srv, id).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["status"], "pending");
    let again = receiver.next_of(100).await;
    assert_eq!(again.event_id, refused.event_id, "the same event, resent");
    let done = until(&srv, &format!("/v1/deliveries/{id}"), |v| {
        v["status"] == "delivered"
    })
    .await;
    assert_eq!(done["attempts"], 2);
    assert!(done["last_error"].is_null());

    let (status, body) = retry(&srv, id).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = retry(&srv, 987_654).await;
    assert_eq!(status, 404);
    let (status, _) = get(&srv, "/v1/deliveries/987654").await;
    assert_eq!(status, 404);
    for bad in ["status=sent", "page=0", "page_size=101", "bogus=1"] {
        let (status, body) = get(&srv, &format!("/v1/deliveries?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    srv.running.shutdown().await;
}

#[tokio::test]
async fn console_assets_are_public_typed_and_cached() {
    let srv = TestServer::start(&format!("[api]\nkey = \"{API_KEY}\"\n")).await;
    for (path, mime, cache) in [
        ("/console", "text/html", "no-cache"),
        ("/console/", "text/html", "no-cache"),
        ("/console/console.js", "text/javascript", "no-cache"),
        ("/console/console.css", "text/css", "no-cache"),
        (
            "/console/vendor/hls.js-1.7.4/hls.light.min.js",
            "text/javascript",
            "immutable",
        ),
        (
            "/console/vendor/mpegts.js-1.8.2/mpegts.js",
            "text/javascript",
            "immutable",
        ),
        (
            "/console/vendor/mpegts.js-1.8.2/LICENSE",
            "text/plain",
            "immutable",
        ),
    ] {
        let r = client().get(srv.http(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let ct = h["content-type"].to_str().unwrap();
        assert!(ct.starts_with(mime), "{path}: {ct}");
        let cc = h["cache-control"].to_str().unwrap();
        assert!(cc.contains(cache), "{path}: {cc}");
        let etag = h["etag"].clone();
        assert!(!r.bytes().await.unwrap().is_empty());
        let r = client()
            .get(srv.http(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} revalidates");
    }
    let html = client().get(srv.http("/console")).send().await.unwrap();
    let csp = html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(html.text().await.unwrap().contains("/console/console.js"));
    for missing in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/vendor/",
    ] {
        let r = client().get(srv.http(missing)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    srv.running.shutdown().await;
}

/// A receiver down for longer than the whole retry schedule: every event of the push is
/// given up (dead, counted in `/metrics`), and once the receiver answers again the dead-letter
/// probe finds it and every given-up event is delivered, exactly once, in push order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_given_up_while_the_receiver_is_down_go_out_when_it_is_back() {
    let mut receiver = Receiver::start().await;
    receiver.script("/hook", &[503; 1000]);
    let srv = TestServer::start_with(
        "",
        &format!(
            r#"
            [api]
            key = "{API_KEY}"
            [callbacks]
            dead_probe_s = 1
            [[callback_template]]
            name = "cb"
            key = "k"
            stream_begin_url = "{u}/hook"
            stream_end_url = "{u}/hook"
            record_url = "{u}/hook"
            retry_count = 1
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            "#,
            u = receiver.url
        ),
        false,
    )
    .await;
    assert!(srv.publish("live", "down", &fixture(CLIP_10S)).await);
    // Events 1, 0, 100 and the recording's two statuses (332, also sent to record_url).
    let dead = until(&srv, "/v1/deliveries?status=dead&stream=down", |v| {
        v["total"] == 5
    })
    .await;
    let mut ids: Vec<String> = dead["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_type"] != 332)
        .map(|d| d["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    let metric = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("livetape_outbox_dead "))
            .map(|v| v.trim().parse::<f64>().unwrap())
    };
    let text = client()
        .get(srv.http("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text), Some(5.0), "{text}");

    // Back: nothing else is pushed, so only the probe can notice.
    receiver.clear_script("/hook");
    until(&srv, "/v1/deliveries?status=delivered&stream=down", |v| {
        v["total"] == 5
    })
    .await;
    let mut answered = Vec::new();
    while let Some(d) = receiver.try_next() {
        if d.status == 200 && d.body["event_type"] != 332 {
            answered.push((d.event_id, d.body["event_type"].as_i64().unwrap()));
        }
    }
    assert_eq!(
        answered.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [1, 0, 100],
        "each given-up event once, in push order: {answered:?}"
    );
    assert_eq!(
        answered
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    let text = client()
        .get(srv.http("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text), Some(0.0));
}
