//! Tencent Cloud "live recording & playback" compatibility layer (see `tencent-spec.md`).
//!
//! Everything here is pure: strings and `now` in, strings/values/decisions out. No sockets,
//! files or clock, so the HTTP server, the RTMP ingest and the notifier stay thin.
//!
//! - [`sign`]: the MD5 signatures (`callback_sign`, `api_sign`, `push_secret`) and their
//!   verifiers (`verify_push`, `verify_api_sign`).
//! - [`callback`]: event 1/0/100 callback bodies with the exact JSON types, and [`sign_body`].
//! - [`retry`]: the callback retry policy.
//! - [`filelist`]: `Live_Tape_GetFilelist` request parsing and response types.
//! - [`cst`]: China Standard Time (UTC+8) `YYYY-MM-DD HH:MM:SS` formatting/parsing.
//! - [`errcode`]: push-interrupt reason codes.
//! - [`tc3`]: Tencent Cloud API 3.0 request signatures (`TC3-HMAC-SHA256`), verified.
//! - [`iso`]: ISO 8601 times as API 3.0 writes and reads them.

pub mod callback;
pub mod cst;
pub mod errcode;
pub mod filelist;
pub mod iso;
pub mod retry;
pub mod sign;
pub mod tc3;

pub use callback::{
    BodyError, CallbackExt, EVENT_PUSH_BEGIN, EVENT_PUSH_END, EVENT_RECORD_FILE,
    EVENT_RECORD_STATUS, PushInfo, RecordDetail, RecordFileEvent, RecordStatusEvent,
    SIGN_LIFETIME_S, StreamEvent, sign_body,
};
pub use filelist::{
    ErrorResponse, FileEntry, FilelistError, FilelistOutput, FilelistRequest, FilelistResponse,
    SortOrder, parse_filelist_params,
};
pub use retry::RetryPolicy;
pub use sign::{
    ApiAuthError, PushAuth, PushAuthError, api_sign, callback_sign, push_secret, verify_api_sign,
    verify_push,
};
