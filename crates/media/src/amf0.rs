//! AMF0 (Action Message Format 0): the encoding of RTMP commands and of FLV script data
//! (`onMetaData`). One codec for both.
//!
//! The decoder is for untrusted input: it never pre-allocates from declared counts (every
//! element consumes at least one input byte, so memory is bounded by the input) and limits
//! nesting to [`MAX_AMF0_DEPTH`], so hostile data cannot overflow the stack. Two modes:
//! [`Amf0Value::decode`] is strict (RTMP commands: UTF-8 only; references, typed objects, XML
//! and the AMF3 switch are refused), [`Amf0Value::decode_lenient`] takes what real script
//! data carries (lossy UTF-8 — publishers send Latin-1 titles —, typed objects as objects, XML
//! and long strings as strings, an outermost object missing its end marker). Strings longer
//! than 65535 bytes are encoded as long strings, so decode ∘ encode is the identity.

use bytes::BufMut;

/// Deepest nesting of objects/arrays accepted (real metadata is 2–3 levels deep).
pub const MAX_AMF0_DEPTH: usize = 32;

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
const UNSUPPORTED: u8 = 0x0d;
const XML_DOCUMENT: u8 = 0x0f;
const TYPED_OBJECT: u8 = 0x10;

/// A value that could not be decoded: why, and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("AMF0 at byte {offset}: {reason}")]
pub struct Amf0Error {
    pub offset: usize,
    pub reason: &'static str,
}

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

    pub fn as_array(&self) -> Option<&[Amf0Value]> {
        match self {
            Self::StrictArray(v) => Some(v),
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
                    // A String over 4 GiB cannot be carried: saturate rather than wrap.
                    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                    out.put_u32(len);
                    out.put_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
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

    /// Decodes one value from the start of `buf` (strict); returns it and the bytes consumed.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), Amf0Error> {
        Decoder::new(buf, false).one()
    }

    /// Decodes values until `buf` is exhausted (strict: an RTMP command message body).
    pub fn decode_all(buf: &[u8]) -> Result<Vec<Self>, Amf0Error> {
        Decoder::new(buf, false).all()
    }

    /// [`Amf0Value::decode`] for script data (see the module docs).
    pub fn decode_lenient(buf: &[u8]) -> Result<(Self, usize), Amf0Error> {
        Decoder::new(buf, true).one()
    }

    /// [`Amf0Value::decode_all`] for script data: a script tag body is a sequence of values,
    /// normally the handler name followed by its argument.
    pub fn decode_all_lenient(buf: &[u8]) -> Result<Vec<Self>, Amf0Error> {
        Decoder::new(buf, true).all()
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

/// A leading short String value, without decoding the rest: `(bytes, bytes consumed)`.
pub fn leading_string(buf: &[u8]) -> Option<(&[u8], usize)> {
    if *buf.first()? != STRING {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*buf.get(1)?, *buf.get(2)?]));
    let s = buf.get(3..3 + len)?;
    Some((s, 3 + len))
}

/// [`leading_string`] as UTF-8 text (RTMP data message handlers such as `@setDataFrame`).
pub fn read_string(buf: &[u8]) -> Option<(&str, usize)> {
    let (s, n) = leading_string(buf)?;
    Some((std::str::from_utf8(s).ok()?, n))
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    lenient: bool,
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a [u8], lenient: bool) -> Self {
        Self {
            buf,
            pos: 0,
            lenient,
        }
    }

    fn one(mut self) -> Result<(Amf0Value, usize), Amf0Error> {
        let v = self.value(0)?;
        Ok((v, self.pos))
    }

    fn all(mut self) -> Result<Vec<Amf0Value>, Amf0Error> {
        let mut out = Vec::new();
        while self.pos < self.buf.len() {
            out.push(self.value(0)?);
        }
        Ok(out)
    }

    fn err(&self, reason: &'static str) -> Amf0Error {
        Amf0Error {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(self.err("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(self.err("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        let bytes = self.take(len)?;
        if self.lenient {
            Ok(String::from_utf8_lossy(bytes).into_owned())
        } else {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| self.err("string is not UTF-8"))
        }
    }

    fn props(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        if depth >= MAX_AMF0_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let mut props = Vec::new();
        loop {
            // Some muxers omit the end marker of the outermost object; accept end of input.
            if self.lenient && self.pos == self.buf.len() {
                return Ok(props);
            }
            let len = usize::from(self.u16()?);
            if len == 0 && self.buf.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(len)?;
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = usize::from(self.u16()?);
                Amf0Value::String(self.string(len)?)
            }
            LONG_STRING => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.string(len)?)
            }
            XML_DOCUMENT if self.lenient => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.string(len)?)
            }
            OBJECT => Amf0Value::Object(self.props(depth)?),
            TYPED_OBJECT if self.lenient => {
                let len = usize::from(self.u16()?);
                self.take(len)?;
                Amf0Value::Object(self.props(depth)?)
            }
            NULL => Amf0Value::Null,
            UNDEFINED => Amf0Value::Undefined,
            UNSUPPORTED if self.lenient => Amf0Value::Undefined,
            ECMA_ARRAY => {
                // The count is only a hint (encoders disagree on it); the end marker terminates.
                self.u32()?;
                Amf0Value::EcmaArray(self.props(depth)?)
            }
            STRICT_ARRAY => {
                let count = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
                // Each element takes at least one byte: reject impossible counts before
                // looping, and never preallocate from the peer's count.
                if count > self.buf.len() - self.pos {
                    return Err(self.err("truncated"));
                }
                if depth >= MAX_AMF0_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            DATE => {
                let millis = self.f64()?;
                let timezone = self.u16()? as i16;
                Amf0Value::Date { millis, timezone }
            }
            OBJECT_END => return Err(self.err("object end marker outside an object")),
            _ => return Err(self.err("unsupported type marker")),
        })
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
        assert_eq!(enc(&Amf0Value::Number(f64::MAX)).len(), 9);
    }

    #[test]
    fn long_string_and_nested_round_trip() {
        let s = "x".repeat(70_000);
        let bytes = enc(&Amf0Value::String(s.clone()));
        assert_eq!(bytes[0], LONG_STRING);
        assert_eq!(
            Amf0Value::decode(&bytes).unwrap(),
            (Amf0Value::String(s), bytes.len())
        );
        let v = Amf0Value::EcmaArray(vec![
            ("duration".into(), Amf0Value::Number(10.5)),
            (
                "keyframes".into(),
                Amf0Value::Object(vec![(
                    "times".into(),
                    Amf0Value::StrictArray(vec![Amf0Value::Number(0.0), Amf0Value::Null]),
                )]),
            ),
        ]);
        let bytes = enc(&v);
        let (back, used) = Amf0Value::decode_lenient(&bytes).unwrap();
        assert_eq!(
            (back.get("duration").and_then(Amf0Value::as_number), used),
            (Some(10.5), bytes.len())
        );
    }

    #[test]
    fn depth_limit() {
        let mut v = Amf0Value::Null;
        for _ in 0..MAX_AMF0_DEPTH + 1 {
            v = Amf0Value::StrictArray(vec![v]);
        }
        for decode in [Amf0Value::decode, Amf0Value::decode_lenient] {
            assert_eq!(decode(&enc(&v)).unwrap_err().reason, "nesting too deep");
            // Hostile: 100k nested objects must not overflow the stack.
            let deep = [OBJECT, 0, 1, b'k'].repeat(100_000);
            assert!(decode(&deep).is_err());
        }
    }

    #[test]
    fn strict_refuses_what_lenient_takes() {
        for (bytes, lenient) in [
            // Not UTF-8: lossy in script data.
            (
                &[0x02, 0, 1, 0xff][..],
                Some(Amf0Value::String("\u{fffd}".into())),
            ),
            // A typed object with an empty class name.
            (
                &[TYPED_OBJECT, 0, 0, 0, 0, OBJECT_END][..],
                Some(Amf0Value::Object(vec![])),
            ),
            (&[UNSUPPORTED][..], Some(Amf0Value::Undefined)),
            // An object cut before its end marker.
            (
                &[OBJECT, 0, 1, b'a', NULL][..],
                Some(Amf0Value::Object(vec![("a".into(), Amf0Value::Null)])),
            ),
            // The AMF3 switch: refused by both.
            (&[0x11][..], None),
        ] {
            assert!(Amf0Value::decode(bytes).is_err(), "{bytes:?}");
            assert_eq!(
                Amf0Value::decode_lenient(bytes).ok().map(|(v, _)| v),
                lenient
            );
        }
    }

    #[test]
    fn malformed_inputs() {
        for bad in [
            &[][..],
            &[0x02, 0, 5, b'a'],
            &[0x0a, 0xff, 0xff, 0xff, 0xff],
            &[LONG_STRING, 0xff, 0xff, 0xff, 0xff],
            &[0x09],
            &[0x03, 0, 1, b'a'],
        ] {
            assert!(Amf0Value::decode(bad).is_err(), "{bad:?}");
            assert!(Amf0Value::decode_lenient(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn leading_strings() {
        let mut b = enc(&Amf0Value::String("@setDataFrame".into()));
        let n = b.len();
        b.extend(enc(&Amf0Value::String("onMetaData".into())));
        assert_eq!(read_string(&b), Some(("@setDataFrame", n)));
        assert_eq!(leading_string(&b[n..]), Some((&b"onMetaData"[..], 13)));
        assert_eq!(read_string(&[0x05]), None);
        assert_eq!(leading_string(&b[..5]), None);
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
            for decode in [Amf0Value::decode, Amf0Value::decode_lenient] {
                let (back, used) = decode(&bytes).unwrap();
                prop_assert_eq!(used, bytes.len());
                prop_assert_eq!(&back, &v);
            }
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..256)) {
            for decode in [Amf0Value::decode, Amf0Value::decode_lenient] {
                if let Ok((_, used)) = decode(&b) {
                    prop_assert!(used <= b.len());
                }
            }
            let _ = Amf0Value::decode_all(&b);
            let _ = Amf0Value::decode_all_lenient(&b);
            let _ = read_string(&b);
        }
    }
}
