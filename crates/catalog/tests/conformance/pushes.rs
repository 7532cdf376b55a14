//! Push history (`list_pushes`), forbidden streams, and the delivery log's filters: what the
//! Tencent Cloud API 3.0 stream history and `DescribeCallbackRecordsList` read.
use livetape_catalog::{
    AuthKeys, AuthKind, Catalog, DeliveryQuery, ForbiddenStream, NewEvent, NewPush, PushQuery,
    StreamMatch,
};

use crate::common::TestDb;

conformance!(
    push_history_lists_ended_sessions_filtered_ordered_and_paged,
    a_forbidden_stream_stays_forbidden_until_resumed_or_due,
    auth_keys_are_kept_per_kind_and_domain_and_replaced,
    the_delivery_log_filters_by_type_time_and_outcome,
);

async fn pushed(cat: &Catalog, sequence: &str, stream: &str, start: i64, end: Option<i64>) {
    let p = NewPush {
        sequence: sequence.into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: stream.into(),
        stream_param: String::new(),
        client_ip: "10.0.0.1".into(),
        node: "node-a".into(),
        started_at_ms: start,
        width: 1280,
        height: 720,
    };
    cat.begin_push(&p, None).await.unwrap();
    if let Some(end) = end {
        assert!(cat.end_push(sequence, end, 1, "bye", vec![]).await.unwrap());
    }
}

async fn push_history_lists_ended_sessions_filtered_ordered_and_paged(db: &TestDb) {
    let cat = db.open().await;
    pushed(&cat, "1", "room-a", 1_000, Some(2_000)).await;
    pushed(&cat, "2", "room-b", 3_000, Some(4_000)).await;
    pushed(&cat, "3", "Room-A2", 5_000, Some(6_000)).await;
    pushed(&cat, "4", "room-a", 7_000, None).await;
    let seqs = |rows: &[livetape_catalog::PushSession]| {
        rows.iter()
            .map(|r| r.sequence.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let q = |f: &dyn Fn(&mut PushQuery)| {
        let mut q = PushQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    // The live session (4) is not history yet; newest end first.
    let (total, rows) = cat.list_pushes(&q(&|_| {})).await.unwrap();
    assert_eq!((total, seqs(&rows).as_str()), (3, "3,2,1"));
    assert_eq!(rows[2].errcode, Some(1));
    assert_eq!(rows[2].ended_at_ms, Some(2_000));
    let (_, rows) = cat.list_pushes(&q(&|q| q.ascending = true)).await.unwrap();
    assert_eq!(seqs(&rows), "1,2,3");
    // Exact and case-sensitive substring matches.
    let (total, rows) = cat
        .list_pushes(&q(&|q| q.stream_id = Some("room-a".into())))
        .await
        .unwrap();
    assert_eq!((total, seqs(&rows).as_str()), (1, "1"));
    let (total, rows) = cat
        .list_pushes(&q(&|q| {
            q.stream_id = Some("oom-".into());
            q.stream_match = StreamMatch::Contains;
        }))
        .await
        .unwrap();
    assert_eq!((total, seqs(&rows).as_str()), (3, "3,2,1"));
    let (total, _) = cat
        .list_pushes(&q(&|q| {
            q.stream_id = Some("room-a".into());
            q.stream_match = StreamMatch::Contains;
        }))
        .await
        .unwrap();
    assert_eq!(total, 1, "`Room-A2` does not contain `room-a`");
    // A window overlapping session 2 only (ends touching count).
    let (_, rows) = cat
        .list_pushes(&q(&|q| {
            q.from_ms = Some(2_001);
            q.to_ms = Some(3_000);
        }))
        .await
        .unwrap();
    assert_eq!(seqs(&rows), "2");
    let (_, rows) = cat
        .list_pushes(&q(&|q| q.appname = Some("other".into())))
        .await
        .unwrap();
    assert!(rows.is_empty());
    let (total, rows) = cat
        .list_pushes(&q(&|q| {
            q.offset = 1;
            q.limit = 1;
        }))
        .await
        .unwrap();
    assert_eq!((total, seqs(&rows).as_str()), (3, "2"));
}

async fn a_forbidden_stream_stays_forbidden_until_resumed_or_due(db: &TestDb) {
    let cat = db.open().await;
    let ban = |resume_at_ms, reason: &str| ForbiddenStream {
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s1".into(),
        resume_at_ms,
        reason: reason.into(),
        created_at_ms: 100,
    };
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 0).await.unwrap(),
        None
    );
    cat.forbid_stream(&ban(10_000, "spam")).await.unwrap();
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 9_999)
            .await
            .unwrap(),
        Some(ban(10_000, "spam"))
    );
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 10_000)
            .await
            .unwrap(),
        None
    );
    for other in [
        ("other.com", "live", "s1"),
        ("example.com", "app", "s1"),
        ("example.com", "live", "s2"),
    ] {
        assert_eq!(
            cat.forbidden(other.0, other.1, other.2, 0).await.unwrap(),
            None,
            "{other:?}"
        );
    }
    // A second ban replaces the first.
    cat.forbid_stream(&ban(20_000, "again")).await.unwrap();
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 15_000)
            .await
            .unwrap(),
        Some(ban(20_000, "again"))
    );
    assert!(
        cat.resume_stream("example.com", "live", "s1")
            .await
            .unwrap()
    );
    assert!(
        !cat.resume_stream("example.com", "live", "s1")
            .await
            .unwrap()
    );
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 0).await.unwrap(),
        None
    );
    // It survives a reopen.
    cat.forbid_stream(&ban(30_000, "kept")).await.unwrap();
    cat.close().await;
    let cat = db.open().await;
    assert_eq!(
        cat.forbidden("example.com", "live", "s1", 0).await.unwrap(),
        Some(ban(30_000, "kept"))
    );
}

async fn the_delivery_log_filters_by_type_time_and_outcome(db: &TestDb) {
    let cat = db.open().await;
    let ev = |id: &str, event_type, created_at_ms| NewEvent {
        event_id: id.into(),
        event_type,
        url: "http://hook.example/cb".into(),
        body: "{}".into(),
        sign_key: "k".into(),
        stream_id: "s1".into(),
        max_attempts: 3,
        retry_interval_ms: 60_000,
        created_at_ms,
    };
    cat.insert_events(vec![
        ev("a", 1, 10),
        ev("b", 100, 20),
        ev("c", 0, 30),
        ev("d", 100, 40),
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
    let id = |e: &str| all.iter().find(|r| r.event_id == e).unwrap().id;
    assert!(cat.mark_delivered(id("a"), 11).await.unwrap());
    assert!(cat.mark_delivered(id("b"), 21).await.unwrap());
    assert!(
        cat.mark_failed(id("c"), 90, None, "HTTP 500")
            .await
            .unwrap()
    );
    // d: never tried.
    let events = |q: DeliveryQuery| {
        let cat = &cat;
        async move {
            let (total, rows) = cat
                .list_deliveries(&DeliveryQuery { limit: 10, ..q })
                .await
                .unwrap();
            let ids: Vec<String> = rows.into_iter().map(|r| r.event_id).collect();
            (total, ids.join(","))
        }
    };
    let tried = DeliveryQuery {
        attempted: true,
        ..Default::default()
    };
    assert_eq!(events(tried.clone()).await, (3, "c,b,a".into()));
    assert_eq!(
        events(DeliveryQuery {
            event_type: Some(100),
            ..tried.clone()
        })
        .await,
        (1, "b".into())
    );
    assert_eq!(
        events(DeliveryQuery {
            delivered: Some(false),
            ..tried.clone()
        })
        .await,
        (1, "c".into())
    );
    assert_eq!(
        events(DeliveryQuery {
            delivered: Some(true),
            created_ms: Some((15, 40)),
            ..tried.clone()
        })
        .await,
        (1, "b".into())
    );
    assert_eq!(
        events(DeliveryQuery {
            created_ms: Some((20, 40)),
            ..Default::default()
        })
        .await,
        (3, "d,c,b".into())
    );
}

async fn auth_keys_are_kept_per_kind_and_domain_and_replaced(db: &TestDb) {
    let cat = db.open().await;
    assert_eq!(cat.all_auth_keys().await.unwrap(), vec![]);
    let keys = |kind, domain: &str, master: &str, enabled| AuthKeys {
        kind,
        domain: domain.into(),
        enabled,
        master_key: master.into(),
        backup_key: String::new(),
        delta_s: 30,
        updated_at_ms: 5,
    };
    cat.set_auth_keys(&keys(AuthKind::Push, "a.com", "k1", true))
        .await
        .unwrap();
    cat.set_auth_keys(&keys(AuthKind::Play, "a.com", "p1", true))
        .await
        .unwrap();
    cat.set_auth_keys(&keys(AuthKind::Push, "b.com", "k2", true))
        .await
        .unwrap();
    // A second set replaces the first for the same kind and domain only.
    cat.set_auth_keys(&keys(AuthKind::Push, "a.com", "k3", false))
        .await
        .unwrap();
    assert_eq!(
        cat.all_auth_keys().await.unwrap(),
        vec![
            keys(AuthKind::Play, "a.com", "p1", true),
            keys(AuthKind::Push, "a.com", "k3", false),
            keys(AuthKind::Push, "b.com", "k2", true),
        ]
    );
}
