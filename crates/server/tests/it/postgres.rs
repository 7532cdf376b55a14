//! The server on a PostgreSQL catalogue (`[catalog] url = "postgres://.."`): a real push is
//! recorded, catalogued with its callback, and listed by both listing APIs.

use crate::common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_lists_on_postgres() {
    let db = PgDatabase::create().await;
    let extra = format!("[api]\nkey = \"apikey\"\n[catalog]\nurl = \"{}\"\n", db.url);
    let mut s = TestServer::start(&extra).await;
    assert!(s.publish("live", "pgroom", &fixture(CLIP_10S)).await);
    let file = s.receiver.next_of(100).await.body;
    assert_signed(&file);
    assert_eq!(file["stream_id"], "pgroom");
    let file_id = file["file_id"].as_str().unwrap().to_owned();
    // Nothing went to SQLite: the catalogue is the PostgreSQL database.
    assert!(!s.data_path("catalog.db").exists());

    let v: Value = s
        .api_json("/v1/recordings?stream_id=pgroom", "apikey")
        .await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["recordings"][0]["file_id"], file_id.as_str());
    assert_eq!(v["recordings"][0]["width"], 640);

    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let sign = md5_hex(&format!("apikey{t}"));
    let v: Value = reqwest::get(s.http(&format!(
        "/common_access?appid=1&interface=Live_Tape_GetFilelist&Param.s.channel_id=pgroom\
         &Param.n.page_no=1&Param.n.page_size=20&t={t}&sign={sign}"
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["ret"], 0, "{v}");
    assert_eq!(v["output"]["all_count"], 1, "{v}");
    let list = v["output"]["file_list"].as_array().unwrap();
    assert_eq!(list[0]["file_id"], file_id.as_str());
    assert_eq!(list[0]["record_file_url"], file["video_url"]);
    // The file it names is served, whole.
    let bytes = reqwest::get(s.local_url(file["video_url"].as_str().unwrap()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, file["file_size"].as_u64().unwrap());
    let local = tempfile::tempdir().unwrap();
    let path = local.path().join("f.mp4");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(probe_counts(&path), (300, 470), "every frame recorded");
    s.running.shutdown().await;
    db.drop_db().await;
}

/// `[cluster]` and `[catalog]` of node `id` on `pg`.
fn node(pg: &PgCluster, id: &str) -> String {
    format!(
        "[cluster]\nnode_id = \"{id}\"\nlease_s = 3\nclaim_s = 4\n[catalog]\nurl = \"{}\"\n",
        pg.url
    )
}

/// PostgreSQL stopped for real (`pg_ctlcluster stop -m fast`) for longer than `lease_s` while
/// node a records a push, with node b on the same catalogue: `/healthz` stays 200, `/readyz`
/// says 503, the push goes on recording; b, asked for the same stream during the outage,
/// refuses it (it cannot take the stream's lease), so two nodes never record one stream; and
/// once the database is back neither node ends a's push as "publishing node lost" (a node
/// once did, for its own lease). The push's one event 0 is its real end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopped_longer_than_the_lease_ends_no_push_and_no_node_takes_it() {
    let pg = PgCluster::create();
    let mut a = TestServer::start(&node(&pg, "a")).await;
    let b = TestServer::start(&node(&pg, "b")).await;
    let (addr, clip) = (a.rtmp(), fixture(CLIP_10S));
    let push =
        tokio::spawn(async move { publish(addr, "live", "outage", &clip, Pace::Realtime).await });
    let begin = a.receiver.next_of(1).await.body;
    assert_eq!(begin["stream_id"], "outage");

    pg.stop();
    let stopped = std::time::Instant::now();
    let client = reqwest::Client::new();
    let r = client.get(a.http("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503, "readyz while the database is down");
    let h = client.get(a.http("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200, "healthz stays up: the push still records");
    let h: Value = h.json().await.unwrap();
    assert_eq!(h["catalogue"], "unreachable", "{h}");
    assert_eq!(h["live_streams"], 1, "{h}");
    // The same stream on the other node while nobody can check the lease: refused.
    assert!(
        !b.publish("live", "outage", &fixture(CLIP_2S)).await,
        "b recorded a stream live on a"
    );
    // Longer than lease_s, so every lease in the database has lapsed.
    tokio::time::sleep_until((stopped + std::time::Duration::from_millis(4_500)).into()).await;
    pg.start();

    assert!(push.await.unwrap(), "the publisher got through the outage");
    let end = a.receiver.next_of(0).await.body;
    assert_eq!(
        end["errcode"], 1,
        "the publisher's own end, not a lost node: {end}"
    );
    let duration: u64 = end["push_duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (9_000..13_000).contains(&duration),
        "push_duration {duration}"
    );
    let file = a.receiver.next_of(100).await.body;
    let path = a.download(&file).await;
    assert_eq!(probe_counts(&path), (300, 470), "every frame recorded");
    // No second event 0 (a late "publishing node lost") after the real one.
    while let Some(d) = a.receiver.try_next() {
        assert_ne!(d.body["event_type"], 0, "a second event 0: {}", d.body);
    }
    let listed: Value = reqwest::get(b.http("/v1/recordings?stream_id=outage"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["total"], 1,
        "one recording of the stream, a's: {listed}"
    );
    assert!(
        !b.data_path("records").join("live").exists(),
        "b recorded nothing"
    );
    let r = client.get(a.http("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    a.running.shutdown().await;
    b.running.shutdown().await;
}

/// PostgreSQL stopped (`pg_ctlcluster`) before a push ends and started 12 s after: the push's
/// end and its file are written once the database is back — retried, not dropped — with their
/// true facts: event 0 with the publisher's errcode and real duration, then event 100 for the
/// whole file. (Before, both were only logged as failed and waited for the next start, whose
/// recovery reported errcode 5 "server restart".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_ends_while_the_database_is_stopped_is_written_when_it_is_back() {
    let pg = PgCluster::create();
    let mut s = TestServer::start(&node(&pg, "a")).await;
    let (addr, clip) = (s.rtmp(), fixture(CLIP_10S));
    let push =
        tokio::spawn(async move { publish(addr, "live", "ending", &clip, Pace::Realtime).await });
    s.receiver.next_of(1).await;
    pg.stop();
    assert!(
        push.await.unwrap(),
        "the publisher finished during the outage"
    );
    // The end and the file happened while the database was away; it stays away longer than
    // the pool waits for a connection (5 s) twice over, so their first writes fail.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    pg.start();

    let (mut end, mut file) = (None, None);
    while end.is_none() || file.is_none() {
        let d = s.receiver.next().await;
        if d.status != 200 {
            continue;
        }
        match d.body["event_type"].as_i64() {
            Some(0) => end = Some(d.body),
            Some(100) => {
                assert!(end.is_some(), "event 100 before event 0");
                file = Some(d.body);
            }
            _ => {}
        }
    }
    let end = end.unwrap();
    assert_eq!(end["errcode"], 1, "the publisher's own end: {end}");
    let duration: u64 = end["push_duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (9_000..12_000).contains(&duration),
        "push_duration {duration}"
    );
    let path = s.download(&file.unwrap()).await;
    assert_eq!(probe_counts(&path), (300, 470), "every frame recorded");
    assert!(
        std::fs::read_dir(s.data_path("spool"))
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| e.file_type().unwrap().is_dir()),
        "no spool left behind"
    );
    s.running.shutdown().await;
}

/// The server killed (`kill -9`) while PostgreSQL is stopped and a push has just ended: the
/// push's end was journaled (`data/journal/`) when its write failed, so the next start writes
/// the true end — the publisher's errcode 1 and real duration — before its files' event 100,
/// instead of the "server restart" (errcode 5) a recovery would have to guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_database_is_stopped_keeps_the_true_push_end() {
    let pg = PgCluster::create();
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start().await;
    let cfg = binary_config(
        dir.path(),
        &rx.url,
        "",
        &format!(
            "[catalog]\nurl = \"{}\"\n[[record_template]]\nname = \"default\"\nformats = [\"flv\"]\n",
            pg.url
        ),
    );
    let mut server = spawn(&cfg, None);
    let (addr, clip) = (server.rtmp, fixture(CLIP_10S));
    let push =
        tokio::spawn(async move { publish(addr, "live", "journal", &clip, Pace::Realtime).await });
    assert_eq!(rx.next_of(1).await.body["stream_id"], "journal");
    pg.stop();
    assert!(
        push.await.unwrap(),
        "the publisher finished during the outage"
    );
    let journal = dir.path().join("data/journal");
    let deadline = std::time::Instant::now() + WAIT;
    // The push's end itself: status events (332) may be journaled first, in a file of their own.
    while !std::fs::read_dir(&journal).unwrap().any(|e| {
        let p = e.unwrap().path();
        p.extension().is_some_and(|x| x == "json")
            && std::fs::read_to_string(&p).is_ok_and(|t| t.contains("\"EndPush\""))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the push end was never journaled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.kill();
    pg.start();

    let _server = spawn(&cfg, None);
    let end = rx.next_of(0).await.body;
    assert_eq!(
        end["errcode"], 1,
        "the publisher's own end, not a restart: {end}"
    );
    let duration: u64 = end["push_duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (9_000..12_000).contains(&duration),
        "push_duration {duration}"
    );
    let file = rx.next_of(100).await.body;
    assert_eq!(file["stream_id"], "journal");
    assert!(
        std::fs::read_dir(&journal).unwrap().next().is_none(),
        "journal emptied once written"
    );
    // No second event 0 ("server restart") after the real one.
    while let Some(d) = rx.try_next() {
        assert_ne!(d.body["event_type"], 0, "a second event 0: {}", d.body);
    }
}
