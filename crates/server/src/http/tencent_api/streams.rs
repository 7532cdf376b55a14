//! Streams live on this node (`DescribeLiveStreamOnlineList`, `DescribeLiveStreamState`) and
//! `DropLiveStream`, which cuts a push at once: its driver ends it as any other end (files
//! closed and announced, event 0 with errcode [`errcode::DROPPED`]).

use super::params::int;
use super::{Answer, TcError, answer, parse};
use crate::hub::LiveStream;
use crate::state::AppState;
use livetape_tencent::{errcode, iso};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Tencent's `PageSize` range for the online list.
pub const ONLINE_PAGE_SIZE: std::ops::RangeInclusive<i64> = 10..=100;

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
    let page_num = p.page_num.unwrap_or(1);
    if page_num < 1 {
        return Err(TcError::invalid_value(
            "PageNum",
            format!("{page_num}: from 1"),
        ));
    }
    let page_size = p.page_size.unwrap_or(10);
    if !ONLINE_PAGE_SIZE.contains(&page_size) {
        return Err(TcError::invalid_value(
            "PageSize",
            format!(
                "{page_size} is outside {}..={}",
                ONLINE_PAGE_SIZE.start(),
                ONLINE_PAGE_SIZE.end()
            ),
        ));
    }
    let live: Vec<LiveStream> = st
        .hub
        .list()
        .into_iter()
        .filter(|s| matches(s, &p.domain_name, &p.app_name, &p.stream_name))
        .collect();
    let total = live.len() as i64;
    let skip = usize::try_from((page_num - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let info: Vec<Value> = live
        .iter()
        .skip(skip)
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
    answer(json!({
        "TotalNum": total,
        "TotalPage": (total + page_size - 1) / page_size,
        "PageNum": page_num,
        "PageSize": page_size,
        "OnlineInfo": info,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct StreamIn {
    app_name: Option<String>,
    domain_name: Option<String>,
    stream_name: Option<String>,
}

/// The live stream `p` names (all three fields required, as at Tencent).
fn named(st: &AppState, p: Value) -> Result<(StreamIn, Option<LiveStream>), TcError> {
    let p: StreamIn = parse(p)?;
    for (f, v) in [
        ("AppName", &p.app_name),
        ("DomainName", &p.domain_name),
        ("StreamName", &p.stream_name),
    ] {
        if v.as_deref().is_none_or(str::is_empty) {
            return Err(TcError::missing(f));
        }
    }
    let (d, a, s) = (
        p.domain_name.clone(),
        p.app_name.clone(),
        p.stream_name.clone(),
    );
    let found = st.hub.list().into_iter().find(|l| matches(l, &d, &a, &s));
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
