//! The push and play auth keys in force (Tencent §4.1–4.2): the configuration file's
//! `[push_auth]` and `[live] play_key`, overridden per domain by the key sets Tencent Cloud
//! API 3.0 (`ModifyLivePushAuthKey` / `ModifyLivePlayAuthKey`) stored in the catalogue.
//!
//! Unlike templates, the file is not a one-time seed: a domain without a stored key set keeps
//! following the file (so rotating `[push_auth] key` in the file still works), and a stored set
//! wins for its domain from the moment it is committed. The stored sets are loaded at start and
//! after every change this node commits, so a change applies to the next push or play request.

use crate::config::Config;
use livetape_catalog::{AuthKeys, AuthKind, Catalog, CatalogError};
use livetape_tencent::sign::PushAuth;
use std::sync::RwLock;

/// Longest key (Tencent: letters and digits, at most 256).
pub const MAX_AUTH_KEY_LEN: usize = 256;
/// Longest `AuthDelta` (extra validity after `txTime`): ten years, in seconds.
pub const MAX_AUTH_DELTA_S: i64 = 10 * 365 * 86_400;
/// Most domains with a stored key set, per kind (each play or push domain of a deployment).
pub const MAX_AUTH_KEY_DOMAINS: usize = 100;

/// A key set as the API shows it: `Enable`, the two keys (`""` for none), `AuthDelta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    pub enabled: bool,
    pub master_key: String,
    pub backup_key: String,
    pub delta_s: i64,
}

impl KeySet {
    /// The verifier's view; `None` when auth is off (or no key is set).
    pub fn auth(&self) -> Option<PushAuth> {
        (self.enabled && !self.master_key.is_empty()).then(|| PushAuth {
            key: self.master_key.clone(),
            backup_key: (!self.backup_key.is_empty()).then(|| self.backup_key.clone()),
            auth_delta_s: self.delta_s,
        })
    }

    fn from_file(key: Option<&String>, backup: Option<&String>, delta_s: i64) -> Self {
        Self {
            enabled: key.is_some(),
            master_key: key.cloned().unwrap_or_default(),
            backup_key: backup.cloned().unwrap_or_default(),
            delta_s,
        }
    }
}

/// The file's key sets and the catalogue's, in memory.
pub struct Keys {
    file_push: KeySet,
    file_play: KeySet,
    stored: RwLock<Vec<AuthKeys>>,
}

impl Keys {
    /// The file's keys and the catalogue's stored sets.
    pub async fn load(cfg: &Config, catalog: &Catalog) -> Result<Self, CatalogError> {
        let keys = Self {
            file_push: match &cfg.push_auth {
                Some(p) => KeySet::from_file(Some(&p.key), p.backup_key.as_ref(), p.auth_delta_s),
                None => KeySet::from_file(None, None, 0),
            },
            file_play: KeySet::from_file(
                cfg.live.play_key.as_ref(),
                cfg.live.play_backup_key.as_ref(),
                cfg.live.play_auth_delta_s,
            ),
            stored: RwLock::new(Vec::new()),
        };
        keys.reload(catalog).await?;
        Ok(keys)
    }

    /// Re-reads the stored sets (after a change this node committed).
    pub async fn reload(&self, catalog: &Catalog) -> Result<(), CatalogError> {
        let rows = catalog.all_auth_keys().await?;
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = rows;
        Ok(())
    }

    /// The key set in force for `kind` on `domain`: the stored one, else the file's.
    pub fn get(&self, kind: AuthKind, domain: &str) -> KeySet {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        match stored.iter().find(|k| k.kind == kind && k.domain == domain) {
            Some(k) => KeySet {
                enabled: k.enabled,
                master_key: k.master_key.clone(),
                backup_key: k.backup_key.clone(),
                delta_s: k.delta_s,
            },
            None => match kind {
                AuthKind::Push => self.file_push.clone(),
                AuthKind::Play => self.file_play.clone(),
            },
        }
    }

    /// How many domains have a stored set of `kind`, and whether `domain` is one of them.
    pub fn stored_domains(&self, kind: AuthKind, domain: &str) -> (usize, bool) {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        let of_kind = stored.iter().filter(|k| k.kind == kind);
        let n = of_kind.clone().count();
        (n, of_kind.into_iter().any(|k| k.domain == domain))
    }

    /// Every kind and domain with a stored set (logged at start: they override the file).
    pub fn overrides(&self) -> Vec<(AuthKind, String)> {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        stored.iter().map(|k| (k.kind, k.domain.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_or_keyless_set_is_open() {
        let on = KeySet {
            enabled: true,
            master_key: "k".into(),
            backup_key: String::new(),
            delta_s: 5,
        };
        let auth = on.auth().unwrap();
        assert_eq!(
            (auth.key.as_str(), auth.backup_key, auth.auth_delta_s),
            ("k", None, 5)
        );
        assert!(
            KeySet {
                enabled: false,
                ..on.clone()
            }
            .auth()
            .is_none()
        );
        assert!(
            KeySet {
                master_key: String::new(),
                ..on
            }
            .auth()
            .is_none()
        );
    }
}
