//! The generic template/rule API: a kind the catalogue has never heard of works without a
//! schema change, a kind's bodies read back through any type that fits them, and migration
//! 0009 carries a 0008 catalogue's templates and rules over.

use livetape_catalog::{
    CALLBACK_KIND, Catalog, CatalogError, RECORD_KIND, RawSeed, RuleDef, SeedRule, SeedTemplate,
    StoredTemplate, TemplateBody,
};
use serde::{Deserialize, Serialize};

use crate::common::TestDb;
use crate::common::kinds::{
    ServerCallback, ServerRecord, callback_rule, record, record_rule, rule,
};

conformance!(
    a_third_kind_needs_no_schema_change,
    rules_are_per_kind_and_keyed_by_domain_app_stream,
    seed_all_seeds_every_kind_once,
    record_and_callback_bodies_read_back_through_other_types,
    migration_0009_carries_0008_rows_over,
    migration_0009_keeps_ids_that_do_not_collide,
    templates_are_numbered_across_kinds_and_keep_their_number,
);

/// A kind only this test knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Overlay {
    name: String,
    text: String,
    corner: Vec<u32>,
    font: Option<String>,
}

impl TemplateBody for Overlay {
    const KIND: &'static str = "overlay";
    fn name(&self) -> &str {
        &self.name
    }
}

fn overlay(name: &str, text: &str) -> Overlay {
    Overlay {
        name: name.into(),
        text: text.into(),
        corner: vec![10, 20],
        font: None,
    }
}

/// The same kind read as a type its bodies do not fit.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NotAnOverlay {
    name: String,
    size: u64,
}

impl TemplateBody for NotAnOverlay {
    const KIND: &'static str = "overlay";
    fn name(&self) -> &str {
        &self.name
    }
}

fn record_def(name: &str) -> ServerRecord {
    record(name, &["mp4"], 600)
}

/// Tencent's API names templates by number: one sequence across kinds, kept on replace, and
/// a number of another kind's template finds nothing.
async fn templates_are_numbered_across_kinds_and_keep_their_number(db: &TestDb) {
    let cat = db.open().await;
    let a = cat.create_template(&record_def("a"), 1).await.unwrap();
    let b = cat.create_template(&overlay("b", "x"), 2).await.unwrap();
    let c = cat.create_template(&record_def("c"), 3).await.unwrap();
    assert!(
        a.id >= 1 && b.id > a.id && c.id > b.id,
        "{} {} {}",
        a.id,
        b.id,
        c.id
    );
    let (replaced, created) = cat
        .put_template(&record("a", &["flv"], 60), 4)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(replaced.id, a.id);
    let got = cat
        .get_template_by_id::<ServerRecord>(a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.id, got.template.formats.as_slice()),
        (a.id, &["flv".to_string()][..])
    );
    assert!(
        cat.get_template_by_id::<ServerRecord>(b.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        cat.get_template_by_id::<Overlay>(b.id)
            .await
            .unwrap()
            .unwrap()
            .template
            .name,
        "b"
    );
    assert!(
        cat.get_template_by_id::<ServerRecord>(c.id + 100)
            .await
            .unwrap()
            .is_none()
    );
    let listed: Vec<i64> = cat
        .list_templates::<ServerRecord>()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [a.id, c.id]);
    // A deleted template's number is not given to the next one while a later one lives.
    cat.delete_template::<Overlay>("b").await.unwrap();
    let d = cat.create_template(&overlay("d", "y"), 5).await.unwrap();
    assert!(d.id > c.id);
}

async fn a_third_kind_needs_no_schema_change(db: &TestDb) {
    let cat = db.open().await;
    assert!(cat.list_templates::<Overlay>().await.unwrap().is_empty());

    let logo = overlay("logo", "livetape");
    let s = cat.create_template(&logo, 1_000).await.unwrap();
    assert_eq!(s.template, logo);
    assert_eq!((s.created_at_ms, s.updated_at_ms), (1_000, 1_000));
    let err = cat.create_template(&logo, 2_000).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::Conflict { what: "template", key, .. } if key == "name=logo")
            && err.is_conflict(),
        "{err}"
    );

    // A record template of the same name is another kind's: no clash, and the record and
    // callback kinds do not see the overlay.
    cat.create_template(&record_def("logo"), 1_500)
        .await
        .unwrap();
    assert_eq!(cat.list_templates::<ServerRecord>().await.unwrap().len(), 1);
    assert!(
        cat.list_templates::<ServerCallback>()
            .await
            .unwrap()
            .is_empty()
    );

    // Replace keeps created_at and reports "not created"; a new name is created.
    let mut logo2 = overlay("logo", "livetape 2");
    logo2.font = Some("mono".into());
    let (s, created) = cat.put_template(&logo2, 3_000).await.unwrap();
    assert!(!created);
    assert_eq!(s.template, logo2);
    assert_eq!((s.created_at_ms, s.updated_at_ms), (1_000, 3_000));
    assert_eq!(cat.get_template::<Overlay>("logo").await.unwrap(), Some(s));
    let (s, created) = cat
        .put_template(&overlay("banner", "hi"), 4_000)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(s.created_at_ms, 4_000);
    let names: Vec<String> = cat
        .list_templates::<Overlay>()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.template.name)
        .collect();
    assert_eq!(names, ["banner", "logo"]);
    assert!(cat.get_template::<Overlay>("nope").await.unwrap().is_none());

    // Bodies that are not the type they are read as.
    let err = cat.get_template::<NotAnOverlay>("logo").await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::Body { kind, name, .. } if kind == "overlay" && name == "logo"),
        "{err}"
    );

    // Everything, raw, in one snapshot: by kind, then name.
    let all = cat.load_all().await.unwrap();
    let keys: Vec<(&str, &str)> = all
        .templates
        .iter()
        .map(|t| (t.kind.as_str(), t.name.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("overlay", "banner"),
            ("overlay", "logo"),
            ("record", "logo")
        ]
    );
    assert_eq!(
        all.templates[1].body,
        serde_json::to_string(&logo2).unwrap()
    );
    assert_eq!(
        all.templates_of::<Overlay>().unwrap()[1].template,
        logo2.clone()
    );
    assert!(all.templates[0].decode::<ServerRecord>().is_err());
    assert_eq!(
        all.templates_of::<ServerRecord>().unwrap().len(),
        1,
        "a kind's templates leave other kinds out"
    );

    cat.delete_template::<Overlay>("banner").await.unwrap();
    let err = cat.delete_template::<Overlay>("banner").await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "template",
                ..
            }
        ),
        "{err}"
    );
    // The record template of the same name is untouched by the overlay's delete.
    cat.delete_template::<Overlay>("logo").await.unwrap();
    assert!(
        cat.get_template::<ServerRecord>("logo")
            .await
            .unwrap()
            .is_some()
    );
    cat.close().await;
}

async fn rules_are_per_kind_and_keyed_by_domain_app_stream(db: &TestDb) {
    let cat = db.open().await;
    cat.create_template(&overlay("logo", "x"), 0).await.unwrap();
    cat.create_template(&record_def("hd"), 0).await.unwrap();

    // A rule names a template of its own kind.
    let err = cat
        .insert_rule("overlay", &rule("*", "*", "*", "hd"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownTemplate { what: "template", name } if name == "hd"),
        "{err}"
    );

    let r1 = cat
        .insert_rule("overlay", &rule("*", "live", "*", "logo"), 10)
        .await
        .unwrap();
    assert_eq!(r1.rule, rule("*", "live", "*", "logo"));
    assert_eq!((r1.created_at_ms, r1.updated_at_ms), (10, 10));
    // The same patterns under another domain are another rule; the same all three clash.
    let r2 = cat
        .insert_rule("overlay", &rule("a.example", "live", "*", "logo"), 20)
        .await
        .unwrap();
    assert!(r2.id > r1.id);
    let err = cat
        .insert_rule("overlay", &rule("a.example", "live", "*", "logo"), 30)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::Conflict { what: "rule", key, reason }
            if key == "domain=a.example app=live stream=*" && reason.contains("already exists")),
        "{err}"
    );
    // A record rule with the same patterns is another kind's; ids are shared by all kinds.
    let rec = cat
        .insert_rule(RECORD_KIND, &record_rule("live", "*", "hd"), 40)
        .await
        .unwrap();
    assert!(rec.id > r2.id);
    assert_eq!(
        cat.list_rules(RECORD_KIND).await.unwrap()[0].rule,
        rule("*", "live", "*", "hd")
    );

    let up = cat
        .update_rule(
            "overlay",
            r2.id,
            &rule("b.example", "live", "cam*", "logo"),
            50,
        )
        .await
        .unwrap();
    assert_eq!((up.id, up.created_at_ms, up.updated_at_ms), (r2.id, 20, 50));
    assert_eq!(up.rule.stream, "cam*");
    // Into another rule's key: conflict (named by id); into a missing template: refused.
    let err = cat
        .update_rule("overlay", r2.id, &rule("*", "live", "*", "logo"), 60)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::Conflict { key, .. } if *key == format!("id={}", r2.id)),
        "{err}"
    );
    let err = cat
        .update_rule("overlay", r2.id, &rule("*", "x", "*", "zzz"), 60)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::UnknownTemplate { .. }), "{err}");
    // A rule id of another kind is not found through this one, either way.
    let err = cat
        .update_rule("overlay", rec.id, &rule("*", "q", "*", "logo"), 60)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = cat.delete_rule("overlay", rec.id).await.unwrap_err();
    assert!(
        matches!(err, CatalogError::NotFound { what: "rule", .. }),
        "{err}"
    );
    let err = cat.delete_rule(RECORD_KIND, r1.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "record rule",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        cat.list_rules(RECORD_KIND).await.unwrap(),
        vec![rec.clone()]
    );

    let rules = cat.list_rules("overlay").await.unwrap();
    assert_eq!(rules, vec![r1.clone(), up.clone()]);
    let all = cat.load_all().await.unwrap();
    assert_eq!(all.rules.len(), 3);
    assert_eq!(all.rules_of("overlay").cloned().collect::<Vec<_>>(), rules);

    // Bound: the template stays until its rules go.
    let err = cat.delete_template::<Overlay>("logo").await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::Conflict { reason, .. } if reason.contains("2 rule")),
        "{err}"
    );
    cat.delete_rule("overlay", r1.id).await.unwrap();
    cat.delete_rule("overlay", up.id).await.unwrap();
    assert!(
        cat.delete_rule("overlay", up.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    cat.delete_template::<Overlay>("logo").await.unwrap();
    // The record rule still binds its own template.
    assert!(
        cat.delete_template::<ServerRecord>("hd")
            .await
            .unwrap_err()
            .is_conflict()
    );
    cat.close().await;
}

fn raw_seed() -> RawSeed {
    RawSeed {
        templates: vec![
            SeedTemplate::new(&overlay("logo", "first")).unwrap(),
            SeedTemplate::new(&ServerRecord {
                name: "default".into(),
                formats: vec!["mp4".into()],
                interval_s: 1800,
                resume_s: 0,
                hls_target_s: 10,
                storage_days: 0,
            })
            .unwrap(),
            // A duplicate name: the first one is kept.
            SeedTemplate::new(&overlay("logo", "second")).unwrap(),
        ],
        rules: vec![
            SeedRule {
                kind: "overlay".into(),
                rule: rule("*", "*", "*", "logo"),
            },
            SeedRule {
                kind: RECORD_KIND.into(),
                rule: rule("*", "*", "*", "default"),
            },
            // A duplicate key: the first one is kept.
            SeedRule {
                kind: "overlay".into(),
                rule: rule("*", "*", "*", "logo"),
            },
        ],
    }
}

async fn seed_all_seeds_every_kind_once(db: &TestDb) {
    let cat = db.open().await;
    // A body that is not JSON, or a rule naming another kind's template: nothing is seeded.
    let mut bad = raw_seed();
    bad.templates.push(SeedTemplate {
        kind: "overlay".into(),
        name: "broken".into(),
        body: "{not json".into(),
    });
    let err = cat.seed_all(&bad, 1).await.unwrap_err();
    assert!(matches!(err, CatalogError::Body { .. }), "{err}");
    let mut bad = raw_seed();
    bad.rules.push(SeedRule {
        kind: "overlay".into(),
        rule: rule("*", "edu", "*", "default"),
    });
    let err = cat.seed_all(&bad, 1).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownTemplate { what: "template", name } if name == "default"),
        "{err}"
    );
    assert_eq!(cat.load_all().await.unwrap(), Default::default());

    assert!(cat.seed_all(&raw_seed(), 100).await.unwrap());
    let all = cat.load_all().await.unwrap();
    assert_eq!(all.templates.len(), 2);
    let logo = all.templates_of::<Overlay>().unwrap();
    assert_eq!(logo[0].template.text, "first");
    assert_eq!(logo[0].created_at_ms, 100);
    let kinds: Vec<&str> = all.rules.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["overlay", "record"]);
    // The record kind's own listing reads the seeded record template.
    let records = cat.list_templates::<ServerRecord>().await.unwrap();
    assert_eq!(records[0].template.interval_s, 1800);

    // Once only, whatever is seeded: the same marker.
    assert!(!cat.seed_all(&raw_seed(), 200).await.unwrap());
    assert!(!cat.seed_all(&RawSeed::default(), 200).await.unwrap());
    cat.close().await;
}

/// A record template read with other integer widths and another field order than the
/// server's (what the catalogue's own record type used to be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NarrowRecord {
    name: String,
    formats: Vec<String>,
    interval_s: u32,
    hls_target_s: u32,
    resume_s: u32,
    storage_days: u32,
}

impl TemplateBody for NarrowRecord {
    const KIND: &'static str = RECORD_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

/// A callback template with a narrower retry interval than the server's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NarrowCallback {
    name: String,
    key: String,
    stream_begin_url: Option<String>,
    stream_end_url: Option<String>,
    record_url: Option<String>,
    retry_count: u32,
    retry_interval_s: u32,
}

impl TemplateBody for NarrowCallback {
    const KIND: &'static str = CALLBACK_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

async fn record_and_callback_bodies_read_back_through_other_types(db: &TestDb) {
    let cat = db.open().await;
    // Written by the server's type, read through another type of the same kind.
    let server = ServerRecord {
        name: "hd".into(),
        formats: vec!["flv".into(), "hls".into()],
        interval_s: 900,
        resume_s: 30,
        hls_target_s: 6,
        storage_days: 7,
    };
    cat.create_template(&server, 5).await.unwrap();
    let narrow = cat
        .get_template::<NarrowRecord>("hd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        narrow.template,
        NarrowRecord {
            name: "hd".into(),
            formats: vec!["flv".into(), "hls".into()],
            interval_s: 900,
            hls_target_s: 6,
            resume_s: 30,
            storage_days: 7,
        }
    );
    // And the other way, byte for byte what the server's type serializes to.
    let cb = NarrowCallback {
        name: "hooks".into(),
        key: "k".into(),
        stream_begin_url: None,
        stream_end_url: Some("http://hook/end".into()),
        record_url: None,
        retry_count: 3,
        retry_interval_s: 10,
    };
    cat.create_template(&cb, 6).await.unwrap();
    let got = cat
        .get_template::<ServerCallback>("hooks")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.template.stream_end_url.as_deref(),
        Some("http://hook/end")
    );
    let all = cat.load_all().await.unwrap();
    assert_eq!(
        all.templates[0].body,
        serde_json::to_string(&got.template).unwrap()
    );
    // Rules: a callback rule as the server keys it is one with domain and stream `*`.
    let r = cat
        .insert_rule(CALLBACK_KIND, &callback_rule("live", "hooks"), 7)
        .await
        .unwrap();
    assert_eq!(
        cat.list_rules(CALLBACK_KIND).await.unwrap()[0].rule,
        rule("*", "live", "*", "hooks")
    );
    // Its clash names the kind's words and the whole key.
    let err = cat
        .insert_rule(CALLBACK_KIND, &callback_rule("live", "hooks"), 8)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "catalog: callback rule app=live stream=*: \
         a callback rule for app `live` stream `*` already exists"
    );
    cat.delete_rule(CALLBACK_KIND, r.id).await.unwrap();
    assert!(cat.list_rules(CALLBACK_KIND).await.unwrap().is_empty());
    cat.close().await;
}

// ---- migration 0009 ------------------------------------------------------------------------

/// Applies migrations 0001..=0008 only (what a catalogue written by the previous release has).
async fn migrate_to_0008(db: &TestDb) -> Either {
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::migrate!("./migrations/postgres")
            .run_to(8, &pool)
            .await
            .unwrap();
        Either::Pg(pool)
    } else {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate!("./migrations/sqlite")
            .run_to(8, &pool)
            .await
            .unwrap();
        Either::Lite(pool)
    }
}

enum Either {
    Lite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Either {
    /// Runs `sql` with text/integer/null parameters (`$1..`, the same text on both engines).
    async fn exec(&self, sql: &'static str, args: &[Arg<'_>]) {
        macro_rules! run {
            ($pool:expr) => {{
                let mut q = sqlx::query(sql);
                for a in args {
                    q = match *a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Int(i) => q.bind(i),
                        Arg::Null => q.bind(None::<String>),
                    };
                }
                q.execute($pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }};
        }
        match self {
            Either::Lite(p) => run!(p),
            Either::Pg(p) => run!(p),
        }
    }

    async fn close(self) {
        match self {
            Either::Lite(p) => p.close().await,
            Either::Pg(p) => p.close().await,
        }
    }
}

#[derive(Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}
use Arg::{Int, Null, Text};

const RT_SQL: &str = "INSERT INTO record_templates (name, formats, interval_s, hls_target_s, \
     resume_s, storage_days, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const CT_SQL: &str = "INSERT INTO callback_templates (name, key, stream_begin_url, \
     stream_end_url, record_url, retry_count, retry_interval_s, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const RR_SQL: &str = "INSERT INTO record_rules (app, stream, template, created_at_ms, \
     updated_at_ms) VALUES ($1, $2, $3, $4, $5)";
const CR_SQL: &str = "INSERT INTO callback_rules (app, template, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4)";

/// A key with every character JSON escapes, and some it does not.
const ODD_KEY: &str = "k\"\\/\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é 中 \u{2028}";

fn stored<T>(id: i64, template: T, created_at_ms: i64, updated_at_ms: i64) -> StoredTemplate<T> {
    StoredTemplate {
        id,
        template,
        created_at_ms,
        updated_at_ms,
    }
}

async fn migration_0009_carries_0008_rows_over(db: &TestDb) {
    let old = migrate_to_0008(db).await;
    old.exec(
        RT_SQL,
        &[
            Text("hd"),
            Text("flv,mp4,hls"),
            Int(600),
            Int(10),
            Int(30),
            Int(7),
            Int(100),
            Int(200),
        ],
    )
    .await;
    // Empty items were skipped by the old reader; an odd name is escaped.
    old.exec(
        RT_SQL,
        &[
            Text("a\"b\\c"),
            Text(",aac,,"),
            Int(30),
            Int(4),
            Int(0),
            Int(0),
            Int(1),
            Int(2),
        ],
    )
    .await;
    old.exec(
        RT_SQL,
        &[
            Text("none"),
            Text(""),
            Int(30),
            Int(4),
            Int(0),
            Int(0),
            Int(1),
            Int(2),
        ],
    )
    .await;
    old.exec(
        CT_SQL,
        &[
            Text("hooks"),
            Text(ODD_KEY),
            Null,
            Text("http://hook/end"),
            Text("https://hook/rec?a=1&b=2"),
            Int(12),
            Int(60),
            Int(300),
            Int(400),
        ],
    )
    .await;
    // Record rules 1, 2 (3 deleted: never handed out again); callback rules 1, 2 collide with
    // them, so they move up past the highest record rule id ever given (3): 4, 5.
    for (app, stream, template, at) in [
        ("*", "*", "hd", 10),
        ("live", "vip_*", "a\"b\\c", 11),
        ("x", "y", "hd", 12),
    ] {
        old.exec(
            RR_SQL,
            &[
                Text(app),
                Text(stream),
                Text(template),
                Int(at),
                Int(at + 1),
            ],
        )
        .await;
    }
    old.exec("DELETE FROM record_rules WHERE app = 'x'", &[])
        .await;
    for (app, at) in [("live", 20), ("*", 21)] {
        old.exec(CR_SQL, &[Text(app), Text("hooks"), Int(at), Int(at + 5)])
            .await;
    }
    old.exec(
        "INSERT INTO catalog_meta (key, value) VALUES ('templates_seeded', '1')",
        &[],
    )
    .await;
    old.close().await;

    let cat = db.open().await;
    let set = cat.load_all().await.unwrap();
    let rt = |name: &str, formats: &[&str], i, h, r, d| ServerRecord {
        name: name.into(),
        formats: formats.iter().map(|f| f.to_string()).collect(),
        interval_s: i,
        resume_s: r,
        hls_target_s: h,
        storage_days: d,
    };
    assert_eq!(
        set.templates_of::<ServerRecord>().unwrap(),
        [
            // Numbered in creation order (ties by kind and name) by migration 0011.
            stored(1, rt("a\"b\\c", &["aac"], 30, 4, 0, 0), 1, 2),
            stored(
                3,
                rt("hd", &["flv", "mp4", "hls"], 600, 10, 30, 7),
                100,
                200
            ),
            stored(2, rt("none", &[], 30, 4, 0, 0), 1, 2),
        ]
    );
    let hooks = ServerCallback {
        name: "hooks".into(),
        key: ODD_KEY.into(),
        stream_begin_url: None,
        stream_end_url: Some("http://hook/end".into()),
        record_url: Some("https://hook/rec?a=1&b=2".into()),
        retry_count: 12,
        retry_interval_s: 60,
    };
    assert_eq!(
        set.templates_of::<ServerCallback>().unwrap(),
        [stored(4, hooks.clone(), 300, 400)]
    );

    let rules: Vec<(i64, RuleDef, i64, i64)> = set
        .rules_of(RECORD_KIND)
        .map(|r| (r.id, r.rule.clone(), r.created_at_ms, r.updated_at_ms))
        .collect();
    let rr = record_rule;
    assert_eq!(
        rules,
        [
            (1, rr("*", "*", "hd"), 10, 11),
            (2, rr("live", "vip_*", "a\"b\\c"), 11, 12)
        ]
    );
    let cb: Vec<(i64, String, i64)> = set
        .rules_of(CALLBACK_KIND)
        .map(|r| (r.id, r.rule.app.clone(), r.updated_at_ms))
        .collect();
    assert_eq!(cb, [(4, "live".into(), 25), (5, "*".into(), 26)]);

    // The bodies are byte for byte what serde_json makes of the server's types.
    let all = cat.load_all().await.unwrap();
    let body = |kind: &str, name: &str| {
        all.templates
            .iter()
            .find(|t| t.kind == kind && t.name == name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
            .body
            .clone()
    };
    let server_hd = ServerRecord {
        name: "hd".into(),
        formats: vec!["flv".into(), "mp4".into(), "hls".into()],
        interval_s: 600,
        resume_s: 30,
        hls_target_s: 10,
        storage_days: 7,
    };
    assert_eq!(
        body(RECORD_KIND, "hd"),
        serde_json::to_string(&server_hd).unwrap()
    );
    assert_eq!(
        body(RECORD_KIND, "hd"),
        r#"{"name":"hd","formats":["flv","mp4","hls"],"interval_s":600,"resume_s":30,"hls_target_s":10,"storage_days":7}"#
    );
    for name in ["a\"b\\c", "none"] {
        let t = all
            .templates
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .decode::<ServerRecord>()
            .unwrap();
        assert_eq!(
            body(RECORD_KIND, name),
            serde_json::to_string(&t.template).unwrap()
        );
    }
    let server_hooks = ServerCallback {
        name: "hooks".into(),
        key: ODD_KEY.into(),
        stream_begin_url: None,
        stream_end_url: Some("http://hook/end".into()),
        record_url: Some("https://hook/rec?a=1&b=2".into()),
        retry_count: 12,
        retry_interval_s: 60,
    };
    assert_eq!(
        body(CALLBACK_KIND, "hooks"),
        serde_json::to_string(&server_hooks).unwrap()
    );
    assert_eq!(
        cat.get_template::<ServerCallback>("hooks")
            .await
            .unwrap()
            .unwrap()
            .template,
        server_hooks
    );
    assert!(
        all.rules
            .iter()
            .all(|r| r.rule.rule.domain == "*"
                && (r.kind == RECORD_KIND || r.rule.rule.stream == "*"))
    );

    // New rules continue above every id handed out before; the constraints came along; the
    // catalogue stays seeded.
    let next = cat
        .insert_rule(RECORD_KIND, &rr("edu", "*", "none"), 500)
        .await
        .unwrap();
    assert_eq!(next.id, 6);
    assert!(
        cat.delete_template::<ServerRecord>("hd")
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(
        cat.insert_rule(RECORD_KIND, &rr("live", "vip_*", "hd"), 501)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(
        cat.insert_rule(CALLBACK_KIND, &callback_rule("edu", "hd"), 502)
            .await
            .unwrap_err()
            .to_string()
            .contains("no callback template named `hd`")
    );
    assert!(!cat.seed_all(&RawSeed::default(), 600).await.unwrap());
    cat.close().await;
}

/// Rule ids that do not collide are all kept, and so is the point a sequence had reached.
async fn migration_0009_keeps_ids_that_do_not_collide(db: &TestDb) {
    let old = migrate_to_0008(db).await;
    old.exec(
        RT_SQL,
        &[
            Text("hd"),
            Text("mp4"),
            Int(600),
            Int(10),
            Int(0),
            Int(0),
            Int(1),
            Int(1),
        ],
    )
    .await;
    old.exec(
        CT_SQL,
        &[
            Text("hooks"),
            Text(""),
            Null,
            Null,
            Text("http://h/r"),
            Int(1),
            Int(1),
            Int(1),
            Int(1),
        ],
    )
    .await;
    for app in ["a", "b"] {
        old.exec(RR_SQL, &[Text(app), Text("*"), Text("hd"), Int(1), Int(1)])
            .await;
    }
    // Callback ids 1..=5, of which 3 survives: no collision with record rules 1, 2.
    for app in ["a", "b", "c", "d", "e"] {
        old.exec(CR_SQL, &[Text(app), Text("hooks"), Int(1), Int(1)])
            .await;
    }
    old.exec("DELETE FROM callback_rules WHERE app <> 'c'", &[])
        .await;
    old.close().await;

    let cat = db.open().await;
    let record_ids: Vec<i64> = cat
        .list_rules(RECORD_KIND)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(record_ids, [1, 2]);
    let cb = cat.list_rules(CALLBACK_KIND).await.unwrap();
    assert_eq!((cb.len(), cb[0].id, cb[0].rule.app.as_str()), (1, 3, "c"));
    // The sequence is past callback_rules' last id (5), not only past the surviving one (3).
    let next = cat
        .insert_rule(CALLBACK_KIND, &callback_rule("f", "hooks"), 2)
        .await
        .unwrap();
    assert_eq!(next.id, 6);
    // And a fresh catalogue (no rows to carry) starts at 1.
    let fresh = if db.is_postgres() {
        TestDb::postgres().await
    } else {
        TestDb::sqlite().await
    };
    let cat2: Catalog = fresh.open().await;
    cat2.create_template(&record_def("hd"), 0).await.unwrap();
    let first = cat2
        .insert_rule(RECORD_KIND, &rule("*", "*", "*", "hd"), 0)
        .await
        .unwrap();
    assert_eq!(first.id, 1);
    cat2.close().await;
    fresh.finish().await;
    cat.close().await;
}
