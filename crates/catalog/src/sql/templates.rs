//! Templates and rules of every kind: `templates` (kind, name, JSON body) and `rules` (kind,
//! domain/app/stream patterns, template name). The statements return sqlx's errors; what a
//! failure means (not found, conflict, unknown template) is decided by the `Catalog` methods
//! in `templates.rs`.

use crate::backend::Conn;
use crate::model::{KindRule, RawTemplate, RuleDef, StoredRule};

type Result<T> = std::result::Result<T, sqlx::Error>;

macro_rules! template_cols {
    () => {
        "id, kind, name, body, created_at_ms, updated_at_ms"
    };
}
macro_rules! rule_cols {
    () => {
        "id, kind, domain, app, stream, template, created_at_ms, updated_at_ms"
    };
}

/// PostgreSQL: one seeder at a time (a transaction-scoped advisory lock; the key is arbitrary
/// but fixed, "lt-seed").
const SEED_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(7021339128)";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    kind: String,
    domain: String,
    app: String,
    stream: String,
    template: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<RuleRow> for KindRule {
    fn from(r: RuleRow) -> Self {
        KindRule {
            kind: r.kind,
            rule: StoredRule {
                id: r.id,
                rule: RuleDef {
                    domain: r.domain,
                    app: r.app,
                    stream: r.stream,
                    template: r.template,
                },
                created_at_ms: r.created_at_ms,
                updated_at_ms: r.updated_at_ms,
            },
        }
    }
}

fn stored(r: RuleRow) -> StoredRule {
    KindRule::from(r).rule
}

/// `kind`'s templates by name.
pub(crate) async fn templates_in(conn: &mut Conn<'_>, kind: &str) -> Result<Vec<RawTemplate>> {
    on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE kind = $1 ORDER BY name"
    ))
    .bind(kind)
    .fetch_all(c)
    .await)
}

/// Every template, by kind and name.
pub(crate) async fn all_templates_in(conn: &mut Conn<'_>) -> Result<Vec<RawTemplate>> {
    on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates ORDER BY kind, name"
    ))
    .fetch_all(c)
    .await)
}

pub(crate) async fn template_in(
    conn: &mut Conn<'_>,
    kind: &str,
    name: &str,
) -> Result<Option<RawTemplate>> {
    on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE kind = $1 AND name = $2"
    ))
    .bind(kind)
    .bind(name)
    .fetch_optional(c)
    .await)
}

/// The template numbered `id` (of any kind).
pub(crate) async fn template_by_id_in(conn: &mut Conn<'_>, id: i64) -> Result<Option<RawTemplate>> {
    on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await)
}

pub(crate) async fn template_exists_in(
    conn: &mut Conn<'_>,
    kind: &str,
    name: &str,
) -> Result<bool> {
    let n: i64 = on_conn!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM templates WHERE kind = $1 AND name = $2"
    )
    .bind(kind)
    .bind(name)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Inserts a template (a UNIQUE violation if it exists) or, with `replace`, inserts or
/// replaces it, keeping `created_at_ms`.
pub(crate) async fn upsert_template_in(
    conn: &mut Conn<'_>,
    kind: &str,
    name: &str,
    body: &str,
    now_ms: i64,
    replace: bool,
) -> Result<RawTemplate> {
    let sql = if replace {
        concat!(
            "INSERT INTO templates (",
            template_cols!(),
            ") VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM templates), $1, $2, $3, $4, $5) ON CONFLICT (kind, name) DO UPDATE SET \
             body = excluded.body, updated_at_ms = excluded.updated_at_ms RETURNING ",
            template_cols!()
        )
    } else {
        concat!(
            "INSERT INTO templates (",
            template_cols!(),
            ") VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM templates), $1, $2, $3, $4, $5) RETURNING ",
            template_cols!()
        )
    };
    on_conn!(conn, |c| sqlx::query_as(sql)
        .bind(kind)
        .bind(name)
        .bind(body)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(c)
        .await)
}

/// How many rules bind template `name` of `kind`.
pub(crate) async fn binding_rules_in(conn: &mut Conn<'_>, kind: &str, name: &str) -> Result<i64> {
    on_conn!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM rules WHERE kind = $1 AND template = $2"
    )
    .bind(kind)
    .bind(name)
    .fetch_one(c)
    .await)
}

pub(crate) async fn delete_template_in(conn: &mut Conn<'_>, kind: &str, name: &str) -> Result<u64> {
    on_conn!(conn, |c| sqlx::query(
        "DELETE FROM templates WHERE kind = $1 AND name = $2"
    )
    .bind(kind)
    .bind(name)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
}

/// `kind`'s rules by id.
pub(crate) async fn rules_in(conn: &mut Conn<'_>, kind: &str) -> Result<Vec<StoredRule>> {
    let rows: Vec<RuleRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        rule_cols!(),
        " FROM rules WHERE kind = $1 ORDER BY id"
    ))
    .bind(kind)
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(stored).collect())
}

/// Every rule, by id.
pub(crate) async fn all_rules_in(conn: &mut Conn<'_>) -> Result<Vec<KindRule>> {
    let rows: Vec<RuleRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        rule_cols!(),
        " FROM rules ORDER BY id"
    ))
    .fetch_all(c)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Inserts a rule (a UNIQUE violation if its kind + patterns exist).
pub(crate) async fn insert_rule_in(
    conn: &mut Conn<'_>,
    kind: &str,
    r: &RuleDef,
    now_ms: i64,
) -> Result<StoredRule> {
    let row: RuleRow = on_conn!(conn, |c| sqlx::query_as(concat!(
        "INSERT INTO rules (kind, domain, app, stream, template, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        rule_cols!()
    ))
    .bind(kind)
    .bind(&r.domain)
    .bind(&r.app)
    .bind(&r.stream)
    .bind(&r.template)
    .bind(now_ms)
    .bind(now_ms)
    .fetch_one(c)
    .await)?;
    Ok(stored(row))
}

/// Replaces rule `id` of `kind`; `None` if there is none.
pub(crate) async fn update_rule_in(
    conn: &mut Conn<'_>,
    kind: &str,
    id: i64,
    r: &RuleDef,
    now_ms: i64,
) -> Result<Option<StoredRule>> {
    let row: Option<RuleRow> = on_conn!(conn, |c| {
        sqlx::query_as(concat!(
        "UPDATE rules SET domain = $1, app = $2, stream = $3, template = $4, updated_at_ms = $5 \
         WHERE id = $6 AND kind = $7 RETURNING ",
        rule_cols!()
    ))
    .bind(&r.domain)
    .bind(&r.app)
    .bind(&r.stream)
    .bind(&r.template)
    .bind(now_ms)
    .bind(id)
    .bind(kind)
    .fetch_optional(c)
    .await
    })?;
    Ok(row.map(stored))
}

pub(crate) async fn delete_rule_in(conn: &mut Conn<'_>, kind: &str, id: i64) -> Result<u64> {
    on_conn!(conn, |c| sqlx::query(
        "DELETE FROM rules WHERE id = $1 AND kind = $2"
    )
    .bind(id)
    .bind(kind)
    .execute(c)
    .await
    .map(|d| d.rows_affected()))
}

/// A seeded rule: one whose kind + patterns exist already is skipped (the first one wins).
pub(crate) async fn seed_rule_in(
    conn: &mut Conn<'_>,
    kind: &str,
    r: &RuleDef,
    now_ms: i64,
) -> Result<()> {
    on_conn!(conn, |c| sqlx::query(
        "INSERT INTO rules (kind, domain, app, stream, template, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, domain, app, stream) DO NOTHING",
    )
    .bind(kind)
    .bind(&r.domain)
    .bind(&r.app)
    .bind(&r.stream)
    .bind(&r.template)
    .bind(now_ms)
    .bind(now_ms)
    .execute(c)
    .await
    .map(drop))
}

/// PostgreSQL: waits for any other seeding transaction (SQLite's write lock does this there).
pub(crate) async fn seed_lock_in(conn: &mut Conn<'_>) -> Result<()> {
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Postgres(c) => sqlx::query(SEED_LOCK_SQL).execute(&mut **c).await.map(drop),
    }
}

/// Whether the `catalog_meta` flag `key` is set.
pub(crate) async fn meta_flag_in(conn: &mut Conn<'_>, key: &str) -> Result<bool> {
    let n: i64 = on_conn!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM catalog_meta WHERE key = $1"
    )
    .bind(key)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

pub(crate) async fn set_meta_flag_in(conn: &mut Conn<'_>, key: &str, value: &str) -> Result<()> {
    on_conn!(conn, |c| sqlx::query(
        "INSERT INTO catalog_meta (key, value) VALUES ($1, $2)"
    )
    .bind(key)
    .bind(value)
    .execute(c)
    .await
    .map(drop))
}
