/// Everything that can go wrong in the RTMP core. All errors are fatal for the connection.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RtmpError {
    #[error("handshake: unsupported RTMP version {0} in C0 (only 3 is supported)")]
    UnsupportedVersion(u8),
    #[error("chunk stream {csid}: format {fmt} header without a previous header to inherit from")]
    MissingPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {csid}: format {fmt} header inside a partially received message")]
    HeaderInsideMessage { csid: u32, fmt: u8 },
    #[error("chunk stream {csid}: message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge { csid: u32, len: u32, max: u32 },
    #[error("more than {max} chunk streams in use")]
    TooManyChunkStreams { max: usize },
    #[error("more than {max} partially received messages")]
    TooManyPartialMessages { max: usize },
    #[error("partially received messages exceed {max} bytes")]
    PartialBytesExceeded { max: usize },
    #[error("invalid Set Chunk Size {0}")]
    InvalidChunkSize(u32),
    #[error("{what}: {len}-byte payload is too short")]
    ShortMessage { what: &'static str, len: usize },
    #[error("AMF0 at byte {offset}: {reason}")]
    Amf0 { offset: usize, reason: &'static str },
    #[error("more than {max} message streams carry media")]
    TooManyMessageStreams { max: usize },
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("invalid call: {0}")]
    InvalidState(&'static str),
    #[error("the session already failed; close the connection")]
    Failed,
}
