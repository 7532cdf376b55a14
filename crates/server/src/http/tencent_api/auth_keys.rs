//! `DescribeLivePushAuthKey` / `ModifyLivePushAuthKey` and `DescribeLivePlayAuthKey` /
//! `ModifyLivePlayAuthKey`: a domain's anti-leech keys (Tencent §4.1–4.2). A Modify stores the
//! domain's whole key set in the catalogue (fields not given keep their value, as at Tencent)
//! and reloads `crate::keys`, so the next push or play on that domain is checked with it.

use super::params::int;
use super::{Answer, TcError, answer, parse};
use crate::keys::{KeySet, MAX_AUTH_DELTA_S, MAX_AUTH_KEY_DOMAINS, MAX_AUTH_KEY_LEN};
use crate::state::AppState;
use livetape_catalog::{AuthKeys, AuthKind};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeIn {
    domain_name: Option<String>,
}

fn domain(d: Option<String>) -> Result<String, TcError> {
    match d {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(TcError::missing("DomainName")),
    }
}

pub(super) async fn describe_push(st: &Arc<AppState>, p: Value) -> Answer {
    let d = domain(parse::<DescribeIn>(p)?.domain_name)?;
    let k = st.keys.get(AuthKind::Push, &d);
    answer(json!({ "PushAuthKeyInfo": {
        "DomainName": d,
        "Enable": i64::from(k.enabled),
        "MasterAuthKey": k.master_key,
        "BackupAuthKey": k.backup_key,
        "AuthDelta": k.delta_s,
    }}))
}

pub(super) async fn describe_play(st: &Arc<AppState>, p: Value) -> Answer {
    let d = domain(parse::<DescribeIn>(p)?.domain_name)?;
    let k = st.keys.get(AuthKind::Play, &d);
    answer(json!({ "PlayAuthKeyInfo": {
        "DomainName": d,
        "Enable": i64::from(k.enabled),
        "AuthKey": k.master_key,
        "AuthBackKey": k.backup_key,
        "AuthDelta": k.delta_s,
    }}))
}

pub(super) async fn modify_push(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        domain_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        enable: Option<i64>,
        master_auth_key: Option<String>,
        backup_auth_key: Option<String>,
        #[serde(default, deserialize_with = "int")]
        auth_delta: Option<i64>,
    }
    let p: In = parse(p)?;
    let change = Change {
        enable: p.enable,
        master: p.master_auth_key.map(|k| ("MasterAuthKey", k)),
        backup: p.backup_auth_key.map(|k| ("BackupAuthKey", k)),
        delta_s: p.auth_delta,
    };
    modify(st, AuthKind::Push, domain(p.domain_name)?, change).await
}

pub(super) async fn modify_play(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        domain_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        enable: Option<i64>,
        auth_key: Option<String>,
        #[serde(default, deserialize_with = "int")]
        auth_delta: Option<i64>,
        auth_back_key: Option<String>,
    }
    let p: In = parse(p)?;
    let change = Change {
        enable: p.enable,
        master: p.auth_key.map(|k| ("AuthKey", k)),
        backup: p.auth_back_key.map(|k| ("AuthBackKey", k)),
        delta_s: p.auth_delta,
    };
    modify(st, AuthKind::Play, domain(p.domain_name)?, change).await
}

/// The fields a Modify gave (each with its API name, for messages); `None` keeps the value.
struct Change {
    enable: Option<i64>,
    master: Option<(&'static str, String)>,
    backup: Option<(&'static str, String)>,
    delta_s: Option<i64>,
}

/// Tencent's key alphabet: letters and digits, at most [`MAX_AUTH_KEY_LEN`]; `""` clears.
fn key(field: &str, k: String) -> Result<String, TcError> {
    if k.len() > MAX_AUTH_KEY_LEN {
        return Err(TcError::invalid_value(
            field,
            format_args!("longer than {MAX_AUTH_KEY_LEN} characters"),
        ));
    }
    if !k.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TcError::invalid_value(field, "only letters and digits"));
    }
    Ok(k)
}

/// Applies `c` to the domain's key set in force and stores the result.
async fn modify(st: &Arc<AppState>, kind: AuthKind, domain: String, c: Change) -> Answer {
    let mut k: KeySet = st.keys.get(kind, &domain);
    if let Some(e) = c.enable {
        k.enabled = match e {
            0 => false,
            1 => true,
            _ => return Err(TcError::invalid_value("Enable", "0 or 1")),
        };
    }
    if let Some((f, v)) = c.master {
        k.master_key = key(f, v)?;
    }
    if let Some((f, v)) = c.backup {
        k.backup_key = key(f, v)?;
    }
    if let Some(d) = c.delta_s {
        if !(0..=MAX_AUTH_DELTA_S).contains(&d) {
            return Err(TcError::invalid_value(
                "AuthDelta",
                format_args!("from 0 to {MAX_AUTH_DELTA_S} seconds"),
            ));
        }
        k.delta_s = d;
    }
    if k.enabled && k.master_key.is_empty() {
        let field = match kind {
            AuthKind::Push => "MasterAuthKey",
            AuthKind::Play => "AuthKey",
        };
        return Err(TcError::invalid_value(
            field,
            "a key is needed to enable auth",
        ));
    }
    let (domains, known) = st.keys.stored_domains(kind, &domain);
    if !known && domains >= MAX_AUTH_KEY_DOMAINS {
        return Err(TcError::new(
            "LimitExceeded",
            format!(
                "at most {MAX_AUTH_KEY_DOMAINS} domains have their own {} keys",
                kind.as_str()
            ),
        ));
    }
    st.catalog
        .set_auth_keys(&AuthKeys {
            kind,
            domain: domain.clone(),
            enabled: k.enabled,
            master_key: k.master_key,
            backup_key: k.backup_key,
            delta_s: k.delta_s,
            updated_at_ms: st.clock.now_ms(),
        })
        .await?;
    st.keys.reload(&st.catalog).await?;
    // Never the keys themselves.
    tracing::info!(
        kind = kind.as_str(),
        domain,
        enabled = k.enabled,
        "auth keys changed"
    );
    answer(json!({}))
}
