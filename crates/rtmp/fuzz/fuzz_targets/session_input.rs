//! Arbitrary bytes after a valid handshake, fed in two pieces so restartable parsing is covered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livetape_rtmp::{HANDSHAKE_SIZE, ServerSession, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let mut session = ServerSession::new(SessionConfig::default());
    let mut events = Vec::new();
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * HANDSHAKE_SIZE, 0);
    if session.handle_input(&handshake, &mut events).is_err() {
        return;
    }
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(split);
    if session.handle_input(a, &mut events).is_ok() {
        let _ = session.handle_input(b, &mut events);
    }
    let _ = session.take_output();
});
