//! Push and play auth keys set over Tencent Cloud API 3.0 (`ModifyLivePushAuthKey`,
//! `ModifyLivePlayAuthKey`). Kept in the catalogue so a change survives a restart and holds on
//! every node; a row overrides the configuration file's key for its domain.

use crate::catalog::Catalog;
use crate::error::{Result, db_err};

/// Which key: the push (`txSecret` on publish) or the play (live playback) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthKind {
    Push,
    Play,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Push => "push",
            AuthKind::Play => "play",
        }
    }
}

/// One domain's key set. An empty `backup_key` means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeys {
    pub kind: AuthKind,
    pub domain: String,
    pub enabled: bool,
    pub master_key: String,
    pub backup_key: String,
    pub delta_s: i64,
    pub updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    kind: String,
    domain: String,
    enabled: i64,
    master_key: String,
    backup_key: String,
    delta_s: i64,
    updated_at_ms: i64,
}

impl Catalog {
    /// Stores `k` (replacing the domain's earlier keys of that kind).
    pub async fn set_auth_keys(&self, k: &AuthKeys) -> Result<()> {
        on_pool!(&self.db, |pool| sqlx::query(
            "INSERT INTO auth_keys \
             (kind, domain, enabled, master_key, backup_key, delta_s, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (kind, domain) DO UPDATE SET \
             enabled = excluded.enabled, master_key = excluded.master_key, \
             backup_key = excluded.backup_key, delta_s = excluded.delta_s, \
             updated_at_ms = excluded.updated_at_ms"
        )
        .bind(k.kind.as_str())
        .bind(&k.domain)
        .bind(i64::from(k.enabled))
        .bind(&k.master_key)
        .bind(&k.backup_key)
        .bind(k.delta_s)
        .bind(k.updated_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(db_err(
            "set_auth_keys",
            format_args!("{} {}", k.kind.as_str(), k.domain),
        ))
    }

    /// Every stored key set (the table holds a few rows: one per kind and domain an operator
    /// changed), so callers can cache it whole.
    pub async fn all_auth_keys(&self) -> Result<Vec<AuthKeys>> {
        let rows: Vec<Row> = on_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT kind, domain, enabled, master_key, backup_key, delta_s, updated_at_ms \
             FROM auth_keys ORDER BY kind, domain"
        )
        .fetch_all(pool)
        .await)
        .map_err(db_err("all_auth_keys", ""))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let kind = match r.kind.as_str() {
                    "push" => AuthKind::Push,
                    "play" => AuthKind::Play,
                    _ => return None,
                };
                Some(AuthKeys {
                    kind,
                    domain: r.domain,
                    enabled: r.enabled != 0,
                    master_key: r.master_key,
                    backup_key: r.backup_key,
                    delta_s: r.delta_s,
                    updated_at_ms: r.updated_at_ms,
                })
            })
            .collect())
    }
}
