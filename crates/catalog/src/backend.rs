//! The two engines behind one [`crate::Catalog`]: SQLite (one file, one writer) and PostgreSQL
//! (shared by many nodes). No `sqlx::Any`: each query is written once with `$1, $2, ..`
//! placeholders (sqlx binds SQLite's `$N` by number too), and a dispatch macro instantiates the
//! same body once per engine, so each arm is fully typed. SQL differs only where the engines do
//! (seeding, query plans, transaction modes), and each engine has its own migrations.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

/// PostgreSQL connections per node: the group-commit writer holds one, readers (listings,
/// the notifier, the console) share the rest.
pub(crate) const PG_POOL_SIZE: u32 = 16;
/// How long opening waits for a PostgreSQL connection before failing (sqlx keeps retrying
/// refused connections until then).
pub(crate) const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of either engine. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A connection (or transaction, via `&mut *tx`) of either engine.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a mut SqliteConnection> for Conn<'a> {
    fn from(c: &'a mut SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'a> From<&'a mut PgConnection> for Conn<'a> {
    fn from(c: &'a mut PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

/// `on_pool!(&self.db, |pool| body)`: `body` is compiled once per engine with `pool` bound to
/// that engine's `&Pool`; both arms must have the same type.
macro_rules! on_pool {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::backend::Db::Sqlite($p) => $body,
            $crate::backend::Db::Postgres($p) => $body,
        }
    };
}

/// `on_conn!(conn, |c| body)` for `conn: &mut Conn`: `c` is that engine's `&mut Connection`
/// (reborrow it with `&mut *c` to run several statements).
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match &mut *$conn {
            $crate::backend::Conn::Sqlite(c) => {
                let $c: &mut sqlx::SqliteConnection = &mut **c;
                $body
            }
            $crate::backend::Conn::Postgres(c) => {
                let $c: &mut sqlx::PgConnection = &mut **c;
                $body
            }
        }
    };
}

/// How each engine starts its transactions.
pub(crate) trait Begin {
    type Db: sqlx::Database;
    /// A transaction that will write.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
    /// A read-only transaction whose statements all see one snapshot.
    async fn begin_read(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl Begin for SqlitePool {
    type Db = Sqlite;

    /// Takes the write lock up front: a deferred transaction that reads first can fail with
    /// SQLITE_BUSY_SNAPSHOT instead of waiting.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    /// A SQLite read transaction is one snapshot already.
    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin().await
    }
}

impl Begin for PgPool {
    type Db = Postgres;

    /// Row locks, not a database lock: writers on other nodes proceed in parallel.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }

    /// READ COMMITTED (the default) takes a new snapshot per statement; a count and its page
    /// must agree.
    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }
}

/// `url` with its password (if any) replaced by `***`, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url("postgres://lt:secret@db:5432/cat?sslmode=disable"),
            "postgres://lt:***@db:5432/cat?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://lt@db/cat"), "postgres://lt@db/cat");
        assert_eq!(redact_url("postgres://db/cat"), "postgres://db/cat");
        assert_eq!(redact_url("sqlite:///x/c.db"), "sqlite:///x/c.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        // An `@` in the password still hides all of it.
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }
}
