//! The conformance harness: every test written as `async fn name(db: &TestDb)` runs once per
//! engine, as `name::sqlite` and `name::postgres`, through [`conformance!`].
//!
//! SQLite: a file in a temp dir. PostgreSQL: a fresh database `lt_<random>` created through
//! the admin URL in `TEST_DATABASE_URL` (./scripts/test.sh sets it) and dropped afterwards,
//! so tests run in parallel. Without `TEST_DATABASE_URL` the PostgreSQL half fails: a
//! conformance suite that silently skips one engine proves nothing about it.

use livetape_catalog::Catalog;

pub mod kinds;

pub const ENV: &str = "TEST_DATABASE_URL";

pub struct TestDb {
    pub backend: &'static str,
    /// What [`Catalog::connect`] takes; the same database every time.
    pub url: String,
    /// PostgreSQL: (admin URL, database name) to drop at the end.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn admin_url() -> String {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{ENV} is not set: the PostgreSQL conformance tests need an admin URL such as \
             postgres://livetape:livetape@127.0.0.1:5432/postgres. Run ./scripts/test.sh \
             (it starts PostgreSQL with scripts/pg-test-db.sh and sets {ENV})."
        ),
    }
}

/// `admin` with its database (the last path segment) replaced by `db`.
fn with_database(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin_exec(admin: &str, sql: String) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to {ENV} ({admin}): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        TestDb {
            backend: "sqlite",
            url,
            pg: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let admin = admin_url();
        let name = format!("lt_{:016x}", rand::random::<u64>());
        admin_exec(&admin, format!("CREATE DATABASE {name}")).await;
        TestDb {
            backend: "postgres",
            url: with_database(&admin, &name),
            pg: Some((admin, name)),
            _dir: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Opens (the first time: creates and migrates) this test's catalogue.
    pub async fn open(&self) -> Catalog {
        Catalog::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.backend))
    }

    /// Drops the PostgreSQL database (best effort: a failed test leaves it behind).
    pub async fn finish(self) {
        if let Some((admin, name)) = self.pg {
            admin_exec(
                &admin,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
}

/// Stamps `#[tokio::test]`s `name::sqlite` and `name::postgres` for each
/// `async fn name(db: &TestDb)` listed.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::common::TestDb::sqlite().await;
                super::$name(&db).await;
                db.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = crate::common::TestDb::postgres().await;
                super::$name(&db).await;
                db.finish().await;
            }
        }
    )*};
}

#[test]
fn database_replaced_in_admin_url() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres", "lt_1"),
        "postgres://u:p@h:5432/lt_1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
