//! HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1), the H.265 sequence header's payload
//! (`hvcC`), plus the few SPS fields a remuxer needs (H.265 §7.3.2.2).
//!
//! Written by hand: no maintained, fuzzed HEVC parser crate exposes the record and the SPS
//! dimensions without pulling a decoder-sized dependency. Every read is bounds-checked; garbage
//! yields `Err`, never a panic (property-tested below).

use crate::{MediaError, need};

/// NAL unit types (H.265 Table 7-1) that matter to a remuxer.
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
/// IRAP pictures (BLA, IDR, CRA and reserved IRAP types) are random access points.
pub const NAL_IRAP: std::ops::RangeInclusive<u8> = 16..=23;

/// Largest luma dimension accepted from an SPS (level 6.2 allows 8192x4320; leave headroom).
pub const MAX_DIMENSION: u32 = 16_384;
/// The fixed part of the record before `numOfArrays`.
const RECORD_HEADER_LEN: usize = 22;
/// The general profile_tier_level: profile space..level_idc, 96 bits.
const GENERAL_PTL_LEN: usize = 12;
/// NAL unit header length in H.265.
const NAL_HEADER_LEN: usize = 2;

const WHAT: &str = "HEVCDecoderConfigurationRecord";

/// One `hvcC` NAL array: all parameter sets of one NAL unit type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NalArray {
    pub completeness: bool,
    pub nal_unit_type: u8,
    pub nalus: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcConfig {
    pub profile_space: u8,
    pub tier_flag: bool,
    pub profile_idc: u8,
    pub profile_compatibility_flags: u32,
    /// The 48 general constraint indicator flags, in the low 48 bits.
    pub constraint_indicator_flags: u64,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Bytes in each NALU length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// Display size: the SPS coded size minus the conformance window.
    pub width: u32,
    pub height: u32,
    /// `sps_max_num_reorder_pics` of the highest sub-layer: 0 means no B-frame reordering
    /// (presentation order = decode order).
    pub max_num_reorder_pics: u32,
    pub arrays: Vec<NalArray>,
}

impl HevcConfig {
    pub fn parse(hvcc: &[u8]) -> Result<Self, MediaError> {
        need(WHAT, hvcc, RECORD_HEADER_LEN + 1)?;
        let mut r = Reader { buf: hvcc, pos: 0 };
        if r.u8()? != 1 {
            return Err(invalid("configurationVersion is not 1"));
        }
        let b = r.u8()?;
        let profile_compatibility_flags = r.u32()?;
        let constraint_indicator_flags = (u64::from(r.u16()?) << 32) | u64::from(r.u32()?);
        let level_idc = r.u8()?;
        r.skip(3)?; // min_spatial_segmentation_idc, parallelismType
        let chroma_format_idc = r.u8()? & 0x03;
        let bit_depth_luma = (r.u8()? & 0x07) + 8;
        let bit_depth_chroma = (r.u8()? & 0x07) + 8;
        r.skip(2)?; // avgFrameRate
        let nal_length_size = (r.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(invalid("3-byte NALU lengths are not allowed"));
        }
        let num_arrays = r.u8()?;
        let mut arrays = Vec::with_capacity(usize::from(num_arrays).min(8));
        for _ in 0..num_arrays {
            let h = r.u8()?;
            let n = r.u16()?;
            let mut nalus = Vec::with_capacity(usize::from(n).min(4));
            for _ in 0..n {
                let len = usize::from(r.u16()?);
                nalus.push(r.take(len)?.to_vec());
            }
            arrays.push(NalArray {
                completeness: h & 0x80 != 0,
                nal_unit_type: h & 0x3f,
                nalus,
            });
        }
        let sps = arrays
            .iter()
            .filter(|a| a.nal_unit_type == NAL_SPS)
            .flat_map(|a| a.nalus.first())
            .next()
            .ok_or(invalid("no SPS"))?;
        let sps = Sps::parse(sps)?;
        Ok(Self {
            profile_space: b >> 6,
            tier_flag: b & 0x20 != 0,
            profile_idc: b & 0x1f,
            profile_compatibility_flags,
            constraint_indicator_flags,
            level_idc,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            nal_length_size,
            width: sps.width,
            height: sps.height,
            max_num_reorder_pics: sps.max_num_reorder_pics,
            arrays,
        })
    }

    /// RFC 6381 codec string per ISO 14496-15 Annex E, e.g. `hvc1.1.6.L93.B0`: profile (with
    /// space letter), compatibility flags bit-reversed in hex, tier + level, then the constraint
    /// bytes with trailing zero bytes omitted.
    pub fn codec_string(&self) -> String {
        use std::fmt::Write;
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.profile_compatibility_flags.reverse_bits(),
            if self.tier_flag { 'H' } else { 'L' },
            self.level_idc
        );
        let bytes = self.constraint_indicator_flags.to_be_bytes();
        let constraint = &bytes[2..];
        let used = constraint
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in constraint.iter().take(used) {
            let _ = write!(s, ".{b:X}");
        }
        s
    }
}

/// Builds an `hvcC` record (4-byte NALU lengths) from one VPS, SPS and PPS NAL unit (with their
/// 2-byte NAL headers, no start codes, emulation prevention intact). Profile, tier, level and
/// constraint flags are copied from the SPS's profile_tier_level.
pub fn build_hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, MediaError> {
    for (nal, ty, what) in [
        (vps, NAL_VPS, "VPS"),
        (sps, NAL_SPS, "SPS"),
        (pps, NAL_PPS, "PPS"),
    ] {
        need(what, nal, NAL_HEADER_LEN + 1)?;
        if nal_type(nal) != Some(ty) {
            return Err(MediaError::Invalid {
                what,
                reason: "wrong NAL unit type",
            });
        }
        if u16::try_from(nal.len()).is_err() {
            return Err(MediaError::Invalid {
                what,
                reason: "longer than 65535 bytes",
            });
        }
    }
    let info = Sps::parse(sps)?;
    let mut out =
        Vec::with_capacity(RECORD_HEADER_LEN + 1 + 15 + vps.len() + sps.len() + pps.len());
    out.push(1);
    out.extend_from_slice(&info.general_ptl);
    out.extend_from_slice(&[0xf0, 0x00]); // reserved + min_spatial_segmentation_idc 0
    out.push(0xfc); // reserved + parallelismType 0 (unknown)
    out.push(0xfc | info.chroma_format_idc);
    out.push(0xf8 | info.bit_depth_luma_minus8);
    out.push(0xf8 | info.bit_depth_chroma_minus8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate unspecified
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    out.push(
        ((info.max_sub_layers_minus1 + 1) << 3) | (u8::from(info.temporal_id_nesting) << 2) | 3,
    );
    out.push(3);
    for (ty, nal) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        out.push(0x80 | ty); // array_completeness: no other parameter sets in-band
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// Splits an Annex-B byte stream into NAL units (start codes and trailing zero bytes removed).
/// Bytes before the first start code are skipped.
pub fn split_annexb(data: &[u8]) -> AnnexB<'_> {
    let start = find_start_code(data, 0).map_or(data.len(), |(_, end)| end);
    AnnexB { data, pos: start }
}

/// Iterator returned by [`split_annexb`].
#[derive(Clone, Debug)]
pub struct AnnexB<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for AnnexB<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let (end, next) =
                find_start_code(self.data, self.pos).unwrap_or((self.data.len(), self.data.len()));
            let mut nal = self.data.get(self.pos..end).unwrap_or_default();
            self.pos = next;
            // trailing_zero_8bits (and the leading zero of a 4-byte start code) are not part of
            // the NAL unit, which always ends in a non-zero byte.
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
        None
    }
}

/// `(start, end)` of the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = data.get(from..)?;
    tail.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (from + i, from + i + 3))
}

/// The NAL unit type of a NAL unit (with its header), `None` if too short.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3f)
}

fn invalid(reason: &'static str) -> MediaError {
    MediaError::Invalid { what: WHAT, reason }
}

/// The SPS fields we need.
struct Sps {
    general_ptl: [u8; GENERAL_PTL_LEN],
    max_sub_layers_minus1: u8,
    temporal_id_nesting: bool,
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
    width: u32,
    height: u32,
    max_num_reorder_pics: u32,
}

impl Sps {
    fn parse(nal: &[u8]) -> Result<Self, MediaError> {
        const W: &str = "HEVC SPS";
        let bad = |reason| MediaError::Invalid { what: W, reason };
        if nal_type(nal) != Some(NAL_SPS) {
            return Err(bad("not an SPS NAL unit"));
        }
        let rbsp = unescape(nal.get(NAL_HEADER_LEN..).unwrap_or_default());
        let mut b = Bits { buf: &rbsp, pos: 0 };
        b.bits(4)?; // sps_video_parameter_set_id
        let max_sub_layers_minus1 = b.bits(3)? as u8;
        if max_sub_layers_minus1 > 6 {
            return Err(bad("sps_max_sub_layers_minus1 > 6"));
        }
        let temporal_id_nesting = b.bits(1)? == 1;
        // The general PTL is byte-aligned at RBSP byte 1.
        let general_ptl: [u8; GENERAL_PTL_LEN] = rbsp
            .get(1..1 + GENERAL_PTL_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(MediaError::Truncated {
                what: W,
                len: rbsp.len(),
                need: 1 + GENERAL_PTL_LEN,
            })?;
        b.skip(GENERAL_PTL_LEN * 8)?;
        // Sub-layer PTLs (§7.3.3): presence flags, alignment to 8 entries, then the bodies.
        let mut present = [(false, false); 6];
        for p in present.iter_mut().take(usize::from(max_sub_layers_minus1)) {
            *p = (b.bits(1)? == 1, b.bits(1)? == 1);
        }
        if max_sub_layers_minus1 > 0 {
            b.skip(2 * (8 - usize::from(max_sub_layers_minus1)))?;
        }
        for &(profile, level) in present.iter().take(usize::from(max_sub_layers_minus1)) {
            if profile {
                b.skip(88)?;
            }
            if level {
                b.skip(8)?;
            }
        }
        b.ue()?; // sps_seq_parameter_set_id
        let chroma_format_idc = b.ue()?;
        if chroma_format_idc > 3 {
            return Err(bad("chroma_format_idc > 3"));
        }
        let separate_colour_plane = chroma_format_idc == 3 && b.bits(1)? == 1;
        let coded_w = b.ue()?;
        let coded_h = b.ue()?;
        if coded_w == 0 || coded_h == 0 || coded_w > MAX_DIMENSION || coded_h > MAX_DIMENSION {
            return Err(bad("picture size out of range"));
        }
        let (mut width, mut height) = (coded_w, coded_h);
        if b.bits(1)? == 1 {
            // Offsets are in chroma sample units (Table 6-1: SubWidthC, SubHeightC).
            let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
                (1, _) => (2, 2),
                (2, _) => (2, 1),
                _ => (1, 1),
            };
            let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
            let crop = |size: u32, a: u32, c: u32, unit: u32| {
                a.checked_add(c)
                    .and_then(|s| s.checked_mul(unit))
                    .and_then(|s| size.checked_sub(s))
                    .filter(|&v| v > 0)
                    .ok_or(bad("conformance window larger than the picture"))
            };
            width = crop(coded_w, l, r, sub_w)?;
            height = crop(coded_h, t, bo, sub_h)?;
        }
        let bit_depth_luma_minus8 = b.ue()?;
        let bit_depth_chroma_minus8 = b.ue()?;
        if bit_depth_luma_minus8 > 8 || bit_depth_chroma_minus8 > 8 {
            return Err(bad("bit depth out of range"));
        }
        b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        let ordering_info_present = b.bits(1)? == 1;
        let first = if ordering_info_present {
            0
        } else {
            max_sub_layers_minus1
        };
        let mut max_num_reorder_pics = 0;
        for _ in first..=max_sub_layers_minus1 {
            b.ue()?; // sps_max_dec_pic_buffering_minus1
            max_num_reorder_pics = b.ue()?;
            b.ue()?; // sps_max_latency_increase_plus1
        }
        Ok(Self {
            general_ptl,
            max_sub_layers_minus1,
            temporal_id_nesting,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
            bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
            width,
            height,
            max_num_reorder_pics,
        })
    }
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Byte reader over the record.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        let end = self.pos.saturating_add(n);
        let s = self.buf.get(self.pos..end).ok_or(MediaError::Truncated {
            what: WHAT,
            len: self.buf.len(),
            need: end,
        })?;
        self.pos = end;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MediaError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, MediaError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// MSB-first bit reader over an RBSP.
struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn truncated(&self) -> MediaError {
        MediaError::Truncated {
            what: "HEVC SPS",
            len: self.buf.len(),
            need: self.pos / 8 + 1,
        }
    }

    fn bit(&mut self) -> Result<u32, MediaError> {
        let byte = *self.buf.get(self.pos / 8).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(u32::from((byte >> (7 - (self.pos - 1) % 8)) & 1))
    }

    /// Up to 32 bits.
    fn bits(&mut self, n: u32) -> Result<u32, MediaError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        let end = self.pos.saturating_add(n);
        if end > self.buf.len().saturating_mul(8) {
            return Err(self.truncated());
        }
        self.pos = end;
        Ok(())
    }

    /// Unsigned exp-Golomb, limited to 32-bit values.
    fn ue(&mut self) -> Result<u32, MediaError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(MediaError::Invalid {
                    what: "HEVC SPS",
                    reason: "exp-Golomb code longer than 32 bits",
                });
            }
        }
        let rest = self.bits(zeros)?;
        // (1 << zeros) - 1 + rest, which fits u32 for zeros <= 31 only in u64.
        u32::try_from((1u64 << zeros) - 1 + u64::from(rest)).map_err(|_| MediaError::Invalid {
            what: "HEVC SPS",
            reason: "exp-Golomb value exceeds 32 bits",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// VPS/SPS/PPS of x265 (testsrc2 640x360, Main@L2.1), Annex-B start codes stripped.
    const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0x92, 0x80, 0x90,
    ];
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x69, 0x65, 0x92, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn builds_and_parses_x265_parameter_sets() {
        let hvcc = build_hvcc(VPS, SPS, PPS).unwrap();
        let c = HevcConfig::parse(&hvcc).unwrap();
        assert_eq!((c.width, c.height), (640, 360));
        assert_eq!((c.profile_idc, c.level_idc, c.tier_flag), (1, 63, false));
        assert_eq!(c.profile_compatibility_flags, 0x6000_0000);
        assert_eq!((c.chroma_format_idc, c.bit_depth_luma), (1, 8));
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.max_num_reorder_pics, 0);
        assert_eq!(c.codec_string(), "hvc1.1.6.L63.90");
        let types: Vec<u8> = c.arrays.iter().map(|a| a.nal_unit_type).collect();
        assert_eq!(types, [NAL_VPS, NAL_SPS, NAL_PPS]);
        assert_eq!(c.arrays[1].nalus[0], SPS);
    }

    #[test]
    fn codec_string_examples() {
        let hvcc = build_hvcc(VPS, SPS, PPS).unwrap();
        let mut c = HevcConfig::parse(&hvcc).unwrap();
        c.level_idc = 93;
        c.constraint_indicator_flags = 0xb0 << 40;
        assert_eq!(c.codec_string(), "hvc1.1.6.L93.B0");
        c.profile_space = 1;
        c.tier_flag = true;
        c.profile_idc = 2;
        c.profile_compatibility_flags = 0x2000_0000;
        c.constraint_indicator_flags = 0;
        assert_eq!(c.codec_string(), "hvc1.A2.4.H93");
    }

    #[test]
    fn conformance_window_and_emulation_prevention() {
        let e = unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]);
        assert_eq!(e, [0, 0, 1, 0, 0, 0, 0]);
        // 640x360 with 4:2:0 is coded as 640x368 minus an 8-row (4 chroma rows) window.
        let s = Sps::parse(SPS).unwrap();
        assert_eq!((s.width, s.height), (640, 360));
    }

    #[test]
    fn annexb_split() {
        let s = [
            9, 0, 0, 0, 1, 0x40, 1, 0, 0, 1, 0x42, 1, 2, 0, 0, 0, 0, 1, 0, 0, 1, 0x44,
        ];
        let nals: Vec<&[u8]> = split_annexb(&s).collect();
        assert_eq!(nals, [&[0x40, 1][..], &[0x42, 1, 2], &[0x44]]);
        assert_eq!(split_annexb(&[1, 2, 3]).count(), 0);
        assert_eq!(split_annexb(&[0, 0, 1]).count(), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(build_hvcc(SPS, VPS, PPS).is_err());
        assert!(build_hvcc(VPS, &SPS[..10], PPS).is_err());
        let hvcc = build_hvcc(VPS, SPS, PPS).unwrap();
        for n in 0..hvcc.len() {
            assert!(HevcConfig::parse(&hvcc[..n]).is_err(), "prefix {n}");
        }
        let mut v0 = hvcc.clone();
        v0[0] = 0;
        assert!(HevcConfig::parse(&v0).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = HevcConfig::parse(&b);
            let _ = Sps::parse(&b);
            let _ = build_hvcc(VPS, &b, PPS);
            let total: usize = split_annexb(&b).map(<[u8]>::len).sum();
            prop_assert!(total <= b.len());
        }

        #[test]
        fn mutated_record_never_panics(i in 0usize..128, x in any::<u8>()) {
            let mut hvcc = build_hvcc(VPS, SPS, PPS).unwrap();
            let n = hvcc.len();
            hvcc[i % n] ^= x;
            if let Ok(c) = HevcConfig::parse(&hvcc) {
                prop_assert!(c.width <= MAX_DIMENSION && c.height <= MAX_DIMENSION);
            }
        }
    }
}
