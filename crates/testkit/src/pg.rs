//! Throwaway PostgreSQL databases for tests, through the admin URL in `TEST_DATABASE_URL`
//! (`scripts/test.sh` sets it up).

/// The variable holding the admin URL, e.g. `postgres://livetape:livetape@127.0.0.1:5432/postgres`.
pub const DATABASE_URL_ENV: &str = "TEST_DATABASE_URL";

/// The admin URL. Panics without it: a PostgreSQL test must never pass silently.
pub fn admin_url() -> String {
    std::env::var(DATABASE_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{DATABASE_URL_ENV} is not set: the PostgreSQL tests need an admin URL such as \
                 postgres://livetape:livetape@127.0.0.1:5432/postgres; run ./scripts/test.sh"
            )
        })
}

/// A fresh database, dropped by [`PgDatabase::drop_db`] (a failed test leaves it behind).
pub struct PgDatabase {
    admin: String,
    pub name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("lt_{:016x}", rand::random::<u64>());
        pg_admin(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin.rsplit_once('/').expect("admin URL names a database");
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    pub async fn drop_db(self) {
        pg_admin(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

/// Runs `sql` on the admin database.
pub async fn pg_admin(admin: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to {DATABASE_URL_ENV}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}
