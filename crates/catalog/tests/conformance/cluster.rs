//! Several nodes on one catalogue: outbox claims and stream leases, on both engines
//! (two `Catalog` handles on one database stand for two nodes).
use std::collections::HashSet;

use livetape_catalog::{Catalog, CatalogError, NewEvent, NewPush, OutboxEvent, RawSeed};

use crate::common::TestDb;
use crate::common::kinds::{ServerRecord, record, seed_template};

conformance!(
    concurrent_claims_never_share_an_event,
    an_expired_claim_is_taken_over,
    claims_keep_per_stream_order,
    next_due_at_waits_for_a_foreign_claim_to_expire,
    a_stream_lease_has_one_holder,
    leases_are_renewed_and_released_by_their_holder,
    dollar_placeholders_bind_by_number,
    nodes_starting_together_migrate_and_seed_once,
    a_restarting_node_sees_only_its_own_open_pushes,
);

const LEASE_MS: u64 = 30_000;

fn ev(stream_id: &str, event_id: &str, created_at_ms: i64) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        event_type: 100,
        url: "http://hook.example/cb".into(),
        body: "{}".into(),
        sign_key: "k".into(),
        stream_id: stream_id.into(),
        max_attempts: 3,
        retry_interval_ms: 1_000,
        created_at_ms,
    }
}

fn ids(rows: &[OutboxEvent]) -> Vec<&str> {
    rows.iter().map(|e| e.event_id.as_str()).collect()
}

/// Two nodes claim in a loop at the same time; every event goes to exactly one of them.
async fn concurrent_claims_never_share_an_event(db: &TestDb) {
    let (a, b) = (db.open().await, db.open().await);
    const STREAMS: usize = 120;
    a.insert_events(
        (0..STREAMS)
            .map(|i| ev(&format!("s{i}"), &format!("e{i}"), 10))
            .collect(),
    )
    .await
    .unwrap();
    let claimer = |cat: Catalog, node: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = cat.claim_due_events(node, 100, LEASE_MS, 7).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                assert!(
                    batch.iter().all(|e| e.id > 0) && batch.windows(2).all(|w| w[0].id < w[1].id),
                    "id order"
                );
                got.extend(batch.into_iter().map(|e| e.event_id));
            }
        })
    };
    let (ra, rb) = (claimer(a.clone(), "node-a"), claimer(b.clone(), "node-b"));
    let (got_a, got_b) = (ra.await.unwrap(), rb.await.unwrap());
    let set_a: HashSet<_> = got_a.iter().collect();
    let set_b: HashSet<_> = got_b.iter().collect();
    assert!(set_a.is_disjoint(&set_b), "an event was claimed twice");
    assert_eq!(
        got_a.len() + got_b.len(),
        STREAMS,
        "every event claimed once"
    );
    // While the claims last nobody gets anything more.
    assert!(
        a.claim_due_events("node-a", 101, LEASE_MS, 100)
            .await
            .unwrap()
            .is_empty()
    );
    a.close().await;
    b.close().await;
}

/// A node dies holding a claim: after the lease the other node claims the event; marking it
/// clears the claim.
async fn an_expired_claim_is_taken_over(db: &TestDb) {
    let (a, b) = (db.open().await, db.open().await);
    a.insert_events(vec![ev("s", "e1", 0)]).await.unwrap();
    let got = a.claim_due_events("node-a", 100, 1_000, 10).await.unwrap();
    assert_eq!(ids(&got), ["e1"]);
    // Not before the claim expires, not even by its own node.
    assert!(
        b.claim_due_events("node-b", 1_099, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        a.claim_due_events("node-a", 1_099, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // At expiry it is free again.
    let got = b
        .claim_due_events("node-b", 1_100, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["e1"]);
    let id = got[0].id;
    // A failure clears the claim and schedules the retry; the retry is anybody's.
    assert!(b.mark_failed(id, 1, Some(1_500), "HTTP 500").await.unwrap());
    assert!(
        a.claim_due_events("node-a", 1_499, 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let got = a
        .claim_due_events("node-a", 1_500, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["e1"], "a fresh claim right after a failure");
    assert!(a.mark_delivered(id, 1_600).await.unwrap());
    assert!(
        b.claim_due_events("node-b", 1_000_000, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.next_due_at().await.unwrap(), None);
    a.close().await;
    b.close().await;
}

/// A claimed event still holds back the later events of its stream, on every node, until it
/// is marked; events of other streams and recording-status events (332) are not held.
async fn claims_keep_per_stream_order(db: &TestDb) {
    let (a, b) = (db.open().await, db.open().await);
    let mut status = ev("s1", "s1-332", 4);
    status.event_type = 332;
    a.insert_events(vec![
        ev("s1", "s1-1", 1),
        ev("s1", "s1-2", 2),
        ev("s2", "s2-1", 3),
        status,
        ev("s1", "s1-3", 5),
    ])
    .await
    .unwrap();
    let got = a.claim_due_events("node-a", 10, LEASE_MS, 1).await.unwrap();
    assert_eq!(ids(&got), ["s1-1"]);
    // Node b may take s2's head but nothing more of s1 (the 332 is itself held back by s1-1,
    // which is pending; it only never holds others back).
    let got_b = b
        .claim_due_events("node-b", 10, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got_b), ["s2-1"]);
    assert!(a.mark_delivered(got[0].id, 11).await.unwrap());
    // Now s1-2 is the head; the 332 is not blocked by anything pending before it but s1-2.
    let got = b
        .claim_due_events("node-b", 12, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["s1-2"]);
    assert!(b.mark_failed(got[0].id, 1, Some(50), "503").await.unwrap());
    // s1-2 waits for its retry and still holds back s1-3 (and the 332) on every node.
    assert!(
        a.claim_due_events("node-a", 20, LEASE_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let got = a
        .claim_due_events("node-a", 50, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["s1-2"]);
    assert!(a.mark_delivered(got[0].id, 51).await.unwrap());
    // The 332 does not hold back s1-3: both go together.
    let got = b
        .claim_due_events("node-b", 52, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["s1-332", "s1-3"]);
    a.close().await;
    b.close().await;
}

/// The notifier of a surviving node sleeps until a foreign claim expires, not until the
/// (long past) attempt time of the claimed event, and not forever.
async fn next_due_at_waits_for_a_foreign_claim_to_expire(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_events(vec![ev("s1", "a", 100), ev("s2", "b", 5_000)])
        .await
        .unwrap();
    assert_eq!(cat.next_due_at().await.unwrap(), Some(100));
    let got = cat.claim_due_events("dead", 200, 10_000, 1).await.unwrap();
    assert_eq!(ids(&got), ["a"]);
    // "a" counts at its claim's expiry (10_200), "b" at 5_000.
    assert_eq!(cat.next_due_at().await.unwrap(), Some(5_000));
    let got = cat
        .claim_due_events("dead", 5_000, 10_000, 1)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["b"]);
    assert_eq!(cat.next_due_at().await.unwrap(), Some(10_200));
    // After expiry the event is claimable again at that time.
    let got = cat
        .claim_due_events("alive", 10_200, 10_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), ["a"]);
    // Marking clears the claim: "a" now counts at its retry (90_000), "b" at its claim's
    // expiry (15_000).
    assert!(
        cat.mark_failed(got[0].id, 1, Some(90_000), "x")
            .await
            .unwrap()
    );
    assert_eq!(cat.next_due_at().await.unwrap(), Some(15_000), "b's claim");
    cat.close().await;
}

async fn a_stream_lease_has_one_holder(db: &TestDb) {
    let (a, b) = (db.open().await, db.open().await);
    let key = "push.example.com/live/cam1";
    assert_eq!(
        a.acquire_stream_lease(key, "node-a", 1_000, 10_000)
            .await
            .unwrap(),
        None,
        "free: acquired"
    );
    assert_eq!(
        b.acquire_stream_lease(key, "node-b", 2_000, 10_000)
            .await
            .unwrap(),
        Some("node-a".to_owned()),
        "held: refused, holder named"
    );
    // The holder re-acquires (a reconnect to the same node) and extends the lease.
    assert_eq!(
        a.acquire_stream_lease(key, "node-a", 5_000, 10_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.acquire_stream_lease(key, "node-b", 14_999, 10_000)
            .await
            .unwrap(),
        Some("node-a".to_owned()),
        "extended to 15_000"
    );
    // Expired: taken over.
    assert_eq!(
        b.acquire_stream_lease(key, "node-b", 15_000, 10_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        a.acquire_stream_lease(key, "node-a", 15_001, 10_000)
            .await
            .unwrap(),
        Some("node-b".to_owned())
    );
    // Another key is independent.
    assert_eq!(
        a.acquire_stream_lease("other", "node-a", 15_001, 10_000)
            .await
            .unwrap(),
        None
    );
    // Racing for a free key: exactly one wins.
    let race = |cat: Catalog, node: &'static str| {
        tokio::spawn(async move {
            cat.acquire_stream_lease("race", node, 0, 10_000)
                .await
                .unwrap()
        })
    };
    let (ra, rb) = (race(a.clone(), "node-a"), race(b.clone(), "node-b"));
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    match (&ra, &rb) {
        (None, Some(h)) => assert_eq!(h, "node-a"),
        (Some(h), None) => assert_eq!(h, "node-b"),
        _ => panic!("both or neither won: {ra:?} {rb:?}"),
    }
    let err = a
        .acquire_stream_lease("x", "node-a", 0, u64::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::OutOfRange {
                field: "ttl_ms",
                ..
            }
        ),
        "{err}"
    );
    a.close().await;
    b.close().await;
}

async fn leases_are_renewed_and_released_by_their_holder(db: &TestDb) {
    let cat = db.open().await;
    for key in ["k1", "k2"] {
        assert_eq!(
            cat.acquire_stream_lease(key, "node-a", 0, 1_000)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        cat.acquire_stream_lease("k3", "node-b", 0, 1_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cat.renew_stream_leases("node-a", 900, 1_000).await.unwrap(),
        2
    );
    assert_eq!(
        cat.renew_stream_leases("nobody", 900, 1_000).await.unwrap(),
        0
    );
    // Renewed to 1_900: still held at 1_500; k3 (not renewed) expired at 1_000.
    assert_eq!(
        cat.acquire_stream_lease("k1", "node-b", 1_500, 1_000)
            .await
            .unwrap(),
        Some("node-a".to_owned())
    );
    assert_eq!(
        cat.acquire_stream_lease("k3", "node-c", 1_500, 1_000)
            .await
            .unwrap(),
        None
    );
    // Only the holder releases.
    assert!(!cat.release_stream_lease("k1", "node-b").await.unwrap());
    assert!(cat.release_stream_lease("k1", "node-a").await.unwrap());
    assert!(!cat.release_stream_lease("k1", "node-a").await.unwrap());
    assert_eq!(
        cat.acquire_stream_lease("k1", "node-b", 1_501, 1_000)
            .await
            .unwrap(),
        None,
        "released: free at once"
    );
    // node-b's renewal covers k1 only: k3 went to node-c when it expired.
    assert_eq!(
        cat.renew_stream_leases("node-b", 1_600, 1_000)
            .await
            .unwrap(),
        1
    );
    cat.close().await;
}

/// Every statement is written with `$N` placeholders; on SQLite they bind by number too, so a
/// parameter used twice or out of order binds right (`list_outbox` reuses `$1`; the outbox
/// insert uses `$9` twice).
async fn dollar_placeholders_bind_by_number(db: &TestDb) {
    let cat = db.open().await;
    cat.insert_events(vec![ev("s", "e", 777)]).await.unwrap();
    let all = cat.list_outbox(None, 10).await.unwrap();
    assert_eq!(
        (all[0].created_at_ms, all[0].next_attempt_at_ms),
        (777, 777)
    );
    let pending = cat
        .list_outbox(Some(livetape_catalog::OutboxState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(ids(&pending), ["e"]);
    assert!(
        cat.list_outbox(Some(livetape_catalog::OutboxState::Dead), 10)
            .await
            .unwrap()
            .is_empty()
    );
    cat.close().await;
}

/// An unreachable PostgreSQL fails `connect` with an Open error naming the URL, password
/// hidden; an unknown scheme is refused before any connection.
#[tokio::test]
async fn connect_errors_name_the_url_without_the_password() {
    let url = "postgres://lt:hunter2@127.0.0.1:1/catalog";
    let err = Catalog::connect(url).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CatalogError::Open { .. }), "{msg}");
    assert!(
        msg.contains("postgres://lt:***@127.0.0.1:1/catalog"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    let err = Catalog::connect("mysql://u:pw@h/db").await.unwrap_err();
    assert!(matches!(err, CatalogError::BadUrl { .. }), "{err}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

/// Two nodes start at once on an empty PostgreSQL catalogue: both migrate (sqlx serialises
/// migrators) and exactly one seeds the templates. (SQLite is one node: opened in turn.)
async fn nodes_starting_together_migrate_and_seed_once(db: &TestDb) {
    let (a, b) = if db.is_postgres() {
        tokio::join!(db.open(), db.open())
    } else {
        let a = db.open().await;
        (a, db.open().await)
    };
    let seed = RawSeed {
        templates: vec![seed_template(&record("default", &["mp4"], 1800))],
        ..Default::default()
    };
    let (ra, rb) = tokio::join!(a.seed_all(&seed, 1), b.seed_all(&seed, 1));
    let seeded = [ra.unwrap(), rb.unwrap()];
    assert_eq!(seeded.iter().filter(|s| **s).count(), 1, "{seeded:?}");
    assert_eq!(b.list_templates::<ServerRecord>().await.unwrap().len(), 1);
    a.close().await;
    b.close().await;
}

async fn a_restarting_node_sees_only_its_own_open_pushes(db: &TestDb) {
    let cat = db.open().await;
    let push = |sequence: &str, node: &str| NewPush {
        sequence: sequence.into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: format!("s{sequence}"),
        stream_param: String::new(),
        client_ip: "10.0.0.1".into(),
        node: node.into(),
        started_at_ms: sequence.parse().unwrap(),
        width: 640,
        height: 360,
    };
    for (seq, node) in [
        ("1", "node-a"),
        ("2", "node-b"),
        ("3", "node-a"),
        ("4", "node-a"),
    ] {
        cat.begin_push(&push(seq, node), None).await.unwrap();
    }
    assert!(cat.end_push("3", 10, 1, "", vec![]).await.unwrap());
    let seqs = |v: Vec<livetape_catalog::PushSession>| -> Vec<String> {
        v.into_iter().map(|p| p.sequence).collect()
    };
    assert_eq!(
        seqs(cat.open_pushes_on("node-a").await.unwrap()),
        ["1", "4"]
    );
    assert_eq!(seqs(cat.open_pushes_on("node-b").await.unwrap()), ["2"]);
    assert!(cat.open_pushes_on("node-c").await.unwrap().is_empty());
    assert_eq!(seqs(cat.open_pushes().await.unwrap()), ["1", "2", "4"]);
    cat.close().await;
}
