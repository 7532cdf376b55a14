//! Push history from the catalogue's ended push sessions: `DescribeLiveStreamPublishedList`
//! and `DescribeLiveStreamEventList` (the same rows; Tencent's two views of them), and
//! `DescribeCallbackRecordsList` from the outbox (the delivery log).

use super::params::{int, page, paged, required_time, time_either, window};
use super::{Answer, TcError, answer, parse};
use crate::state::AppState;
use livetape_catalog::{DeliveryQuery, PushQuery, PushSession, StreamMatch};
use livetape_tencent::iso;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Tencent's longest window for the two push lists ("不可超过1个月").
pub const PUSH_WINDOW_MS: i64 = 31 * 86_400_000;
/// Tencent's longest window for the callback log ("不支持超过1天").
pub const CALLBACK_WINDOW_MS: i64 = 86_400_000;
pub const PUBLISHED_PAGE_SIZE: std::ops::RangeInclusive<i64> = 10..=100;
pub const EVENT_PAGE_SIZE: std::ops::RangeInclusive<i64> = 1..=100;
pub const CALLBACK_PAGE_SIZE: std::ops::RangeInclusive<i64> = 1..=100;

/// One session as Tencent's `StreamName` / `StreamEventInfo` (the same fields).
fn session(s: &PushSession) -> Value {
    let end = s.ended_at_ms.unwrap_or(s.started_at_ms);
    json!({
        "StreamName": s.stream_id,
        "AppName": s.appname,
        "DomainName": s.app,
        "StreamStartTime": iso::format_utc(s.started_at_ms / 1000),
        "StreamEndTime": iso::format_utc(end / 1000),
        "StopReason": s.errmsg.clone().unwrap_or_default(),
        "Duration": (end - s.started_at_ms).max(0) / 1000,
        "ClientIp": s.client_ip,
        // The session row keeps no resolution (the recordings do).
        "Resolution": if s.width > 0 { format!("{}x{}", s.width, s.height) } else { String::new() },
    })
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

async fn listed(st: &AppState, q: PushQuery, num: i64, size: i64, field: &str) -> Answer {
    let (total, rows) = st.catalog.list_pushes(&q).await?;
    let mut out = paged(num, size, total);
    out.insert(field.into(), rows.iter().map(session).collect());
    answer(out)
}

pub(super) async fn published_list(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        domain_name: Option<String>,
        end_time: Option<String>,
        start_time: Option<String>,
        app_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        page_num: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        page_size: Option<i64>,
        stream_name: Option<String>,
    }
    let p: In = parse(p)?;
    let Some(domain) = nonempty(p.domain_name) else {
        return Err(TcError::missing("DomainName"));
    };
    let from = required_time("StartTime", &p.start_time)?;
    let to = required_time("EndTime", &p.end_time)?;
    window(from, to, PUSH_WINDOW_MS, "1 month")?;
    let (num, size, offset) = page(p.page_num, p.page_size, PUBLISHED_PAGE_SIZE, 10)?;
    let q = PushQuery {
        app: Some(domain),
        appname: nonempty(p.app_name),
        stream_id: nonempty(p.stream_name),
        stream_match: StreamMatch::Contains,
        from_ms: Some(from),
        to_ms: Some(to),
        ascending: false,
        offset,
        limit: size as u32,
    };
    listed(st, q, num, size, "PublishInfo").await
}

pub(super) async fn event_list(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        start_time: Option<String>,
        end_time: Option<String>,
        app_name: Option<String>,
        domain_name: Option<String>,
        stream_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        page_num: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        page_size: Option<i64>,
        /// Every session livetape keeps started successfully, so 0 and 1 list the same.
        #[serde(default, deserialize_with = "int")]
        is_filter: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        is_strict: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        is_asc: Option<i64>,
    }
    let p: In = parse(p)?;
    let from = required_time("StartTime", &p.start_time)?;
    let to = required_time("EndTime", &p.end_time)?;
    window(from, to, PUSH_WINDOW_MS, "1 month")?;
    let (num, size, offset) = page(p.page_num, p.page_size, EVENT_PAGE_SIZE, 10)?;
    for (f, v) in [
        ("IsFilter", p.is_filter),
        ("IsStrict", p.is_strict),
        ("IsAsc", p.is_asc),
    ] {
        if !matches!(v, None | Some(0 | 1)) {
            return Err(TcError::invalid_value(f, "0 or 1"));
        }
    }
    let q = PushQuery {
        app: nonempty(p.domain_name),
        appname: nonempty(p.app_name),
        stream_id: nonempty(p.stream_name),
        stream_match: if p.is_strict == Some(1) {
            StreamMatch::Exact
        } else {
            StreamMatch::Contains
        },
        from_ms: Some(from),
        to_ms: Some(to),
        ascending: p.is_asc == Some(1),
        offset,
        limit: size as u32,
    };
    listed(st, q, num, size, "EventList").await
}

pub(super) async fn callback_records(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct In {
        start_time: Option<String>,
        end_time: Option<String>,
        stream_name: Option<String>,
        #[serde(default, deserialize_with = "int")]
        page_num: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        page_size: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        event_type: Option<i64>,
        #[serde(default, deserialize_with = "int")]
        result_code: Option<i64>,
    }
    let p: In = parse(p)?;
    let (from, form) = time_either("StartTime", &p.start_time)?;
    let (to, _) = time_either("EndTime", &p.end_time)?;
    window(from, to, CALLBACK_WINDOW_MS, "1 day")?;
    let (num, size, offset) = page(p.page_num, p.page_size, CALLBACK_PAGE_SIZE, 10)?;
    let Some(stream) = nonempty(p.stream_name) else {
        return Err(TcError::missing("StreamName"));
    };
    let event_type = p
        .event_type
        .map(|t| {
            i32::try_from(t)
                .ok()
                .filter(|t| [0, 1, 100, 200].contains(t))
                .ok_or_else(|| TcError::invalid_value("EventType", "0, 1, 100 or 200"))
        })
        .transpose()?;
    let q = DeliveryQuery {
        stream_id: Some(stream),
        event_type,
        created_ms: Some((from, to)),
        attempted: true,
        delivered: p.result_code.map(|c| c == 0),
        offset,
        limit: size as u32,
        ..Default::default()
    };
    let (total, rows) = st.catalog.list_deliveries(&q).await?;
    let info: Vec<Value> = rows
        .iter()
        .map(|r| {
            let ok = r.delivered_at_ms.is_some();
            json!({
                "EventTime": form.format(r.created_at_ms),
                "EventType": r.event_type,
                "Request": r.body,
                // The receiver's body is not kept; a failure says what went wrong.
                "Response": if ok { String::new() } else { r.last_error.clone().unwrap_or_default() },
                "ResponseTime": r.delivered_at_ms.map(|t| form.format(t)).unwrap_or_default(),
                "ResultCode": if ok { 0 } else { 1 },
                "StreamId": r.stream_id,
            })
        })
        .collect();
    let mut out = paged(num, size, total);
    out.insert("DataInfoList".into(), info.into());
    answer(out)
}

#[cfg(test)]
mod tests {
    use super::super::params::TimeForm;

    #[test]
    fn callback_times_answer_in_the_form_asked() {
        assert_eq!(
            TimeForm::Iso.format(1_546_862_400_000),
            "2019-01-07T12:00:00Z"
        );
        assert_eq!(
            TimeForm::Beijing.format(1_546_862_400_000),
            "2019-01-07 20:00:00"
        );
    }
}
