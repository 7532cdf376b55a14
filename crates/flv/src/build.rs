//! Builds Enhanced FLV (E-RTMP v1, FourCC `hvc1`) files from elementary streams: an H.265
//! Annex-B stream plus optional AAC in ADTS. Used as a test fixture builder, and by a publishing
//! client that needs the same tag bodies OBS ≥ 29.1 / ffmpeg ≥ 6.1 send.
//!
//! Video: one E-RTMP `SequenceStart` tag carrying an `hvcC` built from the stream's first
//! VPS/SPS/PPS, then one `CodedFramesX` tag (no composition time) per access unit, its NAL units
//! 4-byte length-prefixed, parameter sets and AUDs left out (they live in `hvcC`). Since
//! `CodedFramesX` implies pts = dts, streams that reorder pictures (B-frames) are rejected.
//! Audio: the legacy AAC tags (`0xAF 0x00` + AudioSpecificConfig, then `0xAF 0x01` + raw frame).

use crate::amf0::Amf0Value;
use crate::{FlvError, file_header, write_tag};
use bytes::Bytes;
use livetape_media::hevc::{self, HevcConfig, NAL_AUD, NAL_IRAP, NAL_PPS, NAL_SPS, NAL_VPS};
use livetape_media::{MediaError, MediaKind};

/// E-RTMP: IsExHeader bit of the first video tag byte.
const EX_HEADER: u8 = 0x80;
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES_X: u8 = 3;
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const FOURCC_HVC1: &[u8; 4] = b"hvc1";
/// SoundFormat 10 (AAC), 44 kHz, 16-bit, stereo: the fixed first byte of every FLV AAC tag.
const AAC_TAG_BYTE: u8 = 0xaf;
const ADTS_HEADER_LEN: usize = 7;
const ADTS_CRC_LEN: usize = 2;
const AAC_SAMPLES_PER_FRAME: u64 = 1024;
/// Largest frame rate accepted (so `i * 1000 / fps` keeps distinct timestamps).
pub const MAX_FPS: u32 = 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("frame rate {0} out of range 1..={MAX_FPS}")]
    BadFrameRate(u32),
    #[error("HEVC stream has no {0}")]
    Missing(&'static str),
    #[error("HEVC stream reorders pictures (B-frames); CodedFramesX needs pts = dts")]
    Reordering,
    #[error("HEVC parameter sets: {0}")]
    Hevc(#[from] MediaError),
    #[error("ADTS at byte {offset}: {reason}")]
    Adts { offset: usize, reason: &'static str },
    #[error("FLV: {0}")]
    Flv(#[from] FlvError),
}

/// An Enhanced FLV file (header, `onMetaData`, sequence headers, interleaved tags) from an H.265
/// Annex-B stream at `fps` and an optional AAC ADTS stream. Video timestamps are
/// `i * 1000 / fps`, audio `i * 1024 * 1000 / sample_rate` (ms, rounded down).
pub fn eflv_from_annexb_hevc(
    hevc_annexb: &[u8],
    fps: u32,
    aac: Option<&[u8]>,
) -> Result<Vec<u8>, BuildError> {
    if !(1..=MAX_FPS).contains(&fps) {
        return Err(BuildError::BadFrameRate(fps));
    }
    let video = hevc_tags(hevc_annexb, fps)?;
    let audio = aac.map(aac_tags).transpose()?;
    let config = HevcConfig::parse(video.sequence_start.get(5..).unwrap_or_default())?;

    let duration_ms = video.frames.last().map_or(0, |f| f.0) + 1000 / u64::from(fps);
    let mut meta = vec![
        ("duration", duration_ms as f64 / 1000.0),
        ("width", f64::from(config.width)),
        ("height", f64::from(config.height)),
        ("framerate", f64::from(fps)),
        // E-RTMP: videocodecid is the FourCC as a number.
        ("videocodecid", f64::from(u32::from_be_bytes(*FOURCC_HVC1))),
    ];
    if let Some(a) = &audio {
        meta.push(("audiocodecid", 10.0));
        meta.push(("audiosamplerate", f64::from(a.sample_rate)));
    }
    let mut script = Vec::new();
    Amf0Value::String("onMetaData".into()).encode(&mut script);
    Amf0Value::EcmaArray(
        meta.into_iter()
            .map(|(k, v)| (k.to_owned(), Amf0Value::Number(v)))
            .collect(),
    )
    .encode(&mut script);

    let mut out = file_header(audio.is_some(), true).to_vec();
    let put = |out: &mut Vec<u8>, kind, ts: u64, body: Bytes| {
        let offset = out.len() as u64;
        // FLV timestamps are 32-bit; a fixture never gets near 49 days.
        write_tag(out, kind, ts as u32, &body, offset).map(|_| ())
    };
    put(&mut out, MediaKind::Script, 0, Bytes::from(script))?;
    put(&mut out, MediaKind::Video, 0, video.sequence_start)?;
    let audio_frames = match audio {
        Some(a) => {
            put(&mut out, MediaKind::Audio, 0, a.sequence_header)?;
            a.frames
        }
        None => Vec::new(),
    };
    // Merge by timestamp; video first on ties, as encoders emit a picture before its audio.
    let (mut v, mut a) = (
        video.frames.into_iter().peekable(),
        audio_frames.into_iter().peekable(),
    );
    loop {
        let take_video = match (v.peek(), a.peek()) {
            (Some(vf), Some(af)) => vf.0 <= af.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (kind, next) = if take_video {
            (MediaKind::Video, v.next())
        } else {
            (MediaKind::Audio, a.next())
        };
        let Some((ts, body)) = next else { break };
        put(&mut out, kind, ts, body)?;
    }
    Ok(out)
}

struct VideoTags {
    sequence_start: Bytes,
    /// (timestamp ms, tag body)
    frames: Vec<(u64, Bytes)>,
}

/// Groups NAL units into access units (H.265 §7.4.2.4.4) and builds the tag bodies.
fn hevc_tags(annexb: &[u8], fps: u32) -> Result<VideoTags, BuildError> {
    let (mut vps, mut sps, mut pps) = (None, None, None);
    let mut frames = Vec::new();
    // The access unit being collected: tag body and whether it has a picture yet.
    let mut body: Vec<u8> = Vec::new();
    let mut has_vcl = false;
    let mut key = false;
    let finish = |body: &mut Vec<u8>, key: bool, frames: &mut Vec<(u64, Bytes)>| {
        let ft = if key { FRAME_KEY } else { FRAME_INTER };
        if let Some(b0) = body.first_mut() {
            *b0 = EX_HEADER | (ft << 4) | PACKET_CODED_FRAMES_X;
        }
        let ts = frames.len() as u64 * 1000 / u64::from(fps);
        frames.push((ts, Bytes::from(std::mem::take(body))));
    };
    for nal in hevc::split_annexb(annexb) {
        let Some(ty) = hevc::nal_type(nal) else {
            continue;
        };
        let vcl = ty < 32;
        // A picture's first slice has first_slice_segment_in_pic_flag (first payload bit) set.
        let first_slice = vcl && nal.get(2).is_some_and(|b| b & 0x80 != 0);
        let starts_au = first_slice
            || matches!(ty, NAL_VPS | NAL_SPS | NAL_PPS | NAL_AUD | 39 | 41..=44 | 48..=55);
        if has_vcl && starts_au {
            finish(&mut body, key, &mut frames);
            has_vcl = false;
            key = false;
        }
        match ty {
            NAL_VPS => {
                vps.get_or_insert(nal);
                continue;
            }
            NAL_SPS => {
                sps.get_or_insert(nal);
                continue;
            }
            NAL_PPS => {
                pps.get_or_insert(nal);
                continue;
            }
            NAL_AUD => continue,
            _ => {}
        }
        if body.is_empty() {
            body.push(0); // frame type byte, set in `finish`
            body.extend_from_slice(FOURCC_HVC1);
        }
        // An oversized NAL saturates here and the tag is then rejected by `write_tag`.
        let len = u32::try_from(nal.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(nal);
        has_vcl |= vcl;
        key |= NAL_IRAP.contains(&ty);
    }
    if has_vcl {
        finish(&mut body, key, &mut frames);
    }
    if frames.is_empty() {
        return Err(BuildError::Missing("picture"));
    }
    let hvcc = hevc::build_hvcc(
        vps.ok_or(BuildError::Missing("VPS"))?,
        sps.ok_or(BuildError::Missing("SPS"))?,
        pps.ok_or(BuildError::Missing("PPS"))?,
    )?;
    if HevcConfig::parse(&hvcc)?.max_num_reorder_pics > 0 {
        return Err(BuildError::Reordering);
    }
    let mut seq = vec![EX_HEADER | (FRAME_KEY << 4) | PACKET_SEQUENCE_START];
    seq.extend_from_slice(FOURCC_HVC1);
    seq.extend_from_slice(&hvcc);
    Ok(VideoTags {
        sequence_start: Bytes::from(seq),
        frames,
    })
}

struct AudioTags {
    sample_rate: u32,
    sequence_header: Bytes,
    frames: Vec<(u64, Bytes)>,
}

/// Splits an ADTS stream into raw AAC frames; the AudioSpecificConfig comes from the first
/// header (all frames must agree on it).
fn aac_tags(adts: &[u8]) -> Result<AudioTags, BuildError> {
    let mut pos = 0;
    let mut asc: Option<[u8; 2]> = None;
    let mut frames = Vec::new();
    let mut sample_rate = 0;
    while pos < adts.len() {
        let err = |reason| BuildError::Adts {
            offset: pos,
            reason,
        };
        let h = adts
            .get(pos..pos + ADTS_HEADER_LEN)
            .ok_or(err("truncated header"))?;
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return Err(err("no sync word"));
        }
        let protection_absent = h[1] & 1 == 1;
        let object_type = (h[2] >> 6) + 1;
        let sf_index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if h[6] & 0x03 != 0 {
            return Err(err("more than one raw data block per frame"));
        }
        let header_len = ADTS_HEADER_LEN + if protection_absent { 0 } else { ADTS_CRC_LEN };
        if frame_len <= header_len {
            return Err(err("frame length shorter than its header"));
        }
        let raw = adts
            .get(pos + header_len..pos + frame_len)
            .ok_or(err("truncated frame"))?;
        let this = [
            (object_type << 3) | (sf_index >> 1),
            ((sf_index & 1) << 7) | (channels << 3),
        ];
        match asc {
            None => {
                sample_rate = livetape_media::aac::AacConfig::parse(&this)?.sample_rate;
                asc = Some(this);
            }
            Some(a) if a != this => return Err(err("configuration changes mid-stream")),
            Some(_) => {}
        }
        let ts = frames.len() as u64 * AAC_SAMPLES_PER_FRAME * 1000 / u64::from(sample_rate);
        let mut body = Vec::with_capacity(2 + raw.len());
        body.extend_from_slice(&[AAC_TAG_BYTE, 1]);
        body.extend_from_slice(raw);
        frames.push((ts, Bytes::from(body)));
        pos += frame_len;
    }
    let asc = asc.ok_or(BuildError::Adts {
        offset: 0,
        reason: "no frames",
    })?;
    Ok(AudioTags {
        sample_rate,
        sequence_header: Bytes::copy_from_slice(&[AAC_TAG_BYTE, 0, asc[0], asc[1]]),
        frames,
    })
}
