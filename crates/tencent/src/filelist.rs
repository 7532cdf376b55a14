//! `Live_Tape_GetFilelist` (legacy `common_access`, spec §2.2): request parsing/validation and
//! response bodies. Signature checking is separate ([`crate::verify_api_sign`]).
//!
//! `ret` codes used by this clone (Tencent documents only 0 = ok):
//! [`RET_OK`] 0, [`RET_BAD_SIGN`] 1 (bad or expired `t`/`sign`), [`RET_UNKNOWN_INTERFACE`] 2,
//! [`RET_BAD_PARAM`] 3, [`RET_INTERNAL`] 4.

use serde::Serialize;

use crate::cst::{cst_day, format_cst, parse_cst};

pub const RET_OK: i32 = 0;
pub const RET_BAD_SIGN: i32 = 1;
pub const RET_UNKNOWN_INTERFACE: i32 = 2;
pub const RET_BAD_PARAM: i32 = 3;
pub const RET_INTERNAL: i32 = 4;

pub const DEFAULT_PAGE_SIZE: u32 = 10;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Upper bound on `page_no`, so offsets stay small and sane.
pub const MAX_PAGE_NO: u32 = 1_000_000;
/// The queried window must be shorter than this (spec: "less than 24 h").
pub const MAX_RANGE_S: i64 = 24 * 3600;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// A validated `Live_Tape_GetFilelist` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilelistRequest {
    pub channel_id: String,
    /// ≥ 1.
    pub page_no: u32,
    /// 1..=100 (clamped: some clients send 200).
    pub page_size: u32,
    pub sort: SortOrder,
    /// Unix ms, from `Param.s.start_time` (CST).
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

impl FilelistRequest {
    pub fn sort_desc(&self) -> bool {
        self.sort == SortOrder::Desc
    }

    /// Rows to skip: `(page_no - 1) * page_size`.
    pub fn offset(&self) -> u64 {
        u64::from(self.page_no.saturating_sub(1)) * u64::from(self.page_size)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilelistError {
    #[error("missing Param.s.channel_id")]
    MissingChannelId,
    #[error("bad {name}: {value:?}")]
    BadParam { name: &'static str, value: String },
    #[error("bad {name} {value:?}: expected YYYY-MM-DD HH:MM:SS (China time)")]
    BadTime { name: &'static str, value: String },
    #[error("end_time must be after start_time")]
    EndNotAfterStart,
    #[error("end_time must be less than 24 hours after start_time")]
    RangeTooLong,
    #[error("start_time and end_time must be on the same day (China time)")]
    NotSameDay,
}

impl FilelistError {
    pub fn ret_code(&self) -> i32 {
        RET_BAD_PARAM
    }

    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse::new(self.ret_code(), self.to_string())
    }
}

/// Parse the business parameters (`Param.s.*` / `Param.n.*`; either prefix is accepted for
/// every name, first occurrence wins, empty values count as absent). Values must already be
/// URL-decoded, except that a `+` in a time is accepted as the space.
pub fn parse_filelist_params(
    params: &[(String, String)],
) -> Result<FilelistRequest, FilelistError> {
    let get = |name: &str| -> Option<&str> {
        params.iter().find_map(|(k, v)| {
            let bare = k
                .strip_prefix("Param.s.")
                .or_else(|| k.strip_prefix("Param.n."))?;
            (bare == name && !v.trim().is_empty()).then_some(v.trim())
        })
    };
    let channel_id = get("channel_id")
        .ok_or(FilelistError::MissingChannelId)?
        .to_owned();
    let int = |name: &'static str| -> Result<Option<i64>, FilelistError> {
        get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| FilelistError::BadParam {
                    name,
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let clamp = |v: i64, hi: u32| u32::try_from(v.clamp(1, i64::from(hi))).unwrap_or(1);
    let page_no = int("page_no")?.map_or(1, |v| clamp(v, MAX_PAGE_NO));
    let page_size = int("page_size")?.map_or(DEFAULT_PAGE_SIZE, |v| clamp(v, MAX_PAGE_SIZE));
    let sort = match get("sort_type") {
        None => SortOrder::Asc,
        Some(v) if v.eq_ignore_ascii_case("asc") => SortOrder::Asc,
        Some(v) if v.eq_ignore_ascii_case("desc") => SortOrder::Desc,
        Some(v) => {
            return Err(FilelistError::BadParam {
                name: "sort_type",
                value: v.to_owned(),
            });
        }
    };
    let time = |name: &'static str| -> Result<Option<i64>, FilelistError> {
        get(name)
            .map(|v| {
                parse_cst(v).ok_or_else(|| FilelistError::BadTime {
                    name,
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let start = time("start_time")?;
    let end = time("end_time")?;
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(FilelistError::EndNotAfterStart);
        }
        if e - s >= MAX_RANGE_S {
            return Err(FilelistError::RangeTooLong);
        }
        if cst_day(s) != cst_day(e) {
            return Err(FilelistError::NotSameDay);
        }
    }
    Ok(FilelistRequest {
        channel_id,
        page_no,
        page_size,
        sort,
        start_ms: start.map(|s| s * 1000),
        end_ms: end.map(|s| s * 1000),
    })
}

/// One recorded fragment in `output.file_list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Legacy VOD vid; may be empty.
    pub vid: String,
    /// `YYYY-MM-DD HH:MM:SS` CST.
    pub start_time: String,
    pub end_time: String,
    pub file_id: String,
    pub record_file_url: String,
}

impl FileEntry {
    /// Times in Unix seconds, formatted as CST.
    pub fn new(
        vid: impl Into<String>,
        start_unix_s: i64,
        end_unix_s: i64,
        file_id: impl Into<String>,
        record_file_url: impl Into<String>,
    ) -> Self {
        FileEntry {
            vid: vid.into(),
            start_time: format_cst(start_unix_s),
            end_time: format_cst(end_unix_s),
            file_id: file_id.into(),
            record_file_url: record_file_url.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilelistOutput {
    /// Total fragments matching (not just this page).
    pub all_count: u64,
    pub file_list: Vec<FileEntry>,
}

/// `{"ret":0,"message":"","output":{...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilelistResponse {
    pub ret: i32,
    pub message: String,
    pub output: FilelistOutput,
}

impl FilelistResponse {
    pub fn ok(all_count: u64, file_list: Vec<FileEntry>) -> Self {
        FilelistResponse {
            ret: RET_OK,
            message: String::new(),
            output: FilelistOutput {
                all_count,
                file_list,
            },
        }
    }
}

/// `{"ret": non-zero, "message": "..."}` for any `common_access` failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorResponse {
    pub ret: i32,
    pub message: String,
}

impl ErrorResponse {
    pub fn new(ret: i32, message: impl Into<String>) -> Self {
        ErrorResponse {
            ret,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let r = parse_filelist_params(&p(&[("Param.s.channel_id", "8888_test123")])).unwrap();
        assert_eq!(
            r,
            FilelistRequest {
                channel_id: "8888_test123".into(),
                page_no: 1,
                page_size: 10,
                sort: SortOrder::Asc,
                start_ms: None,
                end_ms: None,
            }
        );
        assert_eq!(r.offset(), 0);
        assert!(!r.sort_desc());
    }

    #[test]
    fn spec_example() {
        let r = parse_filelist_params(&p(&[
            ("appid", "1234"),
            ("interface", "Live_Tape_GetFilelist"),
            ("Param.s.channel_id", "8888_test123"),
            ("Param.n.page_no", "2"),
            ("Param.n.page_size", "20"),
            ("Param.s.sort_type", "DESC"),
            ("Param.s.start_time", "2016-12-10 00:00:00"),
            ("Param.s.end_time", "2016-12-10+01:00:00"),
        ]))
        .unwrap();
        assert_eq!((r.page_no, r.page_size, r.offset()), (2, 20, 20));
        assert!(r.sort_desc());
        assert_eq!(r.start_ms, Some(1_481_299_200_000));
        assert_eq!(r.end_ms, Some(1_481_302_800_000));
    }

    #[test]
    fn clamps_and_lenient_prefixes() {
        let r = parse_filelist_params(&p(&[
            ("Param.n.channel_id", "c"),
            ("Param.s.page_size", "200"),
            ("Param.n.page_no", "0"),
            ("Param.s.start_time", ""),
        ]))
        .unwrap();
        assert_eq!((r.page_no, r.page_size, r.start_ms), (1, 100, None));
        let r = parse_filelist_params(&p(&[
            ("Param.s.channel_id", "c"),
            ("Param.n.page_size", "-3"),
        ]))
        .unwrap();
        assert_eq!(r.page_size, 1);
    }

    #[test]
    fn validation_errors() {
        let base = ("Param.s.channel_id", "c");
        let err = |extra: &[(&str, &str)]| {
            let mut v = vec![base];
            v.extend_from_slice(extra);
            parse_filelist_params(&p(&v)).unwrap_err()
        };
        assert_eq!(
            parse_filelist_params(&p(&[("Param.s.channel_id", " ")])),
            Err(FilelistError::MissingChannelId)
        );
        assert!(matches!(
            err(&[("Param.n.page_no", "x")]),
            FilelistError::BadParam {
                name: "page_no",
                ..
            }
        ));
        assert!(matches!(
            err(&[("Param.s.sort_type", "up")]),
            FilelistError::BadParam {
                name: "sort_type",
                ..
            }
        ));
        assert!(matches!(
            err(&[("Param.s.start_time", "2016-12-10")]),
            FilelistError::BadTime {
                name: "start_time",
                ..
            }
        ));
        let range = |s: &'static str, e: &'static str| {
            err(&[("Param.s.start_time", s), ("Param.s.end_time", e)])
        };
        assert_eq!(
            range("2016-12-10 01:00:00", "2016-12-10 01:00:00"),
            FilelistError::EndNotAfterStart
        );
        assert_eq!(
            range("2016-12-10 01:00:00", "2016-12-10 00:00:00"),
            FilelistError::EndNotAfterStart
        );
        assert_eq!(
            range("2016-12-10 00:00:00", "2016-12-11 00:00:00"),
            FilelistError::RangeTooLong
        );
        assert_eq!(
            range("2016-12-10 23:00:00", "2016-12-11 01:00:00"),
            FilelistError::NotSameDay
        );
        let e = range("2016-12-10 23:00:00", "2016-12-11 01:00:00").to_response();
        assert_eq!(e.ret, RET_BAD_PARAM);
        assert!(e.message.contains("same day"));
        // Only one bound is fine.
        let ok = parse_filelist_params(&p(&[base, ("Param.s.end_time", "2016-12-10 01:00:00")]))
            .unwrap();
        assert_eq!((ok.start_ms, ok.end_ms), (None, Some(1_481_302_800_000)));
    }

    #[test]
    fn response_json_shape() {
        let resp = FilelistResponse::ok(
            3,
            vec![FileEntry::new(
                "",
                1_471_850_187,
                1_471_850_247,
                "f1",
                "http://h/f1.mp4",
            )],
        );
        let v: serde_json::Value = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ret":0,"message":"","output":{"all_count":3,"file_list":[
                {"vid":"","start_time":"2016-08-22 15:16:27","end_time":"2016-08-22 15:17:27",
                 "file_id":"f1","record_file_url":"http://h/f1.mp4"}]}})
        );
        let s = serde_json::to_string(&ErrorResponse::new(RET_BAD_SIGN, "bad sign")).unwrap();
        assert_eq!(s, r#"{"ret":1,"message":"bad sign"}"#);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(pairs in proptest::collection::vec(("Param\\.[sn]\\.[a-z_]{0,12}", ".{0,24}"), 0..8)) {
            let _ = parse_filelist_params(&pairs);
        }
    }
}
