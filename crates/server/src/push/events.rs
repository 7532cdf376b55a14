//! Turns catalogue changes into outbox rows in Tencent's wire format (§1.6, §1.7).
//!
//! Bodies are stored unsigned; the notifier adds `t`/`sign` on every attempt.

use crate::config::Config;
use crate::model::CallbackTemplate;
use livetape_catalog::{NewEvent, Recording};
use livetape_tencent::callback::{CallbackExt, PushInfo, RecordFileEvent, StreamEvent};

/// What a push looked like, for its begin/end callbacks.
#[derive(Clone, Debug)]
pub struct PushFacts {
    /// The app's callback template when the push started.
    pub callbacks: Option<CallbackTemplate>,
    pub domain: String,
    pub appname: String,
    pub stream: String,
    pub sequence: String,
    pub node: String,
    pub user_ip: String,
    pub stream_param: String,
    pub width: u32,
    pub height: u32,
}

fn push_info(cfg: &Config, p: &PushFacts) -> PushInfo {
    PushInfo {
        appid: cfg.server.appid as i64,
        domain: p.domain.clone(),
        app_name: p.appname.clone(),
        stream: p.stream.clone(),
        sequence: p.sequence.clone(),
        node: p.node.clone(),
        user_ip: p.user_ip.clone(),
        stream_param: p.stream_param.clone(),
        // Tencent: 1–6 inside the Chinese mainland, 7–200 outside. A self-hosted node is "outside".
        set_id: 7,
        width: p.width,
        height: p.height,
    }
}

fn new_event(
    t: &CallbackTemplate,
    url: &str,
    event_id: String,
    event_type: i32,
    stream_id: &str,
    body: String,
    now_ms: i64,
) -> NewEvent {
    NewEvent {
        event_id,
        event_type,
        url: url.to_owned(),
        body,
        sign_key: t.key.clone(),
        stream_id: stream_id.to_owned(),
        max_attempts: t.retry_count.saturating_add(1),
        retry_interval_ms: t.retry_interval_s.saturating_mul(1000),
        created_at_ms: now_ms,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Our event structs hold only strings and integers, which always serialise.
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// Event 1, if the app's callback template has a `stream_begin_url`.
pub fn push_begin(cfg: &Config, p: &PushFacts, now_ms: i64) -> Option<NewEvent> {
    let t = p.callbacks.as_ref()?;
    let url = t.stream_begin_url.as_deref()?;
    let body = StreamEvent::push_begin(push_info(cfg, p), now_ms / 1000);
    Some(new_event(
        t,
        url,
        format!("1-{}", p.sequence),
        1,
        &p.stream,
        to_json(&body),
        now_ms,
    ))
}

/// Event 0, if the app's callback template has a `stream_end_url`.
pub fn push_end(
    cfg: &Config,
    p: &PushFacts,
    duration_ms: u64,
    errcode: i32,
    errmsg: &str,
    now_ms: i64,
) -> Option<NewEvent> {
    let t = p.callbacks.as_ref()?;
    let url = t.stream_end_url.as_deref()?;
    let body = StreamEvent::push_end(
        push_info(cfg, p),
        now_ms / 1000,
        duration_ms,
        errcode,
        errmsg,
    );
    Some(new_event(
        t,
        url,
        format!("0-{}", p.sequence),
        0,
        &p.stream,
        to_json(&body),
        now_ms,
    ))
}

/// Event 100 for a finished file, if the app's callback template has a `record_url`.
pub fn record_file(
    cfg: &Config,
    callbacks: Option<&CallbackTemplate>,
    template_id: i64,
    r: &Recording,
    now_ms: i64,
) -> Option<NewEvent> {
    let t = callbacks?;
    let url = t.record_url.as_deref()?;
    let ext = CallbackExt {
        video_codec: r.video_codec.clone(),
        resolution: if r.width > 0 {
            format!("{}x{}", r.width, r.height)
        } else {
            String::new()
        },
        session_id: r.sequence.clone(),
    };
    let duration_s = (r.duration_ms + 500) / 1000;
    let body = RecordFileEvent {
        appid: cfg.server.appid as i64,
        app: r.app.clone(),
        appname: r.appname.clone(),
        stream_id: r.stream_id.clone(),
        channel_id: r.stream_id.clone(),
        file_id: r.file_id.clone(),
        record_file_id: r.file_id.clone(),
        video_id: r.file_id.clone(),
        record_temp_id: template_id.to_string(),
        file_format: r.format.clone(),
        task_id: r.sequence.clone(),
        start_time: r.start_ms.div_euclid(1000),
        end_time: r.end_ms.div_euclid(1000),
        start_time_usec: r.start_ms.rem_euclid(1000) * 1000,
        end_time_usec: r.end_ms.rem_euclid(1000) * 1000,
        duration: duration_s,
        file_size: r.size_bytes,
        stream_param: Some(r.stream_param.clone()),
        video_url: r.video_url.clone(),
        media_start_time: r.media_start_ms,
        // Tencent: 0 when the original stream is recorded (no transcode).
        record_bps: 0,
        callback_ext: ext.to_json_string(),
        event_type: 100,
    };
    Some(new_event(
        t,
        url,
        format!("100-{}", r.file_id),
        100,
        &r.stream_id,
        to_json(&body),
        now_ms,
    ))
}

/// Event 332 for a recording status change, if the app's callback template has a `record_url`.
pub fn record_status(
    cfg: &Config,
    ctx: &crate::record::RecordContext,
    status: &crate::record::RecordStatus,
    now_ms: i64,
) -> Option<NewEvent> {
    use livetape_tencent::callback::{EVENT_RECORD_STATUS, RecordDetail, RecordStatusEvent};
    let t = ctx.callbacks.as_ref()?;
    let url = t.record_url.as_deref()?;
    let mut detail = RecordDetail::template(status.format.tencent_code());
    detail.file_id = status.file_id.clone();
    detail.error = status.error.clone();
    // Unique and stable per event: receivers dedupe on it.
    let seq = format!("{}", rand::random::<u64>() >> 1);
    let body = RecordStatusEvent {
        appid: cfg.server.appid as i64,
        appname: ctx.appname.clone(),
        domain: ctx.domain.clone(),
        event_time: now_ms / 1000,
        event_type: EVENT_RECORD_STATUS,
        record_detail: detail.to_json_string(),
        record_event: status.kind.record_event().to_owned(),
        seq: seq.clone(),
        session_id: ctx.sequence.clone(),
        stream_id: ctx.stream.clone(),
    };
    Some(new_event(
        t,
        url,
        format!("332-{seq}"),
        EVENT_RECORD_STATUS,
        &ctx.stream,
        to_json(&body),
        now_ms,
    ))
}
