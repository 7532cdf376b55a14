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

impl AvcConfig {
    pub fn parse(avcc: &[u8]) -> Result<Self, MediaError> {
        let invalid = |reason| MediaError::Invalid {
            what: "AVCDecoderConfigurationRecord",
            reason,
        };
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
