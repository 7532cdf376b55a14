//! White-box tests: connection settings, and that the listing queries stay
//! index-driven (a regression to a full scan would make Live_Tape_GetFilelist
//! O(table) per page).

use crate::catalog::{count_recordings_sql, page_recordings_sql};
use crate::{Catalog, RecordingQuery, SortOrder};
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
    assert_eq!(applied, 1);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name IN ('push_sessions', 'recordings', 'outbox') ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(tables, ["outbox", "push_sessions", "recordings"]);
    cat.close().await;

    // Reopening must not re-run or fail on the applied migration.
    let cat = Catalog::open(&path).await.unwrap();
    cat.close().await;
}
