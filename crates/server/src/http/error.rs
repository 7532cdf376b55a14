//! Every error an HTTP face returns, and the one place each becomes a status.
//!
//! Lower layers keep their own error types (the catalogue's, the bucket's); a handler wraps
//! them with `?` and the source is kept: [`ApiError::status`] reads it once.

use crate::store::bucket::ObjectError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use livetape_catalog::CatalogError;

/// The body of every error answer of `/v1`, whatever its status.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in plain words (for a person, not for matching on).
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A count limit is reached (409; Tencent's `LimitExceeded`).
    #[error("{0}")]
    Limit(String),
    #[error("{}", catalog_message(.0))]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Store(#[from] ObjectError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a catalogue error tells an API client: relational outcomes in plain words, anything
/// else as an internal error.
fn catalog_message(e: &CatalogError) -> String {
    match e {
        CatalogError::NotFound { what, key } => format!("{what} {key} not found"),
        CatalogError::Conflict { what, key, reason } => format!("{what} {key}: {reason}"),
        CatalogError::UnknownTemplate { what, name } => {
            format!("`template`: no {what} named `{name}`")
        }
        e if e.is_conflict() => e.to_string(),
        e => format!("internal error: {e}"),
    }
}

impl ApiError {
    /// The status of every error, decided here and nowhere else.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::Limit(_) => StatusCode::CONFLICT,
            Self::Catalog(CatalogError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Catalog(CatalogError::UnknownTemplate { .. }) => StatusCode::BAD_REQUEST,
            Self::Catalog(e) if e.is_conflict() => StatusCode::CONFLICT,
            Self::Store(ObjectError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => StatusCode::NOT_FOUND,
            Self::Catalog(_) | Self::Store(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl From<crate::model::FieldError> for ApiError {
    fn from(e: crate::model::FieldError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
