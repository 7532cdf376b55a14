//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of `/v1`, generated from the handlers'
//! `#[utoipa::path]` and the body types' `ToSchema` (so it cannot drift from the code), and
//! served without the API key: it holds the API's shape, no data (like the console's own files).
//!
//! What every guarded route shares is described here once, from the code that does it: the
//! bearer scheme ([`super::bearer_auth`]) and the error answers every route may give (401,
//! 403 for writes, 500), with the one error body ([`ErrorBody`]).

use super::error::ErrorBody;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::{Arc, LazyLock};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the document is served.
pub const PATH: &str = "/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "livetape REST API",
        description = "Recordings, live streams, record and callback templates and rules, and \
                       callback deliveries of a livetape server.\n\n\
                       Auth: with `[api] key` set, every route but this document needs \
                       `Authorization: Bearer <key>`. With no key, reads are open and changes \
                       are accepted only from the server's own machine (loopback).\n\n\
                       Errors: every error answer is JSON `{\"error\": \"...\"}`.",
    ),
    security(("bearer" = [])),
    tags(
        (name = "recordings", description = "Finished recordings in the catalogue"),
        (name = "streams", description = "Streams being published now"),
        (name = "jobs", description = "Long jobs running now (retention, uploads)"),
        (name = "record templates", description = "What to record, and how (Tencent §3.1)"),
        (name = "record rules", description = "Which pushes a record template applies to"),
        (name = "callback templates", description = "Where to send event callbacks (Tencent §3.2)"),
        (name = "callback rules", description = "Which pushes a callback template applies to"),
        (name = "deliveries", description = "Callback deliveries: the outbox"),
        (name = "meta", description = "This document"),
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The public routes: the document itself.
pub(super) fn routes() -> OpenApiRouter<Arc<crate::state::AppState>> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The empty document every route is added to (info, tags, security, the error body).
pub(super) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The finished document: the routes' own descriptions plus what every guarded one shares.
pub(super) fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The server's `[api] key`, needed when one is set (`Authorization: \
                     Bearer <key>`).",
                ))
                .build(),
        ),
    );
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if path == PATH {
            continue;
        }
        let ops = [
            (false, item.get.as_mut()),
            (true, item.put.as_mut()),
            (true, item.post.as_mut()),
            (true, item.delete.as_mut()),
        ];
        for (writes, op) in ops {
            let Some(op) = op else { continue };
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            };
            add(
                "401",
                "The server has an `[api] key` and the request did not send it as a bearer token",
            );
            if writes {
                add(
                    "403",
                    "The server has no `[api] key` and the request is not from its own machine",
                );
            }
            add(
                "500",
                "Internal error (the catalogue or the bucket failed, or a change was saved but \
                 not yet applied)",
            );
        }
    }
    doc
}

/// The document, as served (built once).
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(super::openapi_document()).unwrap_or_default();
    open_flattened(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
});

/// A struct flattened into another (`#[serde(flatten)]`: a template inside its stored form)
/// is an `allOf` item; if it denies unknown fields (`additionalProperties: false`) it would
/// refuse its siblings' fields there, which no instance could pass. Inside `allOf` it is
/// left open: the combined object's fields are the items' together.
fn open_flattened(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(items)) = map.get_mut("allOf") {
                for item in items {
                    if let Some(o) = item.as_object_mut()
                        && o.get("additionalProperties") == Some(&serde_json::Value::Bool(false))
                    {
                        o.remove("additionalProperties");
                    }
                }
            }
            map.values_mut().for_each(open_flattened);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(open_flattened),
        _ => {}
    }
}

/// The document as served: JSON text.
pub(crate) fn document_json() -> &'static str {
    DOCUMENT.as_str()
}

/// The OpenAPI document of `/v1`
///
/// This document (OpenAPI 3.1), readable without the API key.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI document", body = serde_json::Value))
)]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}
