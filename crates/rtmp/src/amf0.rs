//! AMF0 (Action Message Format 0), the encoding of RTMP commands and FLV script data.
//!
//! Only the types RTMP encoders actually send are supported; references, typed objects, XML and the
//! AMF3 switch are rejected. Long strings decode into [`Amf0Value::String`] and strings longer than
//! 65535 bytes are encoded as long strings, so decode ∘ encode is the identity.

use crate::wire::Reader;
use crate::{MAX_AMF0_DEPTH, RtmpError};
use bytes::BufMut;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// Anonymous object; properties keep wire order.
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch; the time zone field is reserved and should be 0.
    Date {
        millis: f64,
        timezone: i16,
    },
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Property lookup on objects and ECMA arrays.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Self::Object(props) | Self::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Appends the encoding. Object keys longer than 65535 bytes cannot be represented and are
    /// truncated at a character boundary.
    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Self::Number(n) => {
                out.put_u8(NUMBER);
                out.put_f64(*n);
            }
            Self::Boolean(b) => {
                out.put_u8(BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Self::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.put_u8(STRING);
                    out.put_u16(len);
                    out.put_slice(s.as_bytes());
                }
                Err(_) => {
                    out.put_u8(LONG_STRING);
                    // Strings over 4 GiB cannot exist in a message anyway.
                    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                    out.put_slice(s.as_bytes());
                }
            },
            Self::Object(props) => {
                out.put_u8(OBJECT);
                encode_props(props, out);
            }
            Self::Null => out.put_u8(NULL),
            Self::Undefined => out.put_u8(UNDEFINED),
            Self::EcmaArray(props) => {
                out.put_u8(ECMA_ARRAY);
                out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
                encode_props(props, out);
            }
            Self::StrictArray(items) => {
                out.put_u8(STRICT_ARRAY);
                out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for v in items {
                    v.encode(out);
                }
            }
            Self::Date { millis, timezone } => {
                out.put_u8(DATE);
                out.put_f64(*millis);
                out.put_i16(*timezone);
            }
        }
    }
}

fn encode_props(props: &[(String, Amf0Value)], out: &mut impl BufMut) {
    for (k, v) in props {
        let mut end = k.len().min(usize::from(u16::MAX));
        while !k.is_char_boundary(end) {
            end -= 1;
        }
        let key = k.get(..end).unwrap_or_default();
        out.put_u16(u16::try_from(key.len()).unwrap_or(u16::MAX));
        out.put_slice(key.as_bytes());
        v.encode(out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

/// Decodes one value from the start of `buf`; returns it with the number of bytes consumed.
pub fn decode(buf: &[u8]) -> Result<(Amf0Value, usize), RtmpError> {
    let mut r = Reader::new(buf);
    let v = decode_value(&mut r, 0)?;
    Ok((v, r.pos))
}

/// Decodes values until `buf` is exhausted (a command message body).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
    let mut r = Reader::new(buf);
    let mut values = Vec::new();
    while r.remaining() > 0 {
        values.push(decode_value(&mut r, 0)?);
    }
    Ok(values)
}

/// Reads a leading String value without allocating: `(text, bytes consumed)`. `None` if `buf`
/// does not start with a well-formed short string.
pub(crate) fn read_string(buf: &[u8]) -> Option<(&str, usize)> {
    let mut r = Reader::new(buf);
    if r.u8()? != STRING {
        return None;
    }
    let s = utf8_short(&mut r).ok()?;
    Some((s, r.pos))
}

fn err(r: &Reader<'_>, reason: &'static str) -> RtmpError {
    RtmpError::Amf0 {
        offset: r.pos,
        reason,
    }
}

fn truncated(r: &Reader<'_>) -> RtmpError {
    err(r, "truncated")
}

fn utf8<'a>(r: &mut Reader<'a>, len: usize) -> Result<&'a str, RtmpError> {
    let bytes = r.take(len).ok_or_else(|| truncated(r))?;
    std::str::from_utf8(bytes).map_err(|_| err(r, "string is not UTF-8"))
}

fn utf8_short<'a>(r: &mut Reader<'a>) -> Result<&'a str, RtmpError> {
    let len = r.u16().ok_or_else(|| truncated(r))?;
    utf8(r, usize::from(len))
}

fn decode_value(r: &mut Reader<'_>, depth: usize) -> Result<Amf0Value, RtmpError> {
    let marker = r.u8().ok_or_else(|| truncated(r))?;
    Ok(match marker {
        NUMBER => Amf0Value::Number(r.f64().ok_or_else(|| truncated(r))?),
        BOOLEAN => Amf0Value::Boolean(r.u8().ok_or_else(|| truncated(r))? != 0),
        STRING => Amf0Value::String(utf8_short(r)?.to_owned()),
        LONG_STRING => {
            let len = r.u32().ok_or_else(|| truncated(r))?;
            let len = usize::try_from(len).map_err(|_| truncated(r))?;
            Amf0Value::String(utf8(r, len)?.to_owned())
        }
        OBJECT => Amf0Value::Object(decode_props(r, depth)?),
        NULL => Amf0Value::Null,
        UNDEFINED => Amf0Value::Undefined,
        ECMA_ARRAY => {
            // The count is advisory (encoders disagree on it); the end marker terminates.
            r.u32().ok_or_else(|| truncated(r))?;
            Amf0Value::EcmaArray(decode_props(r, depth)?)
        }
        STRICT_ARRAY => {
            let count = r.u32().ok_or_else(|| truncated(r))?;
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            // Each element takes at least one byte: reject impossible counts before looping,
            // and never preallocate from the peer's count.
            if count > r.remaining() {
                return Err(truncated(r));
            }
            if depth >= MAX_AMF0_DEPTH {
                return Err(err(r, "nesting too deep"));
            }
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(decode_value(r, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        DATE => {
            let millis = r.f64().ok_or_else(|| truncated(r))?;
            let timezone = r.i16().ok_or_else(|| truncated(r))?;
            Amf0Value::Date { millis, timezone }
        }
        OBJECT_END => return Err(err(r, "object end marker outside an object")),
        _ => return Err(err(r, "unsupported type marker")),
    })
}

fn decode_props(r: &mut Reader<'_>, depth: usize) -> Result<Vec<(String, Amf0Value)>, RtmpError> {
    if depth >= MAX_AMF0_DEPTH {
        return Err(err(r, "nesting too deep"));
    }
    let mut props = Vec::new();
    loop {
        let key = utf8_short(r)?;
        if key.is_empty() {
            let save = r.pos;
            if r.u8() == Some(OBJECT_END) {
                return Ok(props);
            }
            r.pos = save;
        }
        let key = key.to_owned();
        let value = decode_value(r, depth + 1)?;
        props.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &Amf0Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    #[test]
    fn known_encodings() {
        assert_eq!(
            enc(&Amf0Value::String("ab".into())),
            [0x02, 0, 2, b'a', b'b']
        );
        assert_eq!(
            enc(&Amf0Value::Number(1.0)),
            [0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            enc(&Amf0Value::Object(vec![("a".into(), Amf0Value::Null)])),
            [0x03, 0, 1, b'a', 0x05, 0, 0, 0x09]
        );
        assert_eq!(
            enc(&Amf0Value::EcmaArray(vec![])),
            [0x08, 0, 0, 0, 0, 0, 0, 0x09]
        );
    }

    #[test]
    fn long_string_round_trip() {
        let s = "x".repeat(70_000);
        let bytes = enc(&Amf0Value::String(s.clone()));
        assert_eq!(bytes[0], LONG_STRING);
        assert_eq!(decode(&bytes).unwrap(), (Amf0Value::String(s), bytes.len()));
    }

    #[test]
    fn depth_limit() {
        let mut v = Amf0Value::Null;
        for _ in 0..MAX_AMF0_DEPTH + 1 {
            v = Amf0Value::StrictArray(vec![v]);
        }
        let bytes = enc(&v);
        assert!(matches!(
            decode(&bytes),
            Err(RtmpError::Amf0 {
                reason: "nesting too deep",
                ..
            })
        ));
        // Hostile: 100k nested objects must not overflow the stack.
        let deep = [OBJECT, 0, 1, b'k'].repeat(100_000);
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn malformed_inputs() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x02, 0, 5, b'a']).is_err());
        assert!(decode(&[0x02, 0, 1, 0xff]).is_err());
        assert!(decode(&[0x0a, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0x09]).is_err());
        assert!(decode(&[0x11]).is_err());
        assert!(decode(&[0x03, 0, 1, b'a']).is_err());
    }

    #[test]
    fn read_string_prefix() {
        let mut b = enc(&Amf0Value::String("@setDataFrame".into()));
        let n = b.len();
        b.extend(enc(&Amf0Value::String("onMetaData".into())));
        assert_eq!(read_string(&b), Some(("@setDataFrame", n)));
        assert_eq!(read_string(&b[n..]).map(|(s, _)| s), Some("onMetaData"));
        assert_eq!(read_string(&[0x05]), None);
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            (-1e15f64..1e15).prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            ((-1e13f64..1e13), any::<i16>())
                .prop_map(|(millis, timezone)| Amf0Value::Date { millis, timezone }),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let props = prop::collection::vec((".{0,8}", inner.clone()), 0..6);
            prop_oneof![
                props.clone().prop_map(Amf0Value::Object),
                props.prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in arb_value()) {
            let bytes = enc(&v);
            let (back, used) = decode(&bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, v);
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok((_, used)) = decode(&b) {
                prop_assert!(used <= b.len());
            }
            let _ = decode_all(&b);
            let _ = read_string(&b);
        }
    }
}
