//! Callback templates and rules (`Create/Describe(s)/Modify/DeleteLiveCallbackTemplate`,
//! `Create/Describe/DeleteLiveCallbackRule`), over the same catalogue templates as
//! `/v1/callback-templates`, through the same checks (URL targets included).
//!
//! `StreamBeginNotifyUrl`, `StreamEndNotifyUrl`, `RecordNotifyUrl` and `CallbackKey` are the
//! template's; `RecordStatusNotifyUrl` (event 332) must be empty or the record URL (livetape
//! sends 332 there). The URLs of events livetape never sends (snapshots, porn censorship,
//! mixing, push exceptions, audio audit) are accepted and not kept. `CallbackKey` is
//! write-only: Describe shows `***`, as `/v1` does.

use super::params::int;
use super::{
    Answer, TcError, answer, no_rename, parse, pattern, rule_error, shown, template_by_id,
    template_ids, template_named_by,
};
use crate::http::templates;
use crate::model::{
    CallbackRule, CallbackTemplate, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_INTERVAL_S, REDACTED,
};
use crate::state::AppState;
use livetape_catalog::{CALLBACK_KIND, RuleDef, StoredTemplate};
use livetape_tencent::iso;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)] // URLs of events livetape never sends.
struct TemplateIn {
    #[serde(default, deserialize_with = "int")]
    template_id: Option<i64>,
    template_name: Option<String>,
    description: Option<String>,
    stream_begin_notify_url: Option<String>,
    stream_end_notify_url: Option<String>,
    record_notify_url: Option<String>,
    record_status_notify_url: Option<String>,
    snapshot_notify_url: Option<String>,
    porn_censorship_notify_url: Option<String>,
    callback_key: Option<String>,
    stream_mix_notify_url: Option<String>,
    push_exception_notify_url: Option<String>,
    audio_audit_notify_url: Option<String>,
    record_exception_notify_url: Option<String>,
    record_exception_levels: Option<Vec<String>>,
}

/// An empty URL is "none", as Tencent's console writes it.
fn url(v: Option<String>) -> Option<Option<String>> {
    v.map(|u| Some(u).filter(|u| !u.is_empty()))
}

fn apply(mut t: CallbackTemplate, p: TemplateIn) -> Result<CallbackTemplate, TcError> {
    if let Some(u) = url(p.stream_begin_notify_url) {
        t.stream_begin_url = u;
    }
    if let Some(u) = url(p.stream_end_notify_url) {
        t.stream_end_url = u;
    }
    if let Some(u) = url(p.record_notify_url) {
        t.record_url = u;
    }
    if let Some(Some(s)) = url(p.record_status_notify_url)
        && t.record_url.as_deref() != Some(s.as_str())
    {
        return Err(TcError::invalid_value(
            "RecordStatusNotifyUrl",
            "livetape sends event 332 to RecordNotifyUrl: leave it empty or the same",
        ));
    }
    if let Some(k) = p.callback_key
        && k != REDACTED
    {
        t.key = k;
    }
    t.check().map_err(|e| {
        let f = match e.field.as_str() {
            "name" => "TemplateName",
            "key" => "CallbackKey",
            "stream_begin_url" => "StreamBeginNotifyUrl",
            "stream_end_url" => "StreamEndNotifyUrl",
            "record_url" => "RecordNotifyUrl",
            f => f,
        };
        TcError::invalid_value(f, e.problem)
    })?;
    Ok(t)
}

fn info(s: &StoredTemplate<CallbackTemplate>) -> Value {
    let t = &s.template;
    let u = |v: &Option<String>| v.clone().unwrap_or_default();
    json!({
        "TemplateId": s.id,
        "TemplateName": t.name,
        "Description": "",
        "StreamBeginNotifyUrl": u(&t.stream_begin_url),
        "StreamMixNotifyUrl": "",
        "StreamEndNotifyUrl": u(&t.stream_end_url),
        "RecordNotifyUrl": u(&t.record_url),
        "SnapshotNotifyUrl": "",
        "PornCensorshipNotifyUrl": "",
        "CallbackKey": if t.key.is_empty() { "" } else { REDACTED },
        "PushExceptionNotifyUrl": "",
        "AudioAuditNotifyUrl": "",
        "RecordExceptionNotifyUrl": "",
        "RecordExceptionLevels": [],
    })
}

pub(super) async fn create_template(st: &Arc<AppState>, p: Value) -> Answer {
    let p: TemplateIn = parse(p)?;
    let name = p
        .template_name
        .clone()
        .ok_or_else(|| TcError::missing("TemplateName"))?;
    let t = CallbackTemplate {
        name,
        key: String::new(),
        stream_begin_url: None,
        stream_end_url: None,
        record_url: None,
        retry_count: DEFAULT_RETRY_COUNT,
        retry_interval_s: DEFAULT_RETRY_INTERVAL_S,
    };
    let stored = templates::create(st, apply(t, p)?).await?;
    answer(json!({ "TemplateId": stored.id }))
}

pub(super) async fn describe_templates(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct In {}
    let _: In = parse(p)?;
    let mut all = st.catalog.list_templates::<CallbackTemplate>().await?;
    all.sort_by_key(|t| t.id);
    answer(json!({ "Templates": all.iter().map(info).collect::<Vec<_>>() }))
}

pub(super) async fn describe_template(st: &Arc<AppState>, p: Value) -> Answer {
    let t = template_named_by::<CallbackTemplate>(st, p).await?;
    answer(json!({ "Template": info(&t) }))
}

pub(super) async fn modify_template(st: &Arc<AppState>, p: Value) -> Answer {
    let p: TemplateIn = parse(p)?;
    let stored = template_by_id::<CallbackTemplate>(st, p.template_id).await?;
    no_rename(p.template_name.as_deref(), &stored.template.name)?;
    templates::replace(st, apply(stored.template, p)?).await?;
    answer(json!({}))
}

pub(super) async fn delete_template(st: &Arc<AppState>, p: Value) -> Answer {
    let t = template_named_by::<CallbackTemplate>(st, p).await?;
    templates::remove::<CallbackTemplate>(st, &t.template.name).await?;
    answer(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RuleIn {
    domain_name: Option<String>,
    app_name: Option<String>,
    #[serde(default, deserialize_with = "int")]
    template_id: Option<i64>,
}

pub(super) async fn create_rule(st: &Arc<AppState>, p: Value) -> Answer {
    let p: RuleIn = parse(p)?;
    let domain = p
        .domain_name
        .ok_or_else(|| TcError::missing("DomainName"))?;
    let app = p.app_name.ok_or_else(|| TcError::missing("AppName"))?;
    let t = template_by_id::<CallbackTemplate>(st, p.template_id).await?;
    let rule = CallbackRule {
        domain: pattern(Some(domain)),
        app: pattern(Some(app)),
        template: t.template.name,
    };
    rule.check().map_err(rule_error)?;
    let def = RuleDef {
        domain: rule.domain,
        app: rule.app,
        stream: RuleDef::ANY.into(),
        template: rule.template,
    };
    templates::add_rule(st, CALLBACK_KIND, "callback rule", &def).await?;
    answer(json!({}))
}

pub(super) async fn describe_rules(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct In {}
    let _: In = parse(p)?;
    let ids = template_ids::<CallbackTemplate>(st).await?;
    let rules = st.catalog.list_rules(CALLBACK_KIND).await?;
    let out: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "CreateTime": iso::format_utc(r.created_at_ms / 1000),
                "UpdateTime": iso::format_utc(r.updated_at_ms / 1000),
                "TemplateId": ids.get(&r.rule.template).copied().unwrap_or(0),
                "DomainName": shown(&r.rule.domain),
                "AppName": shown(&r.rule.app),
            })
        })
        .collect();
    answer(json!({ "Rules": out }))
}

pub(super) async fn delete_rule(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        domain_name: Option<String>,
        app_name: Option<String>,
    }
    let p: In = parse(p)?;
    let domain = pattern(Some(
        p.domain_name
            .ok_or_else(|| TcError::missing("DomainName"))?,
    ));
    let app = pattern(Some(p.app_name.ok_or_else(|| TcError::missing("AppName"))?));
    let rules = st.catalog.list_rules(CALLBACK_KIND).await?;
    let r = rules
        .iter()
        .find(|r| r.rule.domain == domain && r.rule.app == app)
        .ok_or_else(|| {
            TcError::not_found(format!(
                "a callback rule for DomainName `{domain}` AppName `{}`",
                shown(&app)
            ))
        })?;
    templates::remove_rule(st, CALLBACK_KIND, r.id).await?;
    answer(json!({}))
}
