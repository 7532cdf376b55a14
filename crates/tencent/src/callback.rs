//! Callback bodies (spec §1.6, §1.7) with Tencent's exact field names and JSON types.
//!
//! Bodies are stored in the outbox **without** `t`/`sign`; [`sign_body`] adds them on every
//! delivery attempt so retries past the 10-minute lifetime still verify (spec §1.3).

use serde::Serialize;

use crate::sign::callback_sign;

/// event_type of a push start (推流).
pub const EVENT_PUSH_BEGIN: i32 = 1;
/// event_type of a push interruption (断流).
pub const EVENT_PUSH_END: i32 = 0;
/// event_type of a new recording file (录制).
pub const EVENT_RECORD_FILE: i32 = 100;
/// Recording status change (§1.8), sent to the record URL.
pub const EVENT_RECORD_STATUS: i32 = 332;
/// `t = now + SIGN_LIFETIME_S` (every Tencent sample has `t = event_time + 600`).
pub const SIGN_LIFETIME_S: i64 = 600;

/// Event 1 (push start) or 0 (push interrupted). Field order follows the brief/samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamEvent {
    pub appid: i64,
    /// The push **domain** (Tencent's name is misleading).
    pub app: String,
    /// The push path (AppName), e.g. `live`.
    pub appname: String,
    pub stream_id: String,
    /// Same as `stream_id` (historical name).
    pub channel_id: String,
    /// Unix seconds.
    pub event_time: i64,
    /// One id per push session; pairs event 1 with its event 0.
    pub sequence: String,
    /// IP of the ingest node.
    pub node: String,
    pub user_ip: String,
    /// The push URL's query string, verbatim.
    pub stream_param: String,
    /// Interrupt only: push length in ms, as a JSON **string** (e.g. `"128581"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_duration: Option<String>,
    /// 0 on start; on interrupt a reason from [`crate::errcode`].
    pub errcode: i32,
    /// `"ok"` on start.
    pub errmsg: String,
    /// 1–6 mainland China, 7–200 elsewhere.
    pub set_id: i32,
    pub width: u32,
    pub height: u32,
    pub event_type: i32,
}

/// Fields shared by push start and push interrupt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushInfo {
    pub appid: i64,
    pub domain: String,
    pub app_name: String,
    pub stream: String,
    pub sequence: String,
    pub node: String,
    pub user_ip: String,
    pub stream_param: String,
    pub set_id: i32,
    pub width: u32,
    pub height: u32,
}

impl StreamEvent {
    fn from_info(info: PushInfo, event_time: i64, event_type: i32) -> Self {
        StreamEvent {
            appid: info.appid,
            app: info.domain,
            appname: info.app_name,
            channel_id: info.stream.clone(),
            stream_id: info.stream,
            event_time,
            sequence: info.sequence,
            node: info.node,
            user_ip: info.user_ip,
            stream_param: info.stream_param,
            push_duration: None,
            errcode: 0,
            errmsg: "ok".to_owned(),
            set_id: info.set_id,
            width: info.width,
            height: info.height,
            event_type,
        }
    }

    /// Event 1: errcode 0, errmsg `"ok"`, no `push_duration`.
    pub fn push_begin(info: PushInfo, event_time: i64) -> Self {
        Self::from_info(info, event_time, EVENT_PUSH_BEGIN)
    }

    /// Event 0 with the push length in ms and a reason code.
    pub fn push_end(
        info: PushInfo,
        event_time: i64,
        push_duration_ms: u64,
        errcode: i32,
        errmsg: impl Into<String>,
    ) -> Self {
        StreamEvent {
            push_duration: Some(push_duration_ms.to_string()),
            errcode,
            errmsg: errmsg.into(),
            ..Self::from_info(info, event_time, EVENT_PUSH_END)
        }
    }
}

/// Event 100: a recording file is ready (spec §1.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordFileEvent {
    pub appid: i64,
    /// Push domain.
    pub app: String,
    pub appname: String,
    pub stream_id: String,
    pub channel_id: String,
    /// Opaque string; keep stable across retries (receivers dedupe on it).
    pub file_id: String,
    pub record_file_id: String,
    /// The legacy VOD1 id (`{appid}_{32 hex}` in Tencent's guide): the same as `file_id`.
    pub video_id: String,
    /// The recording template's id as a string (API 3.0 `TemplateId`).
    pub record_temp_id: String,
    /// `flv` | `hls` | `mp4` | `aac` | `mp3`.
    pub file_format: String,
    /// Numeric-looking string (task/session id).
    pub task_id: String,
    /// Unix seconds when recording started (not necessarily the file's start).
    pub start_time: i64,
    pub end_time: i64,
    pub start_time_usec: i64,
    pub end_time_usec: i64,
    /// File duration, seconds.
    pub duration: i64,
    /// Bytes, a JSON number.
    pub file_size: u64,
    /// Push query string; absent for API-created record tasks (spec §1.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_param: Option<String>,
    pub video_url: String,
    /// PTS (ms) when the recorder first pulled the stream.
    pub media_start_time: i64,
    /// kbps of a transcoded recording; 0 for the original stream.
    pub record_bps: i64,
    /// JSON **encoded inside a string**; build with [`CallbackExt::to_json_string`].
    pub callback_ext: String,
    pub event_type: i32,
}

/// The inner object of `callback_ext`.
/// Event 332 (§1.8). Note `domain` (not `app`) and no `channel_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordStatusEvent {
    pub appid: i64,
    pub appname: String,
    pub domain: String,
    pub event_time: i64,
    pub event_type: i32,
    /// `record_detail` as a JSON *string*, from [`RecordDetail::to_json_string`].
    pub record_detail: String,
    /// `record_start_succeeded` | `record_start_failed` | `record_paused` | `record_resumed` |
    /// `record_error` | `record_ended`.
    pub record_event: String,
    /// Message sequence number (string).
    pub seq: String,
    /// The recording session id (string).
    pub session_id: String,
    pub stream_id: String,
}

/// The inner object of `record_detail` (§1.8), plus livetape's `file_id` and `error`
/// (extra keys; Tencent's own keys keep their names and types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordDetail {
    /// 1 FLV, 2 HLS, 3 MP4, 4 AAC, 5 MP3.
    pub file_format: i32,
    pub record_bps: i64,
    /// 1 = started by a template rule.
    pub start_model: i32,
    /// 1 = original stream.
    pub record_content: i32,
    /// 1 = live recording.
    pub source_type: i32,
    pub codec_temp_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RecordDetail {
    /// Detail of an original-stream recording started by a rule, in `file_format`.
    pub fn template(file_format: i32) -> Self {
        RecordDetail {
            file_format,
            record_bps: 0,
            start_model: 1,
            record_content: 1,
            source_type: 1,
            codec_temp_id: 0,
            file_id: None,
            error: None,
        }
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallbackExt {
    pub video_codec: String,
    /// `WxH`, e.g. `1920x1080`.
    pub resolution: String,
    pub session_id: String,
}

impl CallbackExt {
    pub fn to_json_string(&self) -> String {
        // A struct of three Strings always serialises; fall back to "{}" rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("callback body is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("callback body already contains {0:?}; bodies must be stored unsigned")]
    AlreadySigned(&'static str),
}

/// Add `"t": now+600` (number) and `"sign": md5(key + t)` to a stored (unsigned) body.
///
/// The stored text is spliced rather than re-serialised, so the original field order survives
/// (serde_json's map would sort keys).
pub fn sign_body(body_json: &str, key: &str, now_unix: i64) -> Result<String, BodyError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(body_json).map_err(|e| BodyError::NotAnObject(e.to_string()))?;
    for k in ["t", "sign"] {
        if map.contains_key(k) {
            return Err(BodyError::AlreadySigned(k));
        }
    }
    let trimmed = body_json.trim_end();
    // A parsed JSON object always ends with '}' once trailing whitespace is gone.
    let head = trimmed
        .strip_suffix('}')
        .ok_or_else(|| BodyError::NotAnObject("no closing brace".to_owned()))?;
    let t = now_unix.saturating_add(SIGN_LIFETIME_S);
    let sign = callback_sign(key, t);
    let sep = if map.is_empty() { "" } else { "," };
    Ok(format!("{head}{sep}\"t\":{t},\"sign\":\"{sign}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn info() -> PushInfo {
        PushInfo {
            appid: 12_345_678,
            domain: "test.domain.com".into(),
            app_name: "live".into(),
            stream: "test_stream".into(),
            sequence: "2210464508206756938".into(),
            node: "42.81.194.37".into(),
            user_ip: "1.1.1.1".into(),
            stream_param: "stream_param=test".into(),
            set_id: 2,
            width: 0,
            height: 0,
        }
    }

    fn record() -> RecordFileEvent {
        RecordFileEvent {
            appid: 12_345_678,
            app: "yourapp".into(),
            appname: "yourappname".into(),
            stream_id: "stream_test".into(),
            channel_id: "stream_test".into(),
            file_id: "1234567890".into(),
            record_file_id: "1234567890".into(),
            video_id: "1234567890".into(),
            record_temp_id: "7".into(),
            file_format: "hls".into(),
            task_id: "1818336333418013137".into(),
            start_time: 1_642_089_445,
            end_time: 1_642_089_598,
            start_time_usec: 316_441,
            end_time_usec: 618_577,
            duration: 154,
            file_size: 277_941_079,
            stream_param: Some("stream_param=test".into()),
            video_url: "http://h/x.m3u8".into(),
            media_start_time: 135_802,
            record_bps: 0,
            callback_ext: CallbackExt {
                video_codec: "h264".into(),
                resolution: "640x480".into(),
                session_id: "s1".into(),
            }
            .to_json_string(),
            event_type: EVENT_RECORD_FILE,
        }
    }

    fn parse(s: &str) -> serde_json::Map<String, Value> {
        serde_json::from_str(s).expect("valid JSON object")
    }

    #[test]
    fn push_end_types_match_sample() {
        let ev = StreamEvent::push_end(info(), 1_703_731_606, 128_581, 1, "client stopped");
        let body = serde_json::to_string(&ev).unwrap();
        let signed = sign_body(&body, "key", 1_703_731_606).unwrap();
        let m = parse(&signed);
        assert_eq!(m["push_duration"], Value::String("128581".into()));
        for k in [
            "appid",
            "event_time",
            "errcode",
            "set_id",
            "width",
            "height",
            "event_type",
            "t",
        ] {
            assert!(m[k].is_i64(), "{k} must be a JSON integer");
        }
        for k in [
            "app",
            "appname",
            "stream_id",
            "channel_id",
            "sequence",
            "node",
            "user_ip",
        ] {
            assert!(m[k].is_string(), "{k} must be a JSON string");
        }
        assert_eq!(m["event_type"], 0);
        assert_eq!(m["t"], 1_703_732_206); // = event_time + 600, as in the sample
        assert_eq!(
            m["sign"],
            Value::String(callback_sign("key", 1_703_732_206))
        );
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 19);
    }

    #[test]
    fn push_begin_has_no_duration_and_field_order() {
        let body = serde_json::to_string(&StreamEvent::push_begin(info(), 5)).unwrap();
        assert!(!body.contains("push_duration"));
        assert!(body.starts_with(
            r#"{"appid":12345678,"app":"test.domain.com","appname":"live","stream_id""#
        ));
        assert!(body.ends_with(
            r#""errcode":0,"errmsg":"ok","set_id":2,"width":0,"height":0,"event_type":1}"#
        ));
    }

    #[test]
    fn record_file_types() {
        let body = serde_json::to_string(&record()).unwrap();
        let signed = sign_body(&body, "", 1_545_030_273).unwrap();
        let m = parse(&signed);
        for k in [
            "app",
            "appname",
            "stream_id",
            "channel_id",
            "file_id",
            "record_file_id",
            "video_id",
            "record_temp_id",
            "file_format",
            "task_id",
            "stream_param",
            "video_url",
            "callback_ext",
            "sign",
        ] {
            assert!(m[k].is_string(), "{k} must be a JSON string");
        }
        for k in [
            "appid",
            "start_time",
            "end_time",
            "start_time_usec",
            "end_time_usec",
            "duration",
            "media_start_time",
            "record_bps",
            "event_type",
            "t",
        ] {
            assert!(m[k].is_i64(), "{k} must be a JSON integer");
        }
        assert!(m["file_size"].is_u64());
        assert_eq!(m["file_size"], 277_941_079);
        assert_eq!(m["t"], 1_545_030_873);
        assert_eq!(m["sign"], Value::String(callback_sign("", 1_545_030_873)));
        // callback_ext is JSON inside a string.
        let ext: serde_json::Map<String, Value> =
            serde_json::from_str(m["callback_ext"].as_str().unwrap()).unwrap();
        assert_eq!(ext["resolution"], "640x480");
        assert_eq!(ext["video_codec"], "h264");
        assert_eq!(ext["session_id"], "s1");
        // The original field order survives signing, t/sign appended last.
        assert!(signed.starts_with(r#"{"appid":12345678,"app":"yourapp""#));
        assert!(signed.contains(r#""record_bps":0,"callback_ext":"#));
        let tail = format!(
            r#""event_type":100,"t":1545030873,"sign":"{}"}}"#,
            callback_sign("", 1_545_030_873)
        );
        assert!(signed.ends_with(&tail), "{signed}");
    }

    #[test]
    fn record_without_stream_param_omits_it() {
        let rec = RecordFileEvent {
            stream_param: None,
            ..record()
        };
        assert!(
            !serde_json::to_string(&rec)
                .unwrap()
                .contains("stream_param")
        );
    }

    #[test]
    fn sign_body_recomputes_per_call_and_rejects_bad_input() {
        let a = sign_body(r#"{"x":1}"#, "k", 100).unwrap();
        let b = sign_body(r#"{"x":1}"#, "k", 200).unwrap();
        assert_ne!(a, b);
        assert_eq!(parse(&b)["t"], 800);
        assert_eq!(
            sign_body("{}", "k", 0).unwrap(),
            format!(r#"{{"t":600,"sign":"{}"}}"#, callback_sign("k", 600))
        );
        assert_eq!(
            sign_body("{\"a\":1} \n", "k", 0).map(|s| parse(&s).len()),
            Ok(3)
        );
        assert!(matches!(
            sign_body("[1]", "k", 0),
            Err(BodyError::NotAnObject(_))
        ));
        assert!(matches!(
            sign_body("{", "k", 0),
            Err(BodyError::NotAnObject(_))
        ));
        assert!(matches!(
            sign_body("", "k", 0),
            Err(BodyError::NotAnObject(_))
        ));
        assert_eq!(
            sign_body(r#"{"t":1}"#, "k", 0),
            Err(BodyError::AlreadySigned("t"))
        );
        assert_eq!(
            sign_body(r#"{"sign":"x"}"#, "k", 0),
            Err(BodyError::AlreadySigned("sign"))
        );
    }

    proptest::proptest! {
        #[test]
        fn sign_body_never_panics(s in ".{0,60}", now in proptest::prelude::any::<i64>()) {
            if let Ok(out) = sign_body(&s, "k", now) {
                proptest::prop_assert!(serde_json::from_str::<serde_json::Map<String, Value>>(&out).is_ok());
            }
        }
    }

    #[test]
    fn record_status_types() {
        let mut d = RecordDetail::template(3);
        d.error = Some("disk full".into());
        let e = RecordStatusEvent {
            appid: 1,
            appname: "live".into(),
            domain: "d".into(),
            event_time: 2,
            event_type: EVENT_RECORD_STATUS,
            record_detail: d.to_json_string(),
            record_event: "record_error".into(),
            seq: "9".into(),
            session_id: "8".into(),
            stream_id: "s".into(),
        };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert!(v["record_detail"].is_string());
        assert!(v["seq"].is_string() && v["session_id"].is_string());
        assert!(v.get("app").is_none() && v.get("channel_id").is_none());
        let inner: serde_json::Value =
            serde_json::from_str(v["record_detail"].as_str().unwrap()).unwrap();
        assert_eq!(inner["file_format"], 3);
        assert_eq!(inner["start_model"], 1);
        assert_eq!(inner["error"], "disk full");
        assert!(inner.get("file_id").is_none());
    }
}
