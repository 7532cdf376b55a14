//! Streams live on this node (`DescribeLiveStreamOnlineList`, `DescribeLiveStreamState`,
//! `DescribeLiveStreamPushInfoList` with the hub's rates),
//! `DropLiveStream`, which cuts a push at once: its driver ends it as any other end (files
//! closed and announced, event 0 with errcode [`errcode::DROPPED`]), and `ForbidLiveStream` /
//! `ResumeLiveStream`: a ban in the catalogue that every publish checks (`push::begin`), so it
//! holds across restarts and nodes; forbidding a live stream also cuts it.

use super::params::{int, page, paged, time};
use super::{Answer, TcError, answer, parse};
use crate::hub::LiveStream;
use crate::state::AppState;
use livetape_catalog::ForbiddenStream;
use livetape_tencent::{cst, errcode, iso};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Tencent's `PageSize` range for the online list.
pub const ONLINE_PAGE_SIZE: std::ops::RangeInclusive<i64> = 10..=100;
/// Tencent's `PageSize` range for the push info list (default 200).
pub const PUSH_INFO_PAGE_SIZE: std::ops::RangeInclusive<i64> = 1..=1000;
/// Tencent's last `PageNum` of the push info list.
pub const MAX_PUSH_INFO_PAGE: i64 = 10_000;

fn matches(
    s: &LiveStream,
    domain: &Option<String>,
    app: &Option<String>,
    stream: &Option<String>,
) -> bool {
    let eq = |want: &Option<String>, have: &str| {
        want.as_deref().is_none_or(|w| w.is_empty() || w == have)
    };
    eq(domain, &s.domain) && eq(app, &s.app) && eq(stream, &s.stream)
}

pub(super) async fn online_list(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        domain_name: Option<String>,
        app_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        page_num: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        page_size: Option<i64>,
        stream_name: Option<String>,
    }
    let p: In = parse(p)?;
    let (page_num, page_size, skip) = page(p.page_num, p.page_size, ONLINE_PAGE_SIZE, 10)?;
    let live: Vec<LiveStream> = st
        .hub
        .list()
        .into_iter()
        .filter(|s| matches(s, &p.domain_name, &p.app_name, &p.stream_name))
        .collect();
    let info: Vec<Value> = live
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(page_size as usize)
        .map(|s| {
            json!({
                "StreamName": s.stream,
                "PublishTimeList": [{ "PublishTime": iso::format_utc(s.started_at_ms / 1000) }],
                "AppName": s.app,
                "DomainName": s.domain,
                "PushToDelay": 0,
            })
        })
        .collect();
    let mut out = paged(page_num, page_size, live.len() as u64);
    out.insert("OnlineInfo".into(), info.into());
    answer(out)
}

/// Each live stream's push statistics: rates over the last ~5 s of media time, per track
/// (bit/s and frames per second), codecs, size, sample rate, and what `onMetaData` declared.
/// Without live viewing (`[live] enabled = false`) the hub keeps no rates: they are 0.
pub(super) async fn push_info_list(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        push_domain: Option<String>,
        app_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        page_num: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        page_size: Option<i64>,
    }
    let p: In = parse(p)?;
    if p.page_num.is_some_and(|n| n > MAX_PUSH_INFO_PAGE) {
        return Err(TcError::invalid_value(
            "PageNum",
            format_args!("at most {MAX_PUSH_INFO_PAGE}"),
        ));
    }
    let (page_num, page_size, skip) = page(p.page_num, p.page_size, PUSH_INFO_PAGE_SIZE, 200)?;
    let live: Vec<LiveStream> = st
        .hub
        .list()
        .into_iter()
        .filter(|s| matches(s, &p.push_domain, &p.app_name, &None))
        .collect();
    let bps = |kbps: u64| kbps.saturating_mul(1000);
    let info: Vec<Value> = live
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(page_size as usize)
        .map(|s| {
            let r = s.live.as_ref().map(|l| l.stats()).unwrap_or_default();
            json!({
                "StreamName": s.stream,
                "AppName": s.app,
                "ClientIp": s.client_ip,
                "ServerIp": st.node,
                "VideoFps": r.video_fps,
                "VideoSpeed": bps(r.video_kbps),
                "AudioFps": r.audio_fps,
                "AudioSpeed": bps(r.audio_kbps),
                "PushDomain": s.domain,
                "BeginPushTime": cst::format_cst(s.started_at_ms.div_euclid(1000)),
                "Acodec": r.audio_codec,
                "Vcodec": r.video_codec,
                "Resolution": if r.width == 0 { String::new() } else { format!("{}*{}", r.width, r.height) },
                "AsampleRate": r.sample_rate,
                "MetaAudioSpeed": bps(r.declared.audio_kbps.into()),
                "MetaVideoSpeed": bps(r.declared.video_kbps.into()),
                "MetaFps": r.declared.fps,
            })
        })
        .collect();
    let mut out = paged(page_num, page_size, live.len() as u64);
    out.insert("DataInfoList".into(), info.into());
    answer(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct StreamIn {
    app_name: Option<String>,
    domain_name: Option<String>,
    stream_name: Option<String>,
}

/// The stream `p` names (all three fields required, as at Tencent).
fn required(p: &StreamIn) -> Result<(&str, &str, &str), TcError> {
    let get = |f: &str, v: &Option<String>| -> Result<(), TcError> {
        if v.as_deref().is_none_or(str::is_empty) {
            return Err(TcError::missing(f));
        }
        Ok(())
    };
    get("AppName", &p.app_name)?;
    get("DomainName", &p.domain_name)?;
    get("StreamName", &p.stream_name)?;
    Ok((
        p.domain_name.as_deref().unwrap_or_default(),
        p.app_name.as_deref().unwrap_or_default(),
        p.stream_name.as_deref().unwrap_or_default(),
    ))
}

fn live_one(st: &AppState, domain: &str, app: &str, stream: &str) -> Option<LiveStream> {
    let (d, a, s) = (Some(domain.into()), Some(app.into()), Some(stream.into()));
    st.hub.list().into_iter().find(|l| matches(l, &d, &a, &s))
}

/// The live stream `p` names (all three fields required, as at Tencent).
fn named(st: &AppState, p: Value) -> Result<(StreamIn, Option<LiveStream>), TcError> {
    let p: StreamIn = parse(p)?;
    let (d, a, s) = required(&p)?;
    let found = live_one(st, d, a, s);
    Ok((p, found))
}

pub(super) async fn state(st: &Arc<AppState>, p: Value) -> Answer {
    let (_, found) = named(st, p)?;
    answer(json!({ "StreamState": if found.is_some() { "active" } else { "inactive" } }))
}

pub(super) async fn drop_stream(st: &Arc<AppState>, p: Value) -> Answer {
    let (p, found) = named(st, p)?;
    let Some(live) = found else {
        return Err(TcError::new(
            "ResourceNotFound.StreamNotAlive",
            format!(
                "stream {}/{} is not being pushed on DomainName {}",
                p.app_name.unwrap_or_default(),
                p.stream_name.unwrap_or_default(),
                p.domain_name.unwrap_or_default()
            ),
        ));
    };
    st.hub.cut(&live.app, &live.stream);
    tracing::info!(
        app = live.app,
        stream = live.stream,
        errcode = errcode::DROPPED,
        "DropLiveStream"
    );
    answer(json!({}))
}

/// Tencent's default ban (7 days) and longest one (90 days).
pub const FORBID_DEFAULT_MS: i64 = 7 * 86_400_000;
pub const FORBID_MAX_MS: i64 = 90 * 86_400_000;
/// Longest `Reason`, in bytes (Tencent's limit).
pub const FORBID_REASON_MAX: usize = 2048;

pub(super) async fn forbid(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        app_name: Option<String>,
        domain_name: Option<String>,
        stream_name: Option<String>,
        resume_time: Option<String>,
        reason: Option<String>,
    }
    let p: In = parse(p)?;
    let named = StreamIn {
        app_name: p.app_name,
        domain_name: p.domain_name,
        stream_name: p.stream_name,
    };
    let (domain, app, stream) = required(&named)?;
    let now = st.clock.now_ms();
    let resume_at_ms = time("ResumeTime", &p.resume_time)?.unwrap_or(now + FORBID_DEFAULT_MS);
    if resume_at_ms <= now || resume_at_ms - now > FORBID_MAX_MS {
        return Err(TcError::invalid_value(
            "ResumeTime",
            "must be in the future and at most 90 days away",
        ));
    }
    let reason = p.reason.unwrap_or_default();
    if reason.len() > FORBID_REASON_MAX {
        return Err(TcError::invalid_value(
            "Reason",
            format!("longer than {FORBID_REASON_MAX} bytes"),
        ));
    }
    st.catalog
        .forbid_stream(&ForbiddenStream {
            app: domain.to_owned(),
            appname: app.to_owned(),
            stream_id: stream.to_owned(),
            resume_at_ms,
            reason,
            created_at_ms: now,
        })
        .await?;
    // After the row: a reconnect racing the cut is refused by it.
    if let Some(live) = live_one(st, domain, app, stream) {
        st.hub.cut(&live.app, &live.stream);
    }
    tracing::info!(
        app,
        stream,
        resume = iso::format_utc(resume_at_ms / 1000),
        "ForbidLiveStream"
    );
    answer(json!({}))
}

pub(super) async fn resume(st: &Arc<AppState>, p: Value) -> Answer {
    let p: StreamIn = parse(p)?;
    let (domain, app, stream) = required(&p)?;
    // Tencent answers success for a stream that was not forbidden; so do we.
    let lifted = st.catalog.resume_stream(domain, app, stream).await?;
    tracing::info!(app, stream, lifted, "ResumeLiveStream");
    answer(json!({}))
}
