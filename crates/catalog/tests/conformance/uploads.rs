//! Uploads to object storage: held events, the one-transaction success, retries, and the
//! object queued for removal when an uploaded recording is deleted.

use livetape_catalog::{NewEvent, Recording};

use crate::common::TestDb;

conformance!(
    upload_holds_events_until_done,
    local_recordings_queue_no_object,
    a_kept_local_copy_is_removed_by_its_own_node_only
);

fn rec(file_id: &str) -> Recording {
    Recording {
        file_id: file_id.into(),
        sequence: "42".into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s1".into(),
        format: "mp4".into(),
        start_ms: 1_000,
        end_ms: 11_000,
        duration_ms: 10_000,
        size_bytes: 5_000_000_000,
        path: format!("records/live/s1/{file_id}.mp4"),
        video_url: format!("http://vod.example/vod/{file_id}/f0.mp4"),
        stream_param: String::new(),
        video_codec: "h264".into(),
        width: 640,
        height: 360,
        media_start_ms: 0,
        created_at_ms: 11_500,
        expires_at_ms: Some(99_000),
    }
}

fn ev(event_id: &str) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        event_type: 100,
        url: "http://hook.example/cb".into(),
        body: "{}".into(),
        sign_key: "k".into(),
        stream_id: "s1".into(),
        max_attempts: 3,
        retry_interval_ms: 1_000,
        created_at_ms: 11_500,
    }
}

async fn upload_holds_events_until_done(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_upload(
        &rec("f1"),
        "pre/records/f1.mp4",
        "node",
        vec![ev("e1")],
        12_000,
    )
    .await
    .unwrap();
    // Not catalogued, and its event 100 is not deliverable.
    assert!(cat.get_recording("f1").await.unwrap().is_none());
    assert!(cat.due_events(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(cat.outbox_depth().await.unwrap(), 0);
    assert!(cat.upload_pending("f1").await.unwrap());
    assert_eq!(cat.pending_uploads_count().await.unwrap(), 1);
    assert_eq!(cat.next_upload_at("node").await.unwrap(), Some(12_000));
    // Only the node holding the file uploads it.
    assert_eq!(cat.next_upload_at("other").await.unwrap(), None);
    assert!(
        cat.due_uploads("other", 12_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        cat.due_uploads("node", 11_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = cat.due_uploads("node", 12_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].recording, rec("f1"));
    assert_eq!(due[0].object_key, "pre/records/f1.mp4");
    assert_eq!((due[0].attempts, due[0].node.as_str()), (0, "node"));

    assert!(cat.upload_failed("f1", 20_000, "refused").await.unwrap());
    assert!(
        cat.due_uploads("node", 19_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = cat.due_uploads("node", 20_000, 10).await.unwrap();
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].last_error.as_deref(), Some("refused"));

    assert!(
        cat.upload_done("f1", Some("f1:local"), 21_000)
            .await
            .unwrap()
    );
    // Done once only.
    assert!(
        !cat.upload_done("f1", Some("f1:local"), 21_000)
            .await
            .unwrap()
    );
    assert_eq!(cat.get_recording("f1").await.unwrap(), Some(rec("f1")));
    assert_eq!(
        cat.object_key("f1").await.unwrap().as_deref(),
        Some("pre/records/f1.mp4")
    );
    assert!(!cat.upload_pending("f1").await.unwrap());
    assert_eq!(cat.next_upload_at("node").await.unwrap(), None);
    let due = cat.due_events(21_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event_id, "e1");
    assert_eq!(due[0].next_attempt_at_ms, 21_000);
    // The local copy is queued for deletion, under its own garbage id, for the node that
    // holds it only.
    assert_eq!(
        cat.garbage("node").await.unwrap(),
        vec![("f1:local".to_owned(), rec("f1").path)]
    );
    assert!(cat.garbage("other").await.unwrap().is_empty());
    assert_eq!(cat.garbage_of("f1:local", "other").await.unwrap(), None);

    // Deleting the recording queues its object.
    assert!(
        cat.tombstone_recording("f1", 30_000)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        cat.object_garbage(10).await.unwrap(),
        vec![("f1".to_owned(), "pre/records/f1.mp4".to_owned())]
    );
    assert!(cat.forget_object_garbage("f1").await.unwrap());
    assert!(cat.object_garbage(10).await.unwrap().is_empty());
}

/// `[storage] keep_local`: the copy stays on the uploading node's disk, and when the recording
/// is deleted (through any node) only that node is asked to remove it.
async fn a_kept_local_copy_is_removed_by_its_own_node_only(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_upload(&rec("f3"), "pre/f3.mp4", "node", vec![], 1)
        .await
        .unwrap();
    assert!(cat.upload_done("f3", None, 2).await.unwrap());
    assert!(cat.garbage("node").await.unwrap().is_empty(), "kept");
    assert!(cat.tombstone_recording("f3", 3).await.unwrap().is_some());
    assert!(cat.garbage("other").await.unwrap().is_empty());
    assert_eq!(cat.garbage_of("f3", "other").await.unwrap(), None);
    assert_eq!(
        cat.garbage("node").await.unwrap(),
        vec![("f3".to_owned(), rec("f3").path)]
    );
    assert_eq!(
        cat.garbage_of("f3", "node").await.unwrap(),
        Some(rec("f3").path)
    );
}

async fn local_recordings_queue_no_object(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_recording(&rec("f2"), vec![]).await.unwrap();
    assert_eq!(cat.object_key("f2").await.unwrap(), None);
    assert!(cat.tombstone_recording("f2", 1).await.unwrap().is_some());
    assert!(cat.object_garbage(10).await.unwrap().is_empty());
}
