//! AV1CodecConfigurationRecord (`av1C`, the E-RTMP `av01` SequenceStart payload) and the
//! sequence header OBU inside it (AV1 spec §5.5), read as far as the frame size.

use crate::MediaError;

/// `obu_type` of a sequence header.
const OBU_SEQUENCE_HEADER: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Av1Config {
    pub profile: u8,
    pub level: u8,
    /// `seq_tier_0`: 0 = Main, 1 = High.
    pub tier: u8,
    pub bit_depth: u8,
    pub monochrome: bool,
    pub width: u32,
    pub height: u32,
}

fn invalid(reason: &'static str) -> MediaError {
    MediaError::Invalid {
        what: "AV1CodecConfigurationRecord",
        reason,
    }
}

/// MSB-first bit reader over a byte slice; reading past the end is an error.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, MediaError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(invalid("sequence header truncated"))?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Result<u32, MediaError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, MediaError> {
        Ok(self.bit()? == 1)
    }

    /// `uvlc()` (§4.10.3); only skipped here.
    fn skip_uvlc(&mut self) -> Result<(), MediaError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(());
            }
        }
        self.bits(zeros)?;
        Ok(())
    }
}

/// `leb128()`: (value, bytes read).
fn leb128(data: &[u8]) -> Result<(usize, usize), MediaError> {
    let mut value = 0usize;
    for (i, &b) in data.iter().take(8).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(invalid("bad leb128 size"))
}

impl Av1Config {
    pub fn parse(av1c: &[u8]) -> Result<Self, MediaError> {
        if av1c.len() < 4 {
            return Err(MediaError::Truncated {
                what: "AV1CodecConfigurationRecord",
                len: av1c.len(),
                need: 4,
            });
        }
        if av1c[0] != 0x81 {
            return Err(invalid("marker/version is not 1/1"));
        }
        let profile = av1c[1] >> 5;
        let level = av1c[1] & 0x1f;
        let tier = av1c[2] >> 7;
        let high_bitdepth = av1c[2] & 0x40 != 0;
        let twelve_bit = av1c[2] & 0x20 != 0;
        let monochrome = av1c[2] & 0x10 != 0;
        let bit_depth = match (high_bitdepth, twelve_bit) {
            (false, _) => 8,
            (true, false) => 10,
            (true, true) => 12,
        };
        let (width, height) = frame_size(&av1c[4..])?;
        Ok(Self {
            profile,
            level,
            tier,
            bit_depth,
            monochrome,
            width,
            height,
        })
    }

    /// RFC 6381-style codec string (AV1 ISOBMFF binding §5): `av01.P.LLT.DD`.
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.profile,
            self.level,
            if self.tier == 0 { 'M' } else { 'H' },
            self.bit_depth
        )
    }
}

/// Finds the sequence header OBU among `configOBUs` and reads the maximum frame size.
fn frame_size(mut obus: &[u8]) -> Result<(u32, u32), MediaError> {
    while let Some(&header) = obus.first() {
        let obu_type = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut pos = 1 + usize::from(has_extension);
        let size = if has_size {
            let (size, n) = leb128(obus.get(pos..).unwrap_or_default())?;
            pos += n;
            size
        } else {
            obus.len().saturating_sub(pos)
        };
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= obus.len())
            .ok_or(invalid("OBU larger than the record"))?;
        if obu_type == OBU_SEQUENCE_HEADER {
            return sequence_header_size(&obus[pos..end]);
        }
        obus = &obus[end..];
    }
    Err(invalid("no sequence header OBU"))
}

fn sequence_header_size(data: &[u8]) -> Result<(u32, u32), MediaError> {
    let mut r = Bits { data, pos: 0 };
    r.bits(3)?; // seq_profile
    r.bit()?; // still_picture
    let reduced = r.flag()?;
    if reduced {
        r.bits(5)?; // seq_level_idx[0]
    } else {
        let timing_info = r.flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_len = 0;
        if timing_info {
            r.bits(32)?; // num_units_in_display_tick
            r.bits(32)?; // time_scale
            if r.flag()? {
                r.skip_uvlc()?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info = r.flag()?;
            if decoder_model_info {
                buffer_delay_len = r.bits(5)? + 1;
                r.bits(32)?; // num_units_in_decoding_tick
                r.bits(5)?; // buffer_removal_time_length_minus_1
                r.bits(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            let level = r.bits(5)?;
            if level > 7 {
                r.bit()?; // seq_tier
            }
            if decoder_model_info && r.flag()? {
                r.bits(buffer_delay_len)?; // decoder_buffer_delay
                r.bits(buffer_delay_len)?; // encoder_buffer_delay
                r.bit()?; // low_delay_mode_flag
            }
            if initial_display_delay && r.flag()? {
                r.bits(4)?; // initial_display_delay_minus_1
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The `av01` SequenceStart payload ffmpeg 9 (SVT-AV1) sent for a 320x240 push.
    const AV1C_320X240: &[u8] = &[
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x61, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];

    #[test]
    fn svt_av1_sequence_header() {
        let c = Av1Config::parse(AV1C_320X240).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!((c.profile, c.level, c.tier, c.bit_depth), (0, 0, 0, 8));
        assert_eq!(c.codec_string(), "av01.0.00M.08");
    }

    #[test]
    fn rejects_bad_records() {
        assert!(Av1Config::parse(&[0x81, 0, 0]).is_err());
        assert!(Av1Config::parse(&[0x80, 0, 0, 0]).is_err());
        // No configOBUs at all: the size is unknown.
        assert!(Av1Config::parse(&[0x81, 0, 0, 0]).is_err());
        // An OBU claiming more bytes than there are.
        assert!(Av1Config::parse(&[0x81, 0, 0, 0, 0x0a, 0x7f, 0]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut b = vec![0x81, 0, 0, 0];
            b.extend_from_slice(&tail);
            let _ = Av1Config::parse(&b);
        }
    }
}
