//! A GET request's parameters: the SDKs flatten them into the query (`A.0=x`, `A.0.B=y`,
//! form-encoded) and every value is a string; integer fields read either form ([`int`]).

use super::TcError;
use livetape_tencent::{cst, iso};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Most query parameters one GET may carry.
pub const MAX_QUERY_PARAMS: usize = 256;
/// Deepest nesting of a flattened key (`A.0.B.1` is 4).
pub const MAX_KEY_DEPTH: usize = 6;

fn form_decode(s: &str) -> Option<String> {
    let s = s.replace('+', " ");
    percent_decode(&s)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `a.0.b=x&c=y` → `{"a":[{"b":"x"}],"c":"y"}`.
pub(super) fn from_query(query: &str) -> Result<Value, TcError> {
    let bad = |why: &str| TcError::new("InvalidParameter", format!("query: {why}"));
    let mut root = Value::Object(Map::new());
    for (n, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= MAX_QUERY_PARAMS {
            return Err(bad(&format!("more than {MAX_QUERY_PARAMS} parameters")));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            form_decode(k).ok_or_else(|| bad("malformed escape"))?,
            form_decode(v).ok_or_else(|| bad("malformed escape"))?,
        );
        let path: Vec<&str> = k.split('.').collect();
        if path.len() > MAX_KEY_DEPTH || path.iter().any(|p| p.is_empty()) {
            return Err(bad(&format!("bad parameter name `{k}`")));
        }
        let mut at = &mut root;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let next_is_index = path.get(i + 1).is_some_and(|s| s.parse::<usize>().is_ok());
            let fresh = || {
                if last {
                    Value::String(v.clone())
                } else if next_is_index {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            };
            at = match at {
                Value::Object(m) => m.entry(seg.to_string()).or_insert_with(fresh),
                Value::Array(a) => {
                    let idx: usize = seg
                        .parse()
                        .ok()
                        .filter(|i| *i <= a.len() && *i < MAX_QUERY_PARAMS)
                        .ok_or_else(|| bad(&format!("list index in `{k}` out of order")))?;
                    if idx == a.len() {
                        a.push(fresh());
                    }
                    &mut a[idx]
                }
                _ => return Err(bad(&format!("`{k}` is given twice"))),
            };
        }
    }
    Ok(root)
}

/// An optional integer sent as a JSON number (POST) or a string (GET).
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(i64),
        S(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::N(n)) => Ok(Some(n)),
        Some(Either::S(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
    }
}

/// An optional ISO 8601 time (`2019-01-07T12:00:00Z`, or with a `±HH:MM` zone) as epoch ms.
pub(crate) fn time(field: &str, v: &Option<String>) -> Result<Option<i64>, TcError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            iso::parse(s).map(|t| t * 1000).ok_or_else(|| {
                TcError::invalid_value(field, format!("`{s}` is not an ISO 8601 time"))
            })
        })
        .transpose()
}

/// A required time, as [`time`].
pub(crate) fn required_time(field: &str, v: &Option<String>) -> Result<i64, TcError> {
    time(field, v)?.ok_or_else(|| TcError::missing(field))
}

/// How a time was written, so an answer can use the form the query used (Tencent's
/// `DescribeCallbackRecordsList` reads both and answers in the one it was asked in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeForm {
    /// `2019-01-07T12:00:00Z`.
    Iso,
    /// `2019-01-07 20:00:00`, Beijing time.
    Beijing,
}

impl TimeForm {
    pub fn format(self, ms: i64) -> String {
        match self {
            Self::Iso => iso::format_utc(ms.div_euclid(1000)),
            Self::Beijing => cst::format_cst(ms.div_euclid(1000)),
        }
    }
}

/// A required time in either of Tencent's two forms: epoch ms and the form.
pub(crate) fn time_either(field: &str, v: &Option<String>) -> Result<(i64, TimeForm), TcError> {
    let s = v
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TcError::missing(field))?;
    if let Some(t) = iso::parse(s) {
        return Ok((t * 1000, TimeForm::Iso));
    }
    cst::parse_cst(s)
        .map(|t| (t * 1000, TimeForm::Beijing))
        .ok_or_else(|| {
            TcError::invalid_value(
                field,
                format!("`{s}` is neither YYYY-MM-DDThh:mm:ssZ nor YYYY-MM-DD hh:mm:ss"),
            )
        })
}

/// A window's `StartTime` ≤ `EndTime`, at most `max_ms` long.
pub(crate) fn window(start_ms: i64, end_ms: i64, max_ms: i64, max: &str) -> Result<(), TcError> {
    if end_ms < start_ms {
        return Err(TcError::invalid_value("EndTime", "is before StartTime"));
    }
    if end_ms - start_ms > max_ms {
        return Err(TcError::invalid_value(
            "EndTime",
            format!("StartTime and EndTime may be at most {max} apart"),
        ));
    }
    Ok(())
}

/// `PageNum` (from 1, default 1) and `PageSize` (within `sizes`, default `default`): the
/// page and the offset of its first row.
pub(crate) fn page(
    num: Option<i64>,
    size: Option<i64>,
    sizes: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<(i64, i64, u64), TcError> {
    let num = num.unwrap_or(1);
    if num < 1 {
        return Err(TcError::invalid_value("PageNum", format!("{num}: from 1")));
    }
    let size = size.unwrap_or(default);
    if !sizes.contains(&size) {
        return Err(TcError::invalid_value(
            "PageSize",
            format!("{size} is outside {}..={}", sizes.start(), sizes.end()),
        ));
    }
    let offset = u64::try_from((num - 1).saturating_mul(size)).unwrap_or(u64::MAX);
    Ok((num, size, offset))
}

/// The paging fields of a paged answer.
pub(crate) fn paged(num: i64, size: i64, total: u64) -> serde_json::Map<String, Value> {
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    let mut m = serde_json::Map::new();
    m.insert("PageNum".into(), num.into());
    m.insert("PageSize".into(), size.into());
    m.insert("TotalNum".into(), total.into());
    m.insert("TotalPage".into(), ((total + size - 1) / size).into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattened_queries_nest() {
        assert_eq!(
            from_query(
                "AppName=live&StreamName=s+1&StreamIds.0=a&StreamIds.1=b%2Fc&Sort.Field=CreateTime"
            )
            .unwrap(),
            json!({"AppName":"live","StreamName":"s 1","StreamIds":["a","b/c"],"Sort":{"Field":"CreateTime"}})
        );
        assert_eq!(
            from_query("Filters.0.Name=x&Filters.0.Values.0=1").unwrap(),
            json!({"Filters":[{"Name":"x","Values":["1"]}]})
        );
        assert_eq!(from_query("").unwrap(), json!({}));
        for bad in ["A.2=x", "A=1&A.0=2", "A..B=1", "A=%zz", "A.1.2.3.4.5.6=1"] {
            assert_eq!(
                from_query(bad).unwrap_err().code,
                "InvalidParameter",
                "{bad}"
            );
        }
        let many = (0..=MAX_QUERY_PARAMS)
            .map(|i| format!("K{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(from_query(&many).is_err());
    }

    #[test]
    fn ints_read_both_forms() {
        #[derive(Deserialize)]
        struct R {
            #[serde(default, deserialize_with = "int")]
            n: Option<i64>,
        }
        let r: R = serde_json::from_value(json!({"n": 5})).unwrap();
        assert_eq!(r.n, Some(5));
        let r: R = serde_json::from_value(json!({"n": "7"})).unwrap();
        assert_eq!(r.n, Some(7));
        let r: R = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r.n, None);
        assert!(serde_json::from_value::<R>(json!({"n": "x"})).is_err());
    }
}
