//! A GET request's parameters: the SDKs flatten them into the query (`A.0=x`, `A.0.B=y`,
//! form-encoded) and every value is a string; integer fields read either form ([`int`]).

use super::TcError;
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
