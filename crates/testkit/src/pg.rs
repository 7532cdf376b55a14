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

/// A private PostgreSQL cluster of its own (Debian's `pg_createcluster`, on a free port,
/// trust auth on 127.0.0.1), for the fault tests that stop and start the real server with
/// `pg_ctlcluster` — the shared cluster of [`PgDatabase`] must stay up for the other tests.
/// Needs root (CI runs as root). Dropped with `pg_dropcluster --stop`.
pub struct PgCluster {
    name: String,
    version: String,
    /// The cluster's `postgres` database, as the `postgres` superuser.
    pub url: String,
}

impl PgCluster {
    pub fn create() -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("Debian's postgresql-common (/etc/postgresql): run ./scripts/test.sh")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .expect("an installed PostgreSQL major version");
        let port = crate::free_port();
        let name = format!("lt{port}");
        run(
            "pg_createcluster",
            &[
                &version,
                &name,
                "-p",
                &port.to_string(),
                "--",
                "--auth=trust",
            ],
        );
        let c = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            name,
            version,
        };
        c.start();
        c
    }

    /// `pg_ctlcluster … stop -m fast`: every connection is closed and the port stops answering.
    pub fn stop(&self) {
        run(
            "pg_ctlcluster",
            &[&self.version, &self.name, "stop", "-m", "fast"],
        );
    }

    /// `pg_ctlcluster … start` (waits until it accepts connections).
    pub fn start(&self) {
        run("pg_ctlcluster", &[&self.version, &self.name, "start"]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pg_dropcluster")
            .args([&self.version, &self.name, "--stop"])
            .output();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (Debian's postgresql-common; needs root)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
