//! Ingest: one driver per protocol, each only moving bytes between its socket and its sans-IO
//! session and calling `push` for a push's life. RTMP today; RTMPS, SRT and WHIP land beside it.

pub(crate) mod rtmp;
