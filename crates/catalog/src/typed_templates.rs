//! The record/callback template and rule API the server calls today
//! (`list_record_templates`, `insert_callback_rule`, `load_templates`, `seed_templates`, ..).
//!
//! Compatibility wrappers over the generic API (`templates.rs`), to be removed once the server
//! uses it. Each converts its typed definition to and from the kind's JSON body
//! ([`RECORD_KIND`], [`CALLBACK_KIND`]) or [`RuleDef`], and calls the generic implementation
//! under its old operation name; signatures, results and errors are what they were when these
//! kinds had tables of their own. Rules of these kinds written through the generic API with a
//! domain other than `*` (or, for callback rules, a stream other than `*`) show here without
//! those patterns.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::{CatalogError, Result};
use crate::model::{RawSeed, RuleDef, SeedRule, SeedTemplate, StoredRule, StoredTemplate};
use crate::templates::{CALLBACK_KIND, Existing, RECORD_KIND, TemplateBody, rule_what};

/// A record template as the caller defines it (no timestamps).
///
/// Compatibility wrapper over the generic API, to be removed once the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordTemplateDef {
    pub name: String,
    /// Format names, e.g. `["flv", "mp4"]`.
    pub formats: Vec<String>,
    pub interval_s: u32,
    pub hls_target_s: u32,
    pub resume_s: u32,
    /// 0 = keep forever.
    pub storage_days: u32,
}

/// Binds a record template to pushes whose app and stream match the (glob) patterns.
///
/// Compatibility wrapper over the generic API ([`RuleDef`] with domain `*`), to be removed
/// once the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRuleDef {
    pub app: String,
    pub stream: String,
    pub template: String,
}

/// A callback template as the caller defines it (no timestamps).
///
/// Compatibility wrapper over the generic API, to be removed once the server uses it.
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
///
/// Compatibility wrapper over the generic API ([`RuleDef`] with domain and stream `*`), to be
/// removed once the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRuleDef {
    pub app: String,
    pub template: String,
}

/// Initial templates and rules, usually from the configuration file.
///
/// Compatibility wrapper over the generic API ([`RawSeed`]), to be removed once the server
/// uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSeed {
    pub record_templates: Vec<RecordTemplateDef>,
    pub record_rules: Vec<RecordRuleDef>,
    pub callback_templates: Vec<CallbackTemplateDef>,
    pub callback_rules: Vec<CallbackRuleDef>,
}

/// Everything, read in one snapshot: templates by name, rules by id.
///
/// Compatibility wrapper over the generic API ([`crate::RawTemplateSet`]), to be removed once
/// the server uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    pub record_templates: Vec<StoredTemplate<RecordTemplateDef>>,
    pub record_rules: Vec<StoredRule<RecordRuleDef>>,
    pub callback_templates: Vec<StoredTemplate<CallbackTemplateDef>>,
    pub callback_rules: Vec<StoredRule<CallbackRuleDef>>,
}

/// A record template's body: the fields, in this order, of the server's record template
/// (what migration 0009 wrote for the old rows).
#[derive(Clone, Serialize, Deserialize)]
struct RecordBody {
    name: String,
    formats: Vec<String>,
    interval_s: u32,
    resume_s: u32,
    hls_target_s: u32,
    storage_days: u32,
}

impl TemplateBody for RecordBody {
    const KIND: &'static str = RECORD_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

impl From<&RecordTemplateDef> for RecordBody {
    fn from(t: &RecordTemplateDef) -> Self {
        RecordBody {
            name: t.name.clone(),
            formats: t.formats.clone(),
            interval_s: t.interval_s,
            resume_s: t.resume_s,
            hls_target_s: t.hls_target_s,
            storage_days: t.storage_days,
        }
    }
}

impl From<RecordBody> for RecordTemplateDef {
    fn from(b: RecordBody) -> Self {
        RecordTemplateDef {
            name: b.name,
            formats: b.formats,
            interval_s: b.interval_s,
            hls_target_s: b.hls_target_s,
            resume_s: b.resume_s,
            storage_days: b.storage_days,
        }
    }
}

/// A callback template's body, likewise.
#[derive(Clone, Serialize, Deserialize)]
struct CallbackBody {
    name: String,
    key: String,
    stream_begin_url: Option<String>,
    stream_end_url: Option<String>,
    record_url: Option<String>,
    retry_count: u32,
    retry_interval_s: u32,
}

impl TemplateBody for CallbackBody {
    const KIND: &'static str = CALLBACK_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

impl From<&CallbackTemplateDef> for CallbackBody {
    fn from(t: &CallbackTemplateDef) -> Self {
        CallbackBody {
            name: t.name.clone(),
            key: t.key.clone(),
            stream_begin_url: t.stream_begin_url.clone(),
            stream_end_url: t.stream_end_url.clone(),
            record_url: t.record_url.clone(),
            retry_count: t.retry_count,
            retry_interval_s: t.retry_interval_s,
        }
    }
}

impl From<CallbackBody> for CallbackTemplateDef {
    fn from(b: CallbackBody) -> Self {
        CallbackTemplateDef {
            name: b.name,
            key: b.key,
            stream_begin_url: b.stream_begin_url,
            stream_end_url: b.stream_end_url,
            record_url: b.record_url,
            retry_count: b.retry_count,
            retry_interval_s: b.retry_interval_s,
        }
    }
}

impl From<&RecordRuleDef> for RuleDef {
    fn from(r: &RecordRuleDef) -> Self {
        RuleDef {
            domain: RuleDef::ANY.into(),
            app: r.app.clone(),
            stream: r.stream.clone(),
            template: r.template.clone(),
        }
    }
}

impl From<&CallbackRuleDef> for RuleDef {
    fn from(r: &CallbackRuleDef) -> Self {
        RuleDef {
            domain: RuleDef::ANY.into(),
            app: r.app.clone(),
            stream: RuleDef::ANY.into(),
            template: r.template.clone(),
        }
    }
}

fn stored_template<B, T: From<B>>(s: StoredTemplate<B>) -> StoredTemplate<T> {
    StoredTemplate {
        template: s.template.into(),
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
    }
}

fn record_rule(s: StoredRule) -> StoredRule<RecordRuleDef> {
    StoredRule {
        id: s.id,
        rule: RecordRuleDef {
            app: s.rule.app,
            stream: s.rule.stream,
            template: s.rule.template,
        },
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
    }
}

fn callback_rule(s: StoredRule) -> StoredRule<CallbackRuleDef> {
    StoredRule {
        id: s.id,
        rule: CallbackRuleDef {
            app: s.rule.app,
            template: s.rule.template,
        },
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
    }
}

/// A callback rule was keyed by its app alone: a clash names only that.
fn callback_rule_err(e: CatalogError, id: Option<i64>, r: &CallbackRuleDef) -> CatalogError {
    match e {
        CatalogError::Conflict { what, key, .. } if what == rule_what(CALLBACK_KIND) => {
            CatalogError::Conflict {
                what,
                key: id.map_or_else(|| format!("app={}", r.app), |_| key),
                reason: format!("a {what} for app `{}` already exists", r.app),
            }
        }
        e => e,
    }
}

impl Catalog {
    // ---- record templates ---------------------------------------------

    /// All record templates, by name.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::list_templates`]), to be removed
    /// once the server uses it.
    pub async fn list_record_templates(&self) -> Result<Vec<StoredTemplate<RecordTemplateDef>>> {
        let all = self
            .list_templates_as::<RecordBody>("list_record_templates")
            .await?;
        Ok(all.into_iter().map(stored_template).collect())
    }

    /// Compatibility wrapper over the generic API ([`Catalog::get_template`]), to be removed
    /// once the server uses it.
    pub async fn get_record_template(
        &self,
        name: &str,
    ) -> Result<Option<StoredTemplate<RecordTemplateDef>>> {
        let t = self
            .get_template_as::<RecordBody>("get_record_template", name)
            .await?;
        Ok(t.map(stored_template))
    }

    /// Creates a record template; [`CatalogError::Conflict`] if the name is taken.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::create_template`]), to be
    /// removed once the server uses it.
    pub async fn create_record_template(
        &self,
        t: &RecordTemplateDef,
        now_ms: i64,
    ) -> Result<StoredTemplate<RecordTemplateDef>> {
        let body = RecordBody::from(t);
        let (s, _) = self
            .write_template("create_record_template", &body, now_ms, Existing::Refuse)
            .await?;
        Ok(stored_template(s))
    }

    /// Creates or replaces a record template. The bool is true when it was created.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::put_template`]), to be removed
    /// once the server uses it.
    pub async fn put_record_template(
        &self,
        t: &RecordTemplateDef,
        now_ms: i64,
    ) -> Result<(StoredTemplate<RecordTemplateDef>, bool)> {
        let body = RecordBody::from(t);
        let (s, created) = self
            .write_template("put_record_template", &body, now_ms, Existing::Replace)
            .await?;
        Ok((stored_template(s), created))
    }

    /// Deletes a record template: [`CatalogError::NotFound`] if there is none,
    /// [`CatalogError::Conflict`] while a record rule binds it.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::delete_template`]), to be
    /// removed once the server uses it.
    pub async fn delete_record_template(&self, name: &str) -> Result<()> {
        self.delete_template_as("delete_record_template", RECORD_KIND, name)
            .await
    }

    // ---- record rules --------------------------------------------------

    /// All record rules, by id (= creation order).
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::list_rules`]), to be removed
    /// once the server uses it.
    pub async fn list_record_rules(&self) -> Result<Vec<StoredRule<RecordRuleDef>>> {
        let all = self.list_rules_as("list_record_rules", RECORD_KIND).await?;
        Ok(all.into_iter().map(record_rule).collect())
    }

    /// Adds a rule: [`CatalogError::UnknownTemplate`] if its template does not exist,
    /// [`CatalogError::Conflict`] if a rule for the same app and stream exists.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::insert_rule`]), to be removed
    /// once the server uses it.
    pub async fn insert_record_rule(
        &self,
        r: &RecordRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<RecordRuleDef>> {
        let rule = RuleDef::from(r);
        self.write_rule("insert_record_rule", RECORD_KIND, None, &rule, now_ms)
            .await
            .map(record_rule)
    }

    /// Replaces rule `id`: the errors of [`Catalog::insert_record_rule`], plus
    /// [`CatalogError::NotFound`].
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::update_rule`]), to be removed
    /// once the server uses it.
    pub async fn update_record_rule(
        &self,
        id: i64,
        r: &RecordRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<RecordRuleDef>> {
        let rule = RuleDef::from(r);
        self.write_rule("update_record_rule", RECORD_KIND, Some(id), &rule, now_ms)
            .await
            .map(record_rule)
    }

    /// [`CatalogError::NotFound`] if there is no rule `id`.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::delete_rule`]), to be removed
    /// once the server uses it.
    pub async fn delete_record_rule(&self, id: i64) -> Result<()> {
        self.delete_rule_as("delete_record_rule", RECORD_KIND, id)
            .await
    }

    // ---- callback templates --------------------------------------------

    /// All callback templates, by name.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::list_templates`]), to be removed
    /// once the server uses it.
    pub async fn list_callback_templates(
        &self,
    ) -> Result<Vec<StoredTemplate<CallbackTemplateDef>>> {
        let all = self
            .list_templates_as::<CallbackBody>("list_callback_templates")
            .await?;
        Ok(all.into_iter().map(stored_template).collect())
    }

    /// Compatibility wrapper over the generic API ([`Catalog::get_template`]), to be removed
    /// once the server uses it.
    pub async fn get_callback_template(
        &self,
        name: &str,
    ) -> Result<Option<StoredTemplate<CallbackTemplateDef>>> {
        let t = self
            .get_template_as::<CallbackBody>("get_callback_template", name)
            .await?;
        Ok(t.map(stored_template))
    }

    /// Creates a callback template; [`CatalogError::Conflict`] if the name is taken.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::create_template`]), to be
    /// removed once the server uses it.
    pub async fn create_callback_template(
        &self,
        t: &CallbackTemplateDef,
        now_ms: i64,
    ) -> Result<StoredTemplate<CallbackTemplateDef>> {
        let body = CallbackBody::from(t);
        let (s, _) = self
            .write_template("create_callback_template", &body, now_ms, Existing::Refuse)
            .await?;
        Ok(stored_template(s))
    }

    /// Creates or replaces a callback template. The bool is true when it was created.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::put_template`]), to be removed
    /// once the server uses it.
    pub async fn put_callback_template(
        &self,
        t: &CallbackTemplateDef,
        now_ms: i64,
    ) -> Result<(StoredTemplate<CallbackTemplateDef>, bool)> {
        let body = CallbackBody::from(t);
        let (s, created) = self
            .write_template("put_callback_template", &body, now_ms, Existing::Replace)
            .await?;
        Ok((stored_template(s), created))
    }

    /// Deletes a callback template: [`CatalogError::NotFound`] if there is none,
    /// [`CatalogError::Conflict`] while a callback rule binds it.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::delete_template`]), to be
    /// removed once the server uses it.
    pub async fn delete_callback_template(&self, name: &str) -> Result<()> {
        self.delete_template_as("delete_callback_template", CALLBACK_KIND, name)
            .await
    }

    // ---- callback rules ------------------------------------------------

    /// All callback rules, by id (= creation order).
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::list_rules`]), to be removed
    /// once the server uses it.
    pub async fn list_callback_rules(&self) -> Result<Vec<StoredRule<CallbackRuleDef>>> {
        let all = self
            .list_rules_as("list_callback_rules", CALLBACK_KIND)
            .await?;
        Ok(all.into_iter().map(callback_rule).collect())
    }

    /// Adds a rule: [`CatalogError::UnknownTemplate`] if its template does not exist,
    /// [`CatalogError::Conflict`] if a rule for the same app exists.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::insert_rule`]), to be removed
    /// once the server uses it.
    pub async fn insert_callback_rule(
        &self,
        r: &CallbackRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<CallbackRuleDef>> {
        let rule = RuleDef::from(r);
        self.write_rule("insert_callback_rule", CALLBACK_KIND, None, &rule, now_ms)
            .await
            .map(callback_rule)
            .map_err(|e| callback_rule_err(e, None, r))
    }

    /// Replaces rule `id`: the errors of [`Catalog::insert_callback_rule`], plus
    /// [`CatalogError::NotFound`].
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::update_rule`]), to be removed
    /// once the server uses it.
    pub async fn update_callback_rule(
        &self,
        id: i64,
        r: &CallbackRuleDef,
        now_ms: i64,
    ) -> Result<StoredRule<CallbackRuleDef>> {
        let rule = RuleDef::from(r);
        self.write_rule(
            "update_callback_rule",
            CALLBACK_KIND,
            Some(id),
            &rule,
            now_ms,
        )
        .await
        .map(callback_rule)
        .map_err(|e| callback_rule_err(e, Some(id), r))
    }

    /// [`CatalogError::NotFound`] if there is no rule `id`.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::delete_rule`]), to be removed
    /// once the server uses it.
    pub async fn delete_callback_rule(&self, id: i64) -> Result<()> {
        self.delete_rule_as("delete_callback_rule", CALLBACK_KIND, id)
            .await
    }

    // ---- snapshot and seeding ------------------------------------------

    /// Every record/callback template and rule, read in one transaction so rules and
    /// templates agree.
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::load_all`]), to be removed once
    /// the server uses it. Templates and rules of other kinds are left out.
    pub async fn load_templates(&self) -> Result<TemplateSet> {
        let all = self.load_all_as("load_templates").await?;
        let record_templates = all.templates_of::<RecordBody>()?;
        let callback_templates = all.templates_of::<CallbackBody>()?;
        let rules = |kind| all.rules_of(kind).cloned();
        Ok(TemplateSet {
            record_templates: record_templates.into_iter().map(stored_template).collect(),
            record_rules: rules(RECORD_KIND).map(record_rule).collect(),
            callback_templates: callback_templates
                .into_iter()
                .map(stored_template)
                .collect(),
            callback_rules: rules(CALLBACK_KIND).map(callback_rule).collect(),
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
    ///
    /// Compatibility wrapper over the generic API ([`Catalog::seed_all`]), to be removed once
    /// the server uses it. Record templates, callback templates, record rules, callback rules
    /// go in in that order, as they always did.
    pub async fn seed_templates(&self, seed: &TemplateSeed, now_ms: i64) -> Result<bool> {
        let mut templates = Vec::new();
        for t in &seed.record_templates {
            templates.push(SeedTemplate::new(&RecordBody::from(t))?);
        }
        for t in &seed.callback_templates {
            templates.push(SeedTemplate::new(&CallbackBody::from(t))?);
        }
        let record = seed.record_rules.iter().map(|r| SeedRule {
            kind: RECORD_KIND.into(),
            rule: r.into(),
        });
        let callback = seed.callback_rules.iter().map(|r| SeedRule {
            kind: CALLBACK_KIND.into(),
            rule: r.into(),
        });
        let raw = RawSeed {
            templates,
            rules: record.chain(callback).collect(),
        };
        self.seed_all_as("seed_templates", &raw, now_ms).await
    }
}
