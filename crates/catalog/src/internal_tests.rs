//! White-box tests: connection settings, and that the listing queries stay
//! index-driven (a regression to a full scan would make Live_Tape_GetFilelist
//! O(table) per page).

use crate::catalog::{Catalog, count_recordings_sql, page_recordings_sql};
use crate::model::{RecordingQuery, SortOrder};
use sqlx::Row;

async fn plan(cat: &Catalog, mut qb: sqlx::QueryBuilder<sqlx::Sqlite>) -> Vec<String> {
    qb.build()
        .fetch_all(cat.pool())
        .await
        .expect("explain query plan")
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}

fn assert_index_search(lines: &[String], what: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH recordings USING") && l.contains("INDEX")),
        "{what}: expected an index SEARCH, got {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("SCAN recordings")),
        "{what}: full scan in {lines:?}"
    );
}

#[tokio::test]
async fn stream_id_listing_uses_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&dir.path().join("c.db")).await.unwrap();
    let cases = [
        RecordingQuery {
            stream_id: Some("s".into()),
            limit: 10,
            ..Default::default()
        },
        RecordingQuery {
            stream_id: Some("s".into()),
            from_ms: Some(1),
            to_ms: Some(2),
            order: SortOrder::Desc,
            offset: 5,
            limit: 10,
            ..Default::default()
        },
        RecordingQuery {
            appname: Some("live".into()),
            stream_id: Some("s".into()),
            format: Some("flv".into()),
            app: Some("example.com".into()),
            limit: 10,
            ..Default::default()
        },
    ];
    for q in &cases {
        let page = plan(&cat, page_recordings_sql(q, 0, "EXPLAIN QUERY PLAN ")).await;
        assert_index_search(&page, "page");
        let count = plan(&cat, count_recordings_sql(q, "EXPLAIN QUERY PLAN ")).await;
        assert_index_search(&count, "count");
    }
    // The plain stream_id page must also come out of the index in order,
    // without a temporary sort of every match.
    let page = plan(
        &cat,
        page_recordings_sql(&cases[0], 0, "EXPLAIN QUERY PLAN "),
    )
    .await;
    assert!(
        !page.iter().any(|l| l.contains("TEMP B-TREE")),
        "sort not served by index: {page:?}"
    );
    cat.close().await;
}

#[tokio::test]
async fn open_applies_migrations_and_durability_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.db");
    let cat = Catalog::open(&path).await.unwrap();
    assert!(path.exists());
    let pool = cat.pool();
    let one = |sql: &'static str| async move {
        sqlx::query(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(one("PRAGMA journal_mode").await.get::<String, _>(0), "wal");
    assert_eq!(one("PRAGMA synchronous").await.get::<i64, _>(0), 2, "FULL");
    assert_eq!(one("PRAGMA foreign_keys").await.get::<i64, _>(0), 1);
    assert!(one("PRAGMA busy_timeout").await.get::<i64, _>(0) >= 1000);
    let applied: i64 = one("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .await
        .get(0);
    assert_eq!(applied, 13);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name IN ('push_sessions', 'recordings', 'outbox', 'templates', 'rules', \
         'record_templates', 'record_rules', 'callback_templates', 'callback_rules', \
         'catalog_meta', 'garbage') \
         ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "catalog_meta",
            "garbage",
            "outbox",
            "push_sessions",
            "recordings",
            "rules",
            "templates"
        ]
    );
    cat.close().await;

    // Reopening must not re-run or fail on the applied migration.
    let cat = Catalog::open(&path).await.unwrap();
    cat.close().await;
}

/// The API pre-checks bindings, but the schema must refuse on its own too (another writer,
/// a manual `sqlite3` session): deleting a bound template and binding a missing one both fail.
#[tokio::test]
async fn template_foreign_keys_are_enforced_by_the_schema() {
    use crate::model::RuleDef;
    use crate::templates::{CALLBACK_KIND, RECORD_KIND, TemplateBody};

    /// Test-local bodies: the schema check does not care what is inside one.
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Record {
        name: String,
    }
    impl TemplateBody for Record {
        const KIND: &'static str = RECORD_KIND;
        fn name(&self) -> &str {
            &self.name
        }
    }
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Callback {
        name: String,
        record_url: Option<String>,
    }
    impl TemplateBody for Callback {
        const KIND: &'static str = CALLBACK_KIND;
        fn name(&self) -> &str {
            &self.name
        }
    }
    let rule = |stream: &str, template: &str| RuleDef {
        domain: RuleDef::ANY.into(),
        app: "*".into(),
        stream: stream.into(),
        template: template.into(),
    };

    let cat = Catalog::open_in_memory().await.unwrap();
    let t = Record { name: "hd".into() };
    cat.create_template(&t, 0).await.unwrap();
    cat.insert_rule(RECORD_KIND, &rule("*", "hd"), 0)
        .await
        .unwrap();
    let c = Callback {
        name: "cb".into(),
        record_url: Some("http://h/r".into()),
    };
    cat.create_template(&c, 0).await.unwrap();
    cat.insert_rule(CALLBACK_KIND, &rule("*", "cb"), 0)
        .await
        .unwrap();

    for sql in [
        "DELETE FROM templates WHERE kind = 'record' AND name = 'hd'",
        "UPDATE templates SET name = 'x' WHERE kind = 'record' AND name = 'hd'",
        "DELETE FROM templates WHERE kind = 'callback' AND name = 'cb'",
        "INSERT INTO rules (kind, app, stream, template, created_at_ms, updated_at_ms) \
         VALUES ('record', 'a', 'b', 'missing', 0, 0)",
        "INSERT INTO rules (kind, app, stream, template, created_at_ms, updated_at_ms) \
         VALUES ('callback', 'a', '*', 'missing', 0, 0)",
        // A rule binds a template of its own kind only.
        "INSERT INTO rules (kind, app, stream, template, created_at_ms, updated_at_ms) \
         VALUES ('callback', 'b', '*', 'hd', 0, 0)",
    ] {
        let err = sqlx::query(sql).execute(cat.pool()).await.unwrap_err();
        // RESTRICT actions report SQLITE_CONSTRAINT_TRIGGER, deferred-less inserts
        // SQLITE_CONSTRAINT_FOREIGNKEY; both carry this message.
        let is_fk = matches!(&err, sqlx::Error::Database(e)
            if e.message().contains("FOREIGN KEY constraint failed"));
        assert!(is_fk, "{sql}: {err}");
    }
    assert!(cat.get_template::<Record>("hd").await.unwrap().is_some());
}

/// Retention polls for expired rows every few minutes: that must be an index range
/// scan in expiry order, not a scan + sort of every recording.
#[tokio::test]
async fn expiry_scan_uses_the_partial_index() {
    let cat = Catalog::open_in_memory().await.unwrap();
    let qb = sqlx::QueryBuilder::new(format!(
        "EXPLAIN QUERY PLAN {}",
        crate::sql::recordings::EXPIRED_SQL
    ));
    let lines = plan(&cat, qb).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH recordings USING")
                && l.contains("idx_recordings_expires")),
        "expected the expiry index, got {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("TEMP B-TREE")),
        "{lines:?}"
    );
}

/// Every node looks for orphaned pushes every few seconds: only the open sessions may be read.
#[tokio::test]
async fn orphaned_pushes_read_only_open_sessions() {
    let cat = Catalog::open_in_memory().await.unwrap();
    let qb = sqlx::QueryBuilder::new(format!(
        "EXPLAIN QUERY PLAN {}",
        crate::sql::sessions::ORPHANED_PUSHES_SQL
    ));
    let lines = plan(&cat, qb).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("push_sessions USING") && l.contains("idx_push_sessions_open")),
        "expected the open-sessions index, got {lines:?}"
    );
}

/// The strict-order check runs once per candidate outbox row (and `next_due_at` after every
/// notifier scan): each must be one seek in `idx_outbox_stream_state_id`, and the outer query
/// must stay on an index, not a scan of every delivered row kept for inspection.
#[tokio::test]
async fn outbox_order_checks_use_the_stream_index() {
    use crate::sql::outbox::{DUE_EVENTS_SQL, NEXT_DUE_SQL, OUTBOX_DUE_SQL};
    let cat = Catalog::open_in_memory().await.unwrap();
    for (what, sql) in [
        ("due_events", DUE_EVENTS_SQL),
        ("next_due_at", NEXT_DUE_SQL),
        ("outbox_due", OUTBOX_DUE_SQL),
    ] {
        let lines = plan(
            &cat,
            sqlx::QueryBuilder::new(format!("EXPLAIN QUERY PLAN {sql}")),
        )
        .await;
        assert!(
            lines.iter().any(|l| l.starts_with("SEARCH earlier USING")
                && l.contains("idx_outbox_stream_state_id")
                && l.contains("stream_id=? AND state=? AND id<?")),
            "{what}: order check not served by the stream index: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("SEARCH outbox USING") && l.contains("INDEX")),
            "{what}: expected an index SEARCH of the outer rows: {lines:?}"
        );
        // (`SCAN` of a one-row subquery of next_due_at is fine.)
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("SCAN outbox") || l.starts_with("SCAN earlier")),
            "{what}: full scan in {lines:?}"
        );
    }
    // The sleep deadline comes straight from the time index, without sorting pending rows.
    let lines = plan(
        &cat,
        sqlx::QueryBuilder::new(format!("EXPLAIN QUERY PLAN {NEXT_DUE_SQL}")),
    )
    .await;
    assert!(
        lines.iter().any(|l| l.contains("idx_outbox_state_due")),
        "{lines:?}"
    );
    // Claimed rows (in flight) come from the small partial index, not from the pending ones.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH outbox USING INDEX idx_outbox_claimed")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("TEMP B-TREE")),
        "{lines:?}"
    );
}

fn recording(file_id: &str) -> crate::model::Recording {
    crate::model::Recording {
        file_id: file_id.into(),
        sequence: "seq".into(),
        app: "example.com".into(),
        appname: "live".into(),
        stream_id: "s".into(),
        format: "flv".into(),
        start_ms: 1,
        end_ms: 2,
        duration_ms: 1,
        size_bytes: 10,
        path: format!("live/s/{file_id}.flv"),
        video_url: format!("http://x/vod/{file_id}/f.flv"),
        stream_param: String::new(),
        video_codec: "h264".into(),
        width: 640,
        height: 360,
        media_start_ms: 0,
        created_at_ms: 3,
        expires_at_ms: None,
    }
}

/// A burst of writes shares transactions (group commit), and a failing write in a batch is
/// reported to its own caller only: the others of its batch are durable.
#[tokio::test]
async fn a_burst_of_writes_is_group_committed_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&dir.path().join("c.db")).await.unwrap();
    cat.insert_recording(&recording("dup"), vec![])
        .await
        .unwrap();
    let before = cat.writer_commits();
    let ids: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (cat, id) = (cat.clone(), id.clone());
        tasks.spawn(async move {
            let id = if i == 100 { "dup".to_string() } else { id };
            (
                id.clone(),
                cat.insert_recording(&recording(&id), vec![]).await,
            )
        });
    }
    let mut failed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (id, r) = r.unwrap();
        if let Err(e) = r {
            assert!(e.is_conflict(), "{e}");
            failed.push(id);
        }
    }
    assert_eq!(failed, ["dup"]);
    let commits = cat.writer_commits() - before;
    assert!(
        commits < 200,
        "{commits} commits for 200 writes: no batching"
    );
    let (total, _) = cat
        .list_recordings(&RecordingQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 200, "199 new rows + the first `dup`");
    cat.close().await;
}

/// `/metrics` reads the outbox depth at every scrape: only the pending rows, found by index.
#[tokio::test]
async fn outbox_pending_stats_reads_only_pending_rows() {
    let cat = Catalog::open_in_memory().await.unwrap();
    let lines = plan(
        &cat,
        sqlx::QueryBuilder::new(format!(
            "EXPLAIN QUERY PLAN {}",
            crate::sql::outbox::OUTBOX_PENDING_STATS_SQL
        )),
    )
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("SEARCH outbox USING") && l.contains("(state=?)")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("SCAN")), "{lines:?}");
}
