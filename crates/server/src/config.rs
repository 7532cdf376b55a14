//! Configuration: TOML file + `LIVETAPE_*` environment overrides, every key optional.
//!
//! Loading is two-step: figment deserialises (its errors name the key and the source), then
//! [`Config::validate`] checks ranges and cross-references and names the offending key itself.

use crate::model::{
    CallbackRule, CallbackTemplate, DEFAULT_TEMPLATE, FieldError, RecordRule, RecordTemplate,
};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Tencent closes a push after about 70 s without data (errcode 8/20).
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 70;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub push_auth: Option<PushAuthConfig>,
    pub api: ApiConfig,
    pub record_template: Vec<RecordTemplate>,
    /// `None` (key absent) means "record every stream with the `default` template";
    /// an explicit empty list records nothing.
    pub record_rule: Option<Vec<RecordRule>>,
    pub callback_template: Vec<CallbackTemplate>,
    pub callback_rule: Vec<CallbackRule>,
    pub storage: StorageConfig,
    pub metrics: MetricsConfig,
    pub live: LiveConfig,
    pub catalog: CatalogConfig,
    pub cluster: ClusterConfig,
    pub callbacks: CallbacksConfig,
    /// Tencent Cloud API 3.0 on `POST /` (absent: off, every call answers
    /// `AuthFailure.SecretIdNotFound`).
    pub tencent_api: Option<TencentApiConfig>,
}

/// Longest accepted SecretId / SecretKey (Tencent's are 36 and 32 characters).
pub const MAX_TENCENT_SECRET_LEN: usize = 128;

/// `[tencent_api]`: the SecretId/SecretKey pairs API 3.0 callers sign with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentApiConfig {
    pub secret_id: String,
    pub secret_key: String,
    /// More pairs, e.g. one per backend or while rotating a key.
    #[serde(default)]
    pub keys: Vec<TencentApiKey>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentApiKey {
    pub secret_id: String,
    pub secret_key: String,
}

impl TencentApiConfig {
    /// The SecretKey issued with `secret_id`.
    pub fn secret_key(&self, secret_id: &str) -> Option<&str> {
        std::iter::once((&self.secret_id, &self.secret_key))
            .chain(self.keys.iter().map(|k| (&k.secret_id, &k.secret_key)))
            .find(|(id, _)| id.as_str() == secret_id)
            .map(|(_, k)| k.as_str())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let pairs = std::iter::once((&self.secret_id, &self.secret_key))
            .chain(self.keys.iter().map(|k| (&k.secret_id, &k.secret_key)));
        let mut seen = std::collections::HashSet::new();
        for (i, (id, key)) in pairs.enumerate() {
            let at = if i == 0 {
                "tencent_api".to_owned()
            } else {
                format!("tencent_api.keys[{}]", i - 1)
            };
            for (name, v) in [("secret_id", id), ("secret_key", key)] {
                if v.is_empty() || v.len() > MAX_TENCENT_SECRET_LEN {
                    return Err(invalid(
                        format!("{at}.{name}"),
                        format!("must be 1..={MAX_TENCENT_SECRET_LEN} characters"),
                    ));
                }
                if !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        format!("{at}.{name}"),
                        "must be printable ASCII without spaces",
                    ));
                }
            }
            if id.contains('/') {
                return Err(invalid(format!("{at}.secret_id"), "must not contain `/`"));
            }
            if !seen.insert(id.as_str()) {
                return Err(invalid(
                    format!("{at}.secret_id"),
                    format!("`{id}` is listed twice"),
                ));
            }
        }
        Ok(())
    }
}

/// Valid `[callbacks] dead_probe_s`.
pub const DEAD_PROBE_RANGE_S: std::ops::RangeInclusive<u64> = 1..=86_400;

/// What happens to callbacks after their template's retries (Tencent's schedule).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// Every this many seconds, each receiver with given-up ("dead") events is sent its
    /// oldest one again; once it answers 200, all its dead events are resent.
    pub dead_probe_s: u64,
    /// Loopback and link-local addresses (`127.0.0.0/8`, `::1`, `169.254.0.0/16`, …) callback
    /// URLs set over the REST API may name anyway (e.g. `["127.0.0.1"]` for a backend on this
    /// machine). Templates in this file are trusted and not checked.
    pub allow_targets: Vec<String>,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        Self {
            dead_probe_s: 300,
            allow_targets: Vec::new(),
        }
    }
}

impl CallbacksConfig {
    /// `allow_targets`, parsed (validated at load).
    pub fn allowed_targets(&self) -> Vec<crate::model::Cidr> {
        self.allow_targets
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    }
}

/// Where the catalogue lives.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` (the database must exist;
    /// several nodes may share it). Unset: SQLite at `DATA_DIR/catalog.db`.
    pub url: Option<String>,
}

impl CatalogConfig {
    /// URL schemes `[catalog] url` accepts.
    pub const SCHEMES: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];
}

/// Valid `[cluster] lease_s`: long enough to renew (every third of it) through a catalogue
/// hiccup, short enough that a dead node's streams are free again soon.
pub const LEASE_RANGE_S: std::ops::RangeInclusive<u64> = 3..=600;
/// Valid `[cluster] claim_s`.
pub const CLAIM_RANGE_S: std::ops::RangeInclusive<u64> = 4..=3600;

/// Several livetape nodes on one catalogue (PostgreSQL) and one bucket. Harmless with one
/// node: the same leases and claims, held by that node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name in stream leases, outbox claims and uploads; unique in the cluster
    /// and stable across restarts (a restarted node takes back its own pending uploads).
    /// Empty: generated once and kept in `DATA_DIR/node_id`.
    pub node_id: String,
    /// A publishing node holds its stream's lease this long past its last renewal (every
    /// third of it); a node that dies frees its streams, and has its pushes ended (event 0)
    /// by another node, within this time.
    pub lease_s: u64,
    /// A node sending a callback holds it this long; if the node dies, another node retries
    /// the callback once the claim expires. Callback requests time out at half of it (at most
    /// Tencent's 20 s), so a live node always finishes an attempt within its claim.
    pub claim_s: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            lease_s: 30,
            claim_s: 60,
        }
    }
}

/// `GET /metrics`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Require `[api] key` as a bearer token on `/metrics` too. Off by default: most scrapers
    /// are set up without credentials, and the metrics hold no stream names or files.
    pub require_key: bool,
}

/// Live viewing (HTTP-FLV, live HLS) of streams being published.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Serve `/live/{app}/{stream}.flv` and `.m3u8`.
    pub enabled: bool,
    /// Keep each stream's frames since its last keyframe, so a viewer starts at once (one
    /// GOP of memory per stream). Off: nothing is copied while nobody watches, and a new
    /// viewer waits for the next keyframe.
    pub gop_cache: bool,
    /// Play auth key (Tencent `txSecret`/`txTime`, §4.2). Unset: playback is open.
    pub play_key: Option<String>,
    /// Also accepted, for key rotation.
    pub play_backup_key: Option<String>,
    /// Extra validity after `txTime`, seconds.
    pub play_auth_delta_s: i64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            gop_cache: true,
            play_key: None,
            play_backup_key: None,
            play_auth_delta_s: 0,
        }
    }
}

/// Disk usage policy of the data dir.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// No recording starts, and running ones stop cleanly, while the data dir's filesystem has
    /// less free space than this (room is kept for the catalogue and for finalizing).
    pub min_free_bytes: u64,
    /// Total size budget of the recordings; the oldest are deleted past it. 0 = no budget.
    pub max_bytes: u64,
    /// How often retention (template `storage_days` and `max_bytes`) is enforced.
    pub retention_check_s: u64,
    /// Where finished recordings end up: `local` (the data dir) or `s3` (an S3-compatible
    /// bucket; recording still happens on local disk, then each file is uploaded).
    pub kind: StorageKind,
    /// S3 endpoint URL (e.g. `http://127.0.0.1:9000`); empty: AWS for `region`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Credentials; unset: `credentials_file`, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// An AWS-style credentials file (`aws_access_key_id = …` under `[default]`).
    pub credentials_file: Option<PathBuf>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO-likes need.
    pub path_style: bool,
    /// Key prefix inside the bucket (no leading or trailing `/`).
    pub prefix: String,
    /// Keep the local copy after the upload (played from disk, object as the backup).
    pub keep_local: bool,
    /// 0: livetape proxies object reads; >0: `/vod` redirects to a presigned GET URL valid
    /// this long (seconds, at most 7 days).
    pub presign_s: u64,
}

/// `[storage] kind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    S3,
}

/// S3 caps presigned URLs at 7 days.
pub const MAX_PRESIGN_S: u64 = 7 * 24 * 3600;

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            min_free_bytes: 64 * 1024 * 1024,
            max_bytes: 0,
            retention_check_s: 600,
            kind: StorageKind::Local,
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            credentials_file: None,
            path_style: true,
            prefix: String::new(),
            keep_local: false,
            presign_s: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub rtmp_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// Base of every `video_url`.
    pub public_url: String,
    pub data_dir: PathBuf,
    /// Echoed as `appid` in callbacks and used as the `file_id` prefix.
    pub appid: u64,
    /// Reported as the push domain (`app` in callbacks). Empty: the host of the publisher's tcUrl.
    pub domain: String,
    /// Reported as `node` in push callbacks. Empty: the RTMP listen IP.
    pub node: String,
    /// A publisher that sends nothing for this long is dropped (errcode 20).
    pub idle_timeout_s: u64,
    /// On SIGTERM/SIGINT, how long to keep delivering queued callbacks before exiting.
    pub shutdown_flush_s: u64,
    /// Open RTMP connections at most (0 = no cap); more are closed at accept.
    pub rtmp_max_connections: usize,
    /// Open RTMP connections from one address at most (0 = no cap).
    pub rtmp_max_connections_per_ip: usize,
    /// Open HTTP connections at most (0 = no cap).
    pub http_max_connections: usize,
    /// Open HTTP connections from one address at most (0 = no cap).
    pub http_max_connections_per_ip: usize,
    /// Memory all RTMP connections that have not yet published may hold together (read
    /// buffers and partial messages); a connection that would go over it is closed.
    pub rtmp_pre_publish_budget_bytes: usize,
    /// A request's head must arrive within this many seconds, and a keep-alive connection
    /// with no request for this long is closed (1..=3600).
    pub http_idle_timeout_s: u64,
}

/// An RTMP connection must have sent its `publish` this soon after accept (handshake,
/// connect, createStream, publish take a few round trips): a slow-loris handshake or an idle
/// socket is closed instead of holding a slot until `idle_timeout_s`.
pub const PUBLISH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// A socket write (RTMP replies, HTTP responses) that makes no progress for this long ends
/// the connection: a peer that stops reading cannot wedge its task.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// On a stop, how long connections get to end their pushes before the process goes on
/// without them (parked recordings, the callback flush).
pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Default `[server] rtmp_pre_publish_budget_bytes`: 64 MiB, room for ~160 connections at
/// their per-connection bound (read buffer + `PRE_PUBLISH_MAX_PARTIAL_BYTES`), thousands of
/// ordinary ones (a handshaking encoder holds one 16 KiB buffer).
pub const DEFAULT_PRE_PUBLISH_BUDGET: usize = 64 << 20;

/// Default `[server] rtmp_max_connections`.
pub const DEFAULT_RTMP_MAX_CONNECTIONS: usize = 4096;
/// Default `[server] rtmp_max_connections_per_ip`: one relay or load generator may push many
/// streams from one address.
pub const DEFAULT_RTMP_MAX_CONNECTIONS_PER_IP: usize = 1024;
/// Default `[server] http_max_connections`.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: usize = 4096;
/// Default `[server] http_max_connections_per_ip` (a browser opens about 6 per host).
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP: usize = 256;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            rtmp_listen: "0.0.0.0:1935".parse().expect("static"),
            http_listen: "0.0.0.0:8080".parse().expect("static"),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            appid: 1_250_000_000,
            domain: String::new(),
            node: String::new(),
            idle_timeout_s: DEFAULT_IDLE_TIMEOUT_S,
            shutdown_flush_s: 10,
            rtmp_max_connections: DEFAULT_RTMP_MAX_CONNECTIONS,
            rtmp_max_connections_per_ip: DEFAULT_RTMP_MAX_CONNECTIONS_PER_IP,
            http_max_connections: DEFAULT_HTTP_MAX_CONNECTIONS,
            http_max_connections_per_ip: DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP,
            http_idle_timeout_s: 30,
            rtmp_pre_publish_budget_bytes: DEFAULT_PRE_PUBLISH_BUDGET,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushAuthConfig {
    pub key: String,
    #[serde(default)]
    pub backup_key: Option<String>,
    #[serde(default)]
    pub auth_delta_s: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Live_Tape_GetFilelist signing key and the REST API's bearer token. Unset: both are open.
    pub key: Option<String>,
    /// Web origins (`https://admin.example.com`) whose pages may call `/v1` from a browser.
    /// Empty (the default): none — another site's page cannot read the API through a
    /// visitor's browser. Playback routes allow every origin.
    pub cors_origins: Vec<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

impl From<FieldError> for ConfigError {
    fn from(e: FieldError) -> Self {
        invalid(e.field, e.problem)
    }
}

impl StorageConfig {
    /// The `kind = "s3"` settings: names the key of the first problem.
    fn validate_s3(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(invalid("storage.bucket", "must be set when kind = \"s3\""));
        }
        let http = self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://");
        if !(self.endpoint.is_empty() || http) {
            return Err(invalid(
                "storage.endpoint",
                format!("`{}` is not an http(s) URL", self.endpoint),
            ));
        }
        if self.region.is_empty() {
            return Err(invalid("storage.region", "must not be empty"));
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "storage.secret_access_key",
                    "must be set with access_key_id",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "storage.access_key_id",
                    "must be set with secret_access_key",
                ));
            }
            _ => {}
        }
        if let Some(f) = &self.credentials_file {
            read_credentials_file(f).map_err(|e| invalid("storage.credentials_file", e))?;
        }
        if !self.prefix.is_empty()
            && self
                .prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == ".." || p.chars().any(char::is_control))
        {
            return Err(invalid(
                "storage.prefix",
                "must be `a/b` style: no leading, trailing or double `/`, no `.`/`..`",
            ));
        }
        if self.presign_s > MAX_PRESIGN_S {
            return Err(invalid(
                "storage.presign_s",
                format!("{} is over {} (7 days)", self.presign_s, MAX_PRESIGN_S),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The configuration as `check-config` prints it: every secret (keys, the bucket secret,
    /// a database password) replaced by `***`, so the output can be pasted into a ticket.
    pub fn redacted(&self) -> Config {
        let hide = |v: &mut String| {
            if !v.is_empty() {
                *v = crate::model::REDACTED.into();
            }
        };
        let hide_opt = |v: &mut Option<String>| {
            if let Some(v) = v {
                hide(v);
            }
        };
        let mut c = self.clone();
        if let Some(p) = &mut c.push_auth {
            hide(&mut p.key);
            hide_opt(&mut p.backup_key);
        }
        hide_opt(&mut c.api.key);
        if let Some(t) = &mut c.tencent_api {
            hide(&mut t.secret_key);
            for k in &mut t.keys {
                hide(&mut k.secret_key);
            }
        }
        hide_opt(&mut c.live.play_key);
        hide_opt(&mut c.live.play_backup_key);
        hide_opt(&mut c.storage.secret_access_key);
        for t in &mut c.callback_template {
            hide(&mut t.key);
        }
        if let Some(u) = &mut c.catalog.url {
            *u = livetape_catalog::redact_url(u);
        }
        c
    }
}

/// An AWS-style credentials file's `[default]` `aws_access_key_id`/`aws_secret_access_key`.
pub(crate) fn read_credentials_file(path: &std::path::Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut id, mut secret) = (None, None);
    let mut in_default = true;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_default = section.trim() == "default";
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !in_default {
            continue;
        }
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" | "access_key_id" => id = Some(v),
            "aws_secret_access_key" | "secret_access_key" => secret = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => Ok((i, s)),
        _ => Err(format!(
            "{}: no aws_access_key_id and aws_secret_access_key under [default]",
            path.display()
        )),
    }
}

impl Config {
    /// Defaults, then the TOML file (if any), then `LIVETAPE_SECTION__KEY` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        // LIVETAPE_LOG, LIVETAPE_CONFIG and the fault injection's (crate livetape-failpoint)
        // are the binary's own variables.
        fig = fig.merge(
            Env::prefixed("LIVETAPE_")
                .ignore(&[
                    "log",
                    "config",
                    "crash_at",
                    "io_fail_at",
                    "io_fail_errno",
                    "io_report",
                ])
                .split("__"),
        );
        let cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(s))
            .extract()
            .map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Record templates including the built-in `default` unless the file redefines it.
    pub fn record_templates(&self) -> Vec<RecordTemplate> {
        let mut t = self.record_template.clone();
        if !t.iter().any(|t| t.name == DEFAULT_TEMPLATE) {
            t.push(RecordTemplate::builtin_default());
        }
        t
    }

    pub fn record_rules(&self) -> Vec<RecordRule> {
        self.record_rule.clone().unwrap_or_else(|| {
            vec![RecordRule {
                domain: "*".into(),
                app: "*".into(),
                stream: "*".into(),
                template: DEFAULT_TEMPLATE.into(),
            }]
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let url = s.public_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(invalid(
                "server.public_url",
                format!("`{}` is not an http(s) URL", s.public_url),
            ));
        }
        if s.data_dir.as_os_str().is_empty() {
            return Err(invalid("server.data_dir", "must not be empty"));
        }
        if let Some(url) = &self.catalog.url
            && !CatalogConfig::SCHEMES.iter().any(|p| url.starts_with(p))
        {
            return Err(invalid(
                "catalog.url",
                format!(
                    "`{}` is neither sqlite://PATH nor postgres://..",
                    livetape_catalog::redact_url(url)
                ),
            ));
        }
        if self.storage.retention_check_s == 0 {
            return Err(invalid("storage.retention_check_s", "must be at least 1"));
        }
        if !LEASE_RANGE_S.contains(&self.cluster.lease_s) {
            return Err(invalid(
                "cluster.lease_s",
                format!("must be in {LEASE_RANGE_S:?}"),
            ));
        }
        if !(1..=3600).contains(&self.server.http_idle_timeout_s) {
            return Err(invalid("server.http_idle_timeout_s", "must be in 1..=3600"));
        }
        for c in &self.callbacks.allow_targets {
            if let Err(e) = c.parse::<crate::model::Cidr>() {
                return Err(invalid("callbacks.allow_targets", e));
            }
        }
        for o in &self.api.cors_origins {
            if axum::http::HeaderValue::from_str(o).is_err()
                || !(o.starts_with("http://") || o.starts_with("https://"))
                || o.ends_with('/')
            {
                return Err(invalid(
                    "api.cors_origins",
                    format!("`{o}` is not an origin like https://host[:port]"),
                ));
            }
        }
        if !DEAD_PROBE_RANGE_S.contains(&self.callbacks.dead_probe_s) {
            return Err(invalid(
                "callbacks.dead_probe_s",
                format!("must be in {DEAD_PROBE_RANGE_S:?}"),
            ));
        }
        if !CLAIM_RANGE_S.contains(&self.cluster.claim_s) {
            return Err(invalid(
                "cluster.claim_s",
                format!("must be in {CLAIM_RANGE_S:?}"),
            ));
        }
        if self.storage.kind == StorageKind::S3 {
            self.storage.validate_s3()?;
        }
        if s.idle_timeout_s == 0 {
            return Err(invalid("server.idle_timeout_s", "must be at least 1"));
        }
        if self.metrics.require_key && self.api.key.is_none() {
            // Else /metrics would silently stay open.
            return Err(invalid("metrics.require_key", "needs [api] key to be set"));
        }
        if let Some(pa) = &self.push_auth {
            if pa.key.is_empty() {
                return Err(invalid("push_auth.key", "must not be empty"));
            }
            if pa.auth_delta_s < 0 {
                return Err(invalid("push_auth.auth_delta_s", "must not be negative"));
            }
        }
        if let Some(t) = &self.tencent_api {
            t.validate()?;
        }
        if self.live.play_key.as_ref().is_some_and(String::is_empty) {
            return Err(invalid("live.play_key", "must not be empty"));
        }
        if self.live.play_auth_delta_s < 0 {
            return Err(invalid("live.play_auth_delta_s", "must not be negative"));
        }
        let templates = self.record_templates();
        for (i, t) in self.record_template.iter().enumerate() {
            let at = format!("record_template[{i}]");
            t.check().map_err(|e| e.within(&at))?;
            if self.record_template[..i].iter().any(|o| o.name == t.name) {
                return Err(invalid(
                    format!("{at}.name"),
                    format!("duplicate name `{}`", t.name),
                ));
            }
        }
        for (i, r) in self.record_rules().iter().enumerate() {
            let at = format!("record_rule[{i}]");
            r.check().map_err(|e| e.within(&at))?;
            if !templates.iter().any(|t| t.name == r.template) {
                return Err(invalid(
                    format!("{at}.template"),
                    format!("no record_template named `{}`", r.template),
                ));
            }
        }
        for (i, t) in self.callback_template.iter().enumerate() {
            let at = format!("callback_template[{i}]");
            t.check().map_err(|e| e.within(&at))?;
            if self.callback_template[..i].iter().any(|o| o.name == t.name) {
                return Err(invalid(
                    format!("{at}.name"),
                    format!("duplicate name `{}`", t.name),
                ));
            }
        }
        for (i, r) in self.callback_rule.iter().enumerate() {
            let at = format!("callback_rule[{i}]");
            r.check().map_err(|e| e.within(&at))?;
            if !self.callback_template.iter().any(|t| t.name == r.template) {
                return Err(invalid(
                    format!("{at}.template"),
                    format!("no callback_template named `{}`", r.template),
                ));
            }
        }
        Ok(())
    }

    pub fn public_url(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_the_documented_defaults() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.server.rtmp_listen.port(), 1935);
        assert_eq!(c.server.http_listen.port(), 8080);
        assert_eq!(c.record_templates(), [RecordTemplate::builtin_default()]);
        assert_eq!(c.record_templates()[0].formats, [crate::model::Format::Mp4]);
        assert_eq!(c.record_templates()[0].interval_s, 1800);
        assert!(c.callback_rule.is_empty());
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml_str("[[record_template]]\nname='x'\ninterval_s=5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("record_template[0].interval_s"), "{e}");
        let e = Config::from_toml_str("[[record_rule]]\ntemplate='nope'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("record_rule[0].template"), "{e}");
        let e = Config::from_toml_str("[server]\nappid='abc'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("appid"), "{e}");
        let e = Config::from_toml_str("[metrics]\nrequire_key=true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.require_key"), "{e}");
        let e = Config::from_toml_str("[server]\nbogus=1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Config::from_toml_str("[[record_template]]\nname='x'\nformats=['avi']\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("formats"), "{e}");
    }

    #[test]
    fn catalog_url_scheme_is_checked_and_the_password_hidden() {
        assert!(Config::from_toml_str("").unwrap().catalog.url.is_none());
        for ok in [
            "sqlite:///var/lib/lt/c.db",
            "postgres://u:p@h/db",
            "postgresql://h/db",
        ] {
            let c = Config::from_toml_str(&format!("[catalog]\nurl = '{ok}'\n")).unwrap();
            assert_eq!(c.catalog.url.as_deref(), Some(ok));
        }
        let e = Config::from_toml_str("[catalog]\nurl = 'mysql://u:secret@h/db'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("catalog.url"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    fn err(toml: &str) -> String {
        Config::from_toml_str(toml).unwrap_err().to_string()
    }

    #[test]
    fn bad_s3_settings_name_the_key() {
        let s3 = "[storage]\nkind = \"s3\"\n";
        assert!(err(s3).contains("storage.bucket"));
        let b = format!("{s3}bucket = \"b\"\n");
        assert!(err(&format!("{b}endpoint = \"ftp://x\"")).contains("storage.endpoint"));
        assert!(err(&format!("{b}access_key_id = \"k\"")).contains("storage.secret_access_key"));
        assert!(err(&format!("{b}secret_access_key = \"k\"")).contains("storage.access_key_id"));
        assert!(err(&format!("{b}prefix = \"/a\"")).contains("storage.prefix"));
        assert!(err(&format!("{b}prefix = \"a//b\"")).contains("storage.prefix"));
        assert!(err(&format!("{b}presign_s = 604801")).contains("storage.presign_s"));
        assert!(
            err(&format!("{b}credentials_file = \"/nonexistent/creds\""))
                .contains("storage.credentials_file")
        );
        assert!(err("[storage]\nkind = \"ftp\"").contains("kind"));
        let ok = Config::from_toml_str(&format!(
            "{b}endpoint = \"http://127.0.0.1:9000\"\nprefix = \"a/b\"\npresign_s = 60"
        ))
        .unwrap();
        assert_eq!(ok.storage.kind, StorageKind::S3);
        // Local storage ignores the S3 keys.
        Config::from_toml_str("[storage]\nbucket = \"\"").unwrap();
    }

    #[test]
    fn credentials_file_default_profile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("credentials");
        std::fs::write(
            &p,
            "[other]\naws_access_key_id = no\n[default]\naws_access_key_id = AK\n\
             aws_secret_access_key = SK\n",
        )
        .unwrap();
        assert_eq!(
            read_credentials_file(&p).unwrap(),
            ("AK".into(), "SK".into())
        );
        std::fs::write(&p, "[other]\naws_access_key_id = AK\n").unwrap();
        assert!(read_credentials_file(&p).is_err());
    }
}
