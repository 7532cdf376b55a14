/// Every catalogue failure, tagged with the operation and the key it was about.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// `target` is the SQLite path or the URL, its password redacted.
    #[error("catalog: opening {target}: {source}")]
    Open {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// `[catalog] url` names no engine we speak (password redacted).
    #[error("catalog: bad url `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("catalog: applying migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// `key` names the row involved, e.g. `file_id=abc`, or is empty.
    #[error("catalog: {op}({key}): {source}")]
    Db {
        op: &'static str,
        key: String,
        #[source]
        source: sqlx::Error,
    },
    /// The write applied but its group commit failed (or the writer stopped): nothing of it
    /// is durable.
    #[error("catalog: {op}({key}): not committed: {reason}")]
    Commit {
        op: &'static str,
        key: String,
        reason: String,
    },
    /// A caller-supplied unsigned value does not fit the signed 64-bit column.
    #[error("catalog: {op}: {field}={value} is out of range")]
    OutOfRange {
        op: &'static str,
        field: &'static str,
        value: u64,
    },
    /// The row addressed by `key` (e.g. `name=hd`, `id=3`) does not exist.
    #[error("catalog: {what} {key} not found")]
    NotFound { what: &'static str, key: String },
    /// The change clashes with existing rows, e.g. a duplicate name or rule,
    /// or deleting a template that a rule still binds.
    #[error("catalog: {what} {key}: {reason}")]
    Conflict {
        what: &'static str,
        key: String,
        reason: String,
    },
    /// A rule names a template that does not exist.
    #[error("catalog: no {what} named `{name}`")]
    UnknownTemplate { what: &'static str, name: String },
    /// A template's body is not the JSON of the type it is read as (or does not serialize).
    #[error("catalog: {kind} template `{name}`: body: {source}")]
    Body {
        kind: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl CatalogError {
    /// True when the failure is a UNIQUE/PRIMARY KEY violation, e.g. a
    /// duplicate `file_id`, `sequence` or `event_id`; the whole transaction
    /// was rolled back.
    pub fn is_conflict(&self) -> bool {
        match self {
            CatalogError::Conflict { .. } => true,
            CatalogError::Db {
                source: sqlx::Error::Database(e),
                ..
            } => e.is_unique_violation(),
            _ => false,
        }
    }

    /// True for [`CatalogError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, CatalogError::NotFound { .. })
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Builds the `map_err` closure for a query; the key string is only
/// formatted when an error actually happens.
pub(crate) fn db_err<K: std::fmt::Display>(
    op: &'static str,
    key: K,
) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |source| CatalogError::Db {
        op,
        key: key.to_string(),
        source,
    }
}

pub(crate) fn to_i64(op: &'static str, field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| CatalogError::OutOfRange { op, field, value })
}
