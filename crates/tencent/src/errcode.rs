//! Push-interrupt reason codes (`errcode` of event 0, spec §1.6).

/// Unknown reason.
pub const UNKNOWN: i32 = 0;
/// Client sent RTMP deleteStream (client stopped).
pub const CLIENT_DELETE_STREAM: i32 = 1;
/// Client sent RTMP closeStream (client stopped).
pub const CLIENT_CLOSE_STREAM: i32 = 2;
/// `recv()` returned 0: the client closed the connection (client stopped).
pub const CLIENT_DISCONNECTED: i32 = 3;
/// `recv()` returned an error (client stopped).
pub const CLIENT_RECV_ERROR: i32 = 4;
/// Client stopped (newer code).
pub const CLIENT_STOPPED: i32 = 35;
/// Server-internal error.
pub const INTERNAL_ERROR: i32 = 5;
/// Bad RTMP content.
pub const BAD_RTMP_CONTENT: i32 = 6;
/// A single RTMP message exceeded the maximum size.
pub const MESSAGE_TOO_LARGE: i32 = 7;
/// No data for a long time.
pub const NO_DATA: i32 = 8;
/// Network problem on the push link (12–17; this is the first).
pub const NETWORK_ERROR: i32 = 12;
/// Third-party authentication failed.
pub const AUTH_FAILED: i32 = 19;
/// No data for a long time (newer code; Tencent closes after ~70 s without data).
pub const NO_DATA_TIMEOUT: i32 = 20;
/// The push was cut by the server on an API call (`DropLiveStream`). Tencent documents no
/// code of its own for this; 24 is one of its "server side" codes.
pub const DROPPED: i32 = 24;
/// Bad AMF.
pub const BAD_AMF: i32 = 33;

/// Seconds without data before an idle push is closed (Tencent: about 70 s).
pub const NO_DATA_TIMEOUT_S: u64 = 70;

/// `errmsg` for a code, in the spirit of Tencent's texts.
pub fn errmsg(code: i32) -> &'static str {
    match code {
        1 => "recv rtmp deleteStream",
        2 => "recv rtmp closeStream",
        3 => "recv() return 0",
        4 => "recv() return error",
        35 => "The push client actively stopped the push",
        24 => "the stream was dropped by DropLiveStream",
        5 | 9 | 10 | 11 => "internal error",
        6 | 23 => "bad rtmp content",
        7 => "rtmp message large than 1M",
        8 | 20 => "no data for a long time",
        12..=17 => "network error",
        19 => "third-party authentication failed",
        33 => "bad amf",
        _ => "unknown",
    }
}

/// Whether the code means the client ended the push on purpose.
pub fn is_client_stop(code: i32) -> bool {
    matches!(code, 1..=4 | 35)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(errmsg(CLIENT_DELETE_STREAM), "recv rtmp deleteStream");
        assert_eq!(errmsg(MESSAGE_TOO_LARGE), "rtmp message large than 1M");
        assert_eq!(errmsg(NO_DATA_TIMEOUT), errmsg(NO_DATA));
        assert_eq!(errmsg(UNKNOWN), "unknown");
        assert_eq!(errmsg(16), "network error");
        assert!(is_client_stop(CLIENT_STOPPED) && is_client_stop(CLIENT_DISCONNECTED));
        assert!(!is_client_stop(NO_DATA) && !is_client_stop(UNKNOWN));
    }
}
