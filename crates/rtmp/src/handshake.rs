//! Server side of the simple ("version 3", digest-less) RTMP handshake.

use crate::{HANDSHAKE_RANDOM_LEN, HANDSHAKE_SIZE, RtmpError};
use bytes::{Buf, BufMut, BytesMut};

pub(crate) const RTMP_VERSION: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    WaitC0C1,
    WaitC2,
    Done,
}

impl Handshake {
    /// Advances as far as `input` allows, consuming handshake bytes and appending S0+S1+S2 to
    /// `out`. S1 = time, four zero bytes (no digest, so ffmpeg/librtmp skip verification),
    /// `random`; S2 echoes C1.
    pub(crate) fn advance(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        time_ms: u32,
        random: &[u8; HANDSHAKE_RANDOM_LEN],
    ) -> Result<(), RtmpError> {
        if *self == Self::WaitC0C1 {
            let Some(&c0) = input.first() else {
                return Ok(());
            };
            // Reject early: a wrong C0 (e.g. 6 for RTMPE, or an HTTP request) is fatal anyway.
            if c0 != RTMP_VERSION {
                return Err(RtmpError::UnsupportedVersion(c0));
            }
            let Some(c1) = input.get(1..1 + HANDSHAKE_SIZE) else {
                return Ok(());
            };
            out.reserve(1 + 2 * HANDSHAKE_SIZE);
            out.put_u8(RTMP_VERSION);
            out.put_u32(time_ms);
            out.put_u32(0);
            out.put_slice(random);
            out.put_slice(c1);
            input.advance(1 + HANDSHAKE_SIZE);
            *self = Self::WaitC2;
        }
        if *self == Self::WaitC2 && input.len() >= HANDSHAKE_SIZE {
            // C2 should echo S1; clients that don't are still fine to talk to.
            input.advance(HANDSHAKE_SIZE);
            *self = Self::Done;
        }
        Ok(())
    }
}
