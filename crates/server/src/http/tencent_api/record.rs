//! Record templates and rules (`Create/Describe(s)/Modify/DeleteLiveRecordTemplate`,
//! `Create/Describe/DeleteLiveRecordRule`), over the same catalogue templates as
//! `/v1/record-templates` and through the same checks.
//!
//! Mapping: `FlvParam`/`HlsParam`/`Mp4Param`/`AacParam` with `Enable = 1` are the template's
//! formats; `RecordInterval` is its one split interval (the enabled FLV/MP4/AAC params must
//! agree); `StorageTime` (seconds) is kept in whole days, rounded up; `HlsSpecialParam.
//! FlowContinueDuration` is the reconnect window. `TemplateName` is the template's name.

use super::params::int;
use super::{
    Answer, TcError, answer, no_rename, parse, pattern, rule_error, shown, template_by_id,
    template_ids, template_named_by,
};
use crate::http::templates;
use crate::model::{Format, RecordRule, RecordTemplate};
use crate::state::AppState;
use livetape_catalog::{RECORD_KIND, RuleDef, StoredRule, StoredTemplate};
use livetape_tencent::iso;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

const DAY_S: i64 = 86_400;

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RecordParamIn {
    #[serde(default, deserialize_with = "int")]
    record_interval: Option<i64>,
    #[serde(default, deserialize_with = "int")]
    storage_time: Option<i64>,
    #[serde(default, deserialize_with = "int")]
    enable: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HlsSpecialIn {
    #[serde(default, deserialize_with = "int")]
    flow_continue_duration: Option<i64>,
}

/// The fields of `CreateLiveRecordTemplate` and `ModifyLiveRecordTemplate` (the SDK models').
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)] // Fields the SDK may send that livetape has no use for.
struct TemplateIn {
    #[serde(default, deserialize_with = "int")]
    template_id: Option<i64>,
    template_name: Option<String>,
    description: Option<String>,
    flv_param: Option<RecordParamIn>,
    hls_param: Option<RecordParamIn>,
    mp4_param: Option<RecordParamIn>,
    aac_param: Option<RecordParamIn>,
    mp3_param: Option<RecordParamIn>,
    #[serde(default, deserialize_with = "int")]
    is_delay_live: Option<i64>,
    hls_special_param: Option<HlsSpecialIn>,
    #[serde(default, deserialize_with = "int")]
    cos_store: Option<i64>,
    remove_watermark: Option<bool>,
    flv_special_param: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordParamOut {
    record_interval: i64,
    storage_time: i64,
    enable: i64,
    vod_sub_app_id: i64,
    vod_file_name: String,
    procedure: String,
    storage_mode: String,
    class_id: i64,
    cos_bucket_name: String,
    cos_bucket_region: String,
    cos_bucket_path: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TemplateInfo {
    template_id: i64,
    template_name: String,
    description: String,
    flv_param: RecordParamOut,
    hls_param: RecordParamOut,
    mp4_param: RecordParamOut,
    aac_param: RecordParamOut,
    is_delay_live: i64,
    hls_special_param: Value,
    mp3_param: RecordParamOut,
    remove_watermark: bool,
    cos_store: i64,
    flv_special_param: Value,
}

fn info(s: &StoredTemplate<RecordTemplate>) -> TemplateInfo {
    let t = &s.template;
    let param = |f: Option<Format>| RecordParamOut {
        record_interval: t.interval_s as i64,
        storage_time: t.storage_days as i64 * DAY_S,
        enable: i64::from(f.is_some_and(|f| t.formats.contains(&f))),
        vod_sub_app_id: 0,
        vod_file_name: String::new(),
        procedure: String::new(),
        storage_mode: "normal".into(),
        class_id: 0,
        cos_bucket_name: String::new(),
        cos_bucket_region: String::new(),
        cos_bucket_path: String::new(),
    };
    TemplateInfo {
        template_id: s.id,
        template_name: t.name.clone(),
        description: String::new(),
        flv_param: param(Some(Format::Flv)),
        hls_param: param(Some(Format::Hls)),
        mp4_param: param(Some(Format::Mp4)),
        aac_param: param(Some(Format::Aac)),
        is_delay_live: 0,
        hls_special_param: serde_json::json!({ "FlowContinueDuration": t.resume_s }),
        mp3_param: param(None),
        remove_watermark: false,
        cos_store: 0,
        flv_special_param: serde_json::json!({ "UploadInRecording": false }),
    }
}

fn field_err(e: crate::model::FieldError) -> TcError {
    // The model names its own fields; say which Tencent parameter that is.
    let tc = match e.field.as_str() {
        "name" => "TemplateName",
        "formats" => "FlvParam/HlsParam/Mp4Param/AacParam.Enable",
        "interval_s" => "RecordInterval",
        "resume_s" => "HlsSpecialParam.FlowContinueDuration",
        "storage_days" => "StorageTime",
        other => other,
    };
    TcError::invalid_value(tc, e.problem)
}

/// `t` with what `p` sets: each given param turns its format on or off and may set the
/// interval and storage time.
fn apply(mut t: RecordTemplate, p: TemplateIn) -> Result<RecordTemplate, TcError> {
    if p.mp3_param.as_ref().is_some_and(|m| m.enable == Some(1)) {
        return Err(TcError::invalid_value(
            "Mp3Param.Enable",
            "livetape records FLV, HLS, MP4 and AAC, not MP3",
        ));
    }
    if p.is_delay_live.is_some_and(|d| d != 0) {
        return Err(TcError::invalid_value(
            "IsDelayLive",
            "livetape records live streams only (0)",
        ));
    }
    let mut interval: Option<(Format, i64)> = None;
    let mut storage: Option<i64> = None;
    for (f, param) in [
        (Format::Flv, &p.flv_param),
        (Format::Hls, &p.hls_param),
        (Format::Mp4, &p.mp4_param),
        (Format::Aac, &p.aac_param),
    ] {
        let Some(param) = param else { continue };
        let name = match f {
            Format::Flv => "FlvParam",
            Format::Hls => "HlsParam",
            Format::Mp4 => "Mp4Param",
            Format::Aac => "AacParam",
        };
        let on = match param.enable.unwrap_or(0) {
            0 => false,
            1 => true,
            v => {
                return Err(TcError::invalid_value(
                    &format!("{name}.Enable"),
                    format!("{v}: use 0 or 1"),
                ));
            }
        };
        t.formats.retain(|x| *x != f);
        if !on {
            continue;
        }
        t.formats.push(f);
        // HLS has no interval (one file per push, as at Tencent).
        if let Some(i) = param.record_interval.filter(|_| f != Format::Hls) {
            match interval {
                Some((g, j)) if j != i => {
                    return Err(TcError::invalid_value(
                        &format!("{name}.RecordInterval"),
                        format!(
                            "{i} differs from {g:?}'s {j}: livetape splits every format of a \
                             template at one interval"
                        ),
                    ));
                }
                _ => interval = Some((f, i)),
            }
        }
        if let Some(s) = param.storage_time {
            match storage {
                Some(x) if x != s => {
                    return Err(TcError::invalid_value(
                        &format!("{name}.StorageTime"),
                        "livetape keeps every format of a template for one StorageTime",
                    ));
                }
                _ => storage = Some(s),
            }
        }
    }
    if let Some((_, i)) = interval {
        t.interval_s = u64::try_from(i)
            .map_err(|_| TcError::invalid_value("RecordInterval", "must not be negative"))?;
    }
    if let Some(s) = storage {
        let s = u64::try_from(s)
            .map_err(|_| TcError::invalid_value("StorageTime", "must not be negative"))?;
        t.storage_days = s.div_ceil(DAY_S as u64);
    }
    if let Some(h) = p.hls_special_param.and_then(|h| h.flow_continue_duration) {
        t.resume_s = u64::try_from(h).map_err(|_| {
            TcError::invalid_value(
                "HlsSpecialParam.FlowContinueDuration",
                "must not be negative",
            )
        })?;
    }
    // Formats in the order livetape lists them.
    t.formats
        .sort_by_key(|f| Format::ALL.iter().position(|g| g == f));
    t.check().map_err(field_err)?;
    Ok(t)
}

pub(super) async fn create_template(st: &Arc<AppState>, p: Value) -> Answer {
    let p: TemplateIn = parse(p)?;
    let name = p
        .template_name
        .clone()
        .ok_or_else(|| TcError::missing("TemplateName"))?;
    let mut t = RecordTemplate::named(name);
    t.formats.clear();
    let t = apply(t, p)?;
    let stored = templates::create(st, t).await?;
    answer(serde_json::json!({ "TemplateId": stored.id }))
}

pub(super) async fn describe_templates(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        #[serde(default, deserialize_with = "int")]
        is_delay_live: Option<i64>,
    }
    let _: In = parse(p)?;
    let mut all = st.catalog.list_templates::<RecordTemplate>().await?;
    all.sort_by_key(|t| t.id);
    answer(serde_json::json!({ "Templates": all.iter().map(info).collect::<Vec<_>>() }))
}

pub(super) async fn describe_template(st: &Arc<AppState>, p: Value) -> Answer {
    let t = template_named_by::<RecordTemplate>(st, p).await?;
    answer(serde_json::json!({ "Template": info(&t) }))
}

pub(super) async fn modify_template(st: &Arc<AppState>, p: Value) -> Answer {
    let p: TemplateIn = parse(p)?;
    let stored = template_by_id::<RecordTemplate>(st, p.template_id).await?;
    no_rename(p.template_name.as_deref(), &stored.template.name)?;
    let t = apply(stored.template, p)?;
    templates::replace(st, t).await?;
    answer(serde_json::json!({}))
}

pub(super) async fn delete_template(st: &Arc<AppState>, p: Value) -> Answer {
    let t = template_named_by::<RecordTemplate>(st, p).await?;
    templates::remove::<RecordTemplate>(st, &t.template.name).await?;
    answer(serde_json::json!({}))
}

// ---- rules -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RuleIn {
    domain_name: Option<String>,
    #[serde(default, deserialize_with = "int")]
    template_id: Option<i64>,
    app_name: Option<String>,
    stream_name: Option<String>,
}

pub(super) async fn create_rule(st: &Arc<AppState>, p: Value) -> Answer {
    let p: RuleIn = parse(p)?;
    let domain = p
        .domain_name
        .ok_or_else(|| TcError::missing("DomainName"))?;
    let t = template_by_id::<RecordTemplate>(st, p.template_id).await?;
    let rule = RecordRule {
        domain: pattern(Some(domain)),
        app: pattern(p.app_name),
        stream: pattern(p.stream_name),
        template: t.template.name,
    };
    rule.check().map_err(rule_error)?;
    let def = RuleDef {
        domain: rule.domain,
        app: rule.app,
        stream: rule.stream,
        template: rule.template,
    };
    templates::add_rule(st, RECORD_KIND, "record rule", &def).await?;
    answer(serde_json::json!({}))
}

pub(super) async fn describe_rules(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct In {}
    let _: In = parse(p)?;
    let ids = template_ids::<RecordTemplate>(st).await?;
    let rules = st.catalog.list_rules(RECORD_KIND).await?;
    let out: Vec<Value> = rules.iter().map(|r| rule_info(r, &ids)).collect();
    answer(serde_json::json!({ "Rules": out }))
}

fn rule_info(r: &StoredRule, ids: &std::collections::HashMap<String, i64>) -> Value {
    serde_json::json!({
        "CreateTime": iso::format_utc(r.created_at_ms / 1000),
        "UpdateTime": iso::format_utc(r.updated_at_ms / 1000),
        "TemplateId": ids.get(&r.rule.template).copied().unwrap_or(0),
        "DomainName": shown(&r.rule.domain),
        "AppName": shown(&r.rule.app),
        "StreamName": shown(&r.rule.stream),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub(super) struct RuleKeyIn {
    pub domain_name: Option<String>,
    pub app_name: Option<String>,
    pub stream_name: Option<String>,
}

pub(super) async fn delete_rule(st: &Arc<AppState>, p: Value) -> Answer {
    let p: RuleKeyIn = parse(p)?;
    let domain = pattern(Some(
        p.domain_name
            .ok_or_else(|| TcError::missing("DomainName"))?,
    ));
    let (app, stream) = (pattern(p.app_name), pattern(p.stream_name));
    let rules = st.catalog.list_rules(RECORD_KIND).await?;
    let r = rules
        .iter()
        .find(|r| r.rule.domain == domain && r.rule.app == app && r.rule.stream == stream)
        .ok_or_else(|| {
            TcError::not_found(format!(
                "a record rule for DomainName `{domain}` AppName `{}` StreamName `{}`",
                shown(&app),
                shown(&stream)
            ))
        })?;
    templates::remove_rule(st, RECORD_KIND, r.id).await?;
    answer(serde_json::json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tpl(v: Value) -> Result<RecordTemplate, TcError> {
        let p: TemplateIn = parse(v)?;
        let mut t = RecordTemplate::named(p.template_name.clone().unwrap_or("t".into()));
        t.formats.clear();
        apply(t, p)
    }

    #[test]
    fn params_map_onto_one_template() {
        let t = tpl(json!({
            "TemplateName": "hd",
            "Mp4Param": {"Enable": 1, "RecordInterval": 600, "StorageTime": 86_401},
            "FlvParam": {"Enable": 1, "RecordInterval": 600},
            "HlsParam": {"Enable": 1, "RecordInterval": 3},
            "HlsSpecialParam": {"FlowContinueDuration": 30},
        }))
        .unwrap();
        assert_eq!(t.formats, [Format::Flv, Format::Mp4, Format::Hls]);
        assert_eq!((t.interval_s, t.resume_s, t.storage_days), (600, 30, 2));
    }

    #[test]
    fn what_livetape_cannot_hold_is_refused_naming_the_parameter() {
        for (v, field) in [
            (
                json!({"FlvParam": {"Enable": 1, "RecordInterval": 600}, "Mp4Param": {"Enable": 1, "RecordInterval": 900}}),
                "Mp4Param.RecordInterval",
            ),
            (json!({"Mp3Param": {"Enable": 1}}), "Mp3Param.Enable"),
            (json!({"FlvParam": {"Enable": 2}}), "FlvParam.Enable"),
            (
                json!({"FlvParam": {"Enable": 0}}),
                "FlvParam/HlsParam/Mp4Param/AacParam.Enable",
            ),
            (
                json!({"FlvParam": {"Enable": 1, "RecordInterval": 5}}),
                "RecordInterval",
            ),
            (
                json!({"TemplateName": "a b", "FlvParam": {"Enable": 1}}),
                "TemplateName",
            ),
        ] {
            let e = tpl(v.clone()).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{v}");
            assert!(e.message.starts_with(field), "{v}: {}", e.message);
        }
        assert_eq!(
            tpl(json!({"Bogus": 1})).unwrap_err().code,
            "UnknownParameter"
        );
    }
}
