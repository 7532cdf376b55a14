//! A tiny AMF0 (Action Message Format 0) codec, enough for FLV script tags (`onMetaData`).
//!
//! The decoder is for untrusted input: it never pre-allocates from declared counts (every element
//! consumes at least one input byte, so memory is bounded by the input) and limits nesting depth
//! so hostile metadata cannot overflow the stack.

use crate::FlvError;

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

/// One AMF0 value. Long strings and XML documents decode to [`Amf0Value::String`]; typed objects
/// decode to [`Amf0Value::Object`] (the class name is dropped).
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch (the time-zone field is reserved and ignored).
    Date(f64),
}

impl Amf0Value {
    /// Property `key` of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Self::Object(props) | Self::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Amf0Value]> {
        match self {
            Self::StrictArray(v) => Some(v),
            _ => None,
        }
    }

    /// Appends the encoded value. Strings longer than 65535 bytes become AMF0 long strings;
    /// property names longer than that are cut (the format cannot carry them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Number(n) => {
                out.push(NUMBER);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Self::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
            Self::String(s) => match u16::try_from(s.len()) {
                Ok(_) => {
                    out.push(STRING);
                    put_utf8(out, s);
                }
                Err(_) => {
                    out.push(LONG_STRING);
                    // A String never exceeds isize::MAX; saturate rather than wrap for >4 GiB.
                    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
                }
            },
            Self::Object(props) => {
                out.push(OBJECT);
                put_props(out, props);
            }
            Self::Null => out.push(NULL),
            Self::Undefined => out.push(UNDEFINED),
            Self::EcmaArray(props) => {
                out.push(ECMA_ARRAY);
                let n = u32::try_from(props.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&n.to_be_bytes());
                put_props(out, props);
            }
            Self::StrictArray(items) => {
                out.push(STRICT_ARRAY);
                let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&n.to_be_bytes());
                for v in items {
                    v.encode(out);
                }
            }
            Self::Date(ms) => {
                out.push(DATE);
                out.extend_from_slice(&ms.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
        }
    }

    /// Decodes one value from the start of `buf`; returns it and the bytes consumed.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), FlvError> {
        let mut d = Decoder { buf, pos: 0 };
        let v = d.value(0)?;
        Ok((v, d.pos))
    }

    /// Decodes every value in `buf` (a script tag body is a sequence of values, normally the
    /// handler name followed by its argument).
    pub fn decode_all(buf: &[u8]) -> Result<Vec<Self>, FlvError> {
        let mut d = Decoder { buf, pos: 0 };
        let mut out = Vec::new();
        while d.pos < buf.len() {
            out.push(d.value(0)?);
        }
        Ok(out)
    }
}

fn put_utf8(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let b = b.get(..usize::from(u16::MAX)).unwrap_or(b);
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_props(out: &mut Vec<u8>, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_utf8(out, k);
        v.encode(out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn err(&self, reason: &'static str) -> FlvError {
        FlvError::Amf0 {
            reason,
            offset: self.pos,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], FlvError> {
        let end = self.pos.checked_add(n).ok_or(self.err("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(self.err("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, FlvError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FlvError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FlvError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, FlvError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String, FlvError> {
        // Lossy: publishers have been seen sending Latin-1 titles; metadata is advisory.
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn props(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, FlvError> {
        let mut props = Vec::new();
        loop {
            // Some muxers omit the end marker of the outermost object; accept end of input.
            if self.pos == self.buf.len() {
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

    fn value(&mut self, depth: usize) -> Result<Amf0Value, FlvError> {
        if depth > MAX_AMF0_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = usize::from(self.u16()?);
                Amf0Value::String(self.string(len)?)
            }
            LONG_STRING | XML_DOCUMENT => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.string(len)?)
            }
            OBJECT => Amf0Value::Object(self.props(depth)?),
            TYPED_OBJECT => {
                let len = usize::from(self.u16()?);
                self.take(len)?;
                Amf0Value::Object(self.props(depth)?)
            }
            NULL => Amf0Value::Null,
            UNDEFINED | UNSUPPORTED => Amf0Value::Undefined,
            ECMA_ARRAY => {
                // The count is only a hint (often wrong in the wild); the end marker terminates.
                self.u32()?;
                Amf0Value::EcmaArray(self.props(depth)?)
            }
            STRICT_ARRAY => {
                let n = self.u32()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            DATE => {
                let ms = self.f64()?;
                self.u16()?;
                Amf0Value::Date(ms)
            }
            OBJECT_END => return Err(self.err("unexpected object end")),
            _ => return Err(self.err("unsupported marker")),
        })
    }
}

/// The handler name of a script tag body (its leading AMF0 string), without decoding the rest.
pub(crate) fn script_name(body: &[u8]) -> Option<(&[u8], usize)> {
    if *body.first()? != STRING {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*body.get(1)?, *body.get(2)?]));
    let name = body.get(3..3 + len)?;
    Some((name, 3 + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_nested() {
        let v = Amf0Value::EcmaArray(vec![
            ("duration".into(), Amf0Value::Number(10.5)),
            ("stereo".into(), Amf0Value::Boolean(true)),
            ("encoder".into(), Amf0Value::String("x".repeat(70_000))),
            (
                "keyframes".into(),
                Amf0Value::Object(vec![(
                    "times".into(),
                    Amf0Value::StrictArray(vec![Amf0Value::Number(0.0), Amf0Value::Null]),
                )]),
            ),
            ("d".into(), Amf0Value::Date(1.0)),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        let (back, used) = Amf0Value::decode(&out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back, v);
        assert_eq!(back.get("duration").and_then(Amf0Value::as_f64), Some(10.5));
    }

    #[test]
    fn number_is_nine_bytes() {
        let mut out = Vec::new();
        Amf0Value::Number(f64::MAX).encode(&mut out);
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn depth_limit() {
        // 100 nested strict arrays of one element each.
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        b.push(NULL);
        assert!(matches!(
            Amf0Value::decode(&b),
            Err(FlvError::Amf0 {
                reason: "nesting too deep",
                ..
            })
        ));
    }

    #[test]
    fn huge_declared_count_is_an_error_not_an_allocation() {
        assert!(Amf0Value::decode(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(Amf0Value::decode(&[LONG_STRING, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn script_name_reads_leading_string() {
        let mut b = Vec::new();
        Amf0Value::String("onMetaData".into()).encode(&mut b);
        assert_eq!(script_name(&b), Some((&b"onMetaData"[..], 13)));
        assert_eq!(script_name(&b[..5]), None);
        assert_eq!(script_name(&[NULL]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok((_, used)) = Amf0Value::decode(&b) { prop_assert!(used <= b.len()); }
            let _ = Amf0Value::decode_all(&b);
        }
    }
}
