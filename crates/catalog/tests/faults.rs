//! The SQLite catalogue on a real file system that fails: a tmpfs filled to the last byte
//! (ENOSPC), then given back. Every write fails while it
//! lasts, and every write after it succeeds: a failed COMMIT must not leave a broken
//! connection in the pool (it once did: "attempted to call begin_with at non-zero
//! transaction depth" for every write until a restart).

use livetape_catalog::{Catalog, NewEvent, NewPush, Recording};
use livetape_testkit::Tmpfs;

/// Big bodies so that a write needs fresh pages in the WAL, which a full disk cannot give.
fn ev(event_id: &str) -> NewEvent {
    ev_padded(event_id, 256 * 1024)
}

fn ev_padded(event_id: &str, pad: usize) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        event_type: 100,
        url: "http://hook.example/cb".into(),
        body: format!(r#"{{"pad":"{}"}}"#, "x".repeat(pad)),
        sign_key: "k".into(),
        stream_id: "s1".into(),
        max_attempts: 3,
        retry_interval_ms: 60_000,
        created_at_ms: 1,
    }
}

fn push(sequence: &str) -> NewPush {
    NewPush {
        sequence: sequence.into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s1".into(),
        stream_param: String::new(),
        client_ip: "10.0.0.1".into(),
        node: "node-a".into(),
        started_at_ms: 1_000,
        width: 0,
        height: 0,
    }
}

fn rec(file_id: &str) -> Recording {
    Recording {
        file_id: file_id.into(),
        sequence: "42".into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s1".into(),
        format: "flv".into(),
        start_ms: 0,
        end_ms: 10_000,
        duration_ms: 10_000,
        size_bytes: 1,
        path: format!("live/s1/{file_id}.flv"),
        video_url: String::new(),
        stream_param: String::new(),
        video_codec: "h264".into(),
        width: 0,
        height: 0,
        media_start_ms: 0,
        created_at_ms: 0,
        expires_at_ms: None,
    }
}

/// Writes of every kind the hot path makes, `n` of each; how many failed.
async fn writes(cat: &Catalog, tag: &str, n: usize) -> usize {
    writes_padded(cat, tag, n, 256 * 1024).await
}

async fn writes_padded(cat: &Catalog, tag: &str, n: usize, pad: usize) -> usize {
    let mut failed = 0;
    for i in 0..n {
        let id = format!("{tag}-{i}");
        let r = [
            cat.insert_recording(&rec(&id), vec![ev_padded(&format!("100-{id}"), pad)])
                .await
                .err(),
            cat.begin_push(&push(&id), Some(ev_padded(&format!("1-{id}"), pad)))
                .await
                .err(),
            cat.end_push(&id, 2_000, 1, "", vec![ev_padded(&format!("0-{id}"), pad)])
                .await
                .err(),
        ];
        for e in r.iter().flatten() {
            eprintln!("{tag}: {e}");
        }
        failed += r.iter().flatten().count();
    }
    failed
}

#[tokio::test]
async fn a_full_disk_fails_writes_only_while_it_is_full() {
    let fs = Tmpfs::mount(64 << 20);
    let cat = Catalog::open(&fs.path().join("catalog.db")).await.unwrap();
    assert_eq!(writes(&cat, "before", 3).await, 0);
    fs.fill();
    let mut failed = writes(&cat, "full", 3).await;
    // Concurrent writes share a batch (a savepoint each when one fails), and a big one spills
    // SQLite's page cache into the WAL before COMMIT: the statement fails, SQLite rolls the
    // whole transaction back on its own, and the savepoint's rollback finds nothing to undo.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let cat = cat.clone();
        tasks.spawn(async move {
            let mut big = ev(&format!("big-{t}"));
            big.body = format!(r#"{{"pad":"{}"}}"#, "y".repeat(3 << 20));
            let a = cat.insert_events(vec![big]).await.is_err() as usize;
            a + writes(&cat, &format!("full{t}"), 2).await
        });
    }
    while let Some(n) = tasks.join_next().await {
        failed += n.unwrap();
    }
    assert!(
        failed > 0,
        "nothing failed on a full disk: the test proves nothing"
    );
    fs.free();
    // Concurrent too: batches share the writer's connection.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let cat = cat.clone();
        tasks.spawn(async move { writes_padded(&cat, &format!("after{t}"), 20, 1024).await });
    }
    while let Some(n) = tasks.join_next().await {
        assert_eq!(n.unwrap(), 0, "a write failed after the space came back");
    }
    for id in ["before-0", "after0-19", "after7-0"] {
        assert!(cat.get_recording(id).await.unwrap().is_some(), "{id}");
    }
    assert!(
        cat.get_push("after2-3")
            .await
            .unwrap()
            .unwrap()
            .ended_at_ms
            .is_some()
    );
    cat.close().await;
}
