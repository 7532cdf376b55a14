use livetape_catalog::{
    Catalog, MAX_LIST_LIMIT, NewEvent, NewPush, OutboxState, Recording, RecordingQuery, SortOrder,
};
use std::path::Path;

fn ev(event_id: &str, event_type: i32, created_at_ms: i64) -> NewEvent {
    ev_on("s1", event_id, event_type, created_at_ms)
}

fn ev_on(stream_id: &str, event_id: &str, event_type: i32, created_at_ms: i64) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        event_type,
        url: "http://hook.example/cb".into(),
        body: format!(r#"{{"event_type":{event_type}}}"#),
        sign_key: "k".into(),
        stream_id: stream_id.into(),
        max_attempts: 3,
        retry_interval_ms: 60_000,
        created_at_ms,
    }
}

fn push(sequence: &str) -> NewPush {
    NewPush {
        sequence: sequence.into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s1".into(),
        stream_param: "a=b".into(),
        client_ip: "10.0.0.1".into(),
        node: "node-a".into(),
        started_at_ms: 1_000,
        width: 1280,
        height: 720,
    }
}

fn rec(file_id: &str, stream_id: &str, start_ms: i64) -> Recording {
    Recording {
        file_id: file_id.into(),
        sequence: "42".into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: stream_id.into(),
        format: "flv".into(),
        start_ms,
        end_ms: start_ms + 10_000,
        duration_ms: 10_000,
        size_bytes: 5_000_000_000, // > u32::MAX: the column must be 64-bit
        path: format!("live/{stream_id}/{file_id}.flv"),
        video_url: format!("http://vod.example/{file_id}.flv"),
        stream_param: "a=b".into(),
        video_codec: "h264".into(),
        width: 640,
        height: 360,
        media_start_ms: 33,
        created_at_ms: start_ms + 10_500,
        expires_at_ms: None,
    }
}

use crate::common::TestDb;

conformance!(
    push_session_round_trip_with_events,
    statuses_go_in_before_the_end_and_even_after_it,
    recording_round_trip_and_delete,
    tombstone_moves_the_row_to_garbage,
    tombstone_is_one_transaction,
    expired_oldest_and_total_bytes,
    recording_and_its_event_commit_atomically,
    list_recordings_filters_sorts_and_pages,
    list_limit_is_clamped,
    outbox_lifecycle,
    pending_event_holds_back_later_events_of_its_stream,
    pending_events_survive_reopen,
);

async fn open(dir: &Path) -> Catalog {
    Catalog::open(&dir.join("catalog.db")).await.expect("open")
}

/// The recording's last status events (332) are committed with event 0 and ahead of it (so
/// they are delivered first); a second end of the same push adds no event 0, but its status
/// events still go in.
async fn statuses_go_in_before_the_end_and_even_after_it(db: &TestDb) {
    let cat = db.open().await;
    cat.begin_push(&push("7"), None).await.unwrap();
    // The first end closes the session; the second finds it closed.
    for (at, tag, closes) in [(2_000, "", true), (3_000, "b", false)] {
        let ended = cat
            .end_push_after(
                "7",
                at,
                1,
                "normal",
                vec![ev(&format!("st-7{tag}"), 332, at)],
                vec![ev(&format!("end-7{tag}"), 0, at)],
            )
            .await
            .unwrap();
        assert_eq!(ended, closes, "end at {at}");
    }
    let mut queued: Vec<String> = cat
        .list_outbox(Some(OutboxState::Pending), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    queued.reverse();
    assert_eq!(queued, ["st-7", "end-7", "st-7b"]);
}

async fn push_session_round_trip_with_events(db: &TestDb) {
    let cat = db.open().await;
    cat.begin_push(&push("42"), Some(ev("push-42", 1, 1_000)))
        .await
        .unwrap();
    let s = cat.get_push("42").await.unwrap().expect("session stored");
    assert_eq!(s.appname, "live");
    assert_eq!((s.width, s.height), (1280, 720));
    assert_eq!(s.ended_at_ms, None);
    assert_eq!(s.errcode, None);

    let ended = cat
        .end_push("42", 9_000, 1, "normal", vec![ev("end-42", 0, 9_000)])
        .await
        .unwrap();
    assert!(ended);
    let s = cat.get_push("42").await.unwrap().unwrap();
    assert_eq!(s.ended_at_ms, Some(9_000));
    assert_eq!(s.errcode, Some(1));
    assert_eq!(s.errmsg.as_deref(), Some("normal"));

    let mut queued: Vec<i32> = cat
        .list_outbox(Some(OutboxState::Pending), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    queued.reverse();
    assert_eq!(queued, [1, 0]);
    // Same stream: the stop event waits until the start event is settled.
    let due: Vec<i32> = cat
        .due_events(i64::MAX, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(due, [1]);

    // Unknown session: reported, but the stop event is still queued.
    let ended = cat
        .end_push("nope", 9_500, 1, "", vec![ev("end-nope", 0, 9_500)])
        .await
        .unwrap();
    assert!(!ended);
    assert_eq!(cat.outbox_depth().await.unwrap(), 3);
    assert!(cat.get_push("nope").await.unwrap().is_none());

    // A duplicate sequence rolls back its event too.
    let err = cat
        .begin_push(&push("42"), Some(ev("push-42-again", 1, 1_000)))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("sequence=42"), "{err}");
    assert_eq!(cat.outbox_depth().await.unwrap(), 3);
}

async fn recording_round_trip_and_delete(db: &TestDb) {
    let cat = db.open().await;
    let r = rec("f1", "s1", 10_000);
    cat.insert_recording(&r, vec![ev("rec-f1", 100, 20_500)])
        .await
        .unwrap();
    assert_eq!(cat.get_recording("f1").await.unwrap(), Some(r.clone()));
    assert_eq!(cat.get_recording("f2").await.unwrap(), None);
    let due = cat.due_events(20_500, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_type, 100);

    assert_eq!(cat.delete_recording("f1").await.unwrap(), Some(r));
    assert_eq!(cat.get_recording("f1").await.unwrap(), None);
    assert_eq!(cat.delete_recording("f1").await.unwrap(), None);
}

async fn tombstone_moves_the_row_to_garbage(db: &TestDb) {
    let cat = db.open().await;
    let mut r = rec("f1", "s1", 10_000);
    r.expires_at_ms = Some(99_000);
    cat.insert_recording(&r, vec![]).await.unwrap();
    // expires_at_ms round-trips.
    assert_eq!(cat.get_recording("f1").await.unwrap(), Some(r.clone()));
    assert!(cat.garbage("n").await.unwrap().is_empty());

    assert_eq!(
        cat.tombstone_recording("f1", 50_000).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(cat.get_recording("f1").await.unwrap(), None);
    let garbage = vec![("f1".to_owned(), r.path.clone())];
    assert_eq!(cat.garbage("n").await.unwrap(), garbage);
    // A second deleter gets nothing and queues nothing.
    assert_eq!(cat.tombstone_recording("f1", 50_001).await.unwrap(), None);
    assert_eq!(cat.garbage("n").await.unwrap(), garbage);

    // The garbage row is durable: a restart finds it.
    cat.close().await;
    let cat = db.open().await;
    assert_eq!(cat.garbage("n").await.unwrap(), garbage);
    assert!(cat.forget_garbage("f1").await.unwrap());
    assert!(!cat.forget_garbage("f1").await.unwrap());
    assert!(cat.garbage("n").await.unwrap().is_empty());
}

async fn tombstone_is_one_transaction(db: &TestDb) {
    let cat = db.open().await;
    let old = rec("f1", "s1", 0);
    cat.insert_recording(&old, vec![]).await.unwrap();
    cat.tombstone_recording("f1", 1).await.unwrap().unwrap();
    // A new row under the same id while the old file is still queued: its tombstone
    // fails on the garbage insert, after the row delete. The delete must roll back too.
    let mut new = rec("f1", "s1", 5);
    new.path = "live/s1/other.flv".into();
    cat.insert_recording(&new, vec![]).await.unwrap();
    let err = cat.tombstone_recording("f1", 2).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("file_id=f1"), "{err}");
    assert_eq!(cat.get_recording("f1").await.unwrap(), Some(new.clone()));
    assert_eq!(
        cat.garbage("n").await.unwrap(),
        [("f1".to_owned(), old.path.clone())]
    );
    // Once the old file is dealt with, the new row goes the normal way.
    cat.forget_garbage("f1").await.unwrap();
    assert_eq!(
        cat.tombstone_recording("f1", 3).await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(
        cat.garbage("n").await.unwrap(),
        [("f1".to_owned(), new.path)]
    );
}

async fn expired_oldest_and_total_bytes(db: &TestDb) {
    let cat = db.open().await;
    assert_eq!(cat.total_recording_bytes().await.unwrap(), 0);
    assert!(
        cat.expired_recordings(i64::MAX, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(cat.oldest_recordings(10).await.unwrap().is_empty());
    // (file_id, start, expires, size)
    let rows = [
        ("e1", 30, Some(500), 1),
        ("e2", 10, Some(300), 20),
        ("e3", 20, Some(300), 300),
        ("keep", 0, None, 4_000),
        ("later", 40, Some(900), 50_000),
    ];
    for (id, start, exp, size) in rows {
        let mut r = rec(id, "s1", start);
        r.expires_at_ms = exp;
        r.size_bytes = size;
        cat.insert_recording(&r, vec![]).await.unwrap();
    }
    assert_eq!(cat.total_recording_bytes().await.unwrap(), 54_321);

    // Inclusive bound, earliest expiry first (ties by file_id), NULL never expires.
    let at = |now, limit| {
        let cat = cat.clone();
        async move {
            ids(&cat.expired_recordings(now, limit).await.unwrap())
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(at(299, 10).await.is_empty());
    assert_eq!(at(300, 10).await, ["e2", "e3"]);
    assert_eq!(at(500, 10).await, ["e2", "e3", "e1"]);
    assert_eq!(at(500, 1).await, ["e2"]);
    assert_eq!(at(i64::MAX, 10).await, ["e2", "e3", "e1", "later"]);

    // Oldest by start time, expiry or not.
    assert_eq!(
        ids(&cat.oldest_recordings(3).await.unwrap()),
        ["keep", "e2", "e3"]
    );

    cat.tombstone_recording("later", 1).await.unwrap().unwrap();
    assert_eq!(cat.total_recording_bytes().await.unwrap(), 4_321);
    assert_eq!(at(i64::MAX, 10).await, ["e2", "e3", "e1"]);
    // An expiry set afterwards (ModifyMediaInfo): "keep" now expires first; None keeps it.
    assert!(cat.set_recording_expiry("keep", Some(100)).await.unwrap());
    assert_eq!(at(300, 10).await, ["keep", "e2", "e3"]);
    assert!(cat.set_recording_expiry("e2", None).await.unwrap());
    assert_eq!(at(300, 10).await, ["keep", "e3"]);
    assert!(!cat.set_recording_expiry("nothing", Some(1)).await.unwrap());
    // Sizes past u32 are summed in 64 bits.
    cat.insert_recording(&rec("big", "s1", 50), vec![])
        .await
        .unwrap();
    assert_eq!(
        cat.total_recording_bytes().await.unwrap(),
        5_000_000_000 + 4_321
    );
}

async fn recording_and_its_event_commit_atomically(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_events(vec![ev("taken", 100, 0)]).await.unwrap();

    // The event insert fails (duplicate event_id) after the row insert: the
    // row must be rolled back with it.
    let err = cat
        .insert_recording(&rec("f1", "s1", 0), vec![ev("taken", 100, 1)])
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("event_id=taken"), "{err}");
    assert_eq!(cat.get_recording("f1").await.unwrap(), None);
    assert_eq!(cat.outbox_depth().await.unwrap(), 1);

    // And the other way round: a duplicate file_id leaves no orphan event.
    cat.insert_recording(&rec("f2", "s1", 0), vec![ev("e2", 100, 1)])
        .await
        .unwrap();
    let err = cat
        .insert_recording(&rec("f2", "s1", 5), vec![ev("e3", 100, 1)])
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("file_id=f2"), "{err}");
    assert_eq!(cat.get_recording("f2").await.unwrap().unwrap().start_ms, 0);
    let ids: Vec<String> = cat
        .list_outbox(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, ["e2", "taken"]);
}

fn ids(rows: &[Recording]) -> Vec<&str> {
    rows.iter().map(|r| r.file_id.as_str()).collect()
}

async fn list_recordings_filters_sorts_and_pages(db: &TestDb) {
    let cat = db.open().await;
    // s1: a0..a5 at 0,10,..,50 (a2 and a3 share start 20 → file_id tie-break)
    let mut all = Vec::new();
    for (i, start) in [0, 10, 20, 20, 40, 50].into_iter().enumerate() {
        let mut r = rec(&format!("a{i}"), "s1", start);
        if i == 4 {
            r.format = "mp4".into();
        }
        all.push(r);
    }
    let mut other = rec("b0", "s2", 15);
    other.appname = "other".into();
    other.app = "other.example".into();
    all.push(other);
    for r in &all {
        cat.insert_recording(r, vec![]).await.unwrap();
    }

    let q = |f: fn(&mut RecordingQuery)| {
        let mut q = RecordingQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };

    let (n, rows) = cat.list_recordings(&q(|_| {})).await.unwrap();
    assert_eq!(n, 7);
    assert_eq!(ids(&rows), ["a0", "a1", "b0", "a2", "a3", "a4", "a5"]);

    let (n, rows) = cat
        .list_recordings(&q(|q| q.stream_id = Some("s1".into())))
        .await
        .unwrap();
    assert_eq!(n, 6);
    assert_eq!(ids(&rows), ["a0", "a1", "a2", "a3", "a4", "a5"]);

    // Paging, descending: total stays the full match count.
    let (n, rows) = cat
        .list_recordings(&q(|q| {
            q.stream_id = Some("s1".into());
            q.order = SortOrder::Desc;
            q.offset = 1;
            q.limit = 3;
        }))
        .await
        .unwrap();
    assert_eq!(n, 6);
    assert_eq!(ids(&rows), ["a4", "a3", "a2"]);

    // Offset past the end: empty page, same total.
    let (n, rows) = cat
        .list_recordings(&q(|q| {
            q.stream_id = Some("s1".into());
            q.offset = 6;
        }))
        .await
        .unwrap();
    assert_eq!((n, rows.len()), (6, 0));

    // Window is [from, to) on start_ms.
    let (n, rows) = cat
        .list_recordings(&q(|q| {
            q.stream_id = Some("s1".into());
            q.from_ms = Some(10);
            q.to_ms = Some(40);
        }))
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(ids(&rows), ["a1", "a2", "a3"]);

    let (n, rows) = cat
        .list_recordings(&q(|q| q.format = Some("mp4".into())))
        .await
        .unwrap();
    assert_eq!((n, ids(&rows)), (1, vec!["a4"]));

    let (n, rows) = cat
        .list_recordings(&q(|q| q.appname = Some("other".into())))
        .await
        .unwrap();
    assert_eq!((n, ids(&rows)), (1, vec!["b0"]));

    let (n, rows) = cat
        .list_recordings(&q(|q| {
            q.app = Some("example.com".into());
            q.appname = Some("live".into());
            q.stream_id = Some("s2".into());
        }))
        .await
        .unwrap();
    assert_eq!((n, rows.len()), (0, 0));

    // limit 0 is a count-only query.
    let (n, rows) = cat.list_recordings(&q(|q| q.limit = 0)).await.unwrap();
    assert_eq!((n, rows.len()), (7, 0));
}

async fn list_limit_is_clamped(db: &TestDb) {
    let cat = db.open().await;
    let n = MAX_LIST_LIMIT as usize + 5;
    // One transaction's worth of inserts would be nicer, but this stays fast
    // in memory.
    for i in 0..n {
        cat.insert_recording(&rec(&format!("f{i:05}"), "s", i as i64), vec![])
            .await
            .unwrap();
    }
    let (total, rows) = cat
        .list_recordings(&RecordingQuery {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, n as u64);
    assert_eq!(rows.len(), MAX_LIST_LIMIT as usize);
}

async fn outbox_lifecycle(db: &TestDb) {
    let cat = db.open().await;
    assert_eq!(cat.next_due_at().await.unwrap(), None);
    // One stream each: per-stream ordering has its own test.
    cat.insert_events(vec![
        ev_on("s1", "e1", 100, 100),
        ev_on("s2", "e2", 100, 200),
        ev_on("s3", "e3", 0, 300),
    ])
    .await
    .unwrap();
    assert_eq!(cat.outbox_depth().await.unwrap(), 3);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(100));
    assert_eq!(cat.outbox_pending_stats().await.unwrap(), (3, Some(100)));

    let due = cat.due_events(150, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let e1 = &due[0];
    assert_eq!(e1.event_id, "e1");
    assert_eq!(e1.attempts, 0);
    assert_eq!(e1.max_attempts, 3);
    assert_eq!(e1.retry_interval_ms, 60_000);
    assert_eq!(e1.next_attempt_at_ms, 100);
    assert_eq!(e1.state, OutboxState::Pending);
    assert_eq!(e1.body, r#"{"event_type":100}"#);

    let due = cat.due_events(1_000, 2).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["e1", "e2"]
    );
    let (id1, id2) = (due[0].id, due[1].id);
    assert!(id1 < id2);

    // e1 fails once and is rescheduled.
    assert!(
        cat.mark_failed(id1, 1, Some(500), "HTTP 502")
            .await
            .unwrap()
    );
    let due = cat.due_events(400, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["e2", "e3"]
    );
    let id3 = due[1].id;
    assert_eq!(cat.next_due_at().await.unwrap(), Some(200));

    // e2 delivered.
    assert!(cat.mark_delivered(id2, 410).await.unwrap());
    assert!(
        !cat.mark_delivered(id2, 420).await.unwrap(),
        "already delivered"
    );
    assert!(!cat.mark_failed(id2, 2, Some(1), "late").await.unwrap());

    // e3 given up.
    assert!(cat.mark_failed(id3, 3, None, "timeout").await.unwrap());
    assert!(!cat.mark_failed(id3, 4, Some(1), "again").await.unwrap());
    assert_eq!(cat.outbox_depth().await.unwrap(), 1);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(500));
    // e1 (created at 100) is the one left: e2 delivered, e3 dead.
    assert_eq!(cat.outbox_pending_stats().await.unwrap(), (1, Some(100)));

    let dead = cat.list_outbox(Some(OutboxState::Dead), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, "e3");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("timeout"));

    let delivered = cat
        .list_outbox(Some(OutboxState::Delivered), 10)
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].delivered_at_ms, Some(410));
    assert_eq!(delivered[0].attempts, 1);

    let pending = cat
        .list_outbox(Some(OutboxState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].next_attempt_at_ms, 500);
    assert_eq!(pending[0].last_error.as_deref(), Some("HTTP 502"));

    let all: Vec<String> = cat
        .list_outbox(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(all, ["e3", "e2", "e1"], "newest first");

    assert!(cat.due_events(499, 10).await.unwrap().is_empty());
    assert!(cat.mark_delivered(id1, 500).await.unwrap());
    assert_eq!(cat.next_due_at().await.unwrap(), None);
    assert_eq!(cat.outbox_depth().await.unwrap(), 0);
    assert_eq!(cat.outbox_pending_stats().await.unwrap(), (0, None));

    // Purge: only finished rows older than the cut-off go.
    cat.insert_events(vec![ev("e4", 100, 50)]).await.unwrap();
    assert_eq!(cat.purge_outbox(250).await.unwrap(), 2); // e1, e2
    let left: Vec<String> = cat
        .list_outbox(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(left, ["e4", "e3"]);
}

fn event_ids(rows: &[livetape_catalog::OutboxEvent]) -> Vec<&str> {
    rows.iter().map(|e| e.event_id.as_str()).collect()
}

/// Strict per-stream order: a pending row holds back every later row of its stream, whatever
/// its own next attempt time; delivered and dead rows hold back nothing. `next_due_at` and
/// `outbox_due` only count rows that could be sent.
async fn pending_event_holds_back_later_events_of_its_stream(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_events(vec![
        ev_on("a", "a1", 1, 100),
        ev_on("b", "b1", 1, 100),
        ev_on("a", "a2", 100, 110),
        ev_on("a", "a3", 0, 120),
        ev_on("b", "b2", 0, 130),
    ])
    .await
    .unwrap();
    let due = cat.due_events(1_000, 10).await.unwrap();
    assert_eq!(event_ids(&due), ["a1", "b1"], "only each stream's head");
    let (a1, b1) = (due[0].id, due[1].id);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(100));
    assert_eq!(cat.outbox_due(1_000).await.unwrap(), 2);
    assert_eq!(cat.outbox_due(99).await.unwrap(), 0);

    // a1 is refused and waits for its retry: a2 and a3 are due by time but held back.
    assert!(
        cat.mark_failed(a1, 1, Some(5_000), "HTTP 503")
            .await
            .unwrap()
    );
    assert_eq!(event_ids(&cat.due_events(1_000, 10).await.unwrap()), ["b1"]);
    assert_eq!(cat.outbox_due(1_000).await.unwrap(), 1);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(100), "b1");

    assert!(cat.mark_delivered(b1, 1_000).await.unwrap());
    let due = cat.due_events(1_000, 10).await.unwrap();
    assert_eq!(event_ids(&due), ["b2"]);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(130), "b2");
    assert!(cat.mark_delivered(due[0].id, 1_000).await.unwrap());

    // Only blocked rows are left: their past due times (110, 120) are not reported, or an
    // idle notifier would wake for nothing; the blocker's retry time is.
    assert!(cat.due_events(1_000, 10).await.unwrap().is_empty());
    assert_eq!(cat.outbox_due(1_000).await.unwrap(), 0);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(5_000));
    assert_eq!(event_ids(&cat.due_events(5_000, 10).await.unwrap()), ["a1"]);

    // a1 given up: a dead row blocks nothing, a2 is next.
    assert!(cat.mark_failed(a1, 3, None, "HTTP 503").await.unwrap());
    let due = cat.due_events(5_000, 10).await.unwrap();
    assert_eq!(event_ids(&due), ["a2"]);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(110));
    assert_eq!(cat.outbox_due(5_000).await.unwrap(), 1);

    // A new event of a settled stream is due at once; a3 still waits for a2.
    cat.insert_events(vec![ev_on("b", "b3", 100, 6_000)])
        .await
        .unwrap();
    assert_eq!(
        event_ids(&cat.due_events(6_000, 10).await.unwrap()),
        ["a2", "b3"]
    );
    assert!(cat.mark_delivered(due[0].id, 6_000).await.unwrap());
    assert_eq!(
        event_ids(&cat.due_events(6_000, 10).await.unwrap()),
        ["a3", "b3"]
    );
    // The limit counts due rows only, in id order.
    assert_eq!(event_ids(&cat.due_events(6_000, 1).await.unwrap()), ["a3"]);
}

async fn pending_events_survive_reopen(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_recording(&rec("f1", "s1", 0), vec![ev("rec-f1", 100, 7)])
        .await
        .unwrap();
    cat.insert_events(vec![ev_on("s2", "x", 1, 8)])
        .await
        .unwrap();
    cat.close().await;

    let cat = db.open().await; // migrations are idempotent
    let due = cat.due_events(10, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["rec-f1", "x"]
    );
    assert!(cat.get_recording("f1").await.unwrap().is_some());
}

const CRASH_DIR_ENV: &str = "LIVETAPE_CATALOG_CRASH_DIR";

/// Child half of `committed_writes_survive_abort`: commits, then dies
/// without closing anything (no destructor, no checkpoint).
#[tokio::test]
#[ignore = "run as a subprocess by committed_writes_survive_abort"]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let cat = open(Path::new(&dir)).await;
    cat.insert_recording(&rec("crash", "s1", 0), vec![ev("crash-ev", 100, 1)])
        .await
        .unwrap();
    std::process::abort();
}

#[tokio::test]
async fn committed_writes_survive_abort() {
    let dir = tempfile::tempdir().unwrap();
    // Test names are paths below the test crate's root (`catalog::crash_child`).
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let child = format!("{module}::crash_child");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([child.as_str(), "--exact", "--ignored", "--test-threads=1"])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "child should have aborted");

    let cat = open(dir.path()).await;
    assert!(cat.get_recording("crash").await.unwrap().is_some());
    let due = cat.due_events(1, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, "crash-ev");
}
