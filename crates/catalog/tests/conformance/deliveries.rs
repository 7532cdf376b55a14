//! The console's view of the outbox: filtered paging and "retry now".
use livetape_catalog::{Catalog, DeliveryQuery, NewEvent, OutboxState};

use crate::common::TestDb;

conformance!(
    lists_newest_first_filtered_and_paged,
    retry_now_revives_dead_and_hurries_pending_but_not_delivered,
    a_receiver_that_answers_again_gets_its_dead_rows_back,
);

fn ev(stream_id: &str, event_id: &str, created_at_ms: i64) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        event_type: 100,
        url: "http://hook.example/cb".into(),
        body: "{}".into(),
        sign_key: "k".into(),
        stream_id: stream_id.into(),
        max_attempts: 2,
        retry_interval_ms: 60_000,
        created_at_ms,
    }
}

/// Three rows of stream a (one delivered, one dead, one pending), two of stream b (pending).
async fn seeded(db: &TestDb) -> (Catalog, Vec<i64>) {
    let cat = db.open().await;
    cat.insert_events(vec![
        ev("a", "a1", 1),
        ev("a", "a2", 2),
        ev("a", "a3", 3),
        ev("b", "b1", 4),
        ev("b", "b2", 5),
    ])
    .await
    .unwrap();
    let (_, all) = cat
        .list_deliveries(&DeliveryQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    ids.reverse();
    assert!(cat.mark_delivered(ids[0], 10).await.unwrap());
    assert!(cat.mark_failed(ids[1], 2, None, "HTTP 500").await.unwrap());
    (cat, ids)
}

async fn lists_newest_first_filtered_and_paged(db: &TestDb) {
    let (cat, ids) = seeded(db).await;
    let q = |state, stream: Option<&str>, offset, limit| DeliveryQuery {
        state,
        stream_id: stream.map(str::to_owned),
        offset,
        limit,
        ..Default::default()
    };
    let (total, rows) = cat.list_deliveries(&q(None, None, 0, 2)).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(
        rows.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["b2", "b1"]
    );
    let (total, rows) = cat.list_deliveries(&q(None, None, 4, 2)).await.unwrap();
    assert_eq!((total, rows.len()), (5, 1));
    assert_eq!(rows[0].id, ids[0]);

    let (total, rows) = cat
        .list_deliveries(&q(Some(OutboxState::Pending), None, 0, 10))
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert!(rows.iter().all(|e| e.state == OutboxState::Pending));

    let (total, rows) = cat
        .list_deliveries(&q(Some(OutboxState::Dead), Some("a"), 0, 10))
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(rows[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(rows[0].attempts, 2);

    let (total, rows) = cat
        .list_deliveries(&q(None, Some("nope"), 0, 10))
        .await
        .unwrap();
    assert_eq!((total, rows.len()), (0, 0));
}

async fn retry_now_revives_dead_and_hurries_pending_but_not_delivered(db: &TestDb) {
    let (cat, ids) = seeded(db).await;
    // Dead → pending, due now; the next failure gives up again (the notifier's policy).
    let row = cat.retry_delivery_now(ids[1], 1_000).await.unwrap();
    assert_eq!(row.state, OutboxState::Pending);
    assert_eq!(row.next_attempt_at_ms, 1_000);
    assert_eq!(row.attempts, 2, "attempt count is kept");
    let due = cat.due_events(1_000, 10).await.unwrap();
    assert!(due.iter().any(|e| e.id == ids[1]), "revived row is due");
    // It is older than a3, so a3 (same stream) waits behind it: order kept.
    assert!(!due.iter().any(|e| e.id == ids[2]));

    // A pending row scheduled later becomes due now.
    assert!(
        cat.mark_failed(ids[3], 1, Some(99_000), "timeout")
            .await
            .unwrap()
    );
    assert!(
        !cat.due_events(1_000, 10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == ids[3])
    );
    let row = cat.retry_delivery_now(ids[3], 1_000).await.unwrap();
    assert_eq!(row.next_attempt_at_ms, 1_000);
    assert!(
        cat.due_events(1_000, 10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == ids[3])
    );

    let e = cat.retry_delivery_now(ids[0], 1_000).await.unwrap_err();
    assert!(e.is_conflict(), "delivered row: {e}");
    assert_eq!(
        cat.get_delivery(ids[0]).await.unwrap().unwrap().state,
        OutboxState::Delivered
    );
    let e = cat.retry_delivery_now(12_345, 1_000).await.unwrap_err();
    assert!(e.is_not_found(), "unknown row: {e}");
    assert!(cat.get_delivery(12_345).await.unwrap().is_none());
}

async fn a_receiver_that_answers_again_gets_its_dead_rows_back(db: &TestDb) {
    let cat = db.open().await;
    let mut other = ev("c", "c1", 6);
    other.url = "http://other.example/cb".into();
    cat.insert_events(vec![ev("a", "a1", 1), ev("b", "b1", 2), other])
        .await
        .unwrap();
    let (_, all) = cat
        .list_deliveries(&DeliveryQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    ids.reverse();
    for id in &ids {
        assert!(cat.mark_failed(*id, 2, None, "refused").await.unwrap());
    }
    let dead = cat.dead_receivers().await.unwrap();
    assert_eq!(
        dead.iter()
            .map(|d| (d.url.as_str(), d.oldest_id, d.dead))
            .collect::<Vec<_>>(),
        [
            ("http://hook.example/cb", ids[0], 2),
            ("http://other.example/cb", ids[2], 1)
        ]
    );
    assert_eq!(
        cat.revive_dead("http://hook.example/cb", 500)
            .await
            .unwrap(),
        2
    );
    let due: Vec<i64> = cat
        .due_events(500, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, [ids[0], ids[1]], "the other receiver's row stays dead");
    assert_eq!(cat.dead_receivers().await.unwrap().len(), 1);
    assert_eq!(
        cat.revive_dead("http://hook.example/cb", 500)
            .await
            .unwrap(),
        0
    );
}
