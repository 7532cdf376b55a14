//! Record and callback templates and rules over REST (Tencent §3.1–3.2, §1.4); every
//! committed write is applied to new pushes at once (`rules::Templates::reload`).
//!
//! - `GET|POST /v1/record-templates`, `GET|PUT|DELETE /v1/record-templates/{name}`
//! - `GET|POST /v1/record-rules`, `PUT|DELETE /v1/record-rules/{id}`
//! - `GET|POST /v1/callback-templates`, `GET|PUT|DELETE /v1/callback-templates/{name}`
//! - `GET|POST /v1/callback-rules`, `PUT|DELETE /v1/callback-rules/{id}`

use super::ApiError;
use crate::model::{
    CallbackRule, CallbackTemplate, DEFAULT_FORMATS, DEFAULT_HLS_TARGET_S, DEFAULT_INTERVAL_S,
    DEFAULT_RETRY_COUNT, DEFAULT_RETRY_INTERVAL_S, Format, RecordRule, RecordTemplate,
};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use livetape_catalog::{
    CallbackRuleDef, CallbackTemplateDef, RecordRuleDef, RecordTemplateDef, StoredRule,
    StoredTemplate,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

// ---- request bodies and validation -----------------------------------------------------

fn bad(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("`{field}`: {problem}"))
}

/// A JSON number for a field with limits: negative numbers are out of range too.
fn number(field: &str, v: Option<i64>, default: u64) -> Result<u64, ApiError> {
    match v {
        None => Ok(default),
        Some(v) => u64::try_from(v).map_err(|_| bad(field, format!("{v} is negative"))),
    }
}

/// The name comes from the path (PUT) or the body (POST); both given must agree.
fn body_name(path: Option<&str>, body: Option<String>) -> Result<String, ApiError> {
    match (path, body) {
        (Some(p), Some(b)) if p != b => {
            Err(bad("name", format!("`{b}` differs from the URL's `{p}`")))
        }
        (Some(p), _) => Ok(p.to_owned()),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(bad("name", "is required")),
    }
}

/// Body of `POST /v1/record-templates` and `PUT /v1/record-templates/{name}`. Omitted fields
/// take the config file's defaults; PUT replaces the whole template.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordTemplateBody {
    pub name: Option<String>,
    pub formats: Option<Vec<String>>,
    pub interval_s: Option<i64>,
    pub hls_target_s: Option<i64>,
    pub resume_s: Option<i64>,
    pub storage_days: Option<i64>,
}

impl RecordTemplateBody {
    pub fn validate(self, path_name: Option<&str>) -> Result<RecordTemplateDef, ApiError> {
        let name = body_name(path_name, self.name)?;
        let formats = match self.formats {
            None => DEFAULT_FORMATS.to_vec(),
            Some(names) => names
                .iter()
                .map(|f| {
                    Format::from_name(f).ok_or_else(|| {
                        bad(
                            "formats",
                            format!("unknown format `{f}`; use {:?}", Format::NAMES),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let t = RecordTemplate {
            name,
            formats,
            interval_s: number("interval_s", self.interval_s, DEFAULT_INTERVAL_S)?,
            hls_target_s: number("hls_target_s", self.hls_target_s, DEFAULT_HLS_TARGET_S)?,
            resume_s: number("resume_s", self.resume_s, 0)?,
            storage_days: number("storage_days", self.storage_days, 0)?,
        };
        t.check()?;
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(RecordTemplateDef {
            formats: t.formats.iter().map(|f| f.as_str().to_owned()).collect(),
            interval_s: u32_of(t.interval_s),
            hls_target_s: u32_of(t.hls_target_s),
            resume_s: u32_of(t.resume_s),
            storage_days: u32_of(t.storage_days),
            name: t.name,
        })
    }
}

/// Body of `POST /v1/record-rules` and `PUT /v1/record-rules/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRuleBody {
    /// Glob on the RTMP app; default `*`.
    pub app: Option<String>,
    /// Glob on the stream name; default `*`.
    pub stream: Option<String>,
    pub template: String,
}

impl RecordRuleBody {
    pub fn validate(self) -> Result<RecordRuleDef, ApiError> {
        let r = RecordRule {
            app: self.app.unwrap_or_else(|| "*".into()),
            stream: self.stream.unwrap_or_else(|| "*".into()),
            template: self.template,
        };
        r.check()?;
        Ok(RecordRuleDef {
            app: r.app,
            stream: r.stream,
            template: r.template,
        })
    }
}

/// Body of `POST /v1/callback-templates` and `PUT /v1/callback-templates/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackTemplateBody {
    pub name: Option<String>,
    /// Signing key (`sign = md5(key + t)`); default empty.
    pub key: Option<String>,
    pub stream_begin_url: Option<String>,
    pub stream_end_url: Option<String>,
    pub record_url: Option<String>,
    /// Retries after the first attempt; default 12.
    pub retry_count: Option<i64>,
    /// Default 60.
    pub retry_interval_s: Option<i64>,
}

impl CallbackTemplateBody {
    pub fn validate(self, path_name: Option<&str>) -> Result<CallbackTemplateDef, ApiError> {
        let url = |u: Option<String>| u.filter(|u| !u.is_empty());
        let t = CallbackTemplate {
            name: body_name(path_name, self.name)?,
            key: self.key.unwrap_or_default(),
            stream_begin_url: url(self.stream_begin_url),
            stream_end_url: url(self.stream_end_url),
            record_url: url(self.record_url),
            retry_count: u32::try_from(number(
                "retry_count",
                self.retry_count,
                u64::from(DEFAULT_RETRY_COUNT),
            )?)
            .map_err(|_| bad("retry_count", format!("must be at most {}", u32::MAX)))?,
            retry_interval_s: number(
                "retry_interval_s",
                self.retry_interval_s,
                DEFAULT_RETRY_INTERVAL_S,
            )?,
        };
        t.check()?;
        Ok(CallbackTemplateDef {
            name: t.name,
            key: t.key,
            stream_begin_url: t.stream_begin_url,
            stream_end_url: t.stream_end_url,
            record_url: t.record_url,
            retry_count: t.retry_count,
            retry_interval_s: u32::try_from(t.retry_interval_s).unwrap_or(u32::MAX),
        })
    }
}

/// Body of `POST /v1/callback-rules` and `PUT /v1/callback-rules/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackRuleBody {
    /// Glob on the RTMP app; default `*`.
    pub app: Option<String>,
    pub template: String,
}

impl CallbackRuleBody {
    pub fn validate(self) -> Result<CallbackRuleDef, ApiError> {
        let r = CallbackRule {
            app: self.app.unwrap_or_else(|| "*".into()),
            template: self.template,
        };
        r.check()?;
        Ok(CallbackRuleDef {
            app: r.app,
            template: r.template,
        })
    }
}

// ---- responses ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct RecordTemplateJson {
    pub name: String,
    pub formats: Vec<String>,
    pub interval_s: u32,
    pub hls_target_s: u32,
    pub resume_s: u32,
    pub storage_days: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<StoredTemplate<RecordTemplateDef>> for RecordTemplateJson {
    fn from(s: StoredTemplate<RecordTemplateDef>) -> Self {
        let t = s.template;
        Self {
            name: t.name,
            formats: t.formats,
            interval_s: t.interval_s,
            hls_target_s: t.hls_target_s,
            resume_s: t.resume_s,
            storage_days: t.storage_days,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CallbackTemplateJson {
    pub name: String,
    pub key: String,
    pub stream_begin_url: Option<String>,
    pub stream_end_url: Option<String>,
    pub record_url: Option<String>,
    pub retry_count: u32,
    pub retry_interval_s: u32,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<StoredTemplate<CallbackTemplateDef>> for CallbackTemplateJson {
    fn from(s: StoredTemplate<CallbackTemplateDef>) -> Self {
        let t = s.template;
        Self {
            name: t.name,
            key: t.key,
            stream_begin_url: t.stream_begin_url,
            stream_end_url: t.stream_end_url,
            record_url: t.record_url,
            retry_count: t.retry_count,
            retry_interval_s: t.retry_interval_s,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RecordRuleJson {
    pub id: i64,
    pub app: String,
    pub stream: String,
    pub template: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<StoredRule<RecordRuleDef>> for RecordRuleJson {
    fn from(s: StoredRule<RecordRuleDef>) -> Self {
        Self {
            id: s.id,
            app: s.rule.app,
            stream: s.rule.stream,
            template: s.rule.template,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CallbackRuleJson {
    pub id: i64,
    pub app: String,
    pub template: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<StoredRule<CallbackRuleDef>> for CallbackRuleJson {
    fn from(s: StoredRule<CallbackRuleDef>) -> Self {
        Self {
            id: s.id,
            app: s.rule.app,
            template: s.rule.template,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// The template endpoints; merge them into the authenticated REST router.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/record-templates",
            get(list_record_templates).post(create_record_template),
        )
        .route(
            "/v1/record-templates/{name}",
            get(get_record_template)
                .put(put_record_template)
                .delete(delete_record_template),
        )
        .route(
            "/v1/record-rules",
            get(list_record_rules).post(create_record_rule),
        )
        .route(
            "/v1/record-rules/{id}",
            put(update_record_rule).delete(delete_record_rule),
        )
        .route(
            "/v1/callback-templates",
            get(list_callback_templates).post(create_callback_template),
        )
        .route(
            "/v1/callback-templates/{name}",
            get(get_callback_template)
                .put(put_callback_template)
                .delete(delete_callback_template),
        )
        .route(
            "/v1/callback-rules",
            get(list_callback_rules).post(create_callback_rule),
        )
        .route(
            "/v1/callback-rules/{id}",
            put(update_callback_rule).delete(delete_callback_rule),
        )
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// Rule ids are positive integers; anything else names no rule.
fn rule_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("{what} id={raw}")))
}

/// Applies a committed write to new pushes.
async fn applied(st: &AppState) -> Result<(), ApiError> {
    st.templates.reload(&st.catalog).await.map_err(|e| {
        ApiError::Internal(format!(
            "change saved but not yet applied (reload failed): {e}"
        ))
    })
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn list_record_templates(
    State(st): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<RecordTemplateJson> = st
        .catalog
        .list_record_templates()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(serde_json::json!({ "templates": all })))
}

async fn get_record_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<RecordTemplateJson>, ApiError> {
    let t = st
        .catalog
        .get_record_template(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("record template {name}")))?;
    Ok(Json(t.into()))
}

async fn create_record_template(
    State(st): State<Arc<AppState>>,
    b: Result<Json<RecordTemplateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RecordTemplateJson>), ApiError> {
    let def = body(b)?.validate(None)?;
    let t = st
        .catalog
        .create_record_template(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

async fn put_record_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<RecordTemplateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RecordTemplateJson>), ApiError> {
    let def = body(b)?.validate(Some(&name))?;
    let (t, created) = st
        .catalog
        .put_record_template(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((created_or_ok(created), Json(t.into())))
}

async fn delete_record_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.catalog.delete_record_template(&name).await?;
    applied(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_record_rules(
    State(st): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<RecordRuleJson> = st
        .catalog
        .list_record_rules()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(serde_json::json!({ "rules": all })))
}

async fn create_record_rule(
    State(st): State<Arc<AppState>>,
    b: Result<Json<RecordRuleBody>, JsonRejection>,
) -> Result<(StatusCode, Json<RecordRuleJson>), ApiError> {
    let def = body(b)?.validate()?;
    let r = st
        .catalog
        .insert_record_rule(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

async fn update_record_rule(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Result<Json<RecordRuleBody>, JsonRejection>,
) -> Result<Json<RecordRuleJson>, ApiError> {
    let id = rule_id("record rule", &id)?;
    let def = body(b)?.validate()?;
    let r = st
        .catalog
        .update_record_rule(id, &def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok(Json(r.into()))
}

async fn delete_record_rule(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = rule_id("record rule", &id)?;
    st.catalog.delete_record_rule(id).await?;
    applied(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_callback_templates(
    State(st): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<CallbackTemplateJson> = st
        .catalog
        .list_callback_templates()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(serde_json::json!({ "templates": all })))
}

async fn get_callback_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<CallbackTemplateJson>, ApiError> {
    let t = st
        .catalog
        .get_callback_template(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("callback template {name}")))?;
    Ok(Json(t.into()))
}

async fn create_callback_template(
    State(st): State<Arc<AppState>>,
    b: Result<Json<CallbackTemplateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CallbackTemplateJson>), ApiError> {
    let def = body(b)?.validate(None)?;
    let t = st
        .catalog
        .create_callback_template(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

async fn put_callback_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<CallbackTemplateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CallbackTemplateJson>), ApiError> {
    let def = body(b)?.validate(Some(&name))?;
    let (t, created) = st
        .catalog
        .put_callback_template(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((created_or_ok(created), Json(t.into())))
}

async fn delete_callback_template(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.catalog.delete_callback_template(&name).await?;
    applied(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_callback_rules(
    State(st): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<CallbackRuleJson> = st
        .catalog
        .list_callback_rules()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(serde_json::json!({ "rules": all })))
}

async fn create_callback_rule(
    State(st): State<Arc<AppState>>,
    b: Result<Json<CallbackRuleBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CallbackRuleJson>), ApiError> {
    let def = body(b)?.validate()?;
    let r = st
        .catalog
        .insert_callback_rule(&def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

async fn update_callback_rule(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Result<Json<CallbackRuleBody>, JsonRejection>,
) -> Result<Json<CallbackRuleJson>, ApiError> {
    let id = rule_id("callback rule", &id)?;
    let def = body(b)?.validate()?;
    let r = st
        .catalog
        .update_callback_rule(id, &def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok(Json(r.into()))
}

async fn delete_callback_rule(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = rule_id("callback rule", &id)?;
    st.catalog.delete_callback_rule(id).await?;
    applied(&st).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn err_text(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(m) => m,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    fn rt_body(json: &str) -> Result<RecordTemplateDef, String> {
        let b: RecordTemplateBody = serde_json::from_str(json).unwrap();
        b.validate(None).map_err(err_text)
    }

    #[test]
    fn record_template_body_defaults_and_ranges() {
        let d = rt_body(r#"{"name":"hd"}"#).unwrap();
        assert_eq!(d.formats, ["mp4"]);
        assert_eq!(
            (d.interval_s, d.hls_target_s, d.resume_s, d.storage_days),
            (1800, 10, 0, 0)
        );
        let d = rt_body(
            r#"{"name":"a-1_b","formats":["flv","hls","aac","mp4"],"interval_s":30,
                "hls_target_s":60,"resume_s":1800,"storage_days":1500}"#,
        )
        .unwrap();
        assert_eq!(d.formats, ["flv", "hls", "aac", "mp4"]);
        assert_eq!((d.interval_s, d.resume_s, d.storage_days), (30, 1800, 1500));

        for (json, field) in [
            (r#"{"name":"x","interval_s":29}"#, "`interval_s`"),
            (r#"{"name":"x","interval_s":7201}"#, "`interval_s`"),
            (r#"{"name":"x","resume_s":1801}"#, "`resume_s`"),
            (r#"{"name":"x","resume_s":-1}"#, "`resume_s`"),
            (r#"{"name":"x","storage_days":-1}"#, "`storage_days`"),
            (r#"{"name":"x","hls_target_s":0}"#, "`hls_target_s`"),
            (r#"{"name":"x","formats":[]}"#, "`formats`"),
            (r#"{"name":"x","formats":["avi"]}"#, "`formats`"),
            (r#"{"name":"x","formats":["flv","flv"]}"#, "`formats`"),
            (r#"{"name":""}"#, "`name`"),
            (r#"{"name":"a b"}"#, "`name`"),
            (r#"{"name":"a,b"}"#, "`name`"),
            (r#"{}"#, "`name`"),
        ] {
            let e = rt_body(json).unwrap_err();
            assert!(e.starts_with(field), "{json}: {e}");
        }
    }

    #[test]
    fn path_and_body_names_must_agree() {
        let b = |j: &str| serde_json::from_str::<RecordTemplateBody>(j).unwrap();
        assert_eq!(b("{}").validate(Some("hd")).unwrap().name, "hd");
        assert_eq!(
            b(r#"{"name":"hd"}"#).validate(Some("hd")).unwrap().name,
            "hd"
        );
        let e = err_text(b(r#"{"name":"sd"}"#).validate(Some("hd")).unwrap_err());
        assert!(e.starts_with("`name`"), "{e}");
    }

    #[test]
    fn callback_template_body_validation() {
        let cb = |j: &str| {
            serde_json::from_str::<CallbackTemplateBody>(j)
                .unwrap()
                .validate(None)
                .map_err(err_text)
        };
        let d = cb(r#"{"name":"h","record_url":"https://x/r"}"#).unwrap();
        assert_eq!((d.retry_count, d.retry_interval_s), (12, 60));
        assert_eq!(d.key, "");
        assert_eq!(d.stream_begin_url, None);
        // Empty URL strings mean "not set".
        let d = cb(r#"{"name":"h","record_url":"http://x/r","stream_end_url":""}"#).unwrap();
        assert_eq!(d.stream_end_url, None);
        for (json, field) in [
            (r#"{"name":"h"}"#, "`record_url`"),
            (r#"{"name":"h","stream_end_url":""}"#, "`record_url`"),
            (
                r#"{"name":"h","stream_begin_url":"ftp://x"}"#,
                "`stream_begin_url`",
            ),
            (
                r#"{"name":"h","stream_end_url":"http://"}"#,
                "`stream_end_url`",
            ),
            (r#"{"name":"h","record_url":"http://a b"}"#, "`record_url`"),
            (
                r#"{"name":"h","record_url":"http://x","retry_interval_s":0}"#,
                "`retry_interval_s`",
            ),
            (
                r#"{"name":"h","record_url":"http://x","retry_count":-1}"#,
                "`retry_count`",
            ),
        ] {
            let e = cb(json).unwrap_err();
            assert!(e.starts_with(field), "{json}: {e}");
        }
    }

    #[test]
    fn rule_body_validation() {
        let r = |j: &str| {
            serde_json::from_str::<RecordRuleBody>(j)
                .unwrap()
                .validate()
                .map_err(err_text)
        };
        let d = r(r#"{"template":"hd"}"#).unwrap();
        assert_eq!((d.app.as_str(), d.stream.as_str()), ("*", "*"));
        assert!(
            r(r#"{"template":"hd","app":""}"#)
                .unwrap_err()
                .starts_with("`app`")
        );
        let long = "s".repeat(crate::model::MAX_NAME_LEN + 1);
        let e = r(&format!(r#"{{"template":"hd","stream":"{long}"}}"#)).unwrap_err();
        assert!(e.starts_with("`stream`"), "{e}");
        assert!(
            r(r#"{"template":"a b"}"#)
                .unwrap_err()
                .starts_with("`template`")
        );
        let c = serde_json::from_str::<CallbackRuleBody>(r#"{"app":"live","template":"h"}"#)
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.app, "live");
        // Unknown fields are refused by the extractor (deny_unknown_fields).
        assert!(serde_json::from_str::<RecordRuleBody>(r#"{"template":"h","x":1}"#).is_err());
    }

    #[test]
    fn catalog_errors_map_to_statuses() {
        use livetape_catalog::CatalogError;
        let nf = ApiError::from(CatalogError::NotFound {
            what: "record rule",
            key: "id=3".into(),
        });
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        assert!(nf.to_string().contains("id=3"), "{nf}");
        let c = ApiError::from(CatalogError::Conflict {
            what: "record template",
            key: "name=hd".into(),
            reason: "still bound".into(),
        });
        assert_eq!(c.status(), StatusCode::CONFLICT);
        assert!(c.to_string().contains("still bound"), "{c}");
        let u = ApiError::from(CatalogError::UnknownTemplate {
            what: "record template",
            name: "zz".into(),
        });
        assert_eq!(u.status(), StatusCode::BAD_REQUEST);
        assert!(u.to_string().starts_with("`template`"), "{u}");
        assert!(matches!(rule_id("r", "abc"), Err(ApiError::NotFound(_))));
        assert!(matches!(rule_id("r", "0"), Err(ApiError::NotFound(_))));
        assert_eq!(rule_id("r", "7").unwrap(), 7);
    }

    /// The whole loop over HTTP: seeded from the config, edited over REST (auth, 201/200/204,
    /// 400/404/409), new lookups see each edit, and a restart keeps the edits (no re-seed).
    #[tokio::test]
    async fn rest_edits_apply_to_new_lookups_and_survive_a_restart() {
        use serde_json::{Value, json};
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::from_toml_str(&format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{}"
            [api]
            key = "tok"
            [[callback_template]]
            name = "cb"
            record_url = "http://h/r"
            [[callback_rule]]
            app = "live"
            template = "cb"
            "#,
            dir.path().display()
        ))
        .unwrap();
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let run = crate::start(cfg.clone(), clock.clone()).await.unwrap();
        let base = format!("http://{}", run.http_addr);
        let http = reqwest::Client::new();
        let call = |m: reqwest::Method, path: &str, body: Option<Value>| {
            let mut rq = http.request(m, format!("{base}{path}")).bearer_auth("tok");
            if let Some(b) = body {
                rq = rq.json(&b);
            }
            async move {
                let r = rq.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                (
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                )
            }
        };
        use reqwest::Method as M;

        // Seeded: the built-in default template + catch-all rule, and the config callback.
        let (st, v) = call(M::GET, "/v1/record-rules", None).await;
        assert_eq!(st, 200);
        assert_eq!(v["rules"][0]["template"], "default");
        let snap = run.state.templates.snapshot();
        assert_eq!(
            snap.record_template_for("live", "s").unwrap().name,
            "default"
        );
        assert_eq!(snap.callback_template_for("live").unwrap().name, "cb");

        // Auth applies.
        let r = http
            .get(format!("{base}/v1/record-templates"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);

        let (st, v) = call(
            M::POST,
            "/v1/record-templates",
            Some(json!({"name":"vip","formats":["flv"],"interval_s":600})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["interval_s"], 600);
        let (st, _) = call(M::POST, "/v1/record-templates", Some(json!({"name":"vip"}))).await;
        assert_eq!(st, 409);
        let (st, v) = call(
            M::POST,
            "/v1/record-templates",
            Some(json!({"name":"x","interval_s":5})),
        )
        .await;
        assert_eq!(st, 400);
        assert!(v["error"].as_str().unwrap().contains("interval_s"), "{v}");

        let (st, v) = call(
            M::POST,
            "/v1/record-rules",
            Some(json!({"app":"live","stream":"vip_*","template":"vip"})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        let rule_id = v["id"].as_i64().unwrap();
        let (st, v) = call(
            M::POST,
            "/v1/record-rules",
            Some(json!({"template":"nope"})),
        )
        .await;
        assert_eq!(st, 400, "{v}");

        // A push that resolved its template before the edit keeps its copy.
        let running_push = snap.record_template_for("live", "vip_1").unwrap();
        let snap = run.state.templates.snapshot();
        let t = snap.record_template_for("live", "vip_1").unwrap();
        assert_eq!((t.name.as_str(), t.interval_s), ("vip", 600));
        assert_eq!(running_push.name, "default");

        // PUT replaces (200), then creates (201); the next lookup sees the new interval.
        let (st, v) = call(
            M::PUT,
            "/v1/record-templates/vip",
            Some(json!({"formats":["mp4"],"interval_s":900})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let t = run
            .state
            .templates
            .snapshot()
            .record_template_for("live", "vip_1")
            .unwrap();
        assert_eq!(t.interval_s, 900);
        let (st, _) = call(M::PUT, "/v1/record-templates/new-one", Some(json!({}))).await;
        assert_eq!(st, 201);

        // Bound template: 409 until its rule goes.
        let (st, v) = call(M::DELETE, "/v1/record-templates/vip", None).await;
        assert_eq!(st, 409, "{v}");
        let (st, _) = call(
            M::PUT,
            "/v1/record-rules/999",
            Some(json!({"template":"vip"})),
        )
        .await;
        assert_eq!(st, 404);
        let (st, _) = call(M::DELETE, &format!("/v1/record-rules/{rule_id}"), None).await;
        assert_eq!(st, 204);
        let (st, _) = call(M::DELETE, "/v1/record-templates/vip", None).await;
        assert_eq!(st, 204);
        let (st, _) = call(M::GET, "/v1/record-templates/vip", None).await;
        assert_eq!(st, 404);
        assert_eq!(
            run.state
                .templates
                .snapshot()
                .record_template_for("live", "vip_1")
                .unwrap()
                .name,
            "default"
        );

        // Callbacks: unbind the seeded rule, then no callback template applies.
        let (_, v) = call(M::GET, "/v1/callback-rules", None).await;
        let cb_rule = v["rules"][0]["id"].as_i64().unwrap();
        let (st, _) = call(M::DELETE, "/v1/callback-templates/cb", None).await;
        assert_eq!(st, 409);
        let (st, _) = call(M::DELETE, &format!("/v1/callback-rules/{cb_rule}"), None).await;
        assert_eq!(st, 204);
        assert!(
            run.state
                .templates
                .snapshot()
                .callback_template_for("live")
                .is_none()
        );
        let (st, v) = call(
            M::POST,
            "/v1/callback-templates",
            Some(json!({"name":"cb2","stream_end_url":"ftp://x"})),
        )
        .await;
        assert_eq!(st, 400);
        assert!(
            v["error"].as_str().unwrap().contains("stream_end_url"),
            "{v}"
        );

        // Restart with the same config: the edits stand, nothing is re-seeded.
        run.shutdown().await;
        let run = crate::start(cfg, clock).await.unwrap();
        let snap = run.state.templates.snapshot();
        assert!(snap.callback_template_for("live").is_none());
        assert!(
            run.state
                .catalog
                .get_record_template("new-one")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            run.state.catalog.list_record_rules().await.unwrap().len(),
            1
        );
        run.shutdown().await;
    }
}
