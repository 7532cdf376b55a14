//! The VOD face of the recordings catalogue (`SearchMedia`, `DescribeMediaInfos`,
//! `DeleteMedia`): every recording is a VOD media item whose `FileId` is its `file_id`.
//!
//! Mapping (README, "Moving from Tencent Cloud"): `BasicInfo.Name` is the file's name
//! without extension, `CreateTime` the recording's start (what the catalogue is indexed
//! by), `MediaUrl` its `video_url`, `SourceInfo` the stream (`SourceType` `Record`);
//! `MetaData` size, duration, average bitrate, width/height and the video codec. Fields
//! livetape has no value for get Tencent's empty value.

use super::params::{int, time};
use super::{Answer, TcError, answer, parse};
use crate::state::AppState;
use livetape_catalog::{Recording, RecordingQuery, SortOrder};
use livetape_tencent::iso;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Tencent's bound on `Offset + Limit` of `SearchMedia`.
pub const MAX_SEARCH_WINDOW: i64 = 5000;
/// Tencent's default `Limit`.
pub const DEFAULT_SEARCH_LIMIT: i64 = 10;
/// Most entries of a list filter (`StreamIds`, `FileIds`, …), as at Tencent.
pub const MAX_FILTER_ITEMS: usize = 10;
/// Most `FileIds` of one `DescribeMediaInfos`.
pub const MAX_DESCRIBE_IDS: usize = 20;

/// The parts of a media item `Filters` may ask for.
const PARTS: [&str; 2] = ["basicInfo", "metaData"];

fn media_type(format: &str) -> &str {
    match format {
        "hls" => "m3u8",
        "aac" => "m4a",
        f => f,
    }
}

fn file_name(r: &Recording) -> String {
    let base = r.path.rsplit('/').next().unwrap_or(&r.path);
    base.rsplit_once('.')
        .map_or(base, |(stem, _)| stem)
        .to_owned()
}

/// A recording as Tencent's `MediaInfo`, with only the `parts` asked for.
fn media_info(r: &Recording, parts: &[&str]) -> Value {
    let secs = |ms: i64| iso::format_utc(ms.div_euclid(1000));
    let duration = r.duration_ms as f64 / 1000.0;
    let bitrate = if r.duration_ms > 0 {
        (r.size_bytes as f64 * 8.0 * 1000.0 / r.duration_ms as f64) as i64
    } else {
        0
    };
    let audio_only = r.format == "aac" || r.video_codec.is_empty();
    let mut m = Map::new();
    m.insert("FileId".into(), json!(r.file_id));
    if parts.contains(&"basicInfo") {
        m.insert(
            "BasicInfo".into(),
            json!({
                "Name": file_name(r),
                "Description": "",
                "CreateTime": secs(r.start_ms),
                "UpdateTime": secs(r.created_at_ms),
                "ExpireTime": r.expires_at_ms.map_or_else(|| iso::NEVER.to_owned(), secs),
                "ClassId": 0,
                "ClassName": "",
                "ClassPath": "",
                "CoverUrl": "",
                "Type": media_type(&r.format),
                "MediaUrl": r.video_url,
                "SourceInfo": {
                    "SourceType": "Record",
                    "SourceContext": r.sequence,
                    "LiveRecordInfo": {
                        "Domain": r.app,
                        "Path": r.appname,
                        "StreamId": r.stream_id,
                        "RecordStartTime": secs(r.start_ms),
                        "RecordEndTime": secs(r.end_ms),
                    },
                },
                "StorageRegion": "",
                "StoragePath": r.path,
                "TagSet": [],
                "Vid": r.file_id,
                "Category": if audio_only { "Audio" } else { "Video" },
                "Status": "Normal",
                "StorageClass": "STANDARD",
            }),
        );
    }
    if parts.contains(&"metaData") {
        let video: Vec<Value> = if audio_only {
            Vec::new()
        } else {
            vec![json!({
                "Bitrate": 0,
                "Height": r.height,
                "Width": r.width,
                "Codec": r.video_codec,
                "Fps": 0,
                "CodecTag": "",
            })]
        };
        m.insert(
            "MetaData".into(),
            json!({
                "Size": r.size_bytes,
                "Container": media_type(&r.format),
                "Bitrate": bitrate,
                "Height": r.height,
                "Width": r.width,
                "Duration": duration,
                "Rotate": 0,
                "VideoStreamSet": video,
                "AudioStreamSet": [],
                "VideoDuration": if audio_only { 0.0 } else { duration },
                "AudioDuration": duration,
                "Md5": "",
            }),
        );
    }
    Value::Object(m)
}

fn parts_of(filters: &Option<Vec<String>>) -> Result<Vec<&'static str>, TcError> {
    match filters {
        None => Ok(PARTS.to_vec()),
        Some(f) if f.is_empty() => Ok(PARTS.to_vec()),
        Some(f) => f
            .iter()
            .map(|x| {
                PARTS.iter().copied().find(|p| p == x).ok_or_else(|| {
                    TcError::invalid_value(
                        "Filters",
                        format!("`{x}`: livetape has {PARTS:?} for recordings"),
                    )
                })
            })
            .collect(),
    }
}

fn bounded<'a>(field: &str, v: &'a Option<Vec<String>>) -> Result<&'a [String], TcError> {
    let v = v.as_deref().unwrap_or(&[]);
    if v.len() > MAX_FILTER_ITEMS {
        return Err(TcError::invalid_value(
            field,
            format!("at most {MAX_FILTER_ITEMS} entries"),
        ));
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct TimeRange {
    after: Option<String>,
    before: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SortBy {
    field: Option<String>,
    order: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(dead_code)] // Filters of media kinds livetape never holds (see `unsupported`).
struct SearchIn {
    #[serde(default, deserialize_with = "int")]
    sub_app_id: Option<i64>,
    file_ids: Option<Vec<String>>,
    names: Option<Vec<String>>,
    name_prefixes: Option<Vec<String>>,
    descriptions: Option<Vec<String>>,
    class_ids: Option<Vec<Value>>,
    tags: Option<Vec<String>>,
    categories: Option<Vec<String>>,
    source_types: Option<Vec<String>>,
    stream_ids: Option<Vec<String>>,
    create_time: Option<TimeRange>,
    expire_time: Option<Value>,
    storage_regions: Option<Vec<String>>,
    storage_classes: Option<Vec<String>>,
    media_types: Option<Vec<String>>,
    status: Option<Vec<String>>,
    review_results: Option<Vec<String>>,
    trtc_sdk_app_ids: Option<Vec<Value>>,
    trtc_room_ids: Option<Vec<String>>,
    filters: Option<Vec<String>>,
    sort: Option<SortBy>,
    #[serde(default, deserialize_with = "int")]
    offset: Option<i64>,
    #[serde(default, deserialize_with = "int")]
    limit: Option<i64>,
    text: Option<String>,
    source_type: Option<String>,
    stream_id: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    vids: Option<Vec<String>>,
    vid: Option<String>,
    stream_domains: Option<Vec<String>>,
    stream_paths: Option<Vec<String>>,
    knowledge_bases: Option<Vec<String>>,
}

pub(super) async fn search(st: &Arc<AppState>, p: Value) -> Answer {
    let p: SearchIn = parse(p)?;
    let parts = parts_of(&p.filters)?;
    // Filters livetape cannot evaluate are refused, never ignored: ignoring one would
    // answer more than was asked.
    let listed = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    for (field, given) in [
        ("Names", listed(&p.names)),
        ("NamePrefixes", listed(&p.name_prefixes)),
        ("Descriptions", listed(&p.descriptions)),
        ("Tags", listed(&p.tags)),
        ("Text", p.text.as_ref().is_some_and(|v| !v.is_empty())),
        ("ExpireTime", p.expire_time.is_some()),
    ] {
        if given {
            return Err(TcError::invalid_value(
                field,
                "livetape does not search recordings by this filter yet",
            ));
        }
    }
    let mut stream_ids = bounded("StreamIds", &p.stream_ids)?.to_vec();
    stream_ids.extend(p.stream_id.iter().filter(|s| !s.is_empty()).cloned());
    let domains = bounded("StreamDomains", &p.stream_domains)?;
    let paths = bounded("StreamPaths", &p.stream_paths)?;
    if domains.len() > 1 || paths.len() > 1 {
        return Err(TcError::invalid_value(
            if domains.len() > 1 {
                "StreamDomains"
            } else {
                "StreamPaths"
            },
            "livetape searches one domain and one path at a time",
        ));
    }
    // Every livetape media item is a recording, of the Video or Audio category.
    let kinds = bounded("SourceTypes", &p.source_types)?;
    let source_type: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .chain(p.source_type.as_deref().filter(|s| !s.is_empty()))
        .collect();
    let none = !source_type.is_empty() && !source_type.contains(&"Record");
    let categories = bounded("Categories", &p.categories)?;
    let format = match (
        categories.iter().any(|c| c == "Video"),
        categories.iter().any(|c| c == "Audio"),
    ) {
        _ if categories.is_empty() => None,
        (true, true) => None,
        (false, true) => Some("aac".to_owned()),
        (true, false) => {
            return Err(TcError::invalid_value(
                "Categories",
                "livetape searches Video and Audio together, or Audio alone",
            ));
        }
        (false, false) => return answer(json!({ "TotalCount": 0, "MediaInfoSet": [] })),
    };
    let order = match p.sort.as_ref() {
        None => SortOrder::Desc,
        Some(s) => {
            if s.field.as_deref().is_some_and(|f| f != "CreateTime") {
                return Err(TcError::invalid_value(
                    "Sort.Field",
                    "livetape sorts by CreateTime",
                ));
            }
            match s.order.as_deref() {
                None | Some("Desc") => SortOrder::Desc,
                Some("Asc") => SortOrder::Asc,
                Some(o) => {
                    return Err(TcError::invalid_value(
                        "Sort.Order",
                        format!("`{o}`: Asc or Desc"),
                    ));
                }
            }
        }
    };
    let offset = p.offset.unwrap_or(0);
    let limit = p.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if offset < 0 || !(1..=MAX_SEARCH_WINDOW).contains(&limit) || offset + limit > MAX_SEARCH_WINDOW
    {
        return Err(TcError::invalid_value(
            "Offset/Limit",
            format!(
                "Offset ≥ 0, Limit 1..={MAX_SEARCH_WINDOW} and Offset + Limit ≤ {MAX_SEARCH_WINDOW}"
            ),
        ));
    }
    let (from, to) = match &p.create_time {
        Some(r) => (
            time("CreateTime.After", &r.after)?,
            time("CreateTime.Before", &r.before)?,
        ),
        None => (
            time("StartTime", &p.start_time)?,
            time("EndTime", &p.end_time)?,
        ),
    };
    let mut file_ids: Vec<String> = bounded("FileIds", &p.file_ids)?.to_vec();
    file_ids.extend(bounded("Vids", &p.vids)?.iter().cloned());
    file_ids.extend(p.vid.iter().filter(|s| !s.is_empty()).cloned());
    if none {
        return answer(json!({ "TotalCount": 0, "MediaInfoSet": [] }));
    }
    let q = RecordingQuery {
        app: domains.first().cloned(),
        appname: paths.first().cloned(),
        stream_id: None,
        stream_ids,
        format,
        from_ms: from,
        to_ms: to,
        order,
        offset: offset as u64,
        limit: limit as u32,
    };
    if !file_ids.is_empty() {
        // By id: each row checked against the other filters here (at most 10 + 10).
        let mut rows = Vec::new();
        for id in &file_ids {
            if let Some(r) = st.catalog.get_recording(id).await? {
                rows.push(r);
            }
        }
        rows.retain(|r| {
            q.app.as_ref().is_none_or(|a| *a == r.app)
                && q.appname.as_ref().is_none_or(|a| *a == r.appname)
                && (q.stream_ids.is_empty() || q.stream_ids.contains(&r.stream_id))
                && q.format.as_ref().is_none_or(|f| *f == r.format)
                && q.from_ms.is_none_or(|t| r.start_ms >= t)
                && q.to_ms.is_none_or(|t| r.start_ms < t)
        });
        rows.sort_by(|a, b| (a.start_ms, &a.file_id).cmp(&(b.start_ms, &b.file_id)));
        if order == SortOrder::Desc {
            rows.reverse();
        }
        let total = rows.len();
        let page: Vec<Value> = rows
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|r| media_info(r, &parts))
            .collect();
        return answer(json!({ "TotalCount": total, "MediaInfoSet": page }));
    }
    let (total, rows) = st.catalog.list_recordings(&q).await?;
    let page: Vec<Value> = rows.iter().map(|r| media_info(r, &parts)).collect();
    answer(json!({ "TotalCount": total, "MediaInfoSet": page }))
}

pub(super) async fn describe(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        file_ids: Option<Vec<String>>,
        #[serde(default, deserialize_with = "int")]
        sub_app_id: Option<i64>,
        filters: Option<Vec<String>>,
    }
    let p: In = parse(p)?;
    let ids = p.file_ids.unwrap_or_default();
    if ids.is_empty() {
        return Err(TcError::missing("FileIds"));
    }
    if ids.len() > MAX_DESCRIBE_IDS {
        return Err(TcError::invalid_value(
            "FileIds",
            format!("at most {MAX_DESCRIBE_IDS} per call"),
        ));
    }
    let parts = parts_of(&p.filters)?;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in &ids {
        match st.catalog.get_recording(id).await? {
            Some(r) => found.push(media_info(&r, &parts)),
            None => missing.push(id.clone()),
        }
    }
    answer(json!({ "MediaInfoSet": found, "NotExistFileIdSet": missing }))
}

pub(super) async fn delete(st: &Arc<AppState>, p: Value) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        file_id: Option<String>,
        #[serde(default, deserialize_with = "int")]
        sub_app_id: Option<i64>,
        delete_parts: Option<Vec<Value>>,
    }
    let p: In = parse(p)?;
    let id = p
        .file_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TcError::missing("FileId"))?;
    if p.delete_parts.as_ref().is_some_and(|d| !d.is_empty()) {
        // A recording has no transcodes or snapshots: a part delete would delete nothing.
        return Err(TcError::invalid_value(
            "DeleteParts",
            "a livetape recording has only its original file: omit DeleteParts to delete it",
        ));
    }
    // The two-phase delete (row and file together), as /v1 and retention.
    st.deletes
        .delete(&id, crate::archive::Reason::Api)
        .await
        .map_err(crate::http::ApiError::from)?
        .ok_or_else(|| {
            TcError::new(
                "ResourceNotFound.FileNotExist",
                format!("FileId {id} does not exist"),
            )
        })?;
    answer(json!({}))
}

/// `ModifyMediaInfo`: a recording's `ExpireTime` (ISO 8601; `9999-12-31T23:59:59Z` = kept
/// forever), which retention honours at its next check. A recording has no name, description,
/// class, cover, tags, key-frame notes or subtitles of its own in livetape: changing any of
/// them is refused (naming the field), never silently dropped.
pub(super) async fn modify(st: &Arc<AppState>, p: Value) -> Answer {
    let p: serde_json::Map<String, Value> = parse(p)?;
    let id = match p.get("FileId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) if !v.is_null() => return Err(TcError::invalid_value("FileId", "a string")),
        _ => return Err(TcError::missing("FileId")),
    };
    // Only an empty list, 0 or null leaves a field unchanged.
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    };
    for (field, v) in &p {
        match field.as_str() {
            "FileId" | "SubAppId" | "ExpireTime" => {}
            _ if empty(v) => {}
            f => {
                return Err(TcError::invalid_value(
                    f,
                    "livetape keeps no such field for a recording: only ExpireTime can change",
                ));
            }
        }
    }
    let not_found = || {
        TcError::new(
            "ResourceNotFound.FileNotExist",
            format!("FileId {id} does not exist"),
        )
    };
    let Some(expire) = p.get("ExpireTime").filter(|v| !v.is_null()) else {
        // Nothing to change: still an error for a file that does not exist.
        st.catalog.get_recording(&id).await?.ok_or_else(not_found)?;
        return answer(json!({ "CoverUrl": "", "AddedSubtitleSet": [] }));
    };
    let expires_at_ms = match expire.as_str() {
        Some(iso::NEVER) => None,
        Some(s) => Some(
            iso::parse(s)
                .ok_or_else(|| {
                    TcError::invalid_value("ExpireTime", "ISO 8601, e.g. 2026-12-31T00:00:00Z")
                })?
                .saturating_mul(1000),
        ),
        None => return Err(TcError::invalid_value("ExpireTime", "a string")),
    };
    if !st.catalog.set_recording_expiry(&id, expires_at_ms).await? {
        return Err(not_found());
    }
    tracing::info!(file_id = id, ?expires_at_ms, "ModifyMediaInfo: expiry set");
    answer(json!({ "CoverUrl": "", "AddedSubtitleSet": [] }))
}
