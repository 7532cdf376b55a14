//! Elementary-stream conversion for MPEG-TS: AVCC/HVCC length-prefixed NALUs → Annex B with
//! access unit delimiters and in-band parameter sets, and raw AAC → ADTS.

use crate::HlsError;
use livetape_media::aac::AacConfig;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// H.264 access unit delimiter, primary_pic_type = 7 (any slice type).
const AUD_H264: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];
/// HEVC access unit delimiter (NAL type 35, layer 0, tid 1), pic_type = 2 (any slice type).
const AUD_HEVC: [u8; 7] = [0, 0, 0, 1, 0x46, 0x01, 0x50];
/// Parameter-set blobs beyond this are not a real encoder's output.
const MAX_PARAM_SETS_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoKind {
    H264,
    Hevc,
}

impl VideoKind {
    pub(crate) fn stream_type(self) -> u8 {
        match self {
            Self::H264 => 0x1b,
            Self::Hevc => 0x24,
        }
    }

    fn nal_type(self, header: u8) -> u8 {
        match self {
            Self::H264 => header & 0x1f,
            Self::Hevc => (header >> 1) & 0x3f,
        }
    }

    fn is_aud(self, t: u8) -> bool {
        match self {
            Self::H264 => t == 9,
            Self::Hevc => t == 35,
        }
    }

    /// An in-band SPS means the encoder already repeats its parameter sets.
    fn is_sps(self, t: u8) -> bool {
        match self {
            Self::H264 => t == 7,
            Self::Hevc => t == 33,
        }
    }

    /// IDR (H.264) or IRAP (HEVC): the decoder needs parameter sets right before it.
    fn is_random_access(self, t: u8) -> bool {
        match self {
            Self::H264 => t == 5,
            Self::Hevc => (16..=23).contains(&t),
        }
    }
}

/// Video decoder configuration reduced to what the muxer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    pub(crate) kind: VideoKind,
    pub(crate) nal_length_size: usize,
    /// Annex B parameter sets (VPS/)SPS/PPS, each with a start code, ready to copy.
    pub(crate) param_sets: Vec<u8>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, HlsError> {
        let b = *self.buf.get(self.pos).ok_or(self.truncated())?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<usize, HlsError> {
        Ok(usize::from(self.u8()?) << 8 | usize::from(self.u8()?))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], HlsError> {
        let end = self.pos.checked_add(n).ok_or(self.truncated())?;
        let s = self.buf.get(self.pos..end).ok_or(self.truncated())?;
        self.pos = end;
        Ok(s)
    }
    fn truncated(&self) -> HlsError {
        HlsError::Malformed {
            what: self.what,
            reason: "truncated",
        }
    }
}

fn push_param_set(out: &mut Vec<u8>, nal: &[u8], what: &'static str) -> Result<(), HlsError> {
    if out.len() + nal.len() + START_CODE.len() > MAX_PARAM_SETS_BYTES {
        return Err(HlsError::Malformed {
            what,
            reason: "parameter sets too large",
        });
    }
    if !nal.is_empty() {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    Ok(())
}

impl VideoConfig {
    /// Parses an AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1): only the NALU length
    /// size and the SPS/PPS arrays, so an SPS that a full parser rejects still records.
    pub(crate) fn from_avcc(avcc: &[u8]) -> Result<Self, HlsError> {
        let what = "avcC";
        let mut r = Reader {
            buf: avcc,
            pos: 0,
            what,
        };
        r.bytes(4)?;
        let nal_length_size = usize::from(r.u8()? & 3) + 1;
        let mut param_sets = Vec::new();
        let num_sps = r.u8()? & 0x1f;
        for _ in 0..num_sps {
            let n = r.u16()?;
            push_param_set(&mut param_sets, r.bytes(n)?, what)?;
        }
        let num_pps = r.u8()?;
        for _ in 0..num_pps {
            let n = r.u16()?;
            push_param_set(&mut param_sets, r.bytes(n)?, what)?;
        }
        Self::checked(VideoKind::H264, nal_length_size, param_sets, what)
    }

    /// Parses an HEVCDecoderConfigurationRecord (ISO 14496-15 §8.3.3.1): 22 fixed bytes, then
    /// arrays of NAL units. VPS, SPS and PPS are kept in that order (decoders need them so).
    pub(crate) fn from_hvcc(hvcc: &[u8]) -> Result<Self, HlsError> {
        let what = "hvcC";
        let mut r = Reader {
            buf: hvcc,
            pos: 0,
            what,
        };
        let fixed = r.bytes(22)?;
        let nal_length_size = usize::from(fixed[21] & 3) + 1;
        let num_arrays = r.u8()?;
        let mut sets: [Vec<u8>; 3] = Default::default();
        for _ in 0..num_arrays {
            let nal_type = r.u8()? & 0x3f;
            let count = r.u16()?;
            for _ in 0..count {
                let n = r.u16()?;
                let nal = r.bytes(n)?;
                if let Some(dst) = nal_type
                    .checked_sub(32)
                    .and_then(|i| sets.get_mut(usize::from(i)))
                {
                    push_param_set(dst, nal, what)?;
                }
            }
        }
        let param_sets = sets.concat();
        Self::checked(VideoKind::Hevc, nal_length_size, param_sets, what)
    }

    fn checked(
        kind: VideoKind,
        nal_length_size: usize,
        param_sets: Vec<u8>,
        what: &'static str,
    ) -> Result<Self, HlsError> {
        if nal_length_size == 3 {
            return Err(HlsError::Malformed {
                what,
                reason: "3-byte NALU lengths are not allowed",
            });
        }
        if param_sets.len() > MAX_PARAM_SETS_BYTES {
            return Err(HlsError::Malformed {
                what,
                reason: "parameter sets too large",
            });
        }
        Ok(Self {
            kind,
            nal_length_size,
            param_sets,
        })
    }

    /// Iterates the length-prefixed NALUs of `data`, failing on a length that overruns.
    fn for_each_nal(&self, data: &[u8], mut f: impl FnMut(&[u8])) -> Result<(), HlsError> {
        let n = self.nal_length_size;
        let mut rest = data;
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(n).ok_or(HlsError::Malformed {
                what: "video frame",
                reason: "truncated NALU length",
            })?;
            let len = len.iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            let (nal, tail) = tail.split_at_checked(len).ok_or(HlsError::Malformed {
                what: "video frame",
                reason: "NALU length overruns the frame",
            })?;
            if !nal.is_empty() {
                f(nal);
            }
            rest = tail;
        }
        Ok(())
    }

    /// Writes one access unit as Annex B into `out` (cleared first): our own AUD, then the
    /// configured parameter sets before a random-access picture unless the frame carries its
    /// own, then the frame's NALUs minus any AUD it already had. Returns whether the access
    /// unit contains a random-access picture.
    pub(crate) fn to_annex_b(&self, data: &[u8], out: &mut Vec<u8>) -> Result<bool, HlsError> {
        out.clear();
        let kind = self.kind;
        // First pass validates lengths and finds what the frame already carries, so the second
        // pass can write without backtracking.
        let (mut random_access, mut has_sps) = (false, false);
        self.for_each_nal(data, |nal| {
            let t = kind.nal_type(nal[0]);
            random_access |= kind.is_random_access(t);
            has_sps |= kind.is_sps(t);
        })?;
        match kind {
            VideoKind::H264 => out.extend_from_slice(&AUD_H264),
            VideoKind::Hevc => out.extend_from_slice(&AUD_HEVC),
        }
        if random_access && !has_sps {
            out.extend_from_slice(&self.param_sets);
        }
        self.for_each_nal(data, |nal| {
            if !kind.is_aud(kind.nal_type(nal[0])) {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(nal);
            }
        })?;
        Ok(random_access)
    }
}

/// ADTS fields derived once from the AudioSpecificConfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdtsConfig {
    profile: u8,
    sample_rate_index: u8,
    channel_config: u8,
    pub(crate) sample_rate: u32,
}

/// ADTS header length without CRC.
pub(crate) const ADTS_HEADER_LEN: usize = 7;
/// `aac_frame_length` is 13 bits and includes the header.
const ADTS_MAX_FRAME: usize = (1 << 13) - 1;

impl AdtsConfig {
    pub(crate) fn from_asc(asc: &[u8]) -> Result<Self, HlsError> {
        let c = AacConfig::parse(asc)?;
        let unsupported = |reason| HlsError::Malformed {
            what: "AudioSpecificConfig",
            reason,
        };
        // ADTS has a 2-bit profile (object type − 1). HE-AAC (SBR 5 / PS 29) is signalled
        // implicitly: an LC header at the core rate, which AacConfig reports for those types.
        let profile = match c.object_type {
            1..=4 => c.object_type - 1,
            5 | 29 => 1,
            _ => return Err(unsupported("object type not representable in ADTS")),
        };
        if c.sample_rate_index > 12 {
            return Err(unsupported(
                "explicit sample rate not representable in ADTS",
            ));
        }
        if c.channel_config > 7 {
            return Err(unsupported("channel configuration out of range"));
        }
        Ok(Self {
            profile,
            sample_rate_index: c.sample_rate_index,
            channel_config: c.channel_config,
            sample_rate: c.sample_rate,
        })
    }

    /// The ADTS header for a raw frame of `payload_len` bytes.
    pub(crate) fn header(&self, payload_len: usize) -> Result<[u8; ADTS_HEADER_LEN], HlsError> {
        let len = payload_len + ADTS_HEADER_LEN;
        if len > ADTS_MAX_FRAME {
            return Err(HlsError::Malformed {
                what: "AAC frame",
                reason: "too large for ADTS",
            });
        }
        let ch = self.channel_config;
        Ok([
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            (self.profile << 6) | (self.sample_rate_index << 2) | (ch >> 2),
            ((ch & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 7) as u8) << 5 | 0x1f,
            0xfc, // buffer fullness 0x7ff (VBR), one raw data block
        ])
    }

    /// Duration of one AAC frame (1024 samples) in ms, rounded.
    pub(crate) fn frame_ms(&self) -> u64 {
        (1_024_000 + u64::from(self.sample_rate) / 2) / u64::from(self.sample_rate.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x03, 0x67, 0x64, 0x00, 0x01, 0x00, 0x02, 0x68,
        0xef,
    ];

    #[test]
    fn avcc_to_annex_b_inserts_aud_and_params_before_idr() {
        let c = VideoConfig::from_avcc(AVCC).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(
            c.param_sets,
            [0, 0, 0, 1, 0x67, 0x64, 0, 0, 0, 0, 1, 0x68, 0xef]
        );
        let mut out = Vec::new();
        // An AUD then an IDR slice.
        let frame = [0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 2, 0x65, 0xaa];
        assert!(c.to_annex_b(&frame, &mut out).unwrap());
        let mut want = AUD_H264.to_vec();
        want.extend_from_slice(&c.param_sets);
        want.extend_from_slice(&[0, 0, 0, 1, 0x65, 0xaa]);
        assert_eq!(out, want);
        // A P slice: AUD only.
        assert!(!c.to_annex_b(&[0, 0, 0, 2, 0x41, 0xbb], &mut out).unwrap());
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0xbb]);
        assert!(c.to_annex_b(&[0, 0, 0, 9, 0x41], &mut out).is_err());
    }

    #[test]
    fn hvcc_orders_vps_sps_pps() {
        let mut h = vec![0u8; 22];
        h[21] = 3;
        h.push(3);
        for (t, nal) in [(34u8, [0x44u8, 1]), (32, [0x40, 1]), (33, [0x42, 1])] {
            h.extend_from_slice(&[t, 0, 1, 0, 2]);
            h.extend_from_slice(&nal);
        }
        let c = VideoConfig::from_hvcc(&h).unwrap();
        assert_eq!(
            c.param_sets,
            [
                0, 0, 0, 1, 0x40, 1, 0, 0, 0, 1, 0x42, 1, 0, 0, 0, 1, 0x44, 1
            ]
        );
        let mut out = Vec::new();
        // CRA (type 21) is IRAP.
        assert!(c.to_annex_b(&[0, 0, 0, 2, 21 << 1, 1], &mut out).unwrap());
        assert!(out.starts_with(&AUD_HEVC));
        assert!(VideoConfig::from_hvcc(&h[..30]).is_err());
    }

    #[test]
    fn adts_header_for_lc_48k_stereo() {
        let a = AdtsConfig::from_asc(&[0x11, 0x90]).unwrap();
        let h = a.header(100).unwrap();
        assert_eq!(h, [0xff, 0xf1, 0x4c, 0x80, 0x0d, 0x7f, 0xfc]);
        assert_eq!(a.frame_ms(), 21);
        assert!(a.header(9000).is_err());
    }
}
