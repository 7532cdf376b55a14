//! FLV audio/video tag headers, legacy and Enhanced RTMP (E-RTMP v1 FourCC) forms.

use crate::{MediaError, need};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
    Av1,
    /// A legacy codec id (e.g. 2 = Sorenson H.263) or an unknown FourCC.
    Other(u32),
}

impl VideoCodec {
    /// The name used in `callback_ext.video_codec` and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avc => "h264",
            Self::Hevc => "h265",
            Self::Av1 => "av1",
            Self::Other(_) => "unknown",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoPacket {
    /// Decoder configuration (avcC / hvcC / av1C).
    SequenceHeader,
    /// Coded frame data.
    Frame,
    EndOfSequence,
    /// Command frames, metadata and other packet types recorders pass over.
    Other,
}

/// A parsed video tag header. The codec payload is `body[header_len..]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTag {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub packet: VideoPacket,
    /// Composition time offset (PTS − DTS) in ms.
    pub cts_ms: i32,
    pub header_len: usize,
}

const FOURCC_AVC: u32 = u32::from_be_bytes(*b"avc1");
const FOURCC_HEVC: u32 = u32::from_be_bytes(*b"hvc1");
const FOURCC_AV1: u32 = u32::from_be_bytes(*b"av01");

fn si24(b: &[u8]) -> i32 {
    // Sign-extend a big-endian 24-bit value.
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

impl VideoTag {
    pub fn parse(body: &[u8]) -> Result<Self, MediaError> {
        need("video tag", body, 1)?;
        let b0 = body[0];
        if b0 & 0x80 != 0 {
            return Self::parse_enhanced(body);
        }
        let frame_type = b0 >> 4;
        let codec_id = b0 & 0x0f;
        let keyframe = frame_type == 1;
        match codec_id {
            // 7 = AVC; 12 = the widespread (non-Adobe) HEVC extension used by Chinese CDNs.
            7 | 12 => {
                need("avc video tag", body, 5)?;
                let packet = match body[1] {
                    0 => VideoPacket::SequenceHeader,
                    1 => VideoPacket::Frame,
                    2 => VideoPacket::EndOfSequence,
                    _ => VideoPacket::Other,
                };
                let packet = if frame_type == 5 {
                    VideoPacket::Other
                } else {
                    packet
                };
                Ok(Self {
                    codec: if codec_id == 7 {
                        VideoCodec::Avc
                    } else {
                        VideoCodec::Hevc
                    },
                    keyframe,
                    packet,
                    cts_ms: si24(&body[2..5]),
                    header_len: 5,
                })
            }
            other => Ok(Self {
                codec: VideoCodec::Other(other as u32),
                keyframe,
                packet: if frame_type == 5 {
                    VideoPacket::Other
                } else {
                    VideoPacket::Frame
                },
                cts_ms: 0,
                header_len: 1,
            }),
        }
    }

    fn parse_enhanced(body: &[u8]) -> Result<Self, MediaError> {
        need("enhanced video tag", body, 5)?;
        let frame_type = (body[0] >> 4) & 0x07;
        let packet_type = body[0] & 0x0f;
        let fourcc = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
        let codec = match fourcc {
            FOURCC_AVC => VideoCodec::Avc,
            FOURCC_HEVC => VideoCodec::Hevc,
            FOURCC_AV1 => VideoCodec::Av1,
            other => VideoCodec::Other(other),
        };
        let (packet, cts_ms, header_len) = match packet_type {
            0 => (VideoPacket::SequenceHeader, 0, 5),
            // CodedFrames: AVC/HEVC carry an SI24 composition time; AV1 does not.
            1 if codec != VideoCodec::Av1 => {
                need("enhanced video tag", body, 8)?;
                (VideoPacket::Frame, si24(&body[5..8]), 8)
            }
            1 | 3 => (VideoPacket::Frame, 0, 5),
            2 => (VideoPacket::EndOfSequence, 0, 5),
            _ => (VideoPacket::Other, 0, 5),
        };
        let packet = if frame_type == 5 {
            VideoPacket::Other
        } else {
            packet
        };
        Ok(Self {
            codec,
            keyframe: frame_type == 1,
            packet,
            cts_ms,
            header_len,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    /// FLV SoundFormat id (2 = MP3, …).
    Other(u8),
}

/// A parsed audio tag header. The codec payload is `body[header_len..]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTag {
    pub codec: AudioCodec,
    /// AAC AudioSpecificConfig rather than a raw frame.
    pub sequence_header: bool,
    pub header_len: usize,
}

impl AudioTag {
    pub fn parse(body: &[u8]) -> Result<Self, MediaError> {
        need("audio tag", body, 1)?;
        let format = body[0] >> 4;
        if format == 10 {
            need("aac audio tag", body, 2)?;
            Ok(Self {
                codec: AudioCodec::Aac,
                sequence_header: body[1] == 0,
                header_len: 2,
            })
        } else {
            Ok(Self {
                codec: AudioCodec::Other(format),
                sequence_header: false,
                header_len: 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn avc_keyframe_with_negative_cts() {
        let t = VideoTag::parse(&[0x17, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 1]).unwrap();
        assert_eq!(t.codec, VideoCodec::Avc);
        assert!(t.keyframe);
        assert_eq!(t.packet, VideoPacket::Frame);
        assert_eq!(t.cts_ms, -33);
        assert_eq!(t.header_len, 5);
    }

    #[test]
    fn avc_sequence_header_and_inter_frame() {
        let sh = VideoTag::parse(&[0x17, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(sh.packet, VideoPacket::SequenceHeader);
        let p = VideoTag::parse(&[0x27, 1, 0, 0, 66]).unwrap();
        assert!(!p.keyframe);
        assert_eq!(p.cts_ms, 66);
    }

    #[test]
    fn enhanced_hevc_coded_frames() {
        let mut b = vec![0x80 | 0x10 | 1];
        b.extend_from_slice(b"hvc1");
        b.extend_from_slice(&[0, 0, 40, 9, 9]);
        let t = VideoTag::parse(&b).unwrap();
        assert_eq!(t.codec, VideoCodec::Hevc);
        assert!(t.keyframe);
        assert_eq!(t.cts_ms, 40);
        assert_eq!(t.header_len, 8);
        let mut x = vec![0x80 | 0x20 | 3];
        x.extend_from_slice(b"hvc1");
        let t = VideoTag::parse(&x).unwrap();
        assert_eq!(
            (t.keyframe, t.packet, t.header_len),
            (false, VideoPacket::Frame, 5)
        );
    }

    #[test]
    fn aac_headers() {
        let sh = AudioTag::parse(&[0xaf, 0, 0x11, 0x90]).unwrap();
        assert!(sh.sequence_header);
        let raw = AudioTag::parse(&[0xaf, 1, 1, 2]).unwrap();
        assert!(!raw.sequence_header);
        assert_eq!(raw.header_len, 2);
        assert_eq!(
            AudioTag::parse(&[0x2f]).unwrap().codec,
            AudioCodec::Other(2)
        );
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(VideoTag::parse(&[]).is_err());
        assert!(VideoTag::parse(&[0x17, 1]).is_err());
        assert!(AudioTag::parse(&[0xaf]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(t) = VideoTag::parse(&b) { prop_assert!(t.header_len <= b.len()); }
            if let Ok(t) = AudioTag::parse(&b) { prop_assert!(t.header_len <= b.len()); }
        }
    }
}
