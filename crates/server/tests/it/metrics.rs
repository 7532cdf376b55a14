//! `GET /metrics` against a real push: the exposition is parsed and its values checked
//! against what the push, the recordings, the callbacks and the HTTP requests really were.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// One sample line: `name{k="v",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A minimal parser of the text exposition (Prometheus 0.0.4 / OpenMetrics): comments and
/// blank lines skipped, label values unescaped (`\\`, `\"`, `\n`); panics on anything else.
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("a name");
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let mut key = String::new();
            loop {
                let (i, c) = chars.next().expect("unterminated labels");
                match c {
                    '}' => {
                        rest = &r[i + 1..];
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut val = String::new();
                        loop {
                            match chars.next().expect("unterminated value").1 {
                                '"' => break,
                                '\\' => match chars.next().expect("escape").1 {
                                    'n' => val.push('\n'),
                                    c => val.push(c),
                                },
                                c => val.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), val);
                    }
                    c => key.push(c),
                }
            }
        }
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

struct Scrape(Vec<Sample>);

impl Scrape {
    /// The value of the one series `name` with (at least) these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let hits: Vec<_> = self
            .0
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
        hits[0].value
    }
}

async fn scrape(s: &TestServer) -> (String, Scrape) {
    let r = reqwest::get(s.http("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    (ct, Scrape(parse(&text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_push_shows_in_the_metrics() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv", "mp4"]
        "#,
    )
    .await;
    let clip = fixture(CLIP_10S);
    let clip_len = std::fs::metadata(&clip).unwrap().len() as f64;
    // At 4× real time (2.5 s): long enough to see the push live with both files open.
    let (addr, c) = (s.rtmp(), clip.clone());
    let push = tokio::spawn(async move { publish(addr, "live", "m1", &c, Pace::Rate(4)).await });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, m) = scrape(&s).await;
        if m.get("livetape_live_streams", &[]) == 1.0
            && m.get("livetape_recordings_open", &[]) == 2.0
        {
            assert!(m.get("livetape_ingest_received_bytes_total", &[]) > 0.0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline && !push.is_finished(),
            "never saw the push live with two open files"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(push.await.unwrap());
    // Push begin and end and one file per format (event 332s come along; order aside).
    let (mut types, mut files) = (Vec::new(), Vec::new());
    while !(types.contains(&0) && types.contains(&1) && files.len() == 2) {
        let d = s.receiver.next().await;
        assert_eq!(d.status, 200);
        let t = d.body["event_type"].as_i64().unwrap();
        types.push(t);
        if t == 100 {
            files.push(d.body);
        }
    }
    files.sort_by_key(|f| f["file_format"].as_str().unwrap().to_owned());
    assert_eq!(files[0]["file_format"], "flv");
    assert_eq!(files[1]["file_format"], "mp4");

    // The lease, the last acknowledgements and the outbox rows settle just after the
    // receiver answered: poll until they have (no event marks it).
    let deadline = tokio::time::Instant::now() + WAIT;
    let m = loop {
        let (ct, m) = scrape(&s).await;
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        if m.get("livetape_live_streams", &[]) == 0.0
            && m.get("livetape_outbox_pending", &[]) == 0.0
            && m.get("livetape_callback_deliveries_total", &[("result", "ok")]) >= 4.0
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Every row is acknowledged now, so the receiver has seen every POST: one ok each.
    let mut received = types.len();
    while s.receiver.try_next().is_some() {
        received += 1;
    }
    assert_eq!(
        m.get("livetape_callback_deliveries_total", &[("result", "ok")]),
        received as f64
    );
    let bytes_in = m.get("livetape_ingest_received_bytes_total", &[]);
    // The FLV file in RTMP chunks: the same media, a little framing either way.
    assert!(
        bytes_in > 0.9 * clip_len && bytes_in < 1.5 * clip_len,
        "{bytes_in} vs {clip_len}"
    );
    assert_eq!(m.get("livetape_rtmp_connections_total", &[]), 1.0);
    assert_eq!(m.get("livetape_rtmp_publishes_total", &[]), 1.0);
    for f in ["flv", "mp4"] {
        assert_eq!(
            m.get("livetape_recordings_finished_total", &[("format", f)]),
            1.0
        );
        assert_eq!(
            m.get("livetape_recordings_failed_total", &[("format", f)]),
            0.0
        );
    }
    assert_eq!(
        m.get("livetape_recordings_finished_total", &[("format", "hls")]),
        0.0
    );
    assert_eq!(m.get("livetape_recordings_open", &[]), 0.0);
    // Spools hold the same media as the final files (FLV gets its index, MP4 its moov at
    // finalize): their bytes are within a few percent of the files'.
    let finals: f64 = files
        .iter()
        .map(|f| f["file_size"].as_u64().unwrap() as f64)
        .sum();
    let written = m.get("livetape_recording_written_bytes_total", &[]);
    assert!(
        written > 0.9 * finals && written < 1.1 * finals,
        "{written} vs {finals}"
    );
    assert_eq!(
        m.get(
            "livetape_callback_deliveries_total",
            &[("result", "failed")]
        ),
        0.0
    );
    assert_eq!(
        m.get("livetape_outbox_oldest_pending_age_seconds", &[]),
        0.0
    );
    assert_eq!(m.get("livetape_viewers", &[]), 0.0);

    // Playback: both files downloaded whole, bytes out = their sizes; then a 100-byte range.
    for f in &files {
        s.download(f).await;
    }
    let vod = s.local_url(files[0]["video_url"].as_str().unwrap());
    let r = reqwest::Client::new()
        .get(&vod)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let (_, m) = scrape(&s).await;
    assert_eq!(
        m.get("livetape_playback_sent_bytes_total", &[]),
        finals + 100.0
    );
    // download() read /v1/recordings/{file_id} twice and /vod three times (2 × 200, 1 × 206).
    let count = |route: &str| {
        m.get(
            "livetape_http_request_duration_seconds_count",
            &[("route", route), ("method", "GET"), ("status", "2xx")],
        )
    };
    assert_eq!(count("/v1/recordings/{file_id}"), 2.0);
    assert_eq!(count("/vod/{file_id}/{name}"), 3.0);
    // The settling scrapes (this one is observed after it is encoded).
    assert!(count("/metrics") >= 1.0);
    let inf = m.get(
        "livetape_http_request_duration_seconds_bucket",
        &[("route", "/vod/{file_id}/{name}"), ("le", "+Inf")],
    );
    assert_eq!(inf, 3.0);

    // A path matching no route is pooled, not a label value of its own.
    let r = reqwest::get(s.http("/no/such/thing")).await.unwrap();
    assert_eq!(r.status(), 404);
    let (_, m) = scrape(&s).await;
    assert_eq!(
        m.get(
            "livetape_http_request_duration_seconds_count",
            &[("route", "unmatched"), ("status", "4xx")]
        ),
        1.0
    );

    // OpenMetrics when asked for (Prometheus asks for it first).
    let r = reqwest::Client::new()
        .get(s.http("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(
        Scrape(parse(&text)).get("livetape_rtmp_publishes_total", &[]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_key_and_refused_publishes() {
    let s = TestServer::start(
        r#"
        [api]
        key = "secret"
        [metrics]
        require_key = true
        [push_auth]
        key = "pushkey"
        "#,
    )
    .await;
    let r = reqwest::get(s.http("/metrics")).await.unwrap();
    assert_eq!(r.status(), 401);
    // No push auth parameters: refused before anything is recorded.
    assert!(!s.publish("live", "nokey", &fixture(CLIP_10S)).await);
    let r = reqwest::Client::new()
        .get(s.http("/metrics"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = Scrape(parse(&r.text().await.unwrap()));
    assert_eq!(
        m.get("livetape_rtmp_publish_refused_total", &[("reason", "auth")]),
        1.0
    );
    assert_eq!(m.get("livetape_rtmp_publishes_total", &[]), 0.0);
    assert_eq!(m.get("livetape_rtmp_connections_total", &[]), 1.0);

    // Without require_key, /metrics stays open even when the API has a key.
    let open = TestServer::start("[api]\nkey = \"secret\"\n").await;
    let r = reqwest::get(open.http("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(open.http("/v1/streams")).await.unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn parser_reads_labels_escapes_and_infinities() {
    let s = parse(
        "# HELP x y\nfoo_total 3\nbar{a=\"1\",b=\"q\\\"uo\\\\te\\n\"} 2.5\nh_bucket{le=\"+Inf\"} 7\n",
    );
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].name.as_str(), s[0].value), ("foo_total", 3.0));
    assert_eq!(s[1].labels["b"], "q\"uo\\te\n");
    assert_eq!(s[1].labels["a"], "1");
    assert_eq!(s[2].labels["le"], "+Inf");
    assert_eq!(s[2].value, 7.0);
}
