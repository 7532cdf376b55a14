//! Record and callback templates and the rules that bind them (Tencent §3.1–3.2, §1.4): the
//! types every face shares (config file, REST API, catalogue snapshot), their defaults and
//! their limits, each written once, with the one check each face runs.
//!
//! `#[schema(required = true)]` on a field with a serde default: what is read may leave it
//! out, but the API always sends it (the OpenAPI document describes the answers).

use super::format::Format;
use super::names::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// Tencent's API range for `RecordInterval` (§3.1).
pub const INTERVAL_RANGE_S: RangeInclusive<u64> = 30..=7200;
/// Tencent's API range for `FlowContinueDuration` (§3.1).
pub const RESUME_RANGE_S: RangeInclusive<u64> = 0..=1800;
/// Tencent's `StorageTime` range is 0–1500 days; 0 keeps files forever.
pub const MAX_STORAGE_DAYS: u64 = 1500;
/// Accepted HLS target segment lengths.
pub const HLS_TARGET_RANGE_S: RangeInclusive<u64> = 1..=60;
/// Tencent's `TemplateName` limit.
pub const MAX_TEMPLATE_NAME_LEN: usize = 255;

pub const DEFAULT_FORMATS: [Format; 1] = [Format::Mp4];
pub const DEFAULT_INTERVAL_S: u64 = 1800;
pub const DEFAULT_HLS_TARGET_S: u64 = 10;
/// Tencent §1.2: 12 retries, a minute apart.
pub const DEFAULT_RETRY_COUNT: u32 = 12;
pub const DEFAULT_RETRY_INTERVAL_S: u64 = 60;
/// The name of the built-in record template (and of the config file's catch-all rule's).
pub const DEFAULT_TEMPLATE: &str = "default";
/// Longest callback signing key (Tencent's keys are 32 characters).
pub const MAX_CALLBACK_KEY_LEN: usize = 256;
/// Longest callback URL.
pub const MAX_URL_LEN: usize = 2048;
/// Templates of one kind, and rules of one kind, at most: each push reads the whole set.
pub const MAX_TEMPLATES: u64 = 1000;
/// What the API shows in place of a secret; sent back in a PUT, it keeps the stored one.
pub const REDACTED: &str = "***";

/// A field outside its limits: which field (as the face that checked it names it) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The same error with the field named inside its container, e.g. `record_template[2]`.
    pub fn within(self, container: &str) -> Self {
        Self {
            field: format!("{container}.{}", self.field),
            problem: self.problem,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTemplate {
    pub name: String,
    #[serde(default = "default_formats")]
    #[schema(required = true)]
    pub formats: Vec<Format>,
    /// FLV/MP4 files split at the first keyframe at or after this many seconds.
    #[serde(default = "default_interval")]
    #[schema(required = true)]
    pub interval_s: u64,
    /// Reconnect window (Tencent `FlowContinueDuration`): a push of the same stream that starts
    /// within this many seconds of the previous push's end continues the same recording.
    /// 0 = every push is a new recording.
    #[serde(default)]
    #[schema(required = true)]
    pub resume_s: u64,
    /// HLS: target segment length; segments are cut at the first keyframe after it.
    #[serde(default = "default_hls_target")]
    #[schema(required = true)]
    pub hls_target_s: u64,
    /// Retention (Tencent `StorageTime`, in days): recordings older than this are deleted.
    /// 0 = kept forever.
    #[serde(default)]
    #[schema(required = true)]
    pub storage_days: u64,
}

fn default_formats() -> Vec<Format> {
    DEFAULT_FORMATS.to_vec()
}
fn default_interval() -> u64 {
    DEFAULT_INTERVAL_S
}
fn default_hls_target() -> u64 {
    DEFAULT_HLS_TARGET_S
}

impl RecordTemplate {
    /// `default` with every default: what records a stream when nothing else is configured.
    pub fn builtin_default() -> Self {
        Self::named(DEFAULT_TEMPLATE)
    }

    /// A template with every field at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            formats: default_formats(),
            interval_s: DEFAULT_INTERVAL_S,
            resume_s: 0,
            hls_target_s: DEFAULT_HLS_TARGET_S,
            storage_days: 0,
        }
    }

    pub fn check(&self) -> Result<(), FieldError> {
        check_template_name("name", &self.name)?;
        if self.formats.is_empty() {
            return Err(FieldError::new(
                "formats",
                format!("needs at least one of {:?}", Format::NAMES),
            ));
        }
        for (i, f) in self.formats.iter().enumerate() {
            if self.formats[..i].contains(f) {
                return Err(FieldError::new(
                    "formats",
                    format!("`{}` is listed twice", f.as_str()),
                ));
            }
        }
        check_range("interval_s", self.interval_s, INTERVAL_RANGE_S)?;
        check_range("hls_target_s", self.hls_target_s, HLS_TARGET_RANGE_S)?;
        check_range("resume_s", self.resume_s, RESUME_RANGE_S)?;
        check_range("storage_days", self.storage_days, 0..=MAX_STORAGE_DAYS)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRule {
    /// Glob on the push domain (Tencent `DomainName`).
    #[serde(default = "star")]
    #[schema(required = true)]
    pub domain: String,
    /// Glob on the RTMP app.
    #[serde(default = "star")]
    #[schema(required = true)]
    pub app: String,
    /// Glob on the stream name.
    #[serde(default = "star")]
    #[schema(required = true)]
    pub stream: String,
    pub template: String,
}

impl RecordRule {
    pub fn check(&self) -> Result<(), FieldError> {
        check_pattern("domain", &self.domain)?;
        check_pattern("app", &self.app)?;
        check_pattern("stream", &self.stream)?;
        check_template_name("template", &self.template)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackTemplate {
    pub name: String,
    /// Signing key (`sign = md5(key + t)`).
    #[serde(default)]
    #[schema(required = true)]
    pub key: String,
    #[schema(required = true)]
    pub stream_begin_url: Option<String>,
    #[schema(required = true)]
    pub stream_end_url: Option<String>,
    #[schema(required = true)]
    pub record_url: Option<String>,
    /// Retries after the first attempt.
    #[serde(default = "default_retry_count")]
    #[schema(required = true)]
    pub retry_count: u32,
    #[serde(default = "default_retry_interval")]
    #[schema(required = true)]
    pub retry_interval_s: u64,
}

fn default_retry_count() -> u32 {
    DEFAULT_RETRY_COUNT
}
fn default_retry_interval() -> u64 {
    DEFAULT_RETRY_INTERVAL_S
}

impl CallbackTemplate {
    /// The receiver URLs, each with the name of its field.
    pub fn urls(&self) -> [(&'static str, &Option<String>); 3] {
        [
            ("stream_begin_url", &self.stream_begin_url),
            ("stream_end_url", &self.stream_end_url),
            ("record_url", &self.record_url),
        ]
    }

    pub fn check(&self) -> Result<(), FieldError> {
        check_template_name("name", &self.name)?;
        if self.key.len() > MAX_CALLBACK_KEY_LEN {
            return Err(FieldError::new(
                "key",
                format!("must be at most {MAX_CALLBACK_KEY_LEN} bytes"),
            ));
        }
        if self.key == REDACTED {
            return Err(FieldError::new(
                "key",
                format!("`{REDACTED}` stands for a stored key; send the key itself"),
            ));
        }
        let urls = self.urls();
        if urls.iter().all(|(_, u)| u.is_none()) {
            return Err(FieldError::new(
                "record_url",
                "a callback template needs at least one of stream_begin_url, stream_end_url, \
                 record_url",
            ));
        }
        for (field, u) in urls {
            if let Some(u) = u {
                check_http_url(field, u)?;
            }
        }
        if self.retry_interval_s == 0 {
            return Err(FieldError::new("retry_interval_s", "must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRule {
    /// Glob on the push domain (Tencent `DomainName`).
    #[serde(default = "star")]
    #[schema(required = true)]
    pub domain: String,
    /// Glob on the RTMP app (callbacks bind per domain and app, as at Tencent).
    #[serde(default = "star")]
    #[schema(required = true)]
    pub app: String,
    pub template: String,
}

impl CallbackRule {
    pub fn check(&self) -> Result<(), FieldError> {
        check_pattern("domain", &self.domain)?;
        check_pattern("app", &self.app)?;
        check_template_name("template", &self.template)
    }
}

fn star() -> String {
    "*".into()
}

fn check_range(field: &str, v: u64, range: RangeInclusive<u64>) -> Result<(), FieldError> {
    if range.contains(&v) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{v} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

/// Tencent `TemplateName`: 1..=255 letters, digits, `_` and `-`.
pub fn check_template_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() || name.len() > MAX_TEMPLATE_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1..={MAX_TEMPLATE_NAME_LEN} bytes"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(FieldError::new(
            field,
            format!("`{name}` may only hold letters, digits, `_` and `-`"),
        ));
    }
    Ok(())
}

/// A rule's app/stream glob: non-empty, bounded, printable.
pub fn check_pattern(field: &str, v: &str) -> Result<(), FieldError> {
    if v.is_empty() || v.len() > MAX_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1..={MAX_NAME_LEN} bytes"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host and no whitespace.
pub fn check_http_url(field: &str, u: &str) -> Result<(), FieldError> {
    if u.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_URL_LEN} bytes"),
        ));
    }
    let host = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    match host {
        Some(h) if !h.is_empty() && !u.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Ok(())
        }
        _ => Err(FieldError::new(
            field,
            format!("`{u}` is not an http(s) URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_checks() {
        RecordTemplate::builtin_default().check().unwrap();
        let cb = CallbackTemplate {
            name: "cb".into(),
            key: String::new(),
            stream_begin_url: None,
            stream_end_url: None,
            record_url: Some("http://x/".into()),
            retry_count: DEFAULT_RETRY_COUNT,
            retry_interval_s: DEFAULT_RETRY_INTERVAL_S,
        };
        cb.check().unwrap();
        let no_url = CallbackTemplate {
            record_url: None,
            ..cb
        };
        assert_eq!(no_url.check().unwrap_err().field, "record_url");
    }

    #[test]
    fn each_limit_names_its_field() {
        let mut t = RecordTemplate::named("t");
        t.interval_s = 10;
        assert_eq!(t.check().unwrap_err().field, "interval_s");
        let mut t = RecordTemplate::named("t");
        t.formats = vec![Format::Flv, Format::Flv];
        assert_eq!(t.check().unwrap_err().field, "formats");
        let bad_name = RecordTemplate::named("a b");
        assert_eq!(bad_name.check().unwrap_err().field, "name");
        let e = FieldError::new("name", "x").within("record_template[1]");
        assert_eq!(e.to_string(), "`record_template[1].name`: x");
        assert!(check_pattern("app", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_http_url("u", "ftp://x").is_err());
    }
}
