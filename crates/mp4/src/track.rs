//! Track configuration, sample entries (`stsd`) and the `trak` skeleton shared by the spool's
//! init segment and the final faststart `moov`.

use crate::Mp4Error;
use crate::boxes::{BoxWriter, MATRIX};
use bytes::Bytes;
use livetape_media::VideoCodec;
use livetape_media::aac::AacConfig;
use livetape_media::avc::AvcConfig;
use livetape_media::hevc::HevcConfig;

/// Video timescale: 90 kHz, so millisecond timestamps map exactly (`ms * 90`).
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// `trun`/`trex` sample flags (ISO 14496-12 §8.8.3.1).
pub(crate) const FLAGS_SYNC: u32 = 0x0200_0000; // depends on no other sample
pub(crate) const FLAGS_NON_SYNC: u32 = 0x0101_0000; // depends on others, is non-sync
pub(crate) const FLAG_IS_NON_SYNC: u32 = 0x0001_0000;

/// The decoder configuration of a video track. Non-exhaustive: another codec only needs a new
/// variant and its sample entry below; the finaliser copies `stsd` verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VideoCodecConfig {
    /// H.264: the AVCDecoderConfigurationRecord (FLV sequence header payload).
    Avc { avcc: Bytes },
    /// H.265: the HEVCDecoderConfigurationRecord (Enhanced RTMP `hvc1` SequenceStart payload).
    /// Written as an `hvc1` sample entry: parameter sets live in `hvcC` only, which is what
    /// Apple players require and what RTMP encoders send (they strip VPS/SPS/PPS from frames).
    Hevc { hvcc: Bytes },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoTrack {
    pub codec: VideoCodecConfig,
    pub width: u32,
    pub height: u32,
}

impl VideoTrack {
    /// An H.264 track from its `avcC` record; dimensions come from the SPS.
    pub fn avc(avcc: Bytes) -> Result<Self, Mp4Error> {
        let c = AvcConfig::parse(&avcc)?;
        Ok(Self {
            codec: VideoCodecConfig::Avc { avcc },
            width: c.width,
            height: c.height,
        })
    }

    /// An H.265 track from its `hvcC` record; dimensions come from the SPS (cropped).
    pub fn hevc(hvcc: Bytes) -> Result<Self, Mp4Error> {
        let c = HevcConfig::parse(&hvcc)?;
        Ok(Self {
            codec: VideoCodecConfig::Hevc { hvcc },
            width: c.width,
            height: c.height,
        })
    }

    pub(crate) fn media_codec(&self) -> VideoCodec {
        match self.codec {
            VideoCodecConfig::Avc { .. } => VideoCodec::Avc,
            VideoCodecConfig::Hevc { .. } => VideoCodec::Hevc,
        }
    }

    fn write_stsd(&self, w: &mut BoxWriter) {
        let (entry, config_kind, config): (&[u8; 4], &[u8; 4], &Bytes) = match &self.codec {
            VideoCodecConfig::Avc { avcc } => (b"avc1", b"avcC", avcc),
            VideoCodecConfig::Hevc { hvcc } => (b"hvc1", b"hvcC", hvcc),
        };
        w.full(b"stsd", 0, 0, |w| {
            w.u32(1);
            w.boxed(entry, |w| {
                w.zeros(6);
                w.u16(1); // data_reference_index
                w.zeros(16); // pre_defined, reserved, pre_defined[3]
                w.u16(u16::try_from(self.width).unwrap_or(u16::MAX));
                w.u16(u16::try_from(self.height).unwrap_or(u16::MAX));
                w.u32(0x0048_0000); // 72 dpi
                w.u32(0x0048_0000);
                w.u32(0);
                w.u16(1); // frame_count
                w.zeros(32); // compressorname
                w.u16(0x0018); // depth
                w.u16(0xffff); // pre_defined = -1
                w.boxed(config_kind, |w| w.bytes(config));
            });
        });
    }
}

/// An AAC track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioTrack {
    /// AudioSpecificConfig (FLV AAC sequence header payload).
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioTrack {
    pub fn aac(asc: Bytes) -> Result<Self, Mp4Error> {
        let c = AacConfig::parse(&asc)?;
        let channels = match c.channel_config {
            // 0 = defined in a PCE; stereo is the safe guess for the sample entry field.
            0 => 2,
            7 => 8,
            n => u16::from(n),
        };
        Ok(Self {
            asc,
            sample_rate: c.sample_rate,
            channels,
        })
    }

    fn write_stsd(&self, w: &mut BoxWriter, track_id: u32) {
        w.full(b"stsd", 0, 0, |w| {
            w.u32(1);
            w.boxed(b"mp4a", |w| {
                w.zeros(6);
                w.u16(1);
                w.zeros(8);
                w.u16(self.channels);
                w.u16(16); // samplesize
                w.zeros(4);
                // 16.16 field; rates above 65535 Hz do not fit, the ASC carries the real one.
                w.u32(self.sample_rate.min(0xffff) << 16);
                w.full(b"esds", 0, 0, |w| w.bytes(&esds_body(&self.asc, track_id)));
            });
        });
    }
}

/// ES_Descriptor (ISO 14496-1 §7.2.6.5) carrying the AudioSpecificConfig.
fn esds_body(asc: &[u8], track_id: u32) -> Vec<u8> {
    fn desc(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        let len = body.len();
        // Expandable size: 7 bits per byte, high bit = more bytes follow.
        let mut groups = [0u8; 4];
        let mut n = 0;
        let mut l = len;
        loop {
            groups[n] = (l & 0x7f) as u8;
            n += 1;
            l >>= 7;
            if l == 0 || n == groups.len() {
                break;
            }
        }
        for i in (0..n).rev() {
            out.push(groups[i] | if i > 0 { 0x80 } else { 0 });
        }
        out.extend_from_slice(body);
    }
    let mut dsi = Vec::new();
    desc(&mut dsi, 0x05, asc);
    let mut dcd_body = vec![0x40, 0x15]; // MPEG-4 audio, AudioStream, upstream 0, reserved 1
    dcd_body.extend_from_slice(&[0; 3 + 4 + 4]); // bufferSizeDB, maxBitrate, avgBitrate
    dcd_body.extend_from_slice(&dsi);
    let mut es_body = Vec::new();
    es_body.extend_from_slice(&u16::try_from(track_id).unwrap_or(0).to_be_bytes());
    es_body.push(0);
    desc(&mut es_body, 0x04, &dcd_body);
    desc(&mut es_body, 0x06, &[0x02]); // SLConfig: predefined MP4
    let mut out = Vec::new();
    desc(&mut out, 0x03, &es_body);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrackKind {
    Video,
    Audio,
}

/// What both the spool `moov` and the final `moov` need to know about a track.
#[derive(Clone, Debug)]
pub(crate) struct TrackInfo {
    pub(crate) track_id: u32,
    pub(crate) kind: TrackKind,
    pub(crate) timescale: u32,
    /// 16.16 fixed point, as in `tkhd`.
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The whole `stsd` box, copied verbatim into the final file.
    pub(crate) stsd: Bytes,
    /// `trex` defaults for samples whose `trun` omits a field.
    pub(crate) default_duration: u32,
    pub(crate) default_size: u32,
    pub(crate) default_flags: u32,
}

impl TrackInfo {
    pub(crate) fn video(track_id: u32, t: &VideoTrack) -> Self {
        let mut w = BoxWriter::default();
        t.write_stsd(&mut w);
        Self {
            track_id,
            kind: TrackKind::Video,
            timescale: VIDEO_TIMESCALE,
            width: t.width.min(0xffff) << 16,
            height: t.height.min(0xffff) << 16,
            stsd: w.buf.into(),
            default_duration: 0,
            default_size: 0,
            default_flags: FLAGS_NON_SYNC,
        }
    }

    pub(crate) fn audio(track_id: u32, t: &AudioTrack) -> Self {
        let mut w = BoxWriter::default();
        t.write_stsd(&mut w, track_id);
        Self {
            track_id,
            kind: TrackKind::Audio,
            timescale: t.sample_rate,
            width: 0,
            height: 0,
            stsd: w.buf.into(),
            default_duration: 0,
            default_size: 0,
            default_flags: FLAGS_SYNC,
        }
    }
}

/// Track timing for `tkhd`/`mdhd`/`elst`.
#[derive(Default)]
pub(crate) struct TrakTiming {
    /// In the media timescale.
    pub(crate) media_duration: u64,
    /// In the movie timescale (ms), edits included.
    pub(crate) movie_duration: u64,
    /// `(segment_duration_ms, media_time)`; media_time −1 is an empty edit.
    pub(crate) edits: Vec<(u64, i64)>,
}

pub(crate) fn write_trak(
    w: &mut BoxWriter,
    t: &TrackInfo,
    timing: &TrakTiming,
    tables: impl FnOnce(&mut BoxWriter),
) {
    w.boxed(b"trak", |w| {
        let v1 = timing.movie_duration > u64::from(u32::MAX);
        w.full(b"tkhd", u8::from(v1), 0x3, |w| {
            if v1 {
                w.zeros(16);
                w.u32(t.track_id);
                w.u32(0);
                w.u64(timing.movie_duration);
            } else {
                w.zeros(8);
                w.u32(t.track_id);
                w.u32(0);
                w.u32(timing.movie_duration as u32);
            }
            w.zeros(8);
            w.u16(0); // layer
            w.u16(0); // alternate_group
            w.u16(if t.kind == TrackKind::Audio {
                0x0100
            } else {
                0
            });
            w.u16(0);
            for m in MATRIX {
                w.u32(m);
            }
            w.u32(t.width);
            w.u32(t.height);
        });
        if !timing.edits.is_empty() {
            write_edts(w, &timing.edits);
        }
        w.boxed(b"mdia", |w| {
            let v1 = timing.media_duration > u64::from(u32::MAX);
            w.full(b"mdhd", u8::from(v1), 0, |w| {
                if v1 {
                    w.zeros(16);
                    w.u32(t.timescale);
                    w.u64(timing.media_duration);
                } else {
                    w.zeros(8);
                    w.u32(t.timescale);
                    w.u32(timing.media_duration as u32);
                }
                w.u16(0x55c4); // 'und'
                w.u16(0);
            });
            let (handler, name): (&[u8; 4], &[u8]) = match t.kind {
                TrackKind::Video => (b"vide", b"VideoHandler\0"),
                TrackKind::Audio => (b"soun", b"SoundHandler\0"),
            };
            w.full(b"hdlr", 0, 0, |w| {
                w.u32(0);
                w.bytes(handler);
                w.zeros(12);
                w.bytes(name);
            });
            w.boxed(b"minf", |w| {
                match t.kind {
                    TrackKind::Video => w.full(b"vmhd", 0, 1, |w| w.zeros(8)),
                    TrackKind::Audio => w.full(b"smhd", 0, 0, |w| w.zeros(4)),
                }
                w.boxed(b"dinf", |w| {
                    w.full(b"dref", 0, 0, |w| {
                        w.u32(1);
                        w.full(b"url ", 0, 1, |_| {});
                    });
                });
                w.boxed(b"stbl", |w| {
                    w.bytes(&t.stsd);
                    tables(w);
                });
            });
        });
    });
}

fn write_edts(w: &mut BoxWriter, edits: &[(u64, i64)]) {
    let v1 = edits
        .iter()
        .any(|&(d, m)| d > u64::from(u32::MAX) || i32::try_from(m).is_err());
    w.boxed(b"edts", |w| {
        w.full(b"elst", u8::from(v1), 0, |w| {
            w.u32(edits.len() as u32);
            for &(d, m) in edits {
                if v1 {
                    w.u64(d);
                    w.u64(m as u64);
                } else {
                    w.u32(d as u32);
                    w.i32(m as i32);
                }
                w.u32(0x0001_0000); // media_rate 1.0
            }
        });
    });
}

/// The init segment of the spool: `ftyp` + `moov` with empty tables and `mvex/trex`.
pub(crate) fn init_segment(tracks: &[TrackInfo]) -> Vec<u8> {
    let mut w = BoxWriter::with_capacity(1024);
    crate::boxes::write_ftyp(&mut w, &[b"isom", b"iso6", b"mp41"]);
    w.boxed(b"moov", |w| {
        let next = tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1;
        crate::boxes::write_mvhd(w, 0, next);
        for t in tracks {
            write_trak(w, t, &TrakTiming::default(), |w| {
                w.full(b"stts", 0, 0, |w| w.u32(0));
                w.full(b"stsc", 0, 0, |w| w.u32(0));
                w.full(b"stsz", 0, 0, |w| w.zeros(8));
                w.full(b"stco", 0, 0, |w| w.u32(0));
            });
        }
        w.boxed(b"mvex", |w| {
            for t in tracks {
                w.full(b"trex", 0, 0, |w| {
                    w.u32(t.track_id);
                    w.u32(1);
                    w.u32(t.default_duration);
                    w.u32(t.default_size);
                    w.u32(t.default_flags);
                });
            }
        });
    });
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esds_lengths_are_consistent() {
        let b = esds_body(&[0x11, 0x90], 2);
        // ES_Descriptor tag, length = rest.
        assert_eq!(b[0], 0x03);
        assert_eq!(usize::from(b[1]), b.len() - 2);
        // ASC at the end before the SLConfig descriptor.
        assert_eq!(&b[b.len() - 5..], &[0x11, 0x90, 0x06, 0x01, 0x02]);
    }

    #[test]
    fn long_descriptor_length_uses_continuation_bytes() {
        let asc = vec![0u8; 200];
        let b = esds_body(&asc, 1);
        assert_eq!(b[0], 0x03);
        assert_eq!(b[1] & 0x80, 0x80);
        let len = (usize::from(b[1] & 0x7f) << 7) | usize::from(b[2]);
        assert_eq!(len, b.len() - 3);
    }
}
