//! AMF0 for FLV script tags: the workspace's one codec (`livetape_media::amf0`), decoded
//! leniently here (script data from publishers is advisory; see
//! [`Amf0Value::decode_lenient`]).

pub use livetape_media::amf0::{Amf0Error, Amf0Value, MAX_AMF0_DEPTH};

/// The handler name of a script tag body (its leading AMF0 string), without decoding the rest.
pub(crate) fn script_name(body: &[u8]) -> Option<(&[u8], usize)> {
    livetape_media::amf0::leading_string(body)
}
