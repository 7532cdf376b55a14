//! The two engines' migrations build the same schema: the same tables and columns, the same
//! named indexes on the same columns, partial where the other is partial.
use std::collections::BTreeSet;

use sqlx::Connection;

use crate::common::TestDb;

/// (table, column) pairs, named indexes as (name, columns, partial).
type Shape = (BTreeSet<(String, String)>, BTreeSet<(String, String, bool)>);

async fn sqlite_shape(url: &str) -> Shape {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let idx: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT m.name, (SELECT group_concat(name, ',') FROM \
         (SELECT name FROM pragma_index_info(m.name) ORDER BY seqno)), m.sql LIKE '%WHERE%' \
         FROM sqlite_master AS m WHERE m.type = 'index' AND m.sql IS NOT NULL",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    (cols.into_iter().collect(), idx.into_iter().collect())
}

async fn postgres_shape(url: &str) -> Shape {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    // Named indexes only: constraint-backed ones (primary keys, UNIQUE) are SQLite's
    // unnamed autoindexes.
    let idx: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT i.relname::text, \
         (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
          FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
          JOIN pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = k.attnum), \
         x.indpred IS NOT NULL \
         FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid \
         JOIN pg_namespace AS ns ON ns.oid = i.relnamespace \
         WHERE ns.nspname = 'public' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint AS con WHERE con.conindid = x.indexrelid)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    (cols.into_iter().collect(), idx.into_iter().collect())
}

#[tokio::test]
async fn both_engines_build_the_same_schema() {
    let (lite, pg) = (TestDb::sqlite().await, TestDb::postgres().await);
    lite.open().await.close().await;
    pg.open().await.close().await;
    let (lite_cols, lite_idx) = sqlite_shape(&lite.url).await;
    let (pg_cols, pg_idx) = postgres_shape(&pg.url).await;
    assert_eq!(lite_cols, pg_cols, "tables and columns");
    assert_eq!(lite_idx, pg_idx, "named indexes (name, columns, partial)");
    assert!(
        lite_idx
            .iter()
            .any(|(n, _, partial)| n == "idx_outbox_claimed" && *partial),
        "{lite_idx:?}"
    );
    // 0009 replaced the two per-kind template indexes by idx_rules_template; 0011 added
    // idx_templates_id (the templates' numbers).
    assert_eq!(lite_idx.len(), 16, "{lite_idx:?}");
    assert!(
        lite_idx.contains(&("idx_templates_id".into(), "id".into(), false)),
        "{lite_idx:?}"
    );
    assert!(
        lite_idx.contains(&("idx_rules_template".into(), "kind,template".into(), false)),
        "{lite_idx:?}"
    );
    assert!(lite_cols.contains(&("templates".into(), "body".into())));
    assert!(lite_cols.contains(&("rules".into(), "domain".into())));
    assert!(lite_cols.contains(&("uploads".into(), "node".into())));
    assert!(lite_cols.contains(&("stream_leases".into(), "expires_at_ms".into())));
    pg.finish().await;
}
