//! The live rule set: which record and callback template a new push gets (Tencent §3.1–3.2,
//! §1.4).
//!
//! The configuration file seeds the catalogue's templates and rules on the first start only;
//! from then on the catalogue is the source of truth, edited through `http::templates`. Every
//! committed write reloads the in-memory [`Snapshot`] that new pushes consult. A push copies
//! its templates when it starts, so an edit applies to the next push and never to one that is
//! running (as at Tencent, where unbinding does not affect live streams).

use crate::config::Config;
use crate::model::{
    CallbackRule, CallbackTemplate, RecordRule, RecordTemplate, glob_match, specificity,
};
use livetape_catalog::{
    CALLBACK_KIND, Catalog, CatalogError, RECORD_KIND, RawSeed, RawTemplateSet, RuleDef, SeedRule,
    SeedTemplate, TemplateBody,
};
use std::sync::{Arc, RwLock};

impl TemplateBody for RecordTemplate {
    const KIND: &'static str = RECORD_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

impl TemplateBody for CallbackTemplate {
    const KIND: &'static str = CALLBACK_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

impl RecordRule {
    pub fn from_def(r: &RuleDef) -> Self {
        Self {
            domain: r.domain.clone(),
            app: r.app.clone(),
            stream: r.stream.clone(),
            template: r.template.clone(),
        }
    }

    pub fn to_def(&self) -> RuleDef {
        RuleDef {
            domain: self.domain.clone(),
            app: self.app.clone(),
            stream: self.stream.clone(),
            template: self.template.clone(),
        }
    }
}

impl CallbackRule {
    pub fn from_def(r: &RuleDef) -> Self {
        Self {
            domain: r.domain.clone(),
            app: r.app.clone(),
            template: r.template.clone(),
        }
    }

    /// Callbacks bind per domain and app: the stream pattern is always `*`.
    pub fn to_def(&self) -> RuleDef {
        RuleDef {
            domain: self.domain.clone(),
            app: self.app.clone(),
            stream: RuleDef::ANY.into(),
            template: self.template.clone(),
        }
    }
}

/// An immutable view of every template and rule, in the server's own types. Rules are kept in
/// id (= creation) order, which is the tie-break between equally specific rules.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    record_templates: Vec<RecordTemplate>,
    /// Record template name → its number (`record_temp_id`); empty for a config-only view.
    record_template_ids: std::collections::HashMap<String, i64>,
    record_rules: Vec<RecordRule>,
    callback_templates: Vec<CallbackTemplate>,
    callback_rules: Vec<CallbackRule>,
}

impl Snapshot {
    /// The snapshot a configuration alone describes (what [`seed_from_config`] would store).
    #[cfg(test)]
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            record_templates: cfg.record_templates(),
            record_template_ids: Default::default(),
            record_rules: cfg.record_rules(),
            callback_templates: cfg.callback_template.clone(),
            callback_rules: cfg.callback_rule.clone(),
        }
    }

    pub fn from_set(set: &RawTemplateSet) -> Result<Self, CatalogError> {
        fn templates<T: TemplateBody>(set: &RawTemplateSet) -> Result<Vec<T>, CatalogError> {
            Ok(set
                .templates_of::<T>()?
                .into_iter()
                .map(|t| t.template)
                .collect())
        }
        Ok(Self {
            record_templates: templates(set)?,
            record_template_ids: set
                .templates_of::<RecordTemplate>()?
                .into_iter()
                .map(|t| (t.template.name, t.id))
                .collect(),
            record_rules: set
                .rules_of(RECORD_KIND)
                .map(|r| RecordRule::from_def(&r.rule))
                .collect(),
            callback_templates: templates(set)?,
            callback_rules: set
                .rules_of(CALLBACK_KIND)
                .map(|r| CallbackRule::from_def(&r.rule))
                .collect(),
        })
    }

    /// The record template for a push: the most specific matching rule wins (stream first,
    /// then app, then domain); among equals, the oldest rule. `None`: do not record.
    pub fn record_template_for(
        &self,
        domain: &str,
        app: &str,
        stream: &str,
    ) -> Option<RecordTemplate> {
        let best = self
            .record_rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                glob_match(&r.domain, domain)
                    && glob_match(&r.app, app)
                    && glob_match(&r.stream, stream)
            })
            .max_by_key(|(i, r)| {
                (
                    specificity(&r.stream),
                    specificity(&r.app),
                    specificity(&r.domain),
                    std::cmp::Reverse(*i),
                )
            })?
            .1;
        self.record_templates
            .iter()
            .find(|t| t.name == best.template)
            .cloned()
    }

    /// The number of the record template `name` (0 if unknown).
    pub fn record_template_id(&self, name: &str) -> i64 {
        self.record_template_ids.get(name).copied().unwrap_or(0)
    }

    /// The callback template for an app (Tencent binds callbacks per domain and app, not per
    /// stream).
    pub fn callback_template_for(&self, domain: &str, app: &str) -> Option<CallbackTemplate> {
        let best = self
            .callback_rules
            .iter()
            .enumerate()
            .filter(|(_, r)| glob_match(&r.domain, domain) && glob_match(&r.app, app))
            .max_by_key(|(i, r)| {
                (
                    specificity(&r.app),
                    specificity(&r.domain),
                    std::cmp::Reverse(*i),
                )
            })?
            .1;
        self.callback_templates
            .iter()
            .find(|t| t.name == best.template)
            .cloned()
    }
}

/// The config file's templates and rules (including the built-in `default` template and its
/// catch-all rule when `record_rule` is absent), for [`Catalog::seed_all`].
pub fn seed_from_config(cfg: &Config) -> Result<RawSeed, CatalogError> {
    let mut templates = Vec::new();
    for t in cfg.record_templates() {
        templates.push(SeedTemplate::new(&t)?);
    }
    for t in &cfg.callback_template {
        templates.push(SeedTemplate::new(t)?);
    }
    let rules = cfg
        .record_rules()
        .iter()
        .map(|r| SeedRule {
            kind: RECORD_KIND.into(),
            rule: r.to_def(),
        })
        .chain(cfg.callback_rule.iter().map(|r| SeedRule {
            kind: CALLBACK_KIND.into(),
            rule: r.to_def(),
        }))
        .collect();
    Ok(RawSeed { templates, rules })
}

/// The current [`Snapshot`], swapped whole after every write.
#[derive(Debug)]
pub struct Templates {
    current: RwLock<Arc<Snapshot>>,
    /// Serialises reloads so an older read can never overwrite a newer one.
    reload: tokio::sync::Mutex<()>,
}

impl Templates {
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn load(catalog: &Catalog) -> Result<Self, CatalogError> {
        Ok(Self::new(Snapshot::from_set(&catalog.load_all().await?)?))
    }

    /// The snapshot to resolve one push against; hold it for the whole lookup.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a panic while swapping an Arc: the value is still whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the catalogue. Call after every committed write.
    pub async fn reload(&self, catalog: &Catalog) -> Result<(), CatalogError> {
        let _one_at_a_time = self.reload.lock().await;
        let snap = Arc::new(Snapshot::from_set(&catalog.load_all().await?)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snap;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;
    use livetape_catalog::{KindRule, RawTemplate, StoredRule};

    fn rt(name: &str) -> RecordTemplate {
        RecordTemplate {
            name: name.into(),
            ..RecordTemplate::builtin_default()
        }
    }
    fn rr(app: &str, stream: &str, template: &str) -> RecordRule {
        RecordRule {
            domain: "*".into(),
            app: app.into(),
            stream: stream.into(),
            template: template.into(),
        }
    }
    fn ct(name: &str) -> CallbackTemplate {
        CallbackTemplate {
            name: name.into(),
            key: String::new(),
            stream_begin_url: None,
            stream_end_url: None,
            record_url: Some("http://h/r".into()),
            retry_count: 1,
            retry_interval_s: 1,
        }
    }
    fn cr(app: &str, template: &str) -> CallbackRule {
        CallbackRule {
            domain: "*".into(),
            app: app.into(),
            template: template.into(),
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            record_templates: ["any", "app", "glob", "exact", "glob2"].map(rt).to_vec(),
            record_template_ids: Default::default(),
            // Deliberately not in specificity order: precedence must not depend on it.
            record_rules: vec![
                rr("live", "vip_1", "exact"),
                rr("*", "*", "any"),
                rr("live", "vip_*", "glob"),
                rr("live", "*", "app"),
                rr("l?ve", "vip_*", "glob2"),
                rr("*", "*_x", "glob2"),
                rr("*", "*x", "any"),
            ],
            callback_templates: vec![ct("c-any"), ct("c-live"), ct("c-glob")],
            callback_rules: vec![cr("*", "c-any"), cr("li*", "c-glob"), cr("live", "c-live")],
        }
    }

    fn rec(s: &Snapshot, app: &str, stream: &str) -> Option<String> {
        s.record_template_for("d.example", app, stream)
            .map(|t| t.name)
    }

    #[test]
    fn stream_specificity_beats_app_and_order() {
        let s = snap();
        assert_eq!(rec(&s, "live", "vip_1").as_deref(), Some("exact"));
        // Two stream globs match; the app is the tie-break (exact `live` beats `l?ve`).
        assert_eq!(rec(&s, "live", "vip_2").as_deref(), Some("glob"));
        assert_eq!(rec(&s, "lave", "vip_2").as_deref(), Some("glob2"));
        // A stream glob beats an exact app with `*` stream.
        assert_eq!(rec(&s, "live", "vip_3").as_deref(), Some("glob"));
        assert_eq!(rec(&s, "live", "other").as_deref(), Some("app"));
        assert_eq!(rec(&s, "other", "other").as_deref(), Some("any"));
        // Equal specificity (`*`/glob vs `*`/glob): the oldest rule wins.
        assert_eq!(rec(&s, "other", "a_x").as_deref(), Some("glob2"));
    }

    #[test]
    fn no_rule_or_missing_template_means_no_recording() {
        let mut s = snap();
        s.record_rules = vec![rr("live", "*", "gone")];
        assert_eq!(rec(&s, "live", "x"), None);
        assert_eq!(rec(&s, "other", "x"), None);
        assert_eq!(rec(&Snapshot::default(), "live", "x"), None);
    }

    #[test]
    fn callback_precedence_is_per_app() {
        let s = snap();
        let cb = |app| s.callback_template_for("d.example", app).map(|t| t.name);
        assert_eq!(cb("live").as_deref(), Some("c-live"));
        assert_eq!(cb("lives").as_deref(), Some("c-glob"));
        assert_eq!(cb("other").as_deref(), Some("c-any"));
        assert_eq!(
            Snapshot::default()
                .callback_template_for("", "live")
                .map(|t| t.name),
            None
        );
    }

    #[test]
    fn config_rules_resolve_by_precedence() {
        let cfg = Config::from_toml_str(
            r#"
            [[record_template]]
            name = "flv"
            formats = ["flv"]
            interval_s = 600
            [[record_rule]]
            app = "*"
            template = "default"
            [[record_rule]]
            app = "live"
            stream = "vip_*"
            template = "flv"
            [[callback_template]]
            name = "hooks"
            record_url = "http://h/r"
            [[callback_rule]]
            app = "live"
            template = "hooks"
            "#,
        )
        .unwrap();
        let s = Snapshot::from_config(&cfg);
        for (app, stream, want) in [
            ("live", "vip_1", "flv"),
            ("live", "x", "default"),
            ("other", "vip_1", "default"),
        ] {
            assert_eq!(
                rec(&s, app, stream).as_deref(),
                Some(want),
                "{app}/{stream}"
            );
        }
        // And through the catalogue's types (seed → stored set → snapshot).
        let seed = seed_from_config(&cfg).unwrap();
        let set = RawTemplateSet {
            templates: seed
                .templates
                .iter()
                .enumerate()
                .map(|(i, t)| RawTemplate {
                    id: i as i64 + 1,
                    kind: t.kind.clone(),
                    name: t.name.clone(),
                    body: t.body.clone(),
                    created_at_ms: 0,
                    updated_at_ms: 0,
                })
                .collect(),
            rules: seed
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| KindRule {
                    kind: r.kind.clone(),
                    rule: StoredRule {
                        id: i as i64 + 1,
                        rule: r.rule.clone(),
                        created_at_ms: 0,
                        updated_at_ms: 0,
                    },
                })
                .collect(),
        };
        let s = Snapshot::from_set(&set).unwrap();
        let t = s.record_template_for("", "live", "vip_9").unwrap();
        assert_eq!((t.name.as_str(), t.interval_s), ("flv", 600));
        assert_eq!(t.formats, vec![Format::Flv]);
        assert_eq!(rec(&s, "x", "y").as_deref(), Some("default"));
        let cb = s.callback_template_for("", "live").unwrap();
        assert_eq!(cb.record_url.as_deref(), Some("http://h/r"));
        assert_eq!(cb.retry_count, 12);
        assert!(s.callback_template_for("", "other").is_none());
    }

    /// Rules may be bound to a push domain (Tencent `DomainName`): a rule for the domain beats
    /// an equally specific one for any domain, and applies to pushes on that domain only.
    #[test]
    fn domain_rules() {
        let mut s = snap();
        s.record_rules.push(RecordRule {
            domain: "a.example".into(),
            ..rr("*", "*", "exact")
        });
        s.callback_rules.push(CallbackRule {
            domain: "a.example".into(),
            ..cr("*", "c-live")
        });
        assert_eq!(
            s.record_template_for("a.example", "x", "y")
                .map(|t| t.name)
                .as_deref(),
            Some("exact")
        );
        assert_eq!(rec(&s, "x", "y").as_deref(), Some("any"));
        assert_eq!(
            s.callback_template_for("a.example", "other")
                .map(|t| t.name)
                .as_deref(),
            Some("c-live")
        );
        assert_eq!(
            s.callback_template_for("b.example", "other")
                .map(|t| t.name)
                .as_deref(),
            Some("c-any")
        );
    }

    #[test]
    fn most_specific_rule_wins() {
        let c = Config::from_toml_str(
            r#"
            [[record_template]]
            name = "flv"
            formats = ["flv"]
            [[record_template]]
            name = "both"
            formats = ["flv", "mp4"]
            [[record_rule]]
            app = "*"
            template = "default"
            [[record_rule]]
            app = "live"
            stream = "vip_*"
            template = "flv"
            [[record_rule]]
            app = "live"
            stream = "vip_1"
            template = "both"
            "#,
        )
        .unwrap();
        assert_eq!(
            Snapshot::from_config(&c)
                .record_template_for("", "live", "vip_1")
                .unwrap()
                .name,
            "both"
        );
        assert_eq!(
            Snapshot::from_config(&c)
                .record_template_for("", "live", "vip_2")
                .unwrap()
                .name,
            "flv"
        );
        assert_eq!(
            Snapshot::from_config(&c)
                .record_template_for("", "other", "vip_2")
                .unwrap()
                .name,
            "default"
        );
    }

    #[test]
    fn empty_rule_list_records_nothing() {
        let c = Config::from_toml_str("record_rule = []").unwrap();
        assert!(
            Snapshot::from_config(&c)
                .record_template_for("", "live", "x")
                .is_none()
        );
    }
}
