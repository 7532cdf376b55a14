//! The record and callback kinds as the server stores them (its types' fields, in its order,
//! with its integer widths), and shorthands for rules and seeds of any kind.

use livetape_catalog::{CALLBACK_KIND, RECORD_KIND, RuleDef, SeedRule, SeedTemplate, TemplateBody};
use serde::{Deserialize, Serialize};

/// The server's record template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRecord {
    pub name: String,
    pub formats: Vec<String>,
    pub interval_s: u64,
    pub resume_s: u64,
    pub hls_target_s: u64,
    pub storage_days: u64,
}

impl TemplateBody for ServerRecord {
    const KIND: &'static str = RECORD_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

/// The server's callback template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCallback {
    pub name: String,
    pub key: String,
    pub stream_begin_url: Option<String>,
    pub stream_end_url: Option<String>,
    pub record_url: Option<String>,
    pub retry_count: u32,
    pub retry_interval_s: u64,
}

impl TemplateBody for ServerCallback {
    const KIND: &'static str = CALLBACK_KIND;
    fn name(&self) -> &str {
        &self.name
    }
}

/// A record template with the usual test settings (hls 10 s, no resume, kept forever).
pub fn record(name: &str, formats: &[&str], interval_s: u64) -> ServerRecord {
    ServerRecord {
        name: name.into(),
        formats: formats.iter().map(|f| f.to_string()).collect(),
        interval_s,
        resume_s: 0,
        hls_target_s: 10,
        storage_days: 0,
    }
}

pub fn rule(domain: &str, app: &str, stream: &str, template: &str) -> RuleDef {
    RuleDef {
        domain: domain.into(),
        app: app.into(),
        stream: stream.into(),
        template: template.into(),
    }
}

/// A record rule as the server keys it: any domain.
pub fn record_rule(app: &str, stream: &str, template: &str) -> RuleDef {
    rule(RuleDef::ANY, app, stream, template)
}

/// A callback rule as the server keys it: any domain, any stream.
pub fn callback_rule(app: &str, template: &str) -> RuleDef {
    rule(RuleDef::ANY, app, RuleDef::ANY, template)
}

pub fn seed_template<T: TemplateBody>(t: &T) -> SeedTemplate {
    SeedTemplate::new(t).unwrap()
}

pub fn seed_rule(kind: &str, rule: RuleDef) -> SeedRule {
    SeedRule {
        kind: kind.into(),
        rule,
    }
}
