//! AAC AudioSpecificConfig (ISO 14496-3 §1.6.2.1), the AAC sequence header's payload.

use crate::{MediaError, need};

const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR/HE-AAC, 29 = PS).
    pub object_type: u8,
    pub sample_rate: u32,
    /// Index into the standard rate table, or 15 when the rate was explicit.
    pub sample_rate_index: u8,
    pub channel_config: u8,
}

struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, MediaError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.buf.get(self.pos / 8).ok_or(MediaError::Truncated {
                what: "AudioSpecificConfig",
                len: self.buf.len(),
                need: self.pos / 8 + 1,
            })?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

impl AacConfig {
    pub fn parse(asc: &[u8]) -> Result<Self, MediaError> {
        need("AudioSpecificConfig", asc, 2)?;
        let mut r = Bits { buf: asc, pos: 0 };
        let mut object_type = r.read(5)?;
        if object_type == 31 {
            object_type = 32 + r.read(6)?;
        }
        let sample_rate_index = r.read(4)? as u8;
        let sample_rate = if sample_rate_index == 15 {
            r.read(24)?
        } else {
            *SAMPLE_RATES
                .get(usize::from(sample_rate_index))
                .ok_or(MediaError::Invalid {
                    what: "AudioSpecificConfig",
                    reason: "reserved sampling frequency index",
                })?
        };
        if sample_rate == 0 {
            return Err(MediaError::Invalid {
                what: "AudioSpecificConfig",
                reason: "zero sample rate",
            });
        }
        let channel_config = r.read(4)? as u8;
        Ok(Self {
            object_type: object_type as u8,
            sample_rate,
            sample_rate_index,
            channel_config,
        })
    }

    /// Samples per AAC frame (1024 for every object type we record; 960-sample frames are a
    /// broadcast-only variant that RTMP encoders do not send).
    pub fn samples_per_frame(&self) -> u32 {
        1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lc_48k_stereo() {
        // 00010 0011 0010 000 = AAC-LC, 48 kHz, 2 channels.
        let c = AacConfig::parse(&[0x11, 0x90]).unwrap();
        assert_eq!(
            (c.object_type, c.sample_rate, c.channel_config),
            (2, 48000, 2)
        );
    }

    #[test]
    fn lc_44k1_mono() {
        let c = AacConfig::parse(&[0x12, 0x08]).unwrap();
        assert_eq!(
            (c.object_type, c.sample_rate, c.channel_config),
            (2, 44100, 1)
        );
    }

    #[test]
    fn reserved_index_is_rejected() {
        // index 13 is reserved.
        assert!(AacConfig::parse(&[0x16, 0x88]).is_err());
        assert!(AacConfig::parse(&[0x11]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..8)) {
            let _ = AacConfig::parse(&b);
        }
    }
}
