//! The record loop end to end: real ffmpeg push → recorded files → catalogue → signed
//! callbacks → Live_Tape_GetFilelist / REST → HTTP playback.

use crate::common::*;
use serde_json::Value;
use std::time::Instant;

const FORMATS_BOTH: &str = r#"
[[record_template]]
name = "default"
formats = ["mp4", "flv"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_records_catalogues_notifies_and_plays() {
    let extra = format!("{FORMATS_BOTH}\n[api]\nkey = \"apikey\"\n");
    let mut s = TestServer::start(&extra).await;
    assert!(
        s.publish("live", "room1?foo=bar&x=1", &fixture(CLIP_10S))
            .await
    );
    let pushed_at = Instant::now();

    // Event 1, then 0 (same sequence), then one 100 per format.
    let begin = s.receiver.next_of(1).await.body;
    assert_signed(&begin);
    assert_eq!(begin["stream_id"], "room1");
    assert_eq!(begin["channel_id"], "room1");
    assert_eq!(begin["appname"], "live");
    assert_eq!(begin["stream_param"], "foo=bar&x=1");
    assert_eq!(begin["errcode"], 0);
    assert!(begin["appid"].is_i64());
    assert!(begin.get("push_duration").is_none());
    let end = s.receiver.next_of(0).await.body;
    assert_signed(&end);
    assert_eq!(end["sequence"], begin["sequence"]);
    assert!(end["sequence"].is_string());
    let pd: u64 = end["push_duration"]
        .as_str()
        .expect("push_duration is a string")
        .parse()
        .unwrap();
    assert!(pd < 60_000, "push_duration {pd} ms");
    assert_eq!(end["errcode"], 1, "deleteStream by the client");

    let mut files = Vec::new();
    for _ in 0..2 {
        let d = s.receiver.next_of(100).await;
        files.push(d.body);
    }
    println!(
        "stream end → both events 100 received in {:?}",
        pushed_at.elapsed()
    );
    files.sort_by_key(|f| f["file_format"].as_str().unwrap().to_owned());
    assert_eq!(files[0]["file_format"], "flv");
    assert_eq!(files[1]["file_format"], "mp4");
    for f in &files {
        assert_signed(f);
        for k in [
            "file_id",
            "record_file_id",
            "video_id",
            "record_temp_id",
            "file_format",
            "task_id",
            "stream_param",
            "video_url",
            "callback_ext",
            "app",
            "appname",
            "stream_id",
            "channel_id",
        ] {
            assert!(f[k].is_string(), "{k} is a string in {f}");
        }
        for k in [
            "start_time",
            "end_time",
            "start_time_usec",
            "end_time_usec",
            "duration",
            "file_size",
            "media_start_time",
            "record_bps",
            "appid",
            "event_type",
            "t",
        ] {
            assert!(f[k].is_i64() || f[k].is_u64(), "{k} is an integer in {f}");
        }
        assert_eq!(f["file_id"], f["record_file_id"]);
        assert_eq!(f["file_id"], f["video_id"]);
        assert_eq!(f["stream_param"], "foo=bar&x=1");
        assert!((9..=11).contains(&f["duration"].as_i64().unwrap()), "{f}");
        let ext: Value = serde_json::from_str(f["callback_ext"].as_str().unwrap()).unwrap();
        assert_eq!(ext["video_codec"], "h264");
        assert_eq!(ext["resolution"], "640x360");
        let url = f["video_url"].as_str().unwrap();
        let fid = f["file_id"].as_str().unwrap();
        assert_eq!(
            url,
            format!(
                "http://127.0.0.1:1/vod/{fid}/f0.{}",
                f["file_format"].as_str().unwrap()
            )
        );

        // The file itself: packet-exact and cleanly decodable.
        let client = reqwest::Client::new();
        let rec: Value = s.api_json(&format!("/v1/recordings/{fid}"), "apikey").await;
        assert_eq!(rec["size_bytes"], f["file_size"]);
        assert_eq!(rec["format"], f["file_format"]);
        let body = client.get(s.local_url(url)).send().await.unwrap();
        assert_eq!(body.status(), 200);
        let bytes = body.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, f["file_size"].as_u64().unwrap());
        let tmp = s
            .dir
            .path()
            .join(format!("download.{}", f["file_format"].as_str().unwrap()));
        std::fs::write(&tmp, &bytes).unwrap();
        assert_eq!(probe_counts(&tmp), (300, 470), "{}", f["file_format"]);
        assert_eq!(decode_errors(&tmp), "");
    }

    // Playback: Range, 416, ETag, CORS, Content-Type.
    let mp4_url = s.local_url(files[1]["video_url"].as_str().unwrap());
    let size = files[1]["file_size"].as_u64().unwrap();
    let client = reqwest::Client::new();
    let r = client
        .get(&mp4_url)
        .header("Range", "bytes=100-199")
        .header("Origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-199/{size}")
    );
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let r = client
        .get(&mp4_url)
        .header("Range", format!("bytes={}-", size + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = client
        .get(&mp4_url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let flv_url = s.local_url(files[0]["video_url"].as_str().unwrap());
    let r = client.head(&flv_url).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "video/x-flv");
    let wrong = mp4_url.replace("f0.mp4", "f0.flv");
    assert_eq!(client.get(&wrong).send().await.unwrap().status(), 404);

    // Live_Tape_GetFilelist (§2.2) with a valid, a wrong and an expired sign.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let sign = md5_hex(&format!("apikey{t}"));
    let q = |t: u64, sign: &str, iface: &str| {
        s.http(&format!(
            "/common_access?appid=1&interface={iface}&Param.s.channel_id=room1&Param.n.page_no=1&Param.n.page_size=20&t={t}&sign={sign}"
        ))
    };
    let v: Value = reqwest::get(q(t, &sign, "Live_Tape_GetFilelist"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ret"], 0, "{v}");
    assert_eq!(v["output"]["all_count"], 2);
    let list = v["output"]["file_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for e in list {
        assert!(e["vid"].is_string());
        assert_eq!(e["start_time"].as_str().unwrap().len(), 19);
        assert!(
            files
                .iter()
                .any(|f| f["file_id"] == e["file_id"] && f["video_url"] == e["record_file_url"]),
            "{e}"
        );
    }
    let v: Value = reqwest::get(q(
        t,
        "0123456789abcdef0123456789abcdef",
        "Live_Tape_GetFilelist",
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["ret"], 1, "{v}");
    let old = t - 3600;
    let v: Value = reqwest::get(q(
        old,
        &md5_hex(&format!("apikey{old}")),
        "Live_Tape_GetFilelist",
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["ret"], 1, "expired: {v}");
    let v: Value = reqwest::get(q(t, &sign, "Live_Tape_Nope"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ret"], 2, "{v}");
    // A China-time window around now lists both files; one a day earlier lists none.
    let cst = |unix: i64| livetape_tencent::cst::format_cst(unix).replace(' ', "%20");
    let now_s = t as i64 - 60;
    for (from, to, want) in [
        (now_s - 600, now_s + 1, 2),
        (now_s - 86_400, now_s - 86_000, 0),
    ] {
        let url = format!(
            "{}&Param.s.start_time={}&Param.s.end_time={}",
            q(t, &sign, "Live_Tape_GetFilelist"),
            cst(from),
            cst(to)
        );
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        // A window crossing midnight (China time) is refused per §2.2; skip that rare case.
        if v["ret"] == 3 {
            continue;
        }
        assert_eq!(v["output"]["all_count"], want, "{v}");
    }

    // POSTed as a form, as some clients do.
    let v: Value = client
        .post(s.http("/common_access"))
        .form(&[
            ("interface", "Live_Tape_GetFilelist"),
            ("Param.s.channel_id", "room1"),
            ("t", &t.to_string()),
            ("sign", &sign),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["output"]["all_count"], 2, "{v}");

    let h: Value = reqwest::get(s.http("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["live_streams"], 0);

    // REST: bearer token required, filters, delete.
    let r = client.get(s.http("/v1/recordings")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = s
        .api_json("/v1/recordings?stream_id=room1&format=mp4", "apikey")
        .await;
    assert_eq!(v["total"], 1);
    let rec = &v["recordings"][0];
    assert_eq!(rec["width"], 640);
    assert_eq!(rec["sequence"], begin["sequence"]);
    let fid = rec["file_id"].as_str().unwrap();
    let r = client
        .delete(s.http(&format!("/v1/recordings/{fid}")))
        .bearer_auth("apikey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(client.get(&mp4_url).send().await.unwrap().status(), 404);
    let r = client
        .get(s.http(&format!("/v1/recordings/{fid}")))
        .bearer_auth("apikey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(s.http("/v1/recordings?page_size=1000"))
        .bearer_auth("apikey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_at_interval_is_packet_exact_and_contiguous() {
    let mut s = TestServer::start(
        r#"
        [[record_template]]
        name = "default"
        formats = ["flv", "mp4"]
        interval_s = 30
        "#,
    )
    .await;
    assert!(publish(s.rtmp(), "live", "long", &fixture(CLIP_60S), Pace::Rate(12)).await);
    let mut by_format: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for _ in 0..4 {
        let f = s.receiver.next_of(100).await.body;
        by_format
            .entry(f["file_format"].as_str().unwrap().to_owned())
            .or_default()
            .push(f);
    }
    assert!(
        s.receiver
            .try_next()
            .is_none_or(|d| d.body["event_type"] != 100)
    );
    for (format, mut files) in by_format {
        assert_eq!(files.len(), 2, "{format}: 60 s at interval 30 s → 2 files");
        files.sort_by_key(|f| f["media_start_time"].as_i64().unwrap());
        let mut total = (0, 0);
        for f in &files {
            let rec = s.recording(f["file_id"].as_str().unwrap()).await;
            let bytes = reqwest::get(s.local_url(rec["video_url"].as_str().unwrap()))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let tmp = s
                .dir
                .path()
                .join(format!("{}.{format}", f["file_id"].as_str().unwrap()));
            std::fs::write(&tmp, &bytes).unwrap();
            let c = probe_counts(&tmp);
            assert_eq!(bytes.len() as u64, f["file_size"].as_u64().unwrap());
            total = (total.0 + c.0, total.1 + c.1);
            assert_eq!(decode_errors(&tmp), "", "{format}");
        }
        assert_eq!(total, (1800, 2814), "{format}: no frame lost or duplicated");
        // The split is at the first keyframe at or after 30 s (GOP 2 s → exactly 30 s).
        assert_eq!(
            files[1]["media_start_time"].as_i64().unwrap()
                - files[0]["media_start_time"].as_i64().unwrap(),
            30_000
        );
        assert_eq!(files[0]["duration"], 30);
        assert_eq!(files[1]["duration"], 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_starts_a_new_file_and_session() {
    let mut s = TestServer::start("").await;
    let clip = fixture(CLIP_10S);
    assert!(s.publish("live", "again", &clip).await);
    let a = s.receiver.next_of(100).await.body;
    assert!(s.publish("live", "again", &clip).await);
    let b = s.receiver.next_of(100).await.body;
    assert_ne!(a["file_id"], b["file_id"]);
    assert_ne!(a["task_id"], b["task_id"], "a new push session (sequence)");
    assert_eq!(a["file_format"], "mp4", "default template records MP4");
    let ra = s.recording(a["file_id"].as_str().unwrap()).await;
    let rb = s.recording(b["file_id"].as_str().unwrap()).await;
    assert_ne!(ra["sequence"], rb["sequence"]);
    assert_eq!(ra["stream_id"], rb["stream_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_auth_refuses_bad_and_expired_signatures() {
    let mut s = TestServer::start("[push_auth]\nkey = \"pushkey\"\nbackup_key = \"older\"\n").await;
    let clip = fixture(CLIP_10S);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let future = format!("{:X}", now + 300);
    let past = format!("{:X}", now - 300);
    let sign = |key: &str, tx: &str| md5_hex(&format!("{key}authed{tx}"));

    assert!(!s.publish("live", "authed", &clip).await, "no signature");
    let wrong = format!("authed?txSecret={}&txTime={future}", sign("nope", &future));
    assert!(!s.publish("live", &wrong, &clip).await, "wrong key");
    let expired = format!("authed?txSecret={}&txTime={past}", sign("pushkey", &past));
    assert!(!s.publish("live", &expired, &clip).await, "expired");
    // Nothing was recorded or announced for the refused pushes.
    let v: Value = reqwest::get(s.http("/v1/recordings"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 0);
    assert!(s.receiver.try_next().is_none());

    let good = format!("authed?txSecret={}&txTime={future}", sign("older", &future));
    assert!(s.publish("live", &good, &clip).await, "backup key accepted");
    let f = s.receiver.next_of(100).await.body;
    assert_eq!(
        f["stream_param"],
        format!("txSecret={}&txTime={future}", sign("older", &future))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_retried_until_acknowledged() {
    let mut s = TestServer::start("").await;
    // Event 1 is refused twice (500, 503) and then acknowledged.
    s.receiver.script("/begin", &[500, 503]);
    assert!(s.publish("live", "retry", &fixture(CLIP_10S)).await);
    let mut all = Vec::new();
    while ![0, 1, 100].iter().all(|t| {
        all.iter()
            .any(|d: &Delivery| d.status == 200 && d.body["event_type"] == *t)
    }) {
        all.push(s.receiver.next().await);
    }
    let begin: Vec<&Delivery> = all.iter().filter(|d| d.body["event_type"] == 1).collect();
    assert_eq!(
        begin.iter().map(|d| d.status).collect::<Vec<_>>(),
        [500, 503, 200]
    );
    for d in &begin {
        assert_signed(&d.body);
        assert_eq!(d.event_id, begin[0].event_id, "a stable id across retries");
    }
    assert!(!begin[0].event_id.is_empty());
    // Every other event was delivered exactly once (no spurious retries).
    let others: Vec<_> = all
        .iter()
        .filter(|d| d.body["event_type"] != 1 && d.body["event_type"] != 332)
        .collect();
    assert_eq!(others.len(), 2, "{others:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stream_names_stay_inside_the_data_dir() {
    let mut s = TestServer::start("").await;
    let clip = fixture(CLIP_10S);
    for name in ["../../escape", "a/b/../../c", "..", ".hidden"] {
        assert!(s.publish("live", name, &clip).await, "{name}");
        let f = s.receiver.next_of(100).await.body;
        assert_eq!(f["stream_id"], name);
        let rec = s.recording(f["file_id"].as_str().unwrap()).await;
        let bytes = reqwest::get(s.local_url(rec["video_url"].as_str().unwrap()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, f["file_size"].as_u64().unwrap());
    }
    // Every file under the temp root is inside data_dir/records or the catalogue.
    let root = s.dir.path().canonicalize().unwrap();
    let mut n = 0;
    for e in walk(&root) {
        let e = e.canonicalize().unwrap();
        assert!(e.starts_with(&root));
        if e.extension().is_some_and(|x| x == "mp4") {
            assert!(
                e.starts_with(root.join("records").join("live")),
                "{}",
                e.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 4);
    assert!(!root.parent().unwrap().join("escape").exists());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_is_refused_while_the_first_goes_on() {
    let mut s = TestServer::start("").await;
    let clip = fixture(CLIP_10S);
    let addr = s.rtmp();
    let first = tokio::spawn({
        let clip = clip.clone();
        async move { publish(addr, "live", "solo", &clip, Pace::Realtime).await }
    });
    s.receiver.next_of(1).await; // the first push is live
    let live: Value = reqwest::get(s.http("/v1/streams"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live["streams"][0]["stream"], "solo", "{live}");
    assert!(
        !s.publish("live", "solo", &clip).await,
        "second publisher refused"
    );
    assert!(first.await.unwrap(), "first publisher unaffected");
    let f = s.receiver.next_of(100).await.body;
    assert_eq!(probe_counts(&s.download(&f).await), (300, 470));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_publisher_is_dropped_and_what_it_sent_is_kept() {
    use tokio::io::AsyncWriteExt;
    let mut s = TestServer::start_with("idle_timeout_s = 1", "", true).await;
    // ffmpeg relays whatever arrives on its stdin; we send the first ~3 s of the clip and then
    // go silent without closing, like an encoder whose network froze.
    let clip = std::fs::read(fixture(CLIP_10S)).unwrap();
    let mut child = tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-probesize",
            "65536",
            "-analyzeduration",
            "0",
        ])
        .args(["-f", "flv", "-i", "pipe:0"])
        .args(["-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{}/live/frozen", s.rtmp()))
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&clip[..clip.len() / 3]).await.unwrap();
    stdin.flush().await.unwrap();
    let end = s.receiver.next_of(0).await.body;
    assert_eq!(end["errcode"], 20, "no data for idle_timeout_s: {end}");
    let f = s.receiver.next_of(100).await.body;
    assert!(f["file_size"].as_u64().unwrap() > 0);
    drop(stdin);
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_events_are_delivered_after_a_restart() {
    let mut s = TestServer::start("").await;
    s.receiver.script("/record", &[500; 1000]);
    assert!(s.publish("live", "restart", &fixture(CLIP_10S)).await);
    // The first attempt of event 100 is refused...
    let first = loop {
        let d = s.receiver.next().await;
        if d.body["event_type"] == 100 {
            break d;
        }
    };
    assert_eq!(first.status, 500);
    // ...the server goes away, and the receiver recovers while it is down.
    let mut s = s.restart().await;
    s.receiver.clear_script("/record");
    let d = s.receiver.next_of(100).await;
    assert_eq!(
        d.event_id, first.event_id,
        "the same event, from the durable outbox"
    );
    assert_eq!(d.body["file_id"], first.body["file_id"]);
    assert_signed(&d.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_status_events_frame_each_recording() {
    let mut s = TestServer::start(FORMATS_BOTH).await;
    assert!(s.publish("live", "status", &fixture(CLIP_10S)).await);
    let begin = s.receiver.next_of(1).await.body;
    let mut seen = Vec::new();
    let mut files = 0;
    while files < 2 || seen.len() < 4 {
        let d = s.receiver.next().await;
        match d.body["event_type"].as_i64() {
            Some(100) => files += 1,
            Some(332) => seen.push(d.body),
            _ => {}
        }
    }
    for b in &seen {
        assert_signed(b);
        assert_eq!(b["stream_id"], "status");
        assert_eq!(b["appname"], "live");
        assert!(b["domain"].is_string() && b.get("app").is_none());
        assert!(b["seq"].is_string() && b["session_id"].is_string());
        assert_eq!(b["session_id"], begin["sequence"]);
        assert!(b["event_time"].is_i64());
        let detail: Value = serde_json::from_str(b["record_detail"].as_str().unwrap()).unwrap();
        assert!(
            [1, 3].contains(&detail["file_format"].as_i64().unwrap()),
            "{detail}"
        );
        assert_eq!(detail["start_model"], 1);
    }
    let events = |fmt: i64| {
        let mut v: Vec<String> = seen
            .iter()
            .filter(|b| {
                let d: Value = serde_json::from_str(b["record_detail"].as_str().unwrap()).unwrap();
                d["file_format"] == fmt
            })
            .map(|b| b["record_event"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(events(1), ["record_ended", "record_start_succeeded"], "flv");
    assert_eq!(events(3), ["record_ended", "record_start_succeeded"], "mp4");
}
