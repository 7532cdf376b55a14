//! MD5 signatures (all lowercase hex over plain string concatenation) and their verifiers.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// `t` values above this are taken as milliseconds (10^11 s is the year 5138, while 10^11 ms is
/// 1973), because some legacy clients send `t` in ms. Design choice, spec §2.1.
pub const API_T_MS_THRESHOLD: i64 = 100_000_000_000;

/// Longest accepted `txTime` (hex digits); 16 hex digits already exceed i64.
const MAX_TX_TIME_HEX: usize = 15;

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Callback body signature: `md5(key + t)`, `t` = expiry in Unix seconds (spec §1.3).
pub fn callback_sign(key: &str, t: i64) -> String {
    md5_hex(&[key, &t.to_string()])
}

/// Legacy `common_access` API signature: `md5(key + t)` (spec §2.1). `t` is used as sent.
pub fn api_sign(key: &str, t: i64) -> String {
    callback_sign(key, t)
}

/// Push/play anti-leech secret: `md5(key + stream_name + txTime)`, with `tx_time` exactly as
/// it appears in the URL (its case matters for the hash). Spec §4.1/§4.2.
pub fn push_secret(key: &str, stream_name: &str, tx_time: &str) -> String {
    md5_hex(&[key, stream_name, tx_time])
}

/// Push authentication config for one domain (`PushAuthKeyInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushAuth {
    pub key: String,
    /// Accepted as well as `key`, so keys can be rotated.
    pub backup_key: Option<String>,
    /// Extra validity after `txTime`, seconds (`AuthDelta`, default 0).
    pub auth_delta_s: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushAuthError {
    #[error("push auth: missing {0} in stream params")]
    Missing(&'static str),
    #[error("push auth: txTime {0:?} is not a hex Unix time")]
    BadTxTime(String),
    #[error("push auth: URL expired at {expiry} (txTime + AuthDelta), now {now}")]
    Expired { expiry: i64, now: i64 },
    #[error("push auth: txSecret does not match stream {stream:?}")]
    BadSignature { stream: String },
}

/// Verify a push (or play) URL's `txSecret`/`txTime` (spec §4.1).
///
/// `stream_param_query` is the raw query string (a leading `?` is allowed). The signature is
/// checked before expiry so that `Expired` is only reported for genuinely signed URLs.
pub fn verify_push(
    auth: &PushAuth,
    stream_name: &str,
    stream_param_query: &str,
    now_unix: i64,
) -> Result<(), PushAuthError> {
    let query = stream_param_query
        .strip_prefix('?')
        .unwrap_or(stream_param_query);
    let secret = query_param(query, "txSecret").ok_or(PushAuthError::Missing("txSecret"))?;
    let tx_time = query_param(query, "txTime").ok_or(PushAuthError::Missing("txTime"))?;
    let expiry =
        parse_hex_time(&tx_time).ok_or_else(|| PushAuthError::BadTxTime(tx_time.clone()))?;

    let given = secret.to_ascii_lowercase();
    let main = push_secret(&auth.key, stream_name, &tx_time);
    // Evaluate both keys unconditionally so timing does not reveal which one matched.
    let mut ok = ct_eq(&main, &given);
    if let Some(backup) = &auth.backup_key {
        ok |= ct_eq(&push_secret(backup, stream_name, &tx_time), &given);
    }
    if !ok {
        return Err(PushAuthError::BadSignature {
            stream: stream_name.to_owned(),
        });
    }
    let deadline = expiry.saturating_add(auth.auth_delta_s);
    if now_unix > deadline {
        return Err(PushAuthError::Expired {
            expiry: deadline,
            now: now_unix,
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthError {
    #[error("api auth: missing or non-numeric t {0:?}")]
    BadT(String),
    #[error("api auth: sign expired (t {t}, now {now})")]
    Expired { t: i64, now: i64 },
    #[error("api auth: bad sign")]
    BadSignature,
}

/// Verify a legacy `common_access` request: `sign == md5(key + t)` where `t` is hashed exactly as
/// sent, and `t` (expiry, seconds; values > [`API_T_MS_THRESHOLD`] are read as ms) is not past.
pub fn verify_api_sign(
    key: &str,
    t_param: &str,
    sign_param: &str,
    now_unix: i64,
) -> Result<(), ApiAuthError> {
    let t_str = t_param.trim();
    let t: i64 = t_str
        .parse()
        .map_err(|_| ApiAuthError::BadT(t_param.to_owned()))?;
    let expected = md5_hex(&[key, t_str]);
    if !ct_eq(&expected, &sign_param.trim().to_ascii_lowercase()) {
        return Err(ApiAuthError::BadSignature);
    }
    let t_s = if t > API_T_MS_THRESHOLD { t / 1000 } else { t };
    if now_unix > t_s {
        return Err(ApiAuthError::Expired {
            t: t_s,
            now: now_unix,
        });
    }
    Ok(())
}

fn ct_eq(a: &str, b: &str) -> bool {
    // Length is not secret (always 32 for a real MD5); ct_eq returns false on mismatch.
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn parse_hex_time(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > MAX_TX_TIME_HEX || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(s, 16).ok()
}

/// First value of `name` in an `a=b&c=d` query, percent-decoded (`+` is left as is: none of
/// the auth values can contain a space).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

/// Percent-decode; `None` on malformed escapes or non-UTF-8 output.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PUSH_KEY: &str = "e12c46f2612d5106e2034781ab261ca3";
    const TX: i64 = 0x5C27_1099;

    fn auth() -> PushAuth {
        PushAuth {
            key: PUSH_KEY.into(),
            backup_key: None,
            auth_delta_s: 0,
        }
    }

    #[test]
    fn spec_vectors() {
        assert_eq!(
            api_sign("40328529ca4381a80c6ecf2e6aa57438", 1_490_858_347),
            "7f29ed83c61b77de1b0d66936fd4fd44"
        );
        assert_eq!(
            callback_sign("40328529ca4381a80c6ecf2e6aa57438", 1_490_858_347),
            "7f29ed83c61b77de1b0d66936fd4fd44"
        );
        assert_eq!(
            push_secret(PUSH_KEY, "test", "5C271099"),
            "f85a2ab363fe4deaffef9754d79da6fe"
        );
        // Play-auth vectors (§4.2): same formula, lowercase txTime.
        assert_eq!(
            push_secret("somestring", "test", "5c2acacc"),
            "b77e812107e1d8b8f247885a46e1bd34"
        );
        assert_eq!(
            push_secret("somestring", "test_900", "5c2acacc"),
            "4beae959b16c77da6a65c7edda1dfefe"
        );
        // Empty key is a valid (if weak) configuration: md5("" + t).
        assert_eq!(callback_sign("", 1), "c4ca4238a0b923820dcc509a6f75849b");
    }

    #[test]
    fn push_accepts_valid_url_until_expiry() {
        let q = "txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099&record=mp4";
        assert_eq!(verify_push(&auth(), "test", q, TX), Ok(()));
        assert_eq!(
            verify_push(&auth(), "test", &format!("?{q}"), TX - 1000),
            Ok(())
        );
        // Uppercase secret and percent-encoded value are fine.
        let q2 = "txTime=5C271099&txSecret=F85A2AB363FE4DEAFFEF9754D79DA6FE";
        assert_eq!(verify_push(&auth(), "test", q2, TX), Ok(()));
        let q3 = "txSecret=f85a2ab363fe4deaffef9754d79da6f%65&txTime=5C271099";
        assert_eq!(verify_push(&auth(), "test", q3, TX), Ok(()));
    }

    #[test]
    fn push_expiry_and_delta() {
        let q = "txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099";
        assert_eq!(
            verify_push(&auth(), "test", q, TX + 1),
            Err(PushAuthError::Expired {
                expiry: TX,
                now: TX + 1
            })
        );
        let a = PushAuth {
            auth_delta_s: 300,
            ..auth()
        };
        assert_eq!(verify_push(&a, "test", q, TX + 300), Ok(()));
        assert!(matches!(
            verify_push(&a, "test", q, TX + 301),
            Err(PushAuthError::Expired { .. })
        ));
    }

    #[test]
    fn push_lowercase_tx_time_hashes_differently() {
        // Same instant, different case → different secret; the lower-case one must be signed
        // over the lower-case string.
        let lower = push_secret(PUSH_KEY, "test", "5c271099");
        assert_ne!(lower, "f85a2ab363fe4deaffef9754d79da6fe");
        let q = format!("txSecret={lower}&txTime=5c271099");
        assert_eq!(verify_push(&auth(), "test", &q, TX), Ok(()));
        let wrong = "txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5c271099";
        assert!(matches!(
            verify_push(&auth(), "test", wrong, TX),
            Err(PushAuthError::BadSignature { .. })
        ));
    }

    #[test]
    fn push_backup_key_and_errors() {
        let backup = PushAuth {
            key: "newkey".into(),
            backup_key: Some(PUSH_KEY.into()),
            auth_delta_s: 0,
        };
        let q = "txSecret=f85a2ab363fe4deaffef9754d79da6fe&txTime=5C271099";
        assert_eq!(verify_push(&backup, "test", q, TX), Ok(()));
        let no_backup = PushAuth {
            backup_key: None,
            ..backup
        };
        assert!(matches!(
            verify_push(&no_backup, "test", q, TX),
            Err(PushAuthError::BadSignature { .. })
        ));
        // Wrong stream name.
        assert!(matches!(
            verify_push(&auth(), "test2", q, TX),
            Err(PushAuthError::BadSignature { .. })
        ));
        assert_eq!(
            verify_push(&auth(), "test", "txTime=5C271099", TX),
            Err(PushAuthError::Missing("txSecret"))
        );
        assert_eq!(
            verify_push(&auth(), "test", "txSecret=ab", TX),
            Err(PushAuthError::Missing("txTime"))
        );
        for bad in ["", "zz", "-5", "+5", "1234567890123456"] {
            let q = format!("txSecret=ab&txTime={bad}");
            assert_eq!(
                verify_push(&auth(), "test", &q, TX),
                Err(PushAuthError::BadTxTime(bad.into())),
                "{bad}"
            );
        }
        let msg = PushAuthError::Expired { expiry: 1, now: 2 }.to_string();
        assert!(msg.contains("expired"), "{msg}");
    }

    #[test]
    fn api_sign_verification() {
        let key = "40328529ca4381a80c6ecf2e6aa57438";
        let sign = "7f29ed83c61b77de1b0d66936fd4fd44";
        assert_eq!(
            verify_api_sign(key, "1490858347", sign, 1_490_858_347),
            Ok(())
        );
        assert_eq!(
            verify_api_sign(key, "1490858347", &sign.to_uppercase(), 1_490_858_000),
            Ok(())
        );
        assert_eq!(
            verify_api_sign(key, "1490858347", sign, 1_490_858_348),
            Err(ApiAuthError::Expired {
                t: 1_490_858_347,
                now: 1_490_858_348
            })
        );
        assert_eq!(
            verify_api_sign(key, "1490858346", sign, 0),
            Err(ApiAuthError::BadSignature)
        );
        assert_eq!(
            verify_api_sign(key, "abc", sign, 0),
            Err(ApiAuthError::BadT("abc".into()))
        );
        assert_eq!(
            verify_api_sign(key, "", sign, 0),
            Err(ApiAuthError::BadT(String::new()))
        );
    }

    #[test]
    fn api_sign_accepts_milliseconds() {
        let key = "k";
        let t_ms = 1_490_858_347_123_i64;
        let sign = api_sign(key, t_ms);
        assert_eq!(
            verify_api_sign(key, &t_ms.to_string(), &sign, 1_490_858_347),
            Ok(())
        );
        assert_eq!(
            verify_api_sign(key, &t_ms.to_string(), &sign, 1_490_858_348),
            Err(ApiAuthError::Expired {
                t: 1_490_858_347,
                now: 1_490_858_348
            })
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None); // not UTF-8
        assert_eq!(query_param("a=1&b=2&a=3", "a").as_deref(), Some("1"));
        assert_eq!(query_param("a&b=2", "a").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "a"), None);
    }

    proptest! {
        #[test]
        fn verify_push_never_panics(q in ".{0,200}", stream in ".{0,20}", now in any::<i64>()) {
            let a = PushAuth { key: "k".into(), backup_key: Some("b".into()), auth_delta_s: i64::MAX };
            let _ = verify_push(&a, &stream, &q, now);
        }

        #[test]
        fn verify_api_never_panics(t in ".{0,30}", s in ".{0,40}", now in any::<i64>()) {
            prop_assert!(verify_api_sign("k", &t, &s, now).is_err() || t.trim().parse::<i64>().is_ok());
        }

        #[test]
        fn push_roundtrip(stream in "[a-zA-Z0-9_]{1,30}", t in 0i64..0xFFFF_FFFF, upper in any::<bool>()) {
            let tx = if upper { format!("{t:X}") } else { format!("{t:x}") };
            let q = format!("txSecret={}&txTime={tx}", push_secret("key", &stream, &tx));
            let a = PushAuth { key: "key".into(), backup_key: None, auth_delta_s: 0 };
            prop_assert_eq!(verify_push(&a, &stream, &q, t), Ok(()));
        }
    }
}
