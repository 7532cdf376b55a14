//! AMF0 for RTMP commands: the workspace's one codec (`livetape_media::amf0`), decoded
//! strictly (see [`Amf0Value::decode`]).

pub use livetape_media::amf0::{Amf0Value, read_string};

use crate::RtmpError;

impl From<livetape_media::amf0::Amf0Error> for RtmpError {
    fn from(e: livetape_media::amf0::Amf0Error) -> Self {
        RtmpError::Amf0 {
            offset: e.offset,
            reason: e.reason,
        }
    }
}

/// Decodes one value from the start of `buf`; returns it with the number of bytes consumed.
pub fn decode(buf: &[u8]) -> Result<(Amf0Value, usize), RtmpError> {
    Ok(Amf0Value::decode(buf)?)
}

/// Decodes values until `buf` is exhausted (a command message body).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
    Ok(Amf0Value::decode_all(buf)?)
}
