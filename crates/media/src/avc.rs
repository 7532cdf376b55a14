//! AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1), the H.264 sequence header's payload.
//! The record itself is parsed with `h264-reader`, which is fuzzed upstream.

use crate::MediaError;
use h264_reader::avcc::AvcDecoderConfigurationRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// Bytes in each NALU length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    pub width: u32,
    pub height: u32,
}

/// Every SPS and PPS of an `avcC` is non-empty and inside the record. h264-reader 0.9 indexes
/// them without checking (a 2-byte length past the end, or an empty set, panics in
/// `create_context`), so a publisher's sequence header is walked here first. Found by the
/// `codec_configs` fuzz target; the input is kept in `fuzz/regressions/`.
fn param_sets_in_bounds(avcc: &[u8]) -> bool {
    let Some(&n_sps) = avcc.get(5) else {
        return false;
    };
    let mut at = 6;
    let sets = |n: usize, at: &mut usize| -> bool {
        for _ in 0..n {
            let Some(len) = avcc.get(*at..*at + 2) else {
                return false;
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if len == 0 || avcc.len() < *at + 2 + len {
                return false;
            }
            *at += 2 + len;
        }
        true
    };
    if !sets(usize::from(n_sps & 0x1f), &mut at) {
        return false;
    }
    let Some(&n_pps) = avcc.get(at) else {
        return false;
    };
    at += 1;
    sets(usize::from(n_pps), &mut at)
}

impl AvcConfig {
    pub fn parse(avcc: &[u8]) -> Result<Self, MediaError> {
        let invalid = |reason| MediaError::Invalid {
            what: "AVCDecoderConfigurationRecord",
            reason,
        };
        if !param_sets_in_bounds(avcc) {
            return Err(invalid("parameter set lengths run past the record"));
        }
        let rec = AvcDecoderConfigurationRecord::try_from(avcc)
            .map_err(|_| invalid("malformed record"))?;
        let nal_length_size = rec.length_size_minus_one() + 1;
        if nal_length_size == 3 {
            return Err(invalid("3-byte NALU lengths are not allowed"));
        }
        let ctx = rec
            .create_context()
            .map_err(|_| invalid("malformed SPS/PPS"))?;
        let sps = ctx.sps().next().ok_or(invalid("no SPS"))?;
        let (width, height) = sps
            .pixel_dimensions()
            .map_err(|_| invalid("SPS dimensions out of range"))?;
        Ok(Self {
            profile: u8::from(rec.avc_profile_indication()),
            compatibility: avcc.get(2).copied().unwrap_or(0),
            level: rec.avc_level_indication().level_idc(),
            nal_length_size,
            width,
            height,
        })
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`, for HLS `CODECS` and MSE.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// avcC of the 10 s test clip (`livetape_testkit::CLIP_10S`: x264 640x360 High@3.0).
    const AVCC_640X360: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x25, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xe0, 0x60, 0x00, 0xf4, 0x24, 0x00, 0x1e, 0x84, 0xe6, 0xa3, 0x00, 0x78, 0xb1, 0x6c, 0xb0,
        0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    #[test]
    fn a_parameter_set_length_past_the_record_is_an_error_not_a_panic() {
        // From the codec_configs fuzz target: one SPS of declared length 0x0001 at the end.
        assert!(AvcConfig::parse(&[1, 43, 100, 0, 0, 0, 1, 0, 0]).is_err());
        assert!(AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0]).is_err());
        assert!(AvcConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 9, 0x67]).is_err());
    }

    #[test]
    fn dimensions_and_codec_string() {
        let c = AvcConfig::parse(AVCC_640X360).unwrap();
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.codec_string(), "avc1.64001e");
    }

    #[test]
    fn truncated_record_is_an_error() {
        assert!(AvcConfig::parse(&AVCC_640X360[..10]).is_err());
        assert!(AvcConfig::parse(&[]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = AvcConfig::parse(&b);
        }
    }
}
