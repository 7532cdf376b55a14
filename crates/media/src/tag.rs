//! FLV audio/video tag headers: legacy, Enhanced RTMP v1 (FourCC) and v2 (multichannel
//! config, multitrack, `ModEx`).
//!
//! A tag parses to the codec, the packet type, the track it belongs to and where that track's
//! codec payload lies in the tag body (`header_len..data_end`), so muxers take zero-copy slices
//! of it. Track 0 is the default track (legacy tags, single-track E-RTMP tags); a multitrack tag
//! that carries track 0 among others parses to track 0's part.

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
            Self::Other(VP9) => "vp9",
            Self::Other(VP8) => "vp8",
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

/// A parsed video tag header. The codec payload is `body[header_len..data_end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTag {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub packet: VideoPacket,
    /// Composition time offset (PTS − DTS) in ms.
    pub cts_ms: i32,
    pub header_len: usize,
    /// End of this track's payload in the body (the body's length unless the tag is a
    /// multitrack tag carrying several tracks).
    pub data_end: usize,
    /// E-RTMP multitrack track id; 0 for the default track and for every non-multitrack tag.
    pub track: u8,
}

impl VideoTag {
    /// This track's codec payload (configuration record or coded frame).
    pub fn data<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        body.get(self.header_len..self.data_end).unwrap_or_default()
    }
}

const FOURCC_AVC: u32 = u32::from_be_bytes(*b"avc1");
const FOURCC_HEVC: u32 = u32::from_be_bytes(*b"hvc1");
const FOURCC_AV1: u32 = u32::from_be_bytes(*b"av01");
const VP9: u32 = u32::from_be_bytes(*b"vp09");
const VP8: u32 = u32::from_be_bytes(*b"vp08");

const FOURCC_AAC: u32 = u32::from_be_bytes(*b"mp4a");
const FOURCC_OPUS: u32 = u32::from_be_bytes(*b"Opus");
const FOURCC_FLAC: u32 = u32::from_be_bytes(*b"fLaC");
const FOURCC_MP3: u32 = u32::from_be_bytes(*b".mp3");
const FOURCC_AC3: u32 = u32::from_be_bytes(*b"ac-3");
const FOURCC_EAC3: u32 = u32::from_be_bytes(*b"ec-3");

/// E-RTMP v2 packet types shared by audio and video (`ModEx`, `Multitrack`).
const PACKET_MODEX: u8 = 7;
const VIDEO_PACKET_MULTITRACK: u8 = 6;
const AUDIO_PACKET_MULTITRACK: u8 = 5;
/// `AvMultitrackType`.
const ONE_TRACK: u8 = 0;
const MANY_TRACKS_MANY_CODECS: u8 = 2;
/// `VideoFrameType::Command`: the tag carries a command byte, not a picture.
const FRAME_TYPE_COMMAND: u8 = 5;
const VIDEO_PACKET_METADATA: u8 = 4;

fn si24(b: &[u8]) -> i32 {
    // Sign-extend a big-endian 24-bit value.
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

fn fourcc(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Skips a chain of `ModEx` prefixes (E-RTMP v2: size-prefixed modifier data, then the real
/// packet type in the low nibble of the byte after it). `pos` points just past the first
/// header byte; returns the final packet type and the position after the chain.
fn skip_modex(
    what: &'static str,
    body: &[u8],
    mut packet: u8,
    mut pos: usize,
) -> Result<(u8, usize), MediaError> {
    while packet == PACKET_MODEX {
        need(what, body, pos + 1)?;
        let mut size = usize::from(body[pos]) + 1;
        pos += 1;
        if size == 256 {
            need(what, body, pos + 2)?;
            size = usize::from(u16::from_be_bytes([body[pos], body[pos + 1]])) + 1;
            pos += 2;
        }
        pos += size;
        need(what, body, pos + 1)?;
        // High nibble: the ModEx type (0 = TimestampOffsetNano, sub-ms precision we drop).
        packet = body[pos] & 0x0f;
        pos += 1;
    }
    Ok((packet, pos))
}

/// One track's part of a (possibly multitrack) E-RTMP tag.
struct TrackPart {
    fourcc: u32,
    track: u8,
    packet: u8,
    start: usize,
    end: usize,
}

/// Reads the multitrack header at `pos` (just past the `Multitrack` packet type) and picks
/// track 0's part if the tag carries it, else the first track's.
fn multitrack_part(
    what: &'static str,
    body: &[u8],
    mut pos: usize,
) -> Result<TrackPart, MediaError> {
    need(what, body, pos + 1)?;
    let mtype = body[pos] >> 4;
    let packet = body[pos] & 0x0f;
    pos += 1;
    let mut shared_fourcc = 0;
    if mtype != MANY_TRACKS_MANY_CODECS {
        need(what, body, pos + 4)?;
        shared_fourcc = fourcc(&body[pos..]);
        pos += 4;
    }
    let mut first = None;
    while pos < body.len() {
        let mut cc = shared_fourcc;
        if mtype == MANY_TRACKS_MANY_CODECS {
            need(what, body, pos + 4)?;
            cc = fourcc(&body[pos..]);
            pos += 4;
        }
        need(what, body, pos + 1)?;
        let track = body[pos];
        pos += 1;
        let end = if mtype == ONE_TRACK {
            body.len()
        } else {
            need(what, body, pos + 3)?;
            let size = u24(&body[pos..]);
            pos += 3;
            need(what, body, pos + size)?;
            pos + size
        };
        let part = TrackPart {
            fourcc: cc,
            track,
            packet,
            start: pos,
            end,
        };
        if track == 0 {
            return Ok(part);
        }
        first.get_or_insert(part);
        if mtype == ONE_TRACK {
            break;
        }
        pos = end;
    }
    first.ok_or(MediaError::Invalid {
        what,
        reason: "multitrack tag without a track",
    })
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
                let packet = if frame_type == FRAME_TYPE_COMMAND {
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
                    data_end: body.len(),
                    track: 0,
                })
            }
            other => Ok(Self {
                codec: VideoCodec::Other(other as u32),
                keyframe,
                packet: if frame_type == FRAME_TYPE_COMMAND {
                    VideoPacket::Other
                } else {
                    VideoPacket::Frame
                },
                cts_ms: 0,
                header_len: 1,
                data_end: body.len(),
                track: 0,
            }),
        }
    }

    fn parse_enhanced(body: &[u8]) -> Result<Self, MediaError> {
        const WHAT: &str = "enhanced video tag";
        let frame_type = (body[0] >> 4) & 0x07;
        let (packet_type, pos) = skip_modex(WHAT, body, body[0] & 0x0f, 1)?;
        if frame_type == FRAME_TYPE_COMMAND && packet_type != VIDEO_PACKET_METADATA {
            // A command byte (client-side seeking), no FourCC and no picture.
            return Ok(Self {
                codec: VideoCodec::Other(0),
                keyframe: false,
                packet: VideoPacket::Other,
                cts_ms: 0,
                header_len: body.len(),
                data_end: body.len(),
                track: 0,
            });
        }
        let part = if packet_type == VIDEO_PACKET_MULTITRACK {
            multitrack_part(WHAT, body, pos)?
        } else {
            need(WHAT, body, pos + 4)?;
            TrackPart {
                fourcc: fourcc(&body[pos..]),
                track: 0,
                packet: packet_type,
                start: pos + 4,
                end: body.len(),
            }
        };
        let codec = match part.fourcc {
            FOURCC_AVC => VideoCodec::Avc,
            FOURCC_HEVC => VideoCodec::Hevc,
            FOURCC_AV1 => VideoCodec::Av1,
            other => VideoCodec::Other(other),
        };
        let mut header_len = part.start;
        let mut cts_ms = 0;
        let packet = match part.packet {
            0 => VideoPacket::SequenceHeader,
            // CodedFrames: AVC/HEVC carry an SI24 composition time; AV1 and VPx do not.
            1 if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) => {
                if part.end < header_len + 3 {
                    return Err(MediaError::Truncated {
                        what: WHAT,
                        len: part.end,
                        need: header_len + 3,
                    });
                }
                cts_ms = si24(&body[header_len..header_len + 3]);
                header_len += 3;
                VideoPacket::Frame
            }
            // CodedFramesX: composition time 0, implied.
            1 | 3 => VideoPacket::Frame,
            2 => VideoPacket::EndOfSequence,
            _ => VideoPacket::Other,
        };
        let packet = if frame_type == FRAME_TYPE_COMMAND {
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
            data_end: part.end,
            track: part.track,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Opus,
    Flac,
    Mp3,
    Ac3,
    Eac3,
    /// A legacy FLV SoundFormat id (PCM, Nellymoser, G.711, Speex …) or an unknown FourCC.
    Other(u32),
}

impl AudioCodec {
    /// The name used in `/v1/streams`, `callback_ext` and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aac => "aac",
            Self::Opus => "opus",
            Self::Flac => "flac",
            Self::Mp3 => "mp3",
            Self::Ac3 => "ac3",
            Self::Eac3 => "eac3",
            Self::Other(_) => "unknown",
        }
    }

    /// Whether the stream sends a decoder configuration (sequence header) before its frames:
    /// without one, the first frame is all a recorder needs to know the track exists.
    pub fn has_config(self) -> bool {
        matches!(self, Self::Aac | Self::Opus | Self::Flac)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioPacket {
    /// Decoder configuration: AAC AudioSpecificConfig, `OpusHead`, FLAC `STREAMINFO`.
    SequenceHeader,
    Frame,
    SequenceEnd,
    /// E-RTMP v2 channel layout; informative (the configuration carries the channel count).
    MultichannelConfig,
    Other,
}

/// A parsed audio tag header. The codec payload is `body[header_len..data_end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTag {
    pub codec: AudioCodec,
    pub packet: AudioPacket,
    pub header_len: usize,
    /// End of this track's payload in the body (see [`VideoTag::data_end`]).
    pub data_end: usize,
    /// E-RTMP multitrack track id; 0 for the default track and every non-multitrack tag.
    pub track: u8,
}

impl AudioTag {
    /// Decoder configuration rather than a coded frame.
    pub fn is_sequence_header(&self) -> bool {
        self.packet == AudioPacket::SequenceHeader
    }

    /// This track's codec payload.
    pub fn data<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        body.get(self.header_len..self.data_end).unwrap_or_default()
    }

    pub fn parse(body: &[u8]) -> Result<Self, MediaError> {
        need("audio tag", body, 1)?;
        let format = body[0] >> 4;
        match format {
            9 => Self::parse_enhanced(body),
            10 => {
                need("aac audio tag", body, 2)?;
                Ok(Self {
                    codec: AudioCodec::Aac,
                    packet: if body[1] == 0 {
                        AudioPacket::SequenceHeader
                    } else {
                        AudioPacket::Frame
                    },
                    header_len: 2,
                    data_end: body.len(),
                    track: 0,
                })
            }
            _ => Ok(Self {
                codec: match format {
                    2 | 14 => AudioCodec::Mp3,
                    f => AudioCodec::Other(u32::from(f)),
                },
                packet: AudioPacket::Frame,
                header_len: 1,
                data_end: body.len(),
                track: 0,
            }),
        }
    }

    fn parse_enhanced(body: &[u8]) -> Result<Self, MediaError> {
        const WHAT: &str = "enhanced audio tag";
        let (packet_type, pos) = skip_modex(WHAT, body, body[0] & 0x0f, 1)?;
        let part = if packet_type == AUDIO_PACKET_MULTITRACK {
            multitrack_part(WHAT, body, pos)?
        } else {
            need(WHAT, body, pos + 4)?;
            TrackPart {
                fourcc: fourcc(&body[pos..]),
                track: 0,
                packet: packet_type,
                start: pos + 4,
                end: body.len(),
            }
        };
        Ok(Self {
            codec: match part.fourcc {
                FOURCC_AAC => AudioCodec::Aac,
                FOURCC_OPUS => AudioCodec::Opus,
                FOURCC_FLAC => AudioCodec::Flac,
                FOURCC_MP3 => AudioCodec::Mp3,
                FOURCC_AC3 => AudioCodec::Ac3,
                FOURCC_EAC3 => AudioCodec::Eac3,
                other => AudioCodec::Other(other),
            },
            packet: match part.packet {
                0 => AudioPacket::SequenceHeader,
                1 => AudioPacket::Frame,
                2 => AudioPacket::SequenceEnd,
                4 => AudioPacket::MultichannelConfig,
                _ => AudioPacket::Other,
            },
            header_len: part.start,
            data_end: part.end,
            track: part.track,
        })
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
        assert_eq!((t.header_len, t.data_end, t.track), (5, 9, 0));
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

    /// What ffmpeg 9 sends for AV1: SequenceStart, a Metadata (colorInfo) command-type frame,
    /// CodedFrames without composition time.
    #[test]
    fn enhanced_av1_packets() {
        let sh = VideoTag::parse(b"\x90av01\x81\x00\x0c").unwrap();
        assert_eq!(
            (sh.codec, sh.packet, sh.header_len),
            (VideoCodec::Av1, VideoPacket::SequenceHeader, 5)
        );
        let meta = VideoTag::parse(b"\xd4av01\x02\x00\x09colorInfo").unwrap();
        assert_eq!(meta.packet, VideoPacket::Other);
        let key = VideoTag::parse(b"\x91av01\x12\x00").unwrap();
        assert_eq!(
            (key.keyframe, key.packet, key.cts_ms),
            (true, VideoPacket::Frame, 0)
        );
        assert_eq!(key.data(b"\x91av01\x12\x00"), b"\x12\x00");
        // A command frame (client-side seek) carries a byte, no FourCC.
        let cmd = VideoTag::parse(&[0xd1, 0]).unwrap();
        assert_eq!(cmd.packet, VideoPacket::Other);
    }

    #[test]
    fn video_multitrack_and_modex() {
        // ManyTracks, CodedFrames, avc1: track 1 (3 bytes of cts + 2 of data), then track 0.
        let mut b = vec![0x80 | 0x10 | 6, 0x10 | 1];
        b.extend_from_slice(b"avc1");
        b.extend_from_slice(&[1, 0, 0, 5, 0, 0, 0, 0xaa, 0xbb]);
        b.extend_from_slice(&[0, 0, 0, 4, 0, 0, 33, 0xcc]);
        let t = VideoTag::parse(&b).unwrap();
        assert_eq!((t.track, t.codec, t.cts_ms), (0, VideoCodec::Avc, 33));
        assert_eq!(t.data(&b), &[0xcc]);
        // OneTrack of track 2 only.
        let mut one = vec![0x80 | 0x20 | 6, 0x01];
        one.extend_from_slice(b"hvc1");
        one.extend_from_slice(&[2, 0, 0, 0, 0xdd]);
        let t = VideoTag::parse(&one).unwrap();
        assert_eq!((t.track, t.codec, t.keyframe), (2, VideoCodec::Hevc, false));
        assert_eq!(t.data(&one), &[0xdd]);
        // ModEx (TimestampOffsetNano, 3 bytes) in front of CodedFrames.
        let mut m = vec![0x80 | 0x10 | 7, 2, 0, 1, 0x2c, 0x01];
        m.extend_from_slice(b"hvc1");
        m.extend_from_slice(&[0, 0, 40, 0xee]);
        let t = VideoTag::parse(&m).unwrap();
        assert_eq!((t.packet, t.cts_ms, t.track), (VideoPacket::Frame, 40, 0));
        assert_eq!(t.data(&m), &[0xee]);
    }

    #[test]
    fn aac_headers() {
        let sh = AudioTag::parse(&[0xaf, 0, 0x11, 0x90]).unwrap();
        assert!(sh.is_sequence_header());
        let raw = AudioTag::parse(&[0xaf, 1, 1, 2]).unwrap();
        assert!(!raw.is_sequence_header());
        assert_eq!(raw.header_len, 2);
        assert_eq!(AudioTag::parse(&[0x2f]).unwrap().codec, AudioCodec::Mp3);
        assert_eq!(
            AudioTag::parse(&[0x7f]).unwrap().codec,
            AudioCodec::Other(7)
        );
    }

    /// The E-RTMP v2 audio tags ffmpeg 9 sends: 5.1 AAC's MultichannelConfig, a second AAC
    /// track as OneTrack multitrack, Opus.
    #[test]
    fn enhanced_audio_from_ffmpeg_9() {
        let mc = AudioTag::parse(b"\x94mp4a\x01\x06\x00\x00\x00\x3f").unwrap();
        assert_eq!(
            (mc.codec, mc.packet, mc.track),
            (AudioCodec::Aac, AudioPacket::MultichannelConfig, 0)
        );
        let t1 = b"\x95\x00mp4a\x01\x11\x88\x56\xe5\x00";
        let sh = AudioTag::parse(t1).unwrap();
        assert_eq!(
            (sh.codec, sh.packet, sh.track),
            (AudioCodec::Aac, AudioPacket::SequenceHeader, 1)
        );
        assert_eq!(sh.data(t1), b"\x11\x88\x56\xe5\x00");
        let f1 = AudioTag::parse(b"\x95\x01mp4a\x01\xde\x04").unwrap();
        assert_eq!((f1.packet, f1.track), (AudioPacket::Frame, 1));
        let opus = AudioTag::parse(b"\x90OpusOpusHead\x01\x01").unwrap();
        assert_eq!(
            (opus.codec, opus.packet, opus.header_len),
            (AudioCodec::Opus, AudioPacket::SequenceHeader, 5)
        );
        let of = AudioTag::parse(b"\x91Opus\xf8\x72").unwrap();
        assert_eq!(
            (of.codec, of.packet),
            (AudioCodec::Opus, AudioPacket::Frame)
        );
    }

    #[test]
    fn audio_many_tracks_picks_track_0() {
        // ManyTracksManyCodecs, CodedFrames: track 3 Opus, then track 0 AAC.
        let mut b = vec![0x95, 0x21];
        b.extend_from_slice(b"Opus");
        b.extend_from_slice(&[3, 0, 0, 1, 0x11]);
        b.extend_from_slice(b"mp4a");
        b.extend_from_slice(&[0, 0, 0, 2, 0x22, 0x33]);
        let t = AudioTag::parse(&b).unwrap();
        assert_eq!(
            (t.codec, t.track, t.packet),
            (AudioCodec::Aac, 0, AudioPacket::Frame)
        );
        assert_eq!(t.data(&b), &[0x22, 0x33]);
        // A declared track size past the end is an error, not a panic.
        let bad = [0x95, 0x11, b'm', b'p', b'4', b'a', 0, 0, 0, 9, 1];
        assert!(AudioTag::parse(&bad).is_err());
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(VideoTag::parse(&[]).is_err());
        assert!(VideoTag::parse(&[0x17, 1]).is_err());
        assert!(AudioTag::parse(&[0xaf]).is_err());
        assert!(AudioTag::parse(&[0x90, b'O']).is_err());
        assert!(VideoTag::parse(&[0x97, 255, 1]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(t) = VideoTag::parse(&b) {
                prop_assert!(t.header_len <= t.data_end.max(t.header_len));
                prop_assert!(t.data_end <= b.len());
                let _ = t.data(&b);
            }
            if let Ok(t) = AudioTag::parse(&b) {
                prop_assert!(t.data_end <= b.len());
                let _ = t.data(&b);
            }
        }
    }
}
