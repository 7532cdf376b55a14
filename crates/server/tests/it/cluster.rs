//! Several livetape nodes on one PostgreSQL catalogue and one S3 bucket (real PostgreSQL, real
//! s3s-fs, real ffmpeg): a recording made on one node is listed and played through the other,
//! callbacks go out once, a stream is published on one node at a time, and a node killed with
//! `kill -9` has its callbacks and its push end taken over by a surviving node.

use crate::common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `[catalog]`, `[cluster]` and `[storage]` of one node (`storage` empty: local disk).
fn node_toml(pg: &PgDatabase, node: &str, storage: &str) -> String {
    format!(
        r#"
        [catalog]
        url = "{url}"
        [cluster]
        node_id = "{node}"
        lease_s = 3
        claim_s = 4
        {storage}
        "#,
        url = pg.url
    )
}

/// Every acknowledged delivery until `done` holds, keyed by event id (with how often each
/// was acknowledged).
async fn collect_until(
    rx: &mut Receiver,
    seen: &mut HashMap<String, (Value, u32)>,
    done: impl Fn(&HashMap<String, (Value, u32)>) -> bool,
) {
    while !done(seen) {
        let d = rx.next().await;
        if d.status == 200 {
            seen.entry(d.event_id).or_insert((d.body, 0)).1 += 1;
        }
    }
}

fn has_event(seen: &HashMap<String, (Value, u32)>, stream: &str, event_type: i64) -> bool {
    seen.values()
        .any(|(b, _)| b["stream_id"] == stream && b["event_type"] == event_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_made_on_one_node_plays_through_the_other_and_callbacks_go_out_once() {
    let pg = PgDatabase::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start_on(&tmp.path().join("bucket"), S3Server::free_port()).await;
    let storage = S3Server::toml(s3.port, "");
    let record = "[[record_template]]\nname = \"default\"\nformats = [\"mp4\"]\n";
    // The first node seeds the templates: every callback goes to `a`'s receiver.
    let mut a = TestServer::start(&format!("{}{record}", node_toml(&pg, "a", &storage))).await;
    let b = TestServer::start(&format!("{}{record}", node_toml(&pg, "b", &storage))).await;

    assert!(a.publish("live", "on-a", &fixture(CLIP_10S)).await);
    let mut seen = HashMap::new();
    collect_until(&mut a.receiver, &mut seen, |s| has_event(s, "on-a", 100)).await;
    let (ev, _) = seen
        .values()
        .find(|(b, _)| b["event_type"] == 100)
        .cloned()
        .unwrap();
    let file_id = ev["file_id"].as_str().unwrap();

    // Node b lists it and serves it from the bucket (it never had the file).
    let rec = b.recording(file_id).await;
    assert_eq!(rec["file_id"], file_id, "{rec}");
    let listed: Value = reqwest::get(b.http("/v1/recordings?stream_id=on-a"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    let via_b = b.download(&ev).await;
    assert_eq!(probe_counts(&via_b), (300, 470));
    let bytes = std::fs::read(&via_b).unwrap();
    let objects: Vec<_> = walk_files(&s3.root.join(S3_BUCKET));
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(std::fs::read(&objects[0]).unwrap(), bytes);

    // A push on b: its callbacks, too, reach the receiver. Every event of both pushes is
    // acknowledged exactly once although both nodes' notifiers poll the same outbox; b's
    // events arriving after a's are the barrier for any late duplicate of a's.
    assert!(b.publish("live", "on-b", &fixture(CLIP_10S)).await);
    collect_until(&mut a.receiver, &mut seen, |s| has_event(s, "on-b", 100)).await;
    for stream in ["on-a", "on-b"] {
        for event_type in [1, 0, 100] {
            assert!(
                has_event(&seen, stream, event_type),
                "{stream} {event_type}"
            );
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, (_, n))| *n > 1).collect();
    assert!(dups.is_empty(), "acknowledged more than once: {dups:?}");
    a.running.shutdown().await;
    b.running.shutdown().await;
    pg.drop_db().await;
}

/// `[storage] keep_local`: the recording node keeps its copy after the upload. Deleted
/// through the other node, the recording goes from the bucket at once and from the recording
/// node's disk at that node's next check (before, the copy leaked: the deleting node found no
/// such file on its own disk and forgot the deletion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_local_copy_deleted_through_another_node_is_removed_by_its_own() {
    let pg = PgDatabase::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start_on(&tmp.path().join("bucket"), S3Server::free_port()).await;
    let storage = S3Server::toml(s3.port, "keep_local = true\nretention_check_s = 1");
    let record = "[[record_template]]\nname = \"default\"\nformats = [\"flv\"]\n";
    let mut a = TestServer::start(&format!("{}{record}", node_toml(&pg, "a", &storage))).await;
    let b = TestServer::start(&format!("{}{record}", node_toml(&pg, "b", &storage))).await;
    assert!(a.publish("live", "kept", &fixture(CLIP_2S)).await);
    let file = a.receiver.next_of(100).await.body;
    let file_id = file["file_id"].as_str().unwrap();
    let local = walk_files(&a.data_path("records"));
    assert_eq!(local.len(), 1, "a keeps its copy: {local:?}");
    assert_eq!(walk_files(&s3.root.join(S3_BUCKET)).len(), 1);

    let r = reqwest::Client::new()
        .delete(b.http(&format!("/v1/recordings/{file_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        walk_files(&s3.root.join(S3_BUCKET)).is_empty(),
        "object deleted by b"
    );
    let deadline = Instant::now() + WAIT;
    while local[0].exists() {
        assert!(Instant::now() < deadline, "a's copy leaked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.running.shutdown().await;
    b.running.shutdown().await;
    pg.drop_db().await;
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_stream_is_refused_on_a_second_node_until_the_first_push_ends() {
    let pg = PgDatabase::create().await;
    let mut a = TestServer::start(&node_toml(&pg, "a", "")).await;
    let b = TestServer::start(&node_toml(&pg, "b", "")).await;
    let clip = fixture(CLIP_10S);
    let (rtmp_a, clip2) = (a.rtmp(), clip.clone());
    let first =
        tokio::spawn(async move { publish(rtmp_a, "live", "dup", &clip2, Pace::Realtime).await });
    a.receiver.next_of(1).await;
    // Live on a: b refuses it (ffmpeg fails at publish).
    assert!(!b.publish("live", "dup", &clip).await);
    // Another stream name is fine on b meanwhile.
    assert!(b.publish("live", "other", &clip).await);
    assert!(first.await.unwrap(), "the first push is not disturbed");
    loop {
        let d = a.receiver.next_of(0).await;
        if d.body["stream_id"] == "dup" {
            break;
        }
    }
    // Released at the end of the push: b takes it now.
    assert!(b.publish("live", "dup", &clip).await);
    a.running.shutdown().await;
    b.running.shutdown().await;
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_has_its_callbacks_and_its_push_taken_over() {
    let pg = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    // Node a's first attempt of event 1 never gets an answer: it is in flight when a dies.
    rx.script("/begin", &[HANG]);
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{data}"
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            stream_begin_url = "{u}/begin"
            stream_end_url = "{u}/end"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            {node}
            "#,
            data = dir.path().join("a").display(),
            u = rx.url,
            node = node_toml(&pg, "a", ""),
        ),
    )
    .unwrap();
    let mut a = spawn(&cfg, None);
    let clip = fixture(CLIP_10S);
    let (rtmp_a, clip2) = (a.rtmp, clip.clone());
    let push =
        tokio::spawn(async move { publish(rtmp_a, "live", "cam", &clip2, Pace::Realtime).await });
    let hung = rx.next().await;
    assert_eq!(
        (hung.status, &hung.body["event_type"]),
        (HANG, &Value::from(1))
    );
    a.kill(); // SIGKILL
    let killed_at = Instant::now();
    assert!(!push.await.unwrap(), "the publisher lost its server");

    // Node b (its own config's templates are ignored: the catalogue was seeded by a).
    let b = TestServer::start(&node_toml(&pg, "b", "")).await;
    // a's claim on event 1 expires (claim_s = 4) and b sends it: the same event, acknowledged.
    let d = rx.next().await;
    assert_eq!(d.status, 200);
    assert_eq!(d.event_id, hung.event_id, "the event a was sending");
    // a's stream lease expires (lease_s = 3) and b ends the push a left open: event 0, once.
    let end = rx.next_of(0).await;
    assert_eq!(end.body["stream_id"], "cam");
    assert_eq!(end.body["sequence"], hung.body["sequence"]);
    assert_eq!(end.body["errmsg"], "publishing node lost");
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "taken over within the lease and claim times"
    );
    // The stream is free: b accepts it.
    assert!(b.publish("live", "cam", &clip).await);
    let again = rx.next_of(1).await;
    assert_ne!(again.body["sequence"], hung.body["sequence"]);
    assert!(rx.try_next().is_none_or(|d| d.event_id != end.event_id));
    b.running.shutdown().await;
    pg.drop_db().await;
}
