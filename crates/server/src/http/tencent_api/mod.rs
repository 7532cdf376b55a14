//! Tencent Cloud API 3.0 on `POST /` (and `GET /?…`): what a backend written against the
//! official SDKs (`tencentcloud-sdk-python-live`/`-vod`, …) calls, pointed at livetape.
//!
//! One request: the body is read (at most [`MAX_BODY_BYTES`]: the signature covers it), the
//! `TC3-HMAC-SHA256` signature verified (`livetape_tencent::tc3`, against `[tencent_api]`),
//! the credential scope's service (`live` 2018-08-01, `vod` 2018-07-17) and `X-TC-Action`
//! pick the action, whose parameters are the JSON body (or the flattened query of a GET).
//! Every answer is HTTP 200 (the SDKs read any other status as a network failure) with
//! `{"Response": {…, "RequestId"}}`, or `{"Response": {"Error": {Code, Message}, RequestId}}`.
//!
//! The actions run the same code as `/v1` (templates through `templates::create` & co, deletes
//! through `archive`), one file per group: [`record`] (record templates and rules),
//! [`callback`] (callback templates and rules), [`streams`] (online streams, drop, forbid),
//! [`history`] (push history, the delivery log), [`auth_keys`] (push and play keys),
//! [`media`] (the VOD face of the recordings catalogue).

mod auth_keys;
mod callback;
mod history;
mod media;
mod params;
mod record;
mod streams;

use super::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use livetape_tencent::tc3;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest request body read before the signature is checked (Tencent's own limit is 1 MB
/// for JSON requests).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The live API's version (`X-TC-Version`).
pub const LIVE_VERSION: &str = "2018-08-01";
/// The VOD API's version.
pub const VOD_VERSION: &str = "2018-07-17";

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/", axum::routing::post(api).get(api_or_console))
}

/// `GET /` is the console for a browser, the API for a signed GET.
async fn api_or_console(st: State<Arc<AppState>>, req: Request) -> Response {
    if req.headers().contains_key("x-tc-action") {
        api(st, req).await
    } else {
        Redirect::to("/console").into_response()
    }
}

/// An API 3.0 error: Tencent's code and a message naming the field.
#[derive(Debug)]
pub(crate) struct TcError {
    pub code: &'static str,
    pub message: String,
}

impl TcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_value(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new("InvalidParameterValue", format!("{field}: {why}"))
    }

    pub fn missing(field: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("the parameter {field} is required"),
        )
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new("ResourceNotFound", format!("{what} does not exist"))
    }
}

/// What every `/v1` error means to an API 3.0 caller, decided here once.
impl From<ApiError> for TcError {
    fn from(e: ApiError) -> Self {
        use axum::http::StatusCode;
        let code = match (&e, e.status()) {
            (ApiError::Limit(_), _) => "LimitExceeded",
            (_, StatusCode::BAD_REQUEST) => "InvalidParameterValue",
            (_, StatusCode::NOT_FOUND) => "ResourceNotFound",
            (_, StatusCode::CONFLICT | StatusCode::FORBIDDEN) => "FailedOperation",
            _ => "InternalError",
        };
        if code == "InternalError" {
            tracing::error!(error = %e, "tencent api: request failed");
        }
        Self::new(code, e.to_string())
    }
}

impl From<livetape_catalog::CatalogError> for TcError {
    fn from(e: livetape_catalog::CatalogError) -> Self {
        ApiError::from(e).into()
    }
}

/// The answer of an action: its output fields (RequestId is added).
pub(crate) type Answer = Result<Value, TcError>;

/// An action's parameters as its request type: serde's messages name the field, and become
/// Tencent's `MissingParameter` / `UnknownParameter` / `InvalidParameter`.
pub(crate) fn parse<T: DeserializeOwned>(v: Value) -> Result<T, TcError> {
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        if let Some(f) = msg.strip_prefix("missing field ") {
            TcError::missing(f.trim_matches('`'))
        } else if msg.starts_with("unknown field") {
            TcError::new("UnknownParameter", msg)
        } else {
            TcError::new("InvalidParameter", msg)
        }
    })
}

/// A rule's `DomainName`/`AppName`/`StreamName`: empty (or absent) matches every one.
pub(crate) fn pattern(v: Option<String>) -> String {
    v.filter(|s| !s.is_empty())
        .unwrap_or_else(|| livetape_catalog::RuleDef::ANY.into())
}

/// A rule's pattern as Tencent shows it: "any" is empty.
pub(crate) fn shown(p: &str) -> &str {
    if p == livetape_catalog::RuleDef::ANY {
        ""
    } else {
        p
    }
}

/// The template of `T`'s kind numbered `id` (`TemplateId`).
pub(crate) async fn template_by_id<T: livetape_catalog::TemplateBody>(
    st: &AppState,
    id: Option<i64>,
) -> Result<livetape_catalog::StoredTemplate<T>, TcError> {
    let id = id.ok_or_else(|| TcError::missing("TemplateId"))?;
    st.catalog
        .get_template_by_id::<T>(id)
        .await?
        .ok_or_else(|| {
            TcError::not_found(format!("{} {id}", livetape_catalog::template_what(T::KIND)))
        })
}

/// The parameters of `Describe…Template` / `Delete…Template`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ById {
    #[serde(default, deserialize_with = "params::int")]
    template_id: Option<i64>,
}

/// The template a `{"TemplateId": N}` request names.
pub(crate) async fn template_named_by<T: livetape_catalog::TemplateBody>(
    st: &AppState,
    p: Value,
) -> Result<livetape_catalog::StoredTemplate<T>, TcError> {
    let ById { template_id } = parse(p)?;
    template_by_id(st, template_id).await
}

/// Template name → number for `T`'s kind: rules bind by name, Tencent shows the number.
pub(crate) async fn template_ids<T: livetape_catalog::TemplateBody>(
    st: &AppState,
) -> Result<std::collections::HashMap<String, i64>, TcError> {
    Ok(st
        .catalog
        .list_templates::<T>()
        .await?
        .into_iter()
        .map(|t| (t.template.name().to_owned(), t.id))
        .collect())
}

/// A rule's field as Tencent names the parameter.
pub(crate) fn rule_error(e: crate::model::FieldError) -> TcError {
    let f = match e.field.as_str() {
        "domain" => "DomainName",
        "app" => "AppName",
        "stream" => "StreamName",
        "template" => "TemplateId",
        f => f,
    };
    TcError::invalid_value(f, e.problem)
}

/// `Modify…Template` may not rename: livetape keys templates by name.
pub(crate) fn no_rename(asked: Option<&str>, name: &str) -> Result<(), TcError> {
    match asked {
        Some(n) if n != name => Err(TcError::invalid_value(
            "TemplateName",
            format!(
                "`{n}`: livetape keys templates by name (here `{name}`); create a new template \
                 to rename one"
            ),
        )),
        _ => Ok(()),
    }
}

/// An action's output as JSON.
pub(crate) fn answer<T: Serialize>(out: T) -> Answer {
    serde_json::to_value(out).map_err(|e| TcError::new("InternalError", e.to_string()))
}

fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-4{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

fn respond(out: Answer) -> Response {
    let rid = request_id();
    let body = match out {
        Ok(Value::Object(mut m)) => {
            m.insert("RequestId".into(), Value::String(rid));
            json!({ "Response": m })
        }
        Ok(_) => json!({ "Response": { "RequestId": rid } }),
        Err(e) => json!({
            "Response": {
                "Error": { "Code": e.code, "Message": e.message },
                "RequestId": rid,
            }
        }),
    };
    axum::Json(body).into_response()
}

async fn api(State(st): State<Arc<AppState>>, req: Request) -> Response {
    respond(handle(&st, req).await)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(st: &Arc<AppState>, req: Request) -> Answer {
    let (parts, body) = req.into_parts();
    let Some(keys) = &st.cfg.tencent_api else {
        return Err(TcError::new(
            "AuthFailure.SecretIdNotFound",
            "the Tencent Cloud API is off on this server ([tencent_api] is not configured)",
        ));
    };
    if parts.method != Method::POST && parts.method != Method::GET {
        return Err(TcError::new(
            "InvalidParameter",
            "use POST (JSON body) or GET (query parameters)",
        ));
    }
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            TcError::new(
                "InvalidParameter",
                format!("the request body is over {MAX_BODY_BYTES} bytes"),
            )
        })?;
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let query = parts.uri.query().unwrap_or("");
    let signed = tc3::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query,
        headers: &headers,
        body: &body,
    };
    let now = st.clock.now_ms() / 1000;
    let who = tc3::verify(&signed, now, |id| keys.secret_key(id).map(str::to_owned))
        .map_err(|e| TcError::new(e.code(), e.to_string()))?;
    let action =
        header(&parts.headers, "x-tc-action").ok_or_else(|| TcError::missing("X-TC-Action"))?;
    let version =
        header(&parts.headers, "x-tc-version").ok_or_else(|| TcError::missing("X-TC-Version"))?;
    let want = match who.service.as_str() {
        "live" => LIVE_VERSION,
        "vod" => VOD_VERSION,
        other => {
            return Err(TcError::new(
                "InvalidAction",
                format!("livetape serves the live and vod APIs, not `{other}`"),
            ));
        }
    };
    if version != want {
        return Err(TcError::new(
            "InvalidAction",
            format!(
                "{} version {version} is not served (use {want})",
                who.service
            ),
        ));
    }
    let params = if parts.method == Method::GET {
        params::from_query(query)?
    } else if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| TcError::new("InvalidParameter", format!("the body is not JSON: {e}")))?
    };
    if !params.is_object() {
        return Err(TcError::new(
            "InvalidParameter",
            "the body must be a JSON object",
        ));
    }
    tracing::debug!(
        action,
        service = who.service,
        secret_id = who.secret_id,
        "tencent api"
    );
    match who.service.as_str() {
        "live" => live(st, action, params).await,
        _ => vod(st, action, params).await,
    }
}

async fn live(st: &Arc<AppState>, action: &str, p: Value) -> Answer {
    match action {
        "CreateLiveRecordTemplate" => record::create_template(st, p).await,
        "DescribeLiveRecordTemplates" => record::describe_templates(st, p).await,
        "DescribeLiveRecordTemplate" => record::describe_template(st, p).await,
        "ModifyLiveRecordTemplate" => record::modify_template(st, p).await,
        "DeleteLiveRecordTemplate" => record::delete_template(st, p).await,
        "CreateLiveRecordRule" => record::create_rule(st, p).await,
        "DescribeLiveRecordRules" => record::describe_rules(st, p).await,
        "DeleteLiveRecordRule" => record::delete_rule(st, p).await,
        "CreateLiveCallbackTemplate" => callback::create_template(st, p).await,
        "DescribeLiveCallbackTemplates" => callback::describe_templates(st, p).await,
        "DescribeLiveCallbackTemplate" => callback::describe_template(st, p).await,
        "ModifyLiveCallbackTemplate" => callback::modify_template(st, p).await,
        "DeleteLiveCallbackTemplate" => callback::delete_template(st, p).await,
        "CreateLiveCallbackRule" => callback::create_rule(st, p).await,
        "DescribeLiveCallbackRules" => callback::describe_rules(st, p).await,
        "DeleteLiveCallbackRule" => callback::delete_rule(st, p).await,
        "DescribeLiveStreamOnlineList" => streams::online_list(st, p).await,
        "DescribeLiveStreamState" => streams::state(st, p).await,
        "DescribeLiveStreamPushInfoList" => streams::push_info_list(st, p).await,
        "DropLiveStream" => streams::drop_stream(st, p).await,
        "ForbidLiveStream" => streams::forbid(st, p).await,
        "ResumeLiveStream" => streams::resume(st, p).await,
        "DescribeLiveStreamPublishedList" => history::published_list(st, p).await,
        "DescribeLiveStreamEventList" => history::event_list(st, p).await,
        "DescribeCallbackRecordsList" => history::callback_records(st, p).await,
        "DescribeLivePushAuthKey" => auth_keys::describe_push(st, p).await,
        "ModifyLivePushAuthKey" => auth_keys::modify_push(st, p).await,
        "DescribeLivePlayAuthKey" => auth_keys::describe_play(st, p).await,
        "ModifyLivePlayAuthKey" => auth_keys::modify_play(st, p).await,
        a if NOT_YET_LIVE.contains(&a) => Err(not_yet(a)),
        a => Err(unknown_action(a, "live")),
    }
}

async fn vod(st: &Arc<AppState>, action: &str, p: Value) -> Answer {
    match action {
        "SearchMedia" => media::search(st, p).await,
        "DescribeMediaInfos" => media::describe(st, p).await,
        "DeleteMedia" => media::delete(st, p).await,
        "ModifyMediaInfo" => media::modify(st, p).await,
        a if NOT_YET_VOD.contains(&a) => Err(not_yet(a)),
        a => Err(unknown_action(a, "vod")),
    }
}

/// Actions of the recording feature livetape does not answer yet (README, "Moving from
/// Tencent Cloud"): `UnsupportedOperation`, so a caller can tell them from a typo.
const NOT_YET_LIVE: &[&str] = &[
    "CreateRecordTask",
    "StopRecordTask",
    "DeleteRecordTask",
    "DescribeRecordTask",
];
const NOT_YET_VOD: &[&str] = &[];

fn not_yet(action: &str) -> TcError {
    TcError::new(
        "UnsupportedOperation",
        format!("livetape does not implement {action} yet"),
    )
}

fn unknown_action(action: &str, service: &str) -> TcError {
    TcError::new(
        "InvalidAction",
        format!("the {service} API has no action `{action}` on livetape"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v4_shaped() {
        let id = request_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert_ne!(request_id(), id);
    }

    #[test]
    fn serde_errors_become_tencent_codes() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(non_snake_case, dead_code)]
        struct R {
            TemplateId: i64,
        }
        assert_eq!(parse::<R>(json!({})).unwrap_err().code, "MissingParameter");
        assert_eq!(
            parse::<R>(json!({"TemplateId": 1, "X": 1}))
                .unwrap_err()
                .code,
            "UnknownParameter"
        );
        let e = parse::<R>(json!({"TemplateId": "x"})).unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        assert!(parse::<R>(json!({"TemplateId": 3})).is_ok());
    }
}
