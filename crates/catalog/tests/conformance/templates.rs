//! The record and callback kinds through the generic template/rule API, with the server's
//! types: CRUD, conflicts, bindings, seeding.

use livetape_catalog::{CALLBACK_KIND, CatalogError, RECORD_KIND, RawSeed};

use crate::common::TestDb;
use crate::common::kinds::{
    ServerCallback, ServerRecord, callback_rule as cr, record, record_rule as rr, seed_rule,
    seed_template,
};

conformance!(
    record_template_crud,
    bound_record_template_cannot_be_deleted,
    record_rule_crud_and_errors,
    callback_templates_and_rules,
    seeding_happens_once_then_the_database_rules,
    a_bad_seed_leaves_nothing_and_can_be_retried,
);

fn rt(name: &str, formats: &[&str], interval_s: u64) -> ServerRecord {
    record(name, formats, interval_s)
}

fn ct(name: &str, record_url: Option<&str>) -> ServerCallback {
    ServerCallback {
        name: name.into(),
        key: "k".into(),
        stream_begin_url: None,
        stream_end_url: Some("http://hook/end".into()),
        record_url: record_url.map(Into::into),
        retry_count: 12,
        retry_interval_s: 60,
    }
}

async fn record_template_crud(db: &TestDb) {
    let cat = db.open().await;
    assert!(
        cat.list_templates::<ServerRecord>()
            .await
            .unwrap()
            .is_empty()
    );

    let mut hd = rt("hd", &["flv", "mp4", "hls"], 600);
    hd.resume_s = 30;
    hd.storage_days = 7;
    let s = cat.create_template(&hd, 1_000).await.unwrap();
    assert_eq!(s.template, hd);
    assert_eq!((s.created_at_ms, s.updated_at_ms), (1_000, 1_000));

    let err = cat.create_template(&hd, 2_000).await.unwrap_err();
    assert!(
        matches!(err, CatalogError::Conflict { .. }) && err.is_conflict(),
        "{err}"
    );

    // Replace keeps created_at and reports "not created".
    let hd2 = rt("hd", &["aac"], 30);
    let (s, created) = cat.put_template(&hd2, 3_000).await.unwrap();
    assert!(!created);
    assert_eq!(s.template, hd2);
    assert_eq!((s.created_at_ms, s.updated_at_ms), (1_000, 3_000));
    let got = cat
        .get_template::<ServerRecord>("hd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, s);

    let (s, created) = cat
        .put_template(&rt("a", &["flv"], 1800), 4_000)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(s.created_at_ms, 4_000);
    let names: Vec<String> = cat
        .list_templates::<ServerRecord>()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.template.name)
        .collect();
    assert_eq!(names, ["a", "hd"]);

    cat.delete_template::<ServerRecord>("a").await.unwrap();
    assert!(
        cat.get_template::<ServerRecord>("a")
            .await
            .unwrap()
            .is_none()
    );
    let err = cat.delete_template::<ServerRecord>("a").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(!err.is_conflict(), "{err}");
}

async fn bound_record_template_cannot_be_deleted(db: &TestDb) {
    let cat = db.open().await;
    cat.create_template(&rt("hd", &["mp4"], 600), 0)
        .await
        .unwrap();
    let rule = cat
        .insert_rule(RECORD_KIND, &rr("live", "*", "hd"), 0)
        .await
        .unwrap();
    let err = cat.delete_template::<ServerRecord>("hd").await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::Conflict { reason, .. } if reason.contains("1 rule")),
        "{err}"
    );
    assert!(
        cat.get_template::<ServerRecord>("hd")
            .await
            .unwrap()
            .is_some()
    );

    cat.delete_rule(RECORD_KIND, rule.id).await.unwrap();
    cat.delete_template::<ServerRecord>("hd").await.unwrap();
}

async fn record_rule_crud_and_errors(db: &TestDb) {
    let cat = db.open().await;
    cat.create_template(&rt("a", &["flv"], 600), 0)
        .await
        .unwrap();
    cat.create_template(&rt("b", &["mp4"], 600), 0)
        .await
        .unwrap();

    let err = cat
        .insert_rule(RECORD_KIND, &rr("*", "*", "nope"), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownTemplate { name, .. } if name == "nope"),
        "{err}"
    );

    let r1 = cat
        .insert_rule(RECORD_KIND, &rr("*", "*", "a"), 10)
        .await
        .unwrap();
    let r2 = cat
        .insert_rule(RECORD_KIND, &rr("live", "vip_*", "b"), 20)
        .await
        .unwrap();
    assert!(r2.id > r1.id);
    assert_eq!(r2.rule, rr("live", "vip_*", "b"));
    assert_eq!(r2.created_at_ms, 20);

    // Same app + stream twice: conflict.
    let err = cat
        .insert_rule(RECORD_KIND, &rr("live", "vip_*", "a"), 30)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");

    let up = cat
        .update_rule(RECORD_KIND, r2.id, &rr("live", "vip_1", "a"), 40)
        .await
        .unwrap();
    assert_eq!(up.rule, rr("live", "vip_1", "a"));
    assert_eq!((up.id, up.created_at_ms, up.updated_at_ms), (r2.id, 20, 40));
    // Updating into another rule's key conflicts; into a missing template is refused.
    let err = cat
        .update_rule(RECORD_KIND, r2.id, &rr("*", "*", "a"), 50)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let err = cat
        .update_rule(RECORD_KIND, r2.id, &rr("live", "vip_1", "zzz"), 50)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::UnknownTemplate { .. }), "{err}");
    let err = cat
        .update_rule(RECORD_KIND, 999, &rr("q", "q", "a"), 50)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let rules = cat.list_rules(RECORD_KIND).await.unwrap();
    assert_eq!(
        rules.iter().map(|r| r.id).collect::<Vec<_>>(),
        [r1.id, r2.id]
    );
    assert_eq!(rules[1], up);

    cat.delete_rule(RECORD_KIND, r1.id).await.unwrap();
    let err = cat.delete_rule(RECORD_KIND, r1.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(cat.list_rules(RECORD_KIND).await.unwrap().len(), 1);
}

async fn callback_templates_and_rules(db: &TestDb) {
    let cat = db.open().await;
    let t = ct("hooks", Some("http://hook/rec"));
    let s = cat.create_template(&t, 5).await.unwrap();
    assert_eq!(s.template, t);
    assert!(cat.create_template(&t, 6).await.unwrap_err().is_conflict());
    let t2 = ct("hooks", None);
    let (s, created) = cat.put_template(&t2, 7).await.unwrap();
    assert!(!created);
    assert_eq!(s.template.record_url, None);
    assert_eq!((s.created_at_ms, s.updated_at_ms), (5, 7));
    assert_eq!(
        cat.get_template::<ServerCallback>("hooks")
            .await
            .unwrap()
            .unwrap(),
        s
    );
    assert!(
        cat.get_template::<ServerCallback>("nope")
            .await
            .unwrap()
            .is_none()
    );

    let err = cat
        .insert_rule(CALLBACK_KIND, &cr("live", "nope"), 8)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::UnknownTemplate { .. }), "{err}");
    let r = cat
        .insert_rule(CALLBACK_KIND, &cr("live", "hooks"), 8)
        .await
        .unwrap();
    assert!(
        cat.insert_rule(CALLBACK_KIND, &cr("live", "hooks"), 9)
            .await
            .unwrap_err()
            .is_conflict()
    );
    let err = cat
        .delete_template::<ServerCallback>("hooks")
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Conflict { .. }), "{err}");

    let up = cat
        .update_rule(CALLBACK_KIND, r.id, &cr("*", "hooks"), 10)
        .await
        .unwrap();
    assert_eq!(up.rule.app, "*");
    assert!(
        cat.update_rule(CALLBACK_KIND, r.id + 1, &cr("x", "hooks"), 10)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        cat.list_rules(CALLBACK_KIND).await.unwrap(),
        vec![up.clone()]
    );
    assert_eq!(
        cat.list_templates::<ServerCallback>().await.unwrap().len(),
        1
    );

    cat.delete_rule(CALLBACK_KIND, up.id).await.unwrap();
    assert!(
        cat.delete_rule(CALLBACK_KIND, up.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    cat.delete_template::<ServerCallback>("hooks")
        .await
        .unwrap();
    assert!(
        cat.delete_template::<ServerCallback>("hooks")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// Record templates, callback templates, record rules, callback rules, in that order (the
/// server's seed order).
fn seed() -> RawSeed {
    RawSeed {
        templates: vec![
            seed_template(&rt("default", &["mp4"], 1800)),
            seed_template(&rt("flv", &["flv"], 600)),
            seed_template(&ct("hooks", Some("https://hook/rec"))),
        ],
        rules: vec![
            seed_rule(RECORD_KIND, rr("*", "*", "default")),
            seed_rule(RECORD_KIND, rr("live", "vip_*", "flv")),
            // A duplicate key: the first one is kept (it is the one that wins precedence).
            seed_rule(RECORD_KIND, rr("live", "vip_*", "default")),
            seed_rule(CALLBACK_KIND, cr("live", "hooks")),
        ],
    }
}

async fn seeding_happens_once_then_the_database_rules(db: &TestDb) {
    let cat = db.open().await;
    assert!(cat.seed_all(&seed(), 100).await.unwrap());
    let set = cat.load_all().await.unwrap();
    let record_templates = set.templates_of::<ServerRecord>().unwrap();
    assert_eq!(record_templates.len(), 2);
    let record_rules: Vec<_> = set.rules_of(RECORD_KIND).cloned().collect();
    assert_eq!(
        record_rules
            .iter()
            .map(|r| r.rule.clone())
            .collect::<Vec<_>>(),
        [rr("*", "*", "default"), rr("live", "vip_*", "flv")]
    );
    assert_eq!(
        set.templates_of::<ServerCallback>().unwrap()[0]
            .template
            .name,
        "hooks"
    );
    assert_eq!(
        set.rules_of(CALLBACK_KIND).next().unwrap().rule,
        cr("live", "hooks")
    );
    assert_eq!(record_templates[0].created_at_ms, 100);

    // Edit over the "API", then restart with the same config: the edits survive.
    for r in &record_rules {
        cat.delete_rule(RECORD_KIND, r.id).await.unwrap();
    }
    cat.delete_template::<ServerRecord>("flv").await.unwrap();
    cat.close().await;
    let cat = db.open().await;
    assert!(!cat.seed_all(&seed(), 200).await.unwrap());
    let set = cat.load_all().await.unwrap();
    assert_eq!(set.rules_of(RECORD_KIND).count(), 0);
    assert_eq!(set.templates_of::<ServerRecord>().unwrap().len(), 1);
    assert_eq!(set.rules_of(CALLBACK_KIND).count(), 1);
}

async fn a_bad_seed_leaves_nothing_and_can_be_retried(db: &TestDb) {
    let cat = db.open().await;
    let mut bad = seed();
    bad.rules
        .push(seed_rule(CALLBACK_KIND, cr("other", "missing")));
    let err = cat.seed_all(&bad, 1).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownTemplate { name, .. } if name == "missing"),
        "{err}"
    );
    assert_eq!(cat.load_all().await.unwrap(), Default::default());
    assert!(cat.seed_all(&seed(), 2).await.unwrap());
    assert_eq!(
        cat.load_all().await.unwrap().rules_of(RECORD_KIND).count(),
        2
    );
}
