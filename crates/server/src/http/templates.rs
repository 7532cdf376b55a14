//! Templates and the rules that bind them over REST (Tencent §3.1–3.2, §1.4), one generic set
//! of handlers for every kind; every committed write is applied to new pushes at once
//! (`rules::Templates::reload`).
//!
//! - `GET|POST /v1/record-templates`, `GET|PUT|DELETE /v1/record-templates/{name}`
//! - `GET|POST /v1/record-rules`, `PUT|DELETE /v1/record-rules/{id}`
//! - `GET|POST /v1/callback-templates`, `GET|PUT|DELETE /v1/callback-templates/{name}`
//! - `GET|POST /v1/callback-rules`, `PUT|DELETE /v1/callback-rules/{id}`
//!
//! A kind is a [`TemplateResource`] (its request body, how the body becomes the model type
//! with its defaults and checks) and a [`RuleResource`] (its rule body). Its routes are thin
//! per-kind handlers made by [`template_kind`] and [`rule_kind`], each with its own
//! `#[utoipa::path]`, so `/v1/openapi.json` lists every route with its concrete types.

use super::ApiError;
use super::error::ErrorBody;
use crate::model::{
    CallbackRule, CallbackTemplate, Cidr, DEFAULT_FORMATS, DEFAULT_HLS_TARGET_S,
    DEFAULT_INTERVAL_S, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_INTERVAL_S, Format, MAX_TEMPLATES,
    REDACTED, RecordRule, RecordTemplate, refused_target,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use livetape_catalog::{RuleDef, StoredRule, StoredTemplate, TemplateBody};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .merge(record_templates::routes())
        .merge(record_rules::routes())
        .merge(callback_templates::routes())
        .merge(callback_rules::routes())
}

/// A kind of template over REST.
pub(crate) trait TemplateResource: TemplateBody + Serialize {
    /// The request body of POST and PUT: every field optional but what has no default.
    type Body: DeserializeOwned + Send;
    /// The template a body describes (defaults filled in, limits checked); the name comes
    /// from the path (PUT) or the body (POST), and both given must agree.
    fn from_body(body: Self::Body, path_name: Option<&str>) -> Result<Self, ApiError>;
    /// Secrets are write-only: what the API shows in their place ([`REDACTED`]).
    fn redact(&mut self) {}
    /// Hosts an API client may not make the server call (see `model::targets`).
    fn check_targets(&self, _allow: &[Cidr]) -> Result<(), ApiError> {
        Ok(())
    }
    /// A PUT that sends [`REDACTED`] back for a secret keeps the stored one.
    fn restore_secrets(_body: &mut Self::Body, _stored: &Self) {}
}

/// A kind of rule over REST.
pub(crate) trait RuleResource: Serialize + Sized {
    /// The catalogue kind of the templates these rules bind.
    const KIND: &'static str;
    /// What error messages call it ("record rule").
    const WHAT: &'static str;
    type Body: DeserializeOwned + Send;
    fn from_body(body: Self::Body) -> Result<RuleDef, ApiError>;
    fn from_def(def: &RuleDef) -> Self;
}

/// A stored template as the API shows it: its fields and when it was created and changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateJson<T> {
    /// The template's number (Tencent API 3.0's `TemplateId`), kept when it is replaced.
    pub id: i64,
    #[serde(flatten)]
    pub template: T,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl<T: TemplateResource> From<StoredTemplate<T>> for TemplateJson<T> {
    fn from(s: StoredTemplate<T>) -> Self {
        let mut template = s.template;
        template.redact();
        Self {
            id: s.id,
            template,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

/// The answer of a template listing: every template of the kind, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList<T> {
    pub templates: Vec<TemplateJson<T>>,
}

/// A stored rule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleJson<R> {
    pub id: i64,
    #[serde(flatten)]
    pub rule: R,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The answer of a rule listing: every rule of the kind, in the order they are tried.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList<R> {
    pub rules: Vec<RuleJson<R>>,
}

fn rule_json<R: RuleResource>(s: StoredRule) -> RuleJson<R> {
    RuleJson {
        id: s.id,
        rule: R::from_def(&s.rule),
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
    }
}

/// One kind of template's routes. The handlers below are generic over the kind; each kind
/// gets thin non-generic ones here, so that every real route has its own path item, with its
/// concrete body types, in the OpenAPI document (`GET /v1/openapi.json`).
macro_rules! template_kind {
    ($kind:ident, $one:ident, $T:ty, $Body:ty, $tag:tt, $what:tt, $coll:tt, $item:tt) => {
        mod $kind {
            use super::*;

            pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(get, put, delete))
            }

            #[utoipa::path(
                get,
                path = $coll,
                tag = $tag,
                operation_id = concat!("list_", stringify!($kind)),
                summary = concat!("List ", $what, "s"),
                responses((status = 200, description = "Every one, by name", body = TemplateList<$T>))
            )]
            async fn list(st: State<Arc<AppState>>) -> Result<Json<TemplateList<$T>>, ApiError> {
                list_templates::<$T>(st).await
            }

            #[utoipa::path(
                post,
                path = $coll,
                tag = $tag,
                operation_id = concat!("create_", stringify!($one)),
                summary = concat!("Create a ", $what),
                description = "Omitted fields take their defaults; applies to new pushes at once.",
                request_body = $Body,
                responses(
                    (status = 201, description = "Created", body = TemplateJson<$T>),
                    (status = 400, description = "The body is malformed or a field is out of its limits", body = ErrorBody),
                    (status = 409, description = "One of that name exists, or the kind has the most templates there may be", body = ErrorBody),
                )
            )]
            async fn create(
                st: State<Arc<AppState>>,
                b: Result<Json<$Body>, JsonRejection>,
            ) -> Result<(StatusCode, Json<TemplateJson<$T>>), ApiError> {
                create_template::<$T>(st, b).await
            }

            #[utoipa::path(
                get,
                path = $item,
                tag = $tag,
                operation_id = concat!("get_", stringify!($one)),
                summary = concat!("Get one ", $what),
                params(("name" = String, Path, description = "The template's name")),
                responses(
                    (status = 200, description = "The template", body = TemplateJson<$T>),
                    (status = 404, description = "No template of that name", body = ErrorBody),
                )
            )]
            async fn get(
                st: State<Arc<AppState>>,
                name: Path<String>,
            ) -> Result<Json<TemplateJson<$T>>, ApiError> {
                get_template::<$T>(st, name).await
            }

            #[utoipa::path(
                put,
                path = $item,
                tag = $tag,
                operation_id = concat!("put_", stringify!($one)),
                summary = concat!("Create or replace a ", $what),
                description = "Replaces the whole template (omitted fields take their defaults). \
                               A secret sent back as `***` keeps the stored one.",
                params(("name" = String, Path, description = "The template's name")),
                request_body = $Body,
                responses(
                    (status = 200, description = "Replaced", body = TemplateJson<$T>),
                    (status = 201, description = "Created", body = TemplateJson<$T>),
                    (status = 400, description = "The body is malformed, a field is out of its limits, or its name differs from the URL's", body = ErrorBody),
                    (status = 409, description = "The kind has the most templates there may be", body = ErrorBody),
                )
            )]
            async fn put(
                st: State<Arc<AppState>>,
                name: Path<String>,
                b: Result<Json<$Body>, JsonRejection>,
            ) -> Result<(StatusCode, Json<TemplateJson<$T>>), ApiError> {
                put_template::<$T>(st, name, b).await
            }

            #[utoipa::path(
                delete,
                path = $item,
                tag = $tag,
                operation_id = concat!("delete_", stringify!($one)),
                summary = concat!("Delete a ", $what),
                params(("name" = String, Path, description = "The template's name")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 404, description = "No template of that name", body = ErrorBody),
                    (status = 409, description = "A rule still binds it", body = ErrorBody),
                )
            )]
            async fn delete(st: State<Arc<AppState>>, name: Path<String>) -> Result<StatusCode, ApiError> {
                delete_template::<$T>(st, name).await
            }
        }
    };
}

/// One kind of rule's routes, as [`template_kind`] for templates.
macro_rules! rule_kind {
    ($kind:ident, $one:ident, $R:ty, $Body:ty, $tag:tt, $what:tt, $coll:tt, $item:tt) => {
        mod $kind {
            use super::*;

            pub(super) fn routes() -> OpenApiRouter<Arc<AppState>> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(update, delete))
            }

            #[utoipa::path(
                get,
                path = $coll,
                tag = $tag,
                operation_id = concat!("list_", stringify!($kind)),
                summary = concat!("List ", $what, "s"),
                responses((status = 200, description = "Every one, in the order they are tried", body = RuleList<$R>))
            )]
            async fn list(st: State<Arc<AppState>>) -> Result<Json<RuleList<$R>>, ApiError> {
                list_rules::<$R>(st).await
            }

            #[utoipa::path(
                post,
                path = $coll,
                tag = $tag,
                operation_id = concat!("create_", stringify!($one)),
                summary = concat!("Create a ", $what),
                description = "Omitted globs match anything (`*`); applies to new pushes at once.",
                request_body = $Body,
                responses(
                    (status = 201, description = "Created", body = RuleJson<$R>),
                    (status = 400, description = "The body is malformed, a field is out of its limits, or no template has that name", body = ErrorBody),
                    (status = 409, description = "A rule of the same patterns exists, or the kind has the most rules there may be", body = ErrorBody),
                )
            )]
            async fn create(
                st: State<Arc<AppState>>,
                b: Result<Json<$Body>, JsonRejection>,
            ) -> Result<(StatusCode, Json<RuleJson<$R>>), ApiError> {
                create_rule::<$R>(st, b).await
            }

            #[utoipa::path(
                put,
                path = $item,
                tag = $tag,
                operation_id = concat!("update_", stringify!($one)),
                summary = concat!("Replace a ", $what),
                params(("id" = i64, Path, description = "The rule's `id`")),
                request_body = $Body,
                responses(
                    (status = 200, description = "Replaced", body = RuleJson<$R>),
                    (status = 400, description = "The body is malformed, a field is out of its limits, or no template has that name", body = ErrorBody),
                    (status = 404, description = "No rule of that id", body = ErrorBody),
                    (status = 409, description = "Another rule has the same patterns", body = ErrorBody),
                )
            )]
            async fn update(
                st: State<Arc<AppState>>,
                id: Path<String>,
                b: Result<Json<$Body>, JsonRejection>,
            ) -> Result<Json<RuleJson<$R>>, ApiError> {
                update_rule::<$R>(st, id, b).await
            }

            #[utoipa::path(
                delete,
                path = $item,
                tag = $tag,
                operation_id = concat!("delete_", stringify!($one)),
                summary = concat!("Delete a ", $what),
                params(("id" = i64, Path, description = "The rule's `id`")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 404, description = "No rule of that id", body = ErrorBody),
                )
            )]
            async fn delete(st: State<Arc<AppState>>, id: Path<String>) -> Result<StatusCode, ApiError> {
                delete_rule::<$R>(st, id).await
            }
        }
    };
}

template_kind!(
    record_templates,
    record_template,
    RecordTemplate,
    RecordTemplateBody,
    "record templates",
    "record template",
    "/v1/record-templates",
    "/v1/record-templates/{name}"
);
rule_kind!(
    record_rules,
    record_rule,
    RecordRule,
    RecordRuleBody,
    "record rules",
    "record rule",
    "/v1/record-rules",
    "/v1/record-rules/{id}"
);
template_kind!(
    callback_templates,
    callback_template,
    CallbackTemplate,
    CallbackTemplateBody,
    "callback templates",
    "callback template",
    "/v1/callback-templates",
    "/v1/callback-templates/{name}"
);
rule_kind!(
    callback_rules,
    callback_rule,
    CallbackRule,
    CallbackRuleBody,
    "callback rules",
    "callback rule",
    "/v1/callback-rules",
    "/v1/callback-rules/{id}"
);

fn bad(field: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("`{field}`: {problem}"))
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

async fn list_templates<T: TemplateResource>(
    State(st): State<Arc<AppState>>,
) -> Result<Json<TemplateList<T>>, ApiError> {
    let templates = st
        .catalog
        .list_templates::<T>()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(TemplateList { templates }))
}

async fn get_template<T: TemplateResource>(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<TemplateJson<T>>, ApiError> {
    let what = livetape_catalog::template_what(T::KIND);
    let t = st
        .catalog
        .get_template::<T>(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{what} {name}")))?;
    Ok(Json(t.into()))
}

async fn create_template<T: TemplateResource>(
    State(st): State<Arc<AppState>>,
    b: Result<Json<T::Body>, JsonRejection>,
) -> Result<(StatusCode, Json<TemplateJson<T>>), ApiError> {
    let t = create(&st, T::from_body(body(b)?, None)?).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// Creates a checked template: what every face (`/v1`, Tencent API 3.0) runs.
pub(crate) async fn create<T: TemplateResource>(
    st: &AppState,
    t: T,
) -> Result<StoredTemplate<T>, ApiError> {
    t.check_targets(&st.cfg.callbacks.allowed_targets())?;
    room_for_one::<T>(st).await?;
    let t = st.catalog.create_template(&t, st.clock.now_ms()).await?;
    applied(st).await?;
    Ok(t)
}

/// Replaces a checked template that exists: what every face runs.
pub(crate) async fn replace<T: TemplateResource>(
    st: &AppState,
    t: T,
) -> Result<StoredTemplate<T>, ApiError> {
    t.check_targets(&st.cfg.callbacks.allowed_targets())?;
    let (t, _) = st.catalog.put_template(&t, st.clock.now_ms()).await?;
    applied(st).await?;
    Ok(t)
}

/// Deletes a template (refused while a rule binds it): what every face runs.
pub(crate) async fn remove<T: TemplateResource>(st: &AppState, name: &str) -> Result<(), ApiError> {
    st.catalog.delete_template::<T>(name).await?;
    applied(st).await
}

/// Adds a checked rule: what every face runs.
pub(crate) async fn add_rule(
    st: &AppState,
    kind: &str,
    what: &str,
    def: &RuleDef,
) -> Result<StoredRule, ApiError> {
    room_beside(st.catalog.list_rules(kind).await?.len(), what)?;
    let r = st.catalog.insert_rule(kind, def, st.clock.now_ms()).await?;
    applied(st).await?;
    Ok(r)
}

/// Deletes rule `id` of `kind`: what every face runs.
pub(crate) async fn remove_rule(st: &AppState, kind: &str, id: i64) -> Result<(), ApiError> {
    st.catalog.delete_rule(kind, id).await?;
    applied(st).await
}

async fn put_template<T: TemplateResource>(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    b: Result<Json<T::Body>, JsonRejection>,
) -> Result<(StatusCode, Json<TemplateJson<T>>), ApiError> {
    let mut b = body(b)?;
    let stored = st.catalog.get_template::<T>(&name).await?;
    match &stored {
        Some(old) => T::restore_secrets(&mut b, &old.template),
        None => room_for_one::<T>(&st).await?,
    }
    let t = T::from_body(b, Some(&name))?;
    t.check_targets(&st.cfg.callbacks.allowed_targets())?;
    let (t, created) = st.catalog.put_template(&t, st.clock.now_ms()).await?;
    applied(&st).await?;
    Ok((created_or_ok(created), Json(t.into())))
}

/// Refuses a new template once its kind has [`MAX_TEMPLATES`].
async fn room_for_one<T: TemplateResource>(st: &AppState) -> Result<(), ApiError> {
    let n = st.catalog.list_templates::<T>().await?.len();
    room_beside(n, livetape_catalog::template_what(T::KIND))
}

/// `n` of a kind (templates or rules) exist: room for one more, or 409.
fn room_beside(n: usize, what: &str) -> Result<(), ApiError> {
    if n as u64 >= MAX_TEMPLATES {
        return Err(ApiError::Limit(format!(
            "{n} {what}s exist, the most there may be ({MAX_TEMPLATES}); delete one first"
        )));
    }
    Ok(())
}

async fn delete_template<T: TemplateResource>(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove::<T>(&st, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_rules<R: RuleResource>(
    State(st): State<Arc<AppState>>,
) -> Result<Json<RuleList<R>>, ApiError> {
    let rules = st
        .catalog
        .list_rules(R::KIND)
        .await?
        .into_iter()
        .map(rule_json::<R>)
        .collect();
    Ok(Json(RuleList { rules }))
}

async fn create_rule<R: RuleResource>(
    State(st): State<Arc<AppState>>,
    b: Result<Json<R::Body>, JsonRejection>,
) -> Result<(StatusCode, Json<RuleJson<R>>), ApiError> {
    let def = R::from_body(body(b)?)?;
    let r = add_rule(&st, R::KIND, R::WHAT, &def).await?;
    Ok((StatusCode::CREATED, Json(rule_json(r))))
}

async fn update_rule<R: RuleResource>(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Result<Json<R::Body>, JsonRejection>,
) -> Result<Json<RuleJson<R>>, ApiError> {
    let id = rule_id(R::WHAT, &id)?;
    let def = R::from_body(body(b)?)?;
    let r = st
        .catalog
        .update_rule(R::KIND, id, &def, st.clock.now_ms())
        .await?;
    applied(&st).await?;
    Ok(Json(rule_json(r)))
}

async fn delete_rule<R: RuleResource>(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_rule(&st, R::KIND, rule_id(R::WHAT, &id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- the kinds ---------------------------------------------------------------------------

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

fn pattern(v: Option<String>) -> String {
    v.unwrap_or_else(|| RuleDef::ANY.into())
}

/// Body of `POST /v1/record-templates` and `PUT /v1/record-templates/{name}`. Omitted fields
/// take the defaults; PUT replaces the whole template.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTemplateBody {
    /// Read-only (the template's number, as answers show it): accepted so an answer can be
    /// sent back as is, and ignored.
    #[allow(dead_code)]
    pub id: Option<i64>,
    pub name: Option<String>,
    pub formats: Option<Vec<String>>,
    pub interval_s: Option<i64>,
    pub hls_target_s: Option<i64>,
    pub resume_s: Option<i64>,
    pub storage_days: Option<i64>,
}

impl TemplateResource for RecordTemplate {
    type Body = RecordTemplateBody;

    fn from_body(b: RecordTemplateBody, path_name: Option<&str>) -> Result<Self, ApiError> {
        let name = body_name(path_name, b.name)?;
        let formats = match b.formats {
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
            interval_s: number("interval_s", b.interval_s, DEFAULT_INTERVAL_S)?,
            hls_target_s: number("hls_target_s", b.hls_target_s, DEFAULT_HLS_TARGET_S)?,
            resume_s: number("resume_s", b.resume_s, 0)?,
            storage_days: number("storage_days", b.storage_days, 0)?,
        };
        t.check()?;
        Ok(t)
    }
}

/// Body of `POST /v1/callback-templates` and `PUT /v1/callback-templates/{name}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackTemplateBody {
    /// Read-only (the template's number, as answers show it): accepted so an answer can be
    /// sent back as is, and ignored.
    #[allow(dead_code)]
    pub id: Option<i64>,
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

impl TemplateResource for CallbackTemplate {
    type Body = CallbackTemplateBody;

    fn from_body(b: CallbackTemplateBody, path_name: Option<&str>) -> Result<Self, ApiError> {
        let url = |u: Option<String>| u.filter(|u| !u.is_empty());
        let retry_count = number("retry_count", b.retry_count, u64::from(DEFAULT_RETRY_COUNT))?;
        let t = CallbackTemplate {
            name: body_name(path_name, b.name)?,
            key: b.key.unwrap_or_default(),
            stream_begin_url: url(b.stream_begin_url),
            stream_end_url: url(b.stream_end_url),
            record_url: url(b.record_url),
            retry_count: u32::try_from(retry_count)
                .map_err(|_| bad("retry_count", format!("must be at most {}", u32::MAX)))?,
            retry_interval_s: number(
                "retry_interval_s",
                b.retry_interval_s,
                DEFAULT_RETRY_INTERVAL_S,
            )?,
        };
        t.check()?;
        Ok(t)
    }

    fn check_targets(&self, allow: &[Cidr]) -> Result<(), ApiError> {
        for (field, u) in self.urls() {
            if let Some(why) = u.as_deref().and_then(|u| refused_target(u, allow)) {
                return Err(bad(field, why));
            }
        }
        Ok(())
    }

    fn redact(&mut self) {
        if !self.key.is_empty() {
            self.key = REDACTED.into();
        }
    }

    fn restore_secrets(body: &mut CallbackTemplateBody, stored: &Self) {
        if body.key.as_deref() == Some(REDACTED) {
            body.key = Some(stored.key.clone());
        }
    }
}

/// Body of `POST /v1/record-rules` and `PUT /v1/record-rules/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRuleBody {
    /// Glob on the push domain; default `*`.
    pub domain: Option<String>,
    /// Glob on the RTMP app; default `*`.
    pub app: Option<String>,
    /// Glob on the stream name; default `*`.
    pub stream: Option<String>,
    pub template: String,
}

impl RuleResource for RecordRule {
    const KIND: &'static str = <RecordTemplate as TemplateBody>::KIND;
    const WHAT: &'static str = "record rule";
    type Body = RecordRuleBody;

    fn from_body(b: RecordRuleBody) -> Result<RuleDef, ApiError> {
        let r = RecordRule {
            domain: pattern(b.domain),
            app: pattern(b.app),
            stream: pattern(b.stream),
            template: b.template,
        };
        r.check()?;
        Ok(r.to_def())
    }

    fn from_def(def: &RuleDef) -> Self {
        RecordRule::from_def(def)
    }
}

/// Body of `POST /v1/callback-rules` and `PUT /v1/callback-rules/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRuleBody {
    /// Glob on the push domain; default `*`.
    pub domain: Option<String>,
    /// Glob on the RTMP app; default `*`.
    pub app: Option<String>,
    pub template: String,
}

impl RuleResource for CallbackRule {
    const KIND: &'static str = <CallbackTemplate as TemplateBody>::KIND;
    const WHAT: &'static str = "callback rule";
    type Body = CallbackRuleBody;

    fn from_body(b: CallbackRuleBody) -> Result<RuleDef, ApiError> {
        let r = CallbackRule {
            domain: pattern(b.domain),
            app: pattern(b.app),
            template: b.template,
        };
        r.check()?;
        Ok(r.to_def())
    }

    fn from_def(def: &RuleDef) -> Self {
        CallbackRule::from_def(def)
    }
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

    fn rt_body(json: &str) -> Result<RecordTemplate, String> {
        let b: RecordTemplateBody = serde_json::from_str(json).unwrap();
        RecordTemplate::from_body(b, None).map_err(err_text)
    }

    #[test]
    fn record_template_body_defaults_and_ranges() {
        let d = rt_body(r#"{"name":"hd"}"#).unwrap();
        assert_eq!(d.formats, [Format::Mp4]);
        assert_eq!(
            (d.interval_s, d.hls_target_s, d.resume_s, d.storage_days),
            (1800, 10, 0, 0)
        );
        let d = rt_body(
            r#"{"name":"a-1_b","formats":["flv","hls","aac","mp4"],"interval_s":30,
                "hls_target_s":60,"resume_s":1800,"storage_days":1500}"#,
        )
        .unwrap();
        assert_eq!(
            d.formats,
            [Format::Flv, Format::Hls, Format::Aac, Format::Mp4]
        );
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
        let named = |j: &str| RecordTemplate::from_body(b(j), Some("hd"));
        assert_eq!(named("{}").unwrap().name, "hd");
        assert_eq!(named(r#"{"name":"hd"}"#).unwrap().name, "hd");
        let e = err_text(named(r#"{"name":"sd"}"#).unwrap_err());
        assert!(e.starts_with("`name`"), "{e}");
    }

    #[test]
    fn callback_template_body_validation() {
        let cb = |j: &str| {
            CallbackTemplate::from_body(serde_json::from_str(j).unwrap(), None).map_err(err_text)
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
            <RecordRule as RuleResource>::from_body(serde_json::from_str(j).unwrap())
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
        let c = <CallbackRule as RuleResource>::from_body(
            serde_json::from_str(r#"{"app":"live","template":"h"}"#).unwrap(),
        )
        .unwrap();
        assert_eq!((c.app.as_str(), c.stream.as_str()), ("live", "*"));
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
            snap.record_template_for("", "live", "s").unwrap().name,
            "default"
        );
        assert_eq!(snap.callback_template_for("", "live").unwrap().name, "cb");

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
        let running_push = snap.record_template_for("", "live", "vip_1").unwrap();
        let snap = run.state.templates.snapshot();
        let t = snap.record_template_for("", "live", "vip_1").unwrap();
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
            .record_template_for("", "live", "vip_1")
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
                .record_template_for("", "live", "vip_1")
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
                .callback_template_for("", "live")
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
        assert!(snap.callback_template_for("", "live").is_none());
        assert!(
            run.state
                .catalog
                .get_template::<crate::model::RecordTemplate>("new-one")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            run.state.catalog.list_rules("record").await.unwrap().len(),
            1
        );
        run.shutdown().await;
    }
}
