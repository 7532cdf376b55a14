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

    /// Whether trying the same write again later can succeed: the database was away, full,
    /// busy, read-only or its connection broke (`Commit`: the transaction itself failed).
    /// False only where the write itself is at fault — a constraint it violates, a value the
    /// column cannot hold, a statement the schema rejects — which no retry can fix. Unknown
    /// failures count as transient: a write retried in vain is visible (it waits, logged and
    /// counted), a write given up on would be lost.
    pub fn is_transient(&self) -> bool {
        match self {
            CatalogError::Db { source, .. } | CatalogError::Open { source, .. } => {
                sqlx_transient(source)
            }
            CatalogError::Commit { .. } => true,
            CatalogError::Migrate(_) => true,
            CatalogError::BadUrl { .. }
            | CatalogError::OutOfRange { .. }
            | CatalogError::NotFound { .. }
            | CatalogError::Conflict { .. }
            | CatalogError::UnknownTemplate { .. }
            | CatalogError::Body { .. } => false,
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

/// See [`CatalogError::is_transient`].
fn sqlx_transient(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            if !matches!(db.kind(), ErrorKind::Other) {
                return false; // unique, foreign key, not null, check, exclusion
            }
            let code = db.code().unwrap_or_default();
            match code.parse::<i32>() {
                // SQLite (extended result code): only SQLITE_CONSTRAINT (19), SQLITE_MISMATCH
                // (20), SQLITE_TOOBIG (18), SQLITE_RANGE (25) are the statement's fault; FULL,
                // IOERR, BUSY, LOCKED, READONLY, CANTOPEN, NOMEM, … pass.
                Ok(n) => !matches!(n & 0xff, 18 | 19 | 20 | 25),
                // PostgreSQL SQLSTATE: 22 data exception, 23 integrity constraint, 42 syntax or
                // access rule; 08 connection, 53 insufficient resources (disk full), 57 operator
                // intervention (shutdown), 40 rollback (serialization), 25 read-only, 58 system
                // error pass.
                Err(_) => !matches!(code.get(..2), Some("22" | "23" | "42")),
            }
        }
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::InvalidArgument(_)
        | sqlx::Error::Configuration(_) => false,
        // Io, Tls, Protocol, PoolTimedOut, PoolClosed, WorkerCrashed, RowNotFound, …
        _ => true,
    }
}
