//! Templates and the rules that bind them (Tencent §3.1–3.2, §1.4), editable at run time, of
//! any kind: record templates, callback templates, and whatever kind the server adds next,
//! without a schema change. One implementation for every kind.
//!
//! A template is the server's own type ([`TemplateBody`]), stored as its JSON under
//! (`T::KIND`, name); the catalogue never looks inside a body. A rule ([`RuleDef`]) binds a
//! template of its kind to pushes whose domain, app and stream match its glob patterns.
//!
//! Source of truth: the configuration file only *seeds* these tables, once, on the first start
//! of a catalogue ([`Catalog::seed_all`]). From then on the database is the source of truth:
//! edit templates and rules over the REST API; changing them in the config file has no effect
//! on an existing catalogue (delete the catalogue, or use the API, to apply them).
//!
//! The catalogue stores what it is given; range checks (interval, formats, URLs) are the
//! caller's. It enforces the relational rules itself, per kind: template names and rule keys
//! (domain, app, stream) are unique, a rule must name an existing template of its kind, and a
//! template bound by a rule cannot be deleted.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Begin, Conn};
use crate::catalog::Catalog;
use crate::error::{CatalogError, Result, db_err};
use crate::model::{
    RawSeed, RawTemplate, RawTemplateSet, RuleDef, SeedTemplate, StoredRule, StoredTemplate,
};
use crate::sql::templates as sql;

/// The kind of the record templates (Tencent §3.1) the catalogue had its own tables for up to
/// migration 0009. Their bodies are `{"name","formats":[..],"interval_s","resume_s",
/// "hls_target_s","storage_days"}`.
pub const RECORD_KIND: &str = "record";
/// The kind of the callback templates (Tencent §3.2). Their bodies are `{"name","key",
/// "stream_begin_url","stream_end_url","record_url","retry_count","retry_interval_s"}`
/// (`null` for a missing URL).
pub const CALLBACK_KIND: &str = "callback";

/// Marker row in `catalog_meta` set by the first seed ([`Catalog::seed_all`]).
const SEEDED_KEY: &str = "templates_seeded";

/// A template type the catalogue stores: one kind of template. Implemented by the server for
/// its own types; the catalogue stores `serde_json::to_string(&t)` under (`KIND`, `t.name()`)
/// and reads it back with `serde_json::from_str`.
pub trait TemplateBody: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The kind's name, e.g. [`RECORD_KIND`]; rules of this kind bind these templates.
    const KIND: &'static str;
    /// The template's name (unique within its kind).
    fn name(&self) -> &str;
}

/// What errors call a kind's templates and its rules: the two kinds the catalogue began with
/// keep the words their errors always used.
pub fn template_what(kind: &str) -> &'static str {
    match kind {
        RECORD_KIND => "record template",
        CALLBACK_KIND => "callback template",
        _ => "template",
    }
}

fn rule_what(kind: &str) -> &'static str {
    match kind {
        RECORD_KIND => "record rule",
        CALLBACK_KIND => "callback rule",
        _ => "rule",
    }
}

fn name_key(name: &str) -> String {
    format!("name={name}")
}

fn id_key(id: i64) -> String {
    format!("id={id}")
}

/// `app=.. stream=..`, led by `domain=..` unless the domain is `*` (as every rule was before
/// rules had a domain).
fn rule_key(r: &RuleDef) -> String {
    match r.domain.as_str() {
        RuleDef::ANY => format!("app={} stream={}", r.app, r.stream),
        d => format!("domain={d} app={} stream={}", r.app, r.stream),
    }
}

fn rule_taken(what: &str, r: &RuleDef) -> String {
    let domain = match r.domain.as_str() {
        RuleDef::ANY => String::new(),
        d => format!(" domain `{d}`"),
    };
    format!(
        "a {what} for{domain} app `{}` stream `{}` already exists",
        r.app, r.stream
    )
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

fn body_err(kind: &str, name: &str) -> impl FnOnce(serde_json::Error) -> CatalogError {
    move |source| CatalogError::Body {
        kind: kind.to_owned(),
        name: name.to_owned(),
        source,
    }
}

fn encode<T: TemplateBody>(t: &T) -> Result<String> {
    serde_json::to_string(t).map_err(body_err(T::KIND, t.name()))
}

impl RawTemplate {
    /// The template as `T`, which must be this row's kind.
    pub fn decode<T: TemplateBody>(&self) -> Result<StoredTemplate<T>> {
        let bad = body_err(&self.kind, &self.name);
        if self.kind != T::KIND {
            return Err(bad(serde::de::Error::custom(format_args!(
                "read as a `{}` template",
                T::KIND
            ))));
        }
        Ok(StoredTemplate {
            id: self.id,
            template: serde_json::from_str(&self.body).map_err(bad)?,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

impl RawTemplateSet {
    /// The templates of `T`'s kind, by name.
    pub fn templates_of<T: TemplateBody>(&self) -> Result<Vec<StoredTemplate<T>>> {
        self.templates
            .iter()
            .filter(|t| t.kind == T::KIND)
            .map(RawTemplate::decode)
            .collect()
    }

    /// The rules of `kind`, by id.
    pub fn rules_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a StoredRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.kind == kind)
            .map(|r| &r.rule)
    }
}

impl SeedTemplate {
    /// `t` to seed under its kind.
    pub fn new<T: TemplateBody>(t: &T) -> Result<Self> {
        Ok(SeedTemplate {
            kind: T::KIND.to_owned(),
            name: t.name().to_owned(),
            body: encode(t)?,
        })
    }
}

/// How [`Catalog::write_template`] treats an existing template of the same name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// [`CatalogError::Conflict`].
    Refuse,
    Replace,
}

impl Catalog {
    /// All templates of `T`'s kind, by name.
    pub async fn list_templates<T: TemplateBody>(&self) -> Result<Vec<StoredTemplate<T>>> {
        const OP: &str = "list_templates";
        let rows = on_pool!(&self.db, |pool| {
            let mut conn = pool.acquire().await.map_err(db_err(OP, ""))?;
            sql::templates_in(&mut Conn::from(&mut *conn), T::KIND)
                .await
                .map_err(db_err(OP, ""))
        })?;
        rows.iter().map(RawTemplate::decode).collect()
    }

    /// The template of `T`'s kind named `name`.
    pub async fn get_template<T: TemplateBody>(
        &self,
        name: &str,
    ) -> Result<Option<StoredTemplate<T>>> {
        const OP: &str = "get_template";
        let row = on_pool!(&self.db, |pool| {
            let mut conn = pool.acquire().await.map_err(db_err(OP, name_key(name)))?;
            sql::template_in(&mut Conn::from(&mut *conn), T::KIND, name)
                .await
                .map_err(db_err(OP, name_key(name)))
        })?;
        row.as_ref().map(RawTemplate::decode).transpose()
    }

    /// The template of `T`'s kind numbered `id` (`None` also when `id` is another kind's).
    pub async fn get_template_by_id<T: TemplateBody>(
        &self,
        id: i64,
    ) -> Result<Option<StoredTemplate<T>>> {
        const OP: &str = "get_template_by_id";
        let row = on_pool!(&self.db, |pool| {
            let mut conn = pool.acquire().await.map_err(db_err(OP, id_key(id)))?;
            sql::template_by_id_in(&mut Conn::from(&mut *conn), id)
                .await
                .map_err(db_err(OP, id_key(id)))
        })?;
        row.filter(|r| r.kind == T::KIND)
            .as_ref()
            .map(RawTemplate::decode)
            .transpose()
    }

    /// Creates a template; [`CatalogError::Conflict`] if its kind has one of that name.
    pub async fn create_template<T: TemplateBody>(
        &self,
        t: &T,
        now_ms: i64,
    ) -> Result<StoredTemplate<T>> {
        let (stored, _) = self
            .write_template("create_template", t, now_ms, Existing::Refuse)
            .await?;
        Ok(stored)
    }

    /// Creates or replaces a template (a replaced one keeps its `created_at_ms`). The bool is
    /// true when it was created.
    pub async fn put_template<T: TemplateBody>(
        &self,
        t: &T,
        now_ms: i64,
    ) -> Result<(StoredTemplate<T>, bool)> {
        self.write_template("put_template", t, now_ms, Existing::Replace)
            .await
    }

    /// Deletes the template of `T`'s kind named `name`: [`CatalogError::NotFound`] if there is
    /// none, [`CatalogError::Conflict`] while a rule binds it (Tencent: unbind before delete).
    pub async fn delete_template<T: TemplateBody>(&self, name: &str) -> Result<()> {
        const OP: &str = "delete_template";
        let kind = T::KIND;
        let what = template_what(kind);
        let key = || name_key(name);
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, key()))?;
            let mut conn = Conn::from(&mut *tx);
            let bound = sql::binding_rules_in(&mut conn, kind, name)
                .await
                .map_err(db_err(OP, key()))?;
            if bound > 0 {
                return Err(CatalogError::Conflict {
                    what,
                    key: key(),
                    reason: format!("still bound by {bound} rule(s); delete or rebind them first"),
                });
            }
            // A rule bound on another node since the count still fails here, on the foreign key.
            let gone = sql::delete_template_in(&mut conn, kind, name)
                .await
                .map_err(db_err(OP, key()))?;
            if gone == 0 {
                return Err(CatalogError::NotFound { what, key: key() });
            }
            tx.commit().await.map_err(db_err(OP, key()))
        })
    }

    /// All rules of `kind`, by id (= creation order).
    pub async fn list_rules(&self, kind: &str) -> Result<Vec<StoredRule>> {
        const OP: &str = "list_rules";
        on_pool!(&self.db, |pool| {
            let mut conn = pool.acquire().await.map_err(db_err(OP, ""))?;
            sql::rules_in(&mut Conn::from(&mut *conn), kind)
                .await
                .map_err(db_err(OP, ""))
        })
    }

    /// Adds a rule of `kind`: [`CatalogError::UnknownTemplate`] if `kind` has no template
    /// named `r.template`, [`CatalogError::Conflict`] if a rule of `kind` has the same domain,
    /// app and stream.
    pub async fn insert_rule(&self, kind: &str, r: &RuleDef, now_ms: i64) -> Result<StoredRule> {
        self.write_rule("insert_rule", kind, None, r, now_ms).await
    }

    /// Replaces rule `id` of `kind`: the errors of [`Catalog::insert_rule`], plus
    /// [`CatalogError::NotFound`] (also when rule `id` is of another kind).
    pub async fn update_rule(
        &self,
        kind: &str,
        id: i64,
        r: &RuleDef,
        now_ms: i64,
    ) -> Result<StoredRule> {
        self.write_rule("update_rule", kind, Some(id), r, now_ms)
            .await
    }

    /// [`CatalogError::NotFound`] if `kind` has no rule `id`.
    pub async fn delete_rule(&self, kind: &str, id: i64) -> Result<()> {
        const OP: &str = "delete_rule";
        let gone = on_pool!(&self.db, |pool| {
            let mut conn = pool.acquire().await.map_err(db_err(OP, id_key(id)))?;
            sql::delete_rule_in(&mut Conn::from(&mut *conn), kind, id)
                .await
                .map_err(db_err(OP, id_key(id)))
        })?;
        if gone == 0 {
            return Err(CatalogError::NotFound {
                what: rule_what(kind),
                key: id_key(id),
            });
        }
        Ok(())
    }

    /// Every template and rule of every kind, read in one transaction so rules and templates
    /// agree.
    pub async fn load_all(&self) -> Result<RawTemplateSet> {
        const OP: &str = "load_all";
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_read().await.map_err(db_err(OP, ""))?;
            let mut conn = Conn::from(&mut *tx);
            let set = RawTemplateSet {
                templates: sql::all_templates_in(&mut conn)
                    .await
                    .map_err(db_err(OP, "templates"))?,
                rules: sql::all_rules_in(&mut conn)
                    .await
                    .map_err(db_err(OP, "rules"))?,
            };
            tx.commit().await.map_err(db_err(OP, ""))?;
            Ok(set)
        })
    }

    /// Seeds templates and rules, once per catalogue: on the first call it inserts `seed`
    /// (all of it in one transaction) and records that it did (returns true); every later
    /// call does nothing (returns false), even if the tables have since been emptied over the
    /// API. After the first start the database is the source of truth and the configuration
    /// file only seeds it.
    ///
    /// Templates go in first, then rules, each in `seed`'s order. Duplicate template names
    /// (within a kind) or rule keys in `seed` keep the first occurrence, which is also the one
    /// that wins rule precedence (first in the file). A rule naming a missing template of its
    /// kind fails the whole seed ([`CatalogError::UnknownTemplate`]), leaving nothing; so does
    /// a template whose body is not JSON ([`CatalogError::Body`]).
    pub async fn seed_all(&self, seed: &RawSeed, now_ms: i64) -> Result<bool> {
        const OP: &str = "seed_all";
        for t in &seed.templates {
            serde_json::from_str::<serde::de::IgnoredAny>(&t.body)
                .map_err(body_err(&t.kind, &t.name))?;
        }
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(OP, ""))?;
            let mut conn = Conn::from(&mut *tx);
            // Nodes starting together on an empty catalogue: one seeds, the others wait for its
            // commit and then find the marker.
            sql::seed_lock_in(&mut conn)
                .await
                .map_err(db_err(OP, "lock"))?;
            if sql::meta_flag_in(&mut conn, SEEDED_KEY)
                .await
                .map_err(db_err(OP, ""))?
            {
                return Ok(false);
            }
            for t in &seed.templates {
                let key = || name_key(&t.name);
                if !sql::template_exists_in(&mut conn, &t.kind, &t.name)
                    .await
                    .map_err(db_err(OP, key()))?
                {
                    sql::upsert_template_in(&mut conn, &t.kind, &t.name, &t.body, now_ms, false)
                        .await
                        .map_err(db_err(OP, key()))?;
                }
            }
            for r in &seed.rules {
                let (kind, r) = (&r.kind, &r.rule);
                if !sql::template_exists_in(&mut conn, kind, &r.template)
                    .await
                    .map_err(db_err(OP, rule_key(r)))?
                {
                    return Err(CatalogError::UnknownTemplate {
                        what: template_what(kind),
                        name: r.template.clone(),
                    });
                }
                sql::seed_rule_in(&mut conn, kind, r, now_ms)
                    .await
                    .map_err(db_err(OP, rule_key(r)))?;
            }
            sql::set_meta_flag_in(&mut conn, SEEDED_KEY, &now_ms.to_string())
                .await
                .map_err(db_err(OP, ""))?;
            tx.commit().await.map_err(db_err(OP, ""))?;
            Ok(true)
        })
    }

    // ---- shared by create/put and insert/update; `op` names the operation in errors ------

    /// Creates (or with [`Existing::Replace`] creates or replaces) `t`; the bool is true when
    /// it was created.
    async fn write_template<T: TemplateBody>(
        &self,
        op: &'static str,
        t: &T,
        now_ms: i64,
        existing: Existing,
    ) -> Result<(StoredTemplate<T>, bool)> {
        let (kind, name) = (T::KIND, t.name());
        let body = encode(t)?;
        let what = template_what(kind);
        let key = || name_key(name);
        let taken = || format!("a {what} with this name already exists");
        let (row, created) = on_pool!(&self.db, |pool| match existing {
            Existing::Refuse => {
                let mut conn = pool.acquire().await.map_err(db_err(op, key()))?;
                let row = sql::upsert_template_in(
                    &mut Conn::from(&mut *conn),
                    kind,
                    name,
                    &body,
                    now_ms,
                    false,
                )
                .await
                .map_err(conflict_or_db(op, what, key(), taken))?;
                (row, true)
            }
            Existing::Replace => {
                let mut tx = pool.begin_write().await.map_err(db_err(op, key()))?;
                let mut conn = Conn::from(&mut *tx);
                let existed = sql::template_exists_in(&mut conn, kind, name)
                    .await
                    .map_err(db_err(op, key()))?;
                let row = sql::upsert_template_in(&mut conn, kind, name, &body, now_ms, true)
                    .await
                    .map_err(conflict_or_db(op, what, key(), taken))?;
                tx.commit().await.map_err(db_err(op, key()))?;
                (row, !existed)
            }
        });
        let stored = StoredTemplate {
            id: row.id,
            template: t.clone(),
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        };
        Ok((stored, created))
    }

    /// Inserts (`id` = None) or updates a rule, checking its template first so the caller
    /// gets [`CatalogError::UnknownTemplate`] rather than a bare foreign-key failure.
    async fn write_rule(
        &self,
        op: &'static str,
        kind: &str,
        id: Option<i64>,
        r: &RuleDef,
        now_ms: i64,
    ) -> Result<StoredRule> {
        let what = rule_what(kind);
        let key = || id.map_or_else(|| rule_key(r), id_key);
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin_write().await.map_err(db_err(op, key()))?;
            let mut conn = Conn::from(&mut *tx);
            if !sql::template_exists_in(&mut conn, kind, &r.template)
                .await
                .map_err(db_err(op, key()))?
            {
                return Err(CatalogError::UnknownTemplate {
                    what: template_what(kind),
                    name: r.template.clone(),
                });
            }
            let taken = || rule_taken(what, r);
            let row = match id {
                None => sql::insert_rule_in(&mut conn, kind, r, now_ms)
                    .await
                    .map(Some),
                Some(id) => sql::update_rule_in(&mut conn, kind, id, r, now_ms).await,
            }
            .map_err(conflict_or_db(op, what, key(), taken))?;
            let row = row.ok_or_else(|| CatalogError::NotFound { what, key: key() })?;
            tx.commit().await.map_err(db_err(op, key()))?;
            Ok(row)
        })
    }
}
