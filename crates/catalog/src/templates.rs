//! Record/callback templates and the rules that bind them (Tencent §3.1–3.2, §1.4), editable
//! at run time.
//!
//! Source of truth: the configuration file only *seeds* these tables, once, on the first start
//! of a catalogue ([`Catalog::seed_templates`]). From then on the database is the source of
//! truth: edit templates and rules over the REST API; changing them in the config file has no
//! effect on an existing catalogue (delete the catalogue, or use the API, to apply them).
//!
//! The catalogue stores what it is given; range checks (interval, formats, URLs) are the
//! caller's. It enforces the relational rules itself: names and rule keys are unique, a rule
//! must name an existing template, and a template bound by a rule cannot be deleted.

use crate::backend::{Begin, Conn};
use crate::catalog::Catalog;
use crate::error::{CatalogError, Result, db_err};

/// Marker row in `catalog_meta` set by the first [`Catalog::seed_templates`].
const SEEDED_KEY: &str = "templates_seeded";
/// PostgreSQL: one seeder at a time (a transaction-scoped advisory lock; the key is arbitrary
/// but fixed, "lt-seed").
const SEED_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(7021339128)";
const RECORD_TEMPLATE: &str = "record template";
const RECORD_RULE: &str = "record rule";
const CALLBACK_TEMPLATE: &str = "callback template";
const CALLBACK_RULE: &str = "callback rule";

/// A record template as the caller defines it (no timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordTemplateDef {
    pub name: String,
    /// Format names, e.g. `["flv", "mp4"]`; must not contain commas (stored comma-joined).
    pub formats: Vec<String>,
    pub interval_s: u32,
    pub hls_target_s: u32,
    pub resume_s: u32,
    /// 0 = keep forever.
    pub storage_days: u32,
}

/// Binds a record template to pushes whose app and stream match the (glob) patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRuleDef {
    pub app: String,
    pub stream: String,
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTemplateDef {
    pub name: String,
    pub key: String,
    pub stream_begin_url: Option<String>,
    pub stream_end_url: Option<String>,
    pub record_url: Option<String>,
    pub retry_count: u32,
    pub retry_interval_s: u32,
}

/// Binds a callback template to pushes whose app matches the (glob) pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRuleDef {
    pub app: String,
    pub template: String,
}

/// A stored template with its timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate<T> {
    pub template: T,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A stored rule. `id` is assigned on insert and only grows, so id order is creation order
/// (the tie-break between equally specific rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule<T> {
    pub id: i64,
    pub rule: T,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Initial templates and rules, usually from the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSeed {
    pub record_templates: Vec<RecordTemplateDef>,
    pub record_rules: Vec<RecordRuleDef>,
    pub callback_templates: Vec<CallbackTemplateDef>,
    pub callback_rules: Vec<CallbackRuleDef>,
}

/// Everything, read in one snapshot: templates by name, rules by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    pub record_templates: Vec<StoredTemplate<RecordTemplateDef>>,
    pub record_rules: Vec<StoredRule<RecordRuleDef>>,
    pub callback_templates: Vec<StoredTemplate<CallbackTemplateDef>>,
    pub callback_rules: Vec<StoredRule<CallbackRuleDef>>,
}

#[derive(sqlx::FromRow)]
struct RecordTemplateRow {
    name: String,
    formats: String,
    #[sqlx(try_from = "i64")]
    interval_s: u32,
    #[sqlx(try_from = "i64")]
    hls_target_s: u32,
    #[sqlx(try_from = "i64")]
    resume_s: u32,
    #[sqlx(try_from = "i64")]
    storage_days: u32,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<RecordTemplateRow> for StoredTemplate<RecordTemplateDef> {
    fn from(r: RecordTemplateRow) -> Self {
        StoredTemplate {
            template: RecordTemplateDef {
                name: r.name,
                formats: r
                    .formats
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
                interval_s: r.interval_s,
                hls_target_s: r.hls_target_s,
                resume_s: r.resume_s,
                storage_days: r.storage_days,
            },
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CallbackTemplateRow {
    name: String,
    key: String,
    stream_begin_url: Option<String>,
    stream_end_url: Option<String>,
    record_url: Option<String>,
    #[sqlx(try_from = "i64")]
    retry_count: u32,
    #[sqlx(try_from = "i64")]
    retry_interval_s: u32,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<CallbackTemplateRow> for StoredTemplate<CallbackTemplateDef> {
    fn from(r: CallbackTemplateRow) -> Self {
        StoredTemplate {
            template: CallbackTemplateDef {
                name: r.name,
                key: r.key,
                stream_begin_url: r.stream_begin_url,
                stream_end_url: r.stream_end_url,
                record_url: r.record_url,
                retry_count: r.retry_count,
                retry_interval_s: r.retry_interval_s,
            },
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RecordRuleRow {
    id: i64,
    app: String,
    stream: String,
    template: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<RecordRuleRow> for StoredRule<RecordRuleDef> {
    fn from(r: RecordRuleRow) -> Self {
        StoredRule {
            id: r.id,
            rule: RecordRuleDef {
                app: r.app,
                stream: r.stream,
                template: r.template,
            },
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CallbackRuleRow {
    id: i64,
    app: String,
    template: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl From<CallbackRuleRow> for StoredRule<CallbackRuleDef> {
    fn from(r: CallbackRuleRow) -> Self {
        StoredRule {
            id: r.id,
            rule: CallbackRuleDef {
                app: r.app,
                template: r.template,
            },
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

macro_rules! rt_cols {
    () => {
        "name, formats, interval_s, hls_target_s, resume_s, storage_days, created_at_ms, \
         updated_at_ms"
    };
}
macro_rules! ct_cols {
    () => {
        "name, key, stream_begin_url, stream_end_url, record_url, retry_count, retry_interval_s, \
         created_at_ms, updated_at_ms"
    };
}
macro_rules! rr_cols {
    () => {
        "id, app, stream, template, created_at_ms, updated_at_ms"
    };
}
macro_rules! cr_cols {
    () => {
        "id, app, template, created_at_ms, updated_at_ms"
    };
}

/// Maps a UNIQUE violation to [`CatalogError::Conflict`] with a readable reason.
fn conflict_or_db(
    op: &'static str,
    what: &'static str,
    key: String,
    reason: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |source| match &source {
        sqlx::Error::Database(e) if e.is_unique_violation() => CatalogError::Conflict {
            what,
            key,
            reason: reason(),
        },
        _ => CatalogError::Db { op, key, source },
    }
}

async fn template_exists(
    conn: &mut Conn<'_>,
    op: &'static str,
    table_sql: &'static str,
    name: &str,
) -> Result<bool> {
    let n: i64 = on_conn!(conn, |c| sqlx::query_scalar(table_sql)
        .bind(name)
        .fetch_one(c)
        .await)
    .map_err(db_err(op, format_args!("name={name}")))?;
    Ok(n > 0)
}

async fn record_templates_in(
    conn: &mut Conn<'_>,
) -> Result<Vec<StoredTemplate<RecordTemplateDef>>> {
    let rows: Vec<RecordTemplateRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        rt_cols!(),
        " FROM record_templates ORDER BY name"
    ))
    .fetch_all(c)
    .await)
    .map_err(db_err("list_record_templates", ""))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

async fn record_rules_in(conn: &mut Conn<'_>) -> Result<Vec<StoredRule<RecordRuleDef>>> {
    let rows: Vec<RecordRuleRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        rr_cols!(),
        " FROM record_rules ORDER BY id"
    ))
    .fetch_all(c)
    .await)
    .map_err(db_err("list_record_rules", ""))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

async fn callback_templates_in(
    conn: &mut Conn<'_>,
) -> Result<Vec<StoredTemplate<CallbackTemplateDef>>> {
    let rows: Vec<CallbackTemplateRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        ct_cols!(),
        " FROM callback_templates ORDER BY name"
    ))
    .fetch_all(c)
    .await)
    .map_err(db_err("list_callback_templates", ""))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

async fn callback_rules_in(conn: &mut Conn<'_>) -> Result<Vec<StoredRule<CallbackRuleDef>>> {
    let rows: Vec<CallbackRuleRow> = on_conn!(conn, |c| sqlx::query_as(concat!(
        "SELECT ",
        cr_cols!(),
        " FROM callback_rules ORDER BY id"
    ))
    .fetch_all(c)
    .await)
    .map_err(db_err("list_callback_rules", ""))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Inserts or replaces a record template; `created_at_ms` is kept on replace.
async fn upsert_record_template(
    conn: &mut Conn<'_>,
    op: &'static str,
    t: &RecordTemplateDef,
    now_ms: i64,
    replace: bool,
) -> Result<StoredTemplate<RecordTemplateDef>> {
    let sql = if replace {
        concat!(
            "INSERT INTO record_templates (",
            rt_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET \
             formats = excluded.formats, interval_s = excluded.interval_s, \
             hls_target_s = excluded.hls_target_s, resume_s = excluded.resume_s, \
             storage_days = excluded.storage_days, updated_at_ms = excluded.updated_at_ms \
             RETURNING ",
            rt_cols!()
        )
    } else {
        concat!(
            "INSERT INTO record_templates (",
            rt_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            rt_cols!()
        )
    };
    let row: RecordTemplateRow = on_conn!(conn, |c| sqlx::query_as(sql)
        .bind(&t.name)
        .bind(t.formats.join(","))
        .bind(i64::from(t.interval_s))
        .bind(i64::from(t.hls_target_s))
        .bind(i64::from(t.resume_s))
        .bind(i64::from(t.storage_days))
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(c)
        .await)
    .map_err(conflict_or_db(
        op,
        RECORD_TEMPLATE,
        format!("name={}", t.name),
        || "a record template with this name already exists".into(),
    ))?;
    Ok(row.into())
}

async fn upsert_callback_template(
    conn: &mut Conn<'_>,
    op: &'static str,
    t: &CallbackTemplateDef,
    now_ms: i64,
    replace: bool,
) -> Result<StoredTemplate<CallbackTemplateDef>> {
    let sql = if replace {
        concat!(
            "INSERT INTO callback_templates (",
            ct_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO UPDATE SET \
             key = excluded.key, stream_begin_url = excluded.stream_begin_url, \
             stream_end_url = excluded.stream_end_url, record_url = excluded.record_url, \
             retry_count = excluded.retry_count, retry_interval_s = excluded.retry_interval_s, \
             updated_at_ms = excluded.updated_at_ms RETURNING ",
            ct_cols!()
        )
    } else {
        concat!(
            "INSERT INTO callback_templates (",
            ct_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            ct_cols!()
        )
    };
    let row: CallbackTemplateRow = on_conn!(conn, |c| sqlx::query_as(sql)
        .bind(&t.name)
        .bind(&t.key)
        .bind(&t.stream_begin_url)
        .bind(&t.stream_end_url)
        .bind(&t.record_url)
        .bind(i64::from(t.retry_count))
        .bind(i64::from(t.retry_interval_s))
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(c)
        .await)
    .map_err(conflict_or_db(
        op,
        CALLBACK_TEMPLATE,
        format!("name={}", t.name),
        || "a callback template with this name already exists".into(),
    ))?;
    Ok(row.into())
}

/// Deletes a template unless a rule still binds it (Tencent: unbind before delete).
async fn delete_template(
    cat: &Catalog,
    op: &'static str,
    what: &'static str,
    rules_sql: &'static str,
    delete_sql: &'static str,
    name: &str,
) -> Result<()> {
    let key = || format!("name={name}");
    on_pool!(&cat.db, |pool| {
        let mut tx = pool.begin_write().await.map_err(db_err(op, key()))?;
        let bound: i64 = sqlx::query_scalar(rules_sql)
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err(op, key()))?;
        if bound > 0 {
            return Err(CatalogError::Conflict {
                what,
                key: key(),
                reason: format!("still bound by {bound} rule(s); delete or rebind them first"),
            });
        }
        // A rule bound on another node since the count still fails here, on the foreign key.
        let gone = sqlx::query(delete_sql)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_err(op, key()))?
            .rows_affected();
        if gone == 0 {
            return Err(CatalogError::NotFound { what, key: key() });
        }
        tx.commit().await.map_err(db_err(op, key()))
    })
}

async fn delete_rule(
    cat: &Catalog,
    op: &'static str,
    what: &'static str,
    sql: &'static str,
    id: i64,
) -> Result<()> {
    let gone = on_pool!(&cat.db, |pool| sqlx::query(sql)
        .bind(id)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))
    .map_err(db_err(op, format_args!("id={id}")))?;
    if gone == 0 {
        return Err(CatalogError::NotFound {
            what,
            key: format!("id={id}"),
        });
    }
    Ok(())
}

const RECORD_TEMPLATE_EXISTS: &str = "SELECT COUNT(*) FROM record_templates WHERE name = $1";
const CALLBACK_TEMPLATE_EXISTS: &str = "SELECT COUNT(*) FROM callback_templates WHERE name = $1";

/// Inserts (`id` = None) or updates a record rule, checking its template first so the caller
/// gets [`CatalogError::UnknownTemplate`] rather than a bare foreign-key failure.
async fn write_record_rule(
    cat: &Catalog,
    op: &'static str,
    id: Option<i64>,
    r: &RecordRuleDef,
    now_ms: i64,
) -> Result<StoredRule<RecordRuleDef>> {
    let key = || id.map_or_else(|| format!("app={} stream={}", r.app, r.stream), id_key);
    on_pool!(&cat.db, |pool| {
        let mut tx = pool.begin_write().await.map_err(db_err(op, key()))?;
        if !template_exists(
            &mut Conn::from(&mut *tx),
            op,
            RECORD_TEMPLATE_EXISTS,
            &r.template,
        )
        .await?
        {
            return Err(CatalogError::UnknownTemplate {
                what: RECORD_TEMPLATE,
                name: r.template.clone(),
            });
        }
        let dup = || {
            format!(
                "a record rule for app `{}` stream `{}` already exists",
                r.app, r.stream
            )
        };
        let row: Option<RecordRuleRow> = match id {
            None => sqlx::query_as(concat!(
                "INSERT INTO record_rules (app, stream, template, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING ",
                rr_cols!()
            ))
            .bind(&r.app)
            .bind(&r.stream)
            .bind(&r.template)
            .bind(now_ms)
            .bind(now_ms),
            Some(id) => sqlx::query_as(concat!(
                "UPDATE record_rules SET app = $1, stream = $2, template = $3, updated_at_ms = $4 \
             WHERE id = $5 RETURNING ",
                rr_cols!()
            ))
            .bind(&r.app)
            .bind(&r.stream)
            .bind(&r.template)
            .bind(now_ms)
            .bind(id),
        }
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict_or_db(op, RECORD_RULE, key(), dup))?;
        let row = row.ok_or_else(|| CatalogError::NotFound {
            what: RECORD_RULE,
            key: key(),
        })?;
        tx.commit().await.map_err(db_err(op, key()))?;
        Ok(row.into())
    })
}

async fn write_callback_rule(
    cat: &Catalog,
    op: &'static str,
    id: Option<i64>,
    r: &CallbackRuleDef,
    now_ms: i64,
) -> Result<StoredRule<CallbackRuleDef>> {
    let key = || id.map_or_else(|| format!("app={}", r.app), id_key);
    on_pool!(&cat.db, |pool| {
        let mut tx = pool.begin_write().await.map_err(db_err(op, key()))?;
        if !template_exists(
            &mut Conn::from(&mut *tx),
            op,
            CALLBACK_TEMPLATE_EXISTS,
            &r.template,
        )
        .await?
        {
            return Err(CatalogError::UnknownTemplate {
                what: CALLBACK_TEMPLATE,
                name: r.template.clone(),
            });
        }
        let dup = || format!("a callback rule for app `{}` already exists", r.app);
        let row: Option<CallbackRuleRow> = match id {
            None => sqlx::query_as(concat!(
                "INSERT INTO callback_rules (app, template, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4) RETURNING ",
                cr_cols!()
            ))
            .bind(&r.app)
            .bind(&r.template)
            .bind(now_ms)
            .bind(now_ms),
            Some(id) => sqlx::query_as(concat!(
                "UPDATE callback_rules SET app = $1, template = $2, updated_at_ms = $3 \
             WHERE id = $4 RETURNING ",
                cr_cols!()
            ))
            .bind(&r.app)
            .bind(&r.template)
            .bind(now_ms)
            .bind(id),
        }
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict_or_db(op, CALLBACK_RULE, key(), dup))?;
        let row = row.ok_or_else(|| CatalogError::NotFound {
            what: CALLBACK_RULE,
            key: key(),
        })?;
        tx.commit().await.map_err(db_err(op, key()))?;
        Ok(row.into())
    })
}

fn id_key(id: i64) -> String {
    format!("id={id}")
}

impl Catalog {
    // ---- record templates ---------------------------------------------

    /// All record templates, by name.
    pub async fn list_record_templates(&self) -> Result<Vec<StoredTemplate<RecordTemplateDef>>> {
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err("list_record_templates", ""))?;
            record_templates_in(&mut Conn::from(&mut *conn)).await
        })
    }

    pub async fn get_record_template(
        &self,
        name: &str,
    ) -> Result<Option<StoredTemplate<RecordTemplateDef>>> {
        let row: Option<RecordTemplateRow> = on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            rt_cols!(),
            " FROM record_templates WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("get_record_template", format_args!("name={name}")))?;
        Ok(row.map(Into::into))
    }

    /// Creates a record template; [`CatalogError::Conflict`] if the name is taken.
    pub async fn create_record_template(
        &self,
        t: &RecordTemplateDef,
        now_ms: i64,
    ) -> Result<StoredTemplate<RecordTemplateDef>> {
        const OP: &str = "create_record_template";
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err(OP, format_args!("name={}", t.name)))?;
            upsert_record_template(&mut Conn::from(&mut *conn), OP, t, now_ms, false).await
        })
    }

    /// Creates or replaces a record template. The bool is true when it was created.
    pub async fn put_record_template(
        &self,
        t: &RecordTemplateDef,
        now_ms: i64,
    ) -> Result<(StoredTemplate<RecordTemplateDef>, bool)> {
        const OP: &str = "put_record_template";
        let key = || format!("name={}", t.name);
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            let existed = template_exists(
                &mut Conn::from(&mut *tx),
                OP,
                RECORD_TEMPLATE_EXISTS,
                &t.name,
            )
            .await?;
            let stored =
                upsert_record_template(&mut Conn::from(&mut *tx), OP, t, now_ms, true).await?;
            tx.commit().await.map_err(db_err(OP, key()))?;
            Ok((stored, !existed))
        })
    }

    /// Deletes a record template: [`CatalogError::NotFound`] if there is none,
    /// [`CatalogError::Conflict`] while a record rule binds it.
    pub async fn delete_record_template(&self, name: &str) -> Result<()> {
        delete_template(
            self,
            "delete_record_template",
            RECORD_TEMPLATE,
            "SELECT COUNT(*) FROM record_rules WHERE template = $1",
            "DELETE FROM record_templates WHERE name = $1",
            name,
        )
        .await
    }

    // ---- record rules --------------------------------------------------

    /// All record rules, by id (= creation order).
    pub async fn list_record_rules(&self) -> Result<Vec<StoredRule<RecordRuleDef>>> {
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err("list_record_rules", ""))?;
            record_rules_in(&mut Conn::from(&mut *conn)).await
        })
    }

    /// Adds a rule: [`CatalogError::UnknownTemplate`] if its template does not exist,
    /// [`CatalogError::Conflict`] if a rule for the same app and stream exists.
    pub async fn insert_record_rule(
        &self,
        r: &RecordRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<RecordRuleDef>> {
        write_record_rule(self, "insert_record_rule", None, r, now_ms).await
    }

    /// Replaces rule `id`: the errors of [`Catalog::insert_record_rule`], plus
    /// [`CatalogError::NotFound`].
    pub async fn update_record_rule(
        &self,
        id: i64,
        r: &RecordRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<RecordRuleDef>> {
        write_record_rule(self, "update_record_rule", Some(id), r, now_ms).await
    }

    /// [`CatalogError::NotFound`] if there is no rule `id`.
    pub async fn delete_record_rule(&self, id: i64) -> Result<()> {
        delete_rule(
            self,
            "delete_record_rule",
            RECORD_RULE,
            "DELETE FROM record_rules WHERE id = $1",
            id,
        )
        .await
    }

    // ---- callback templates --------------------------------------------

    /// All callback templates, by name.
    pub async fn list_callback_templates(
        &self,
    ) -> Result<Vec<StoredTemplate<CallbackTemplateDef>>> {
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err("list_callback_templates", ""))?;
            callback_templates_in(&mut Conn::from(&mut *conn)).await
        })
    }

    pub async fn get_callback_template(
        &self,
        name: &str,
    ) -> Result<Option<StoredTemplate<CallbackTemplateDef>>> {
        let row: Option<CallbackTemplateRow> = on_pool!(&self.db, |pool| sqlx::query_as(concat!(
            "SELECT ",
            ct_cols!(),
            " FROM callback_templates WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(pool)
        .await)
        .map_err(db_err("get_callback_template", format_args!("name={name}")))?;
        Ok(row.map(Into::into))
    }

    /// Creates a callback template; [`CatalogError::Conflict`] if the name is taken.
    pub async fn create_callback_template(
        &self,
        t: &CallbackTemplateDef,
        now_ms: i64,
    ) -> Result<StoredTemplate<CallbackTemplateDef>> {
        const OP: &str = "create_callback_template";
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err(OP, format_args!("name={}", t.name)))?;
            upsert_callback_template(&mut Conn::from(&mut *conn), OP, t, now_ms, false).await
        })
    }

    /// Creates or replaces a callback template. The bool is true when it was created.
    pub async fn put_callback_template(
        &self,
        t: &CallbackTemplateDef,
        now_ms: i64,
    ) -> Result<(StoredTemplate<CallbackTemplateDef>, bool)> {
        const OP: &str = "put_callback_template";
        let key = || format!("name={}", t.name);
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            let existed = template_exists(
                &mut Conn::from(&mut *tx),
                OP,
                CALLBACK_TEMPLATE_EXISTS,
                &t.name,
            )
            .await?;
            let stored =
                upsert_callback_template(&mut Conn::from(&mut *tx), OP, t, now_ms, true).await?;
            tx.commit().await.map_err(db_err(OP, key()))?;
            Ok((stored, !existed))
        })
    }

    /// Deletes a callback template: [`CatalogError::NotFound`] if there is none,
    /// [`CatalogError::Conflict`] while a callback rule binds it.
    pub async fn delete_callback_template(&self, name: &str) -> Result<()> {
        delete_template(
            self,
            "delete_callback_template",
            CALLBACK_TEMPLATE,
            "SELECT COUNT(*) FROM callback_rules WHERE template = $1",
            "DELETE FROM callback_templates WHERE name = $1",
            name,
        )
        .await
    }

    // ---- callback rules ------------------------------------------------

    /// All callback rules, by id (= creation order).
    pub async fn list_callback_rules(&self) -> Result<Vec<StoredRule<CallbackRuleDef>>> {
        on_pool!(&self.db, |pool| {
            let mut conn = pool
                .acquire()
                .await
                .map_err(db_err("list_callback_rules", ""))?;
            callback_rules_in(&mut Conn::from(&mut *conn)).await
        })
    }

    /// Adds a rule: [`CatalogError::UnknownTemplate`] if its template does not exist,
    /// [`CatalogError::Conflict`] if a rule for the same app exists.
    pub async fn insert_callback_rule(
        &self,
        r: &CallbackRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<CallbackRuleDef>> {
        write_callback_rule(self, "insert_callback_rule", None, r, now_ms).await
    }

    /// Replaces rule `id`: the errors of [`Catalog::insert_callback_rule`], plus
    /// [`CatalogError::NotFound`].
    pub async fn update_callback_rule(
        &self,
        id: i64,
        r: &CallbackRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<CallbackRuleDef>> {
        write_callback_rule(self, "update_callback_rule", Some(id), r, now_ms).await
    }

    /// [`CatalogError::NotFound`] if there is no rule `id`.
    pub async fn delete_callback_rule(&self, id: i64) -> Result<()> {
        delete_rule(
            self,
            "delete_callback_rule",
            CALLBACK_RULE,
            "DELETE FROM callback_rules WHERE id = $1",
            id,
        )
        .await
    }

    // ---- snapshot and seeding ------------------------------------------

    /// Every template and rule, read in one transaction so rules and templates agree.
    pub async fn load_templates(&self) -> Result<TemplateSet> {
        const OP: &str = "load_templates";
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_read().await.map_err(db_err(OP, ""))?;
            let mut conn = Conn::from(&mut *tx);
            let set = TemplateSet {
                record_templates: record_templates_in(&mut conn).await?,
                record_rules: record_rules_in(&mut conn).await?,
                callback_templates: callback_templates_in(&mut conn).await?,
                callback_rules: callback_rules_in(&mut conn).await?,
            };
            tx.commit().await.map_err(db_err(OP, ""))?;
            Ok(set)
        })
    }

    /// Seeds templates and rules, once per catalogue: on the first call it inserts `seed`
    /// and records that it did (returns true); every later call does nothing (returns false),
    /// even if the tables have since been emptied over the API. After the first start the
    /// database is the source of truth and the configuration file only seeds it.
    ///
    /// Duplicate template names or rule keys in `seed` keep the first occurrence, which is
    /// also the one that wins rule precedence (first in the file). A rule naming a missing
    /// template fails the whole seed ([`CatalogError::UnknownTemplate`]), leaving nothing.
    pub async fn seed_templates(&self, seed: &TemplateSeed, now_ms: i64) -> Result<bool> {
        const OP: &str = "seed_templates";
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, ""))?;
            if matches!(self.db, crate::backend::Db::Postgres(_)) {
                // Nodes starting together on an empty catalogue: one seeds, the others wait
                // for its commit and then find the marker (SQLite's write lock does this there).
                sqlx::query(SEED_LOCK_SQL)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err(OP, "lock"))?;
            }
            let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_meta WHERE key = $1")
                .bind(SEEDED_KEY)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err(OP, ""))?;
            if done > 0 {
                return Ok(false);
            }
            for t in &seed.record_templates {
                let mut conn = Conn::from(&mut *tx);
                if !template_exists(&mut conn, OP, RECORD_TEMPLATE_EXISTS, &t.name).await? {
                    upsert_record_template(&mut conn, OP, t, now_ms, false).await?;
                }
            }
            for t in &seed.callback_templates {
                let mut conn = Conn::from(&mut *tx);
                if !template_exists(&mut conn, OP, CALLBACK_TEMPLATE_EXISTS, &t.name).await? {
                    upsert_callback_template(&mut conn, OP, t, now_ms, false).await?;
                }
            }
            for r in &seed.record_rules {
                if !template_exists(
                    &mut Conn::from(&mut *tx),
                    OP,
                    RECORD_TEMPLATE_EXISTS,
                    &r.template,
                )
                .await?
                {
                    return Err(CatalogError::UnknownTemplate {
                        what: RECORD_TEMPLATE,
                        name: r.template.clone(),
                    });
                }
                sqlx::query(
                "INSERT INTO record_rules (app, stream, template, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app, stream) DO NOTHING",
            )
            .bind(&r.app)
            .bind(&r.stream)
            .bind(&r.template)
            .bind(now_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err(
                OP,
                format_args!("app={} stream={}", r.app, r.stream),
            ))?;
            }
            for r in &seed.callback_rules {
                if !template_exists(
                    &mut Conn::from(&mut *tx),
                    OP,
                    CALLBACK_TEMPLATE_EXISTS,
                    &r.template,
                )
                .await?
                {
                    return Err(CatalogError::UnknownTemplate {
                        what: CALLBACK_TEMPLATE,
                        name: r.template.clone(),
                    });
                }
                sqlx::query(
                    "INSERT INTO callback_rules (app, template, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (app) DO NOTHING",
                )
                .bind(&r.app)
                .bind(&r.template)
                .bind(now_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, format_args!("app={}", r.app)))?;
            }
            sqlx::query("INSERT INTO catalog_meta (key, value) VALUES ($1, $2)")
                .bind(SEEDED_KEY)
                .bind(now_ms.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err(OP, ""))?;
            tx.commit().await.map_err(db_err(OP, ""))?;
            Ok(true)
        })
    }
}
