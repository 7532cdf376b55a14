//! A minimal MPEG-TS (ISO 13818-1) muxer: PAT/PMT, PES packetisation with PTS/DTS, PCR and
//! adaptation-field stuffing, plus a PES timestamp probe for crash recovery.

use bytes::BytesMut;

pub(crate) const PACKET: usize = 188;
const SYNC: u8 = 0x47;
pub(crate) const PID_PAT: u16 = 0;
pub(crate) const PID_PMT: u16 = 0x1000;
pub(crate) const PID_VIDEO: u16 = 0x100;
pub(crate) const PID_AUDIO: u16 = 0x101;
pub(crate) const STREAM_ID_VIDEO: u8 = 0xe0;
pub(crate) const STREAM_ID_AUDIO: u8 = 0xc0;
pub(crate) const STREAM_TYPE_AAC: u8 = 0x0f;
/// Timestamps are 33-bit 90 kHz values.
const TS_MASK: u64 = (1 << 33) - 1;

/// Table-less CRC-32/MPEG-2: PSI is written once per segment, speed is irrelevant.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One PES to packetise: where it goes, its timestamps (90 kHz) and the adaptation-field
/// options for its first TS packet.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PesStart {
    pub(crate) pid: u16,
    pub(crate) stream_id: u8,
    pub(crate) pts: u64,
    pub(crate) dts: u64,
    /// 90 kHz PCR base to put in the adaptation field.
    pub(crate) pcr: Option<u64>,
    pub(crate) random_access: bool,
    /// Adaptation-field discontinuity_indicator: marks the first PES after a resume so that
    /// recovery can find `EXT-X-DISCONTINUITY` points from the files alone.
    pub(crate) discontinuity: bool,
}

#[derive(Debug)]
pub(crate) struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    pmt_version: u8,
    pmt_streams: [(u8, u16); 2],
    pmt_len: usize,
}

impl TsMuxer {
    pub(crate) fn new() -> Self {
        Self {
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            pmt_version: 0,
            pmt_streams: [(0, 0); 2],
            pmt_len: 0,
        }
    }

    fn cc(&mut self, pid: u16) -> &mut u8 {
        match pid {
            PID_PAT => &mut self.cc_pat,
            PID_PMT => &mut self.cc_pmt,
            PID_VIDEO => &mut self.cc_video,
            _ => &mut self.cc_audio,
        }
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = self.cc(pid);
        let v = *cc;
        *cc = (v + 1) & 0x0f;
        v
    }

    /// Sets the program's elementary streams; bumps the PMT version when they change.
    pub(crate) fn set_streams(&mut self, video: Option<u8>, audio: bool) {
        let mut streams = [(0u8, 0u16); 2];
        let mut n = 0;
        if let Some(t) = video {
            streams[n] = (t, PID_VIDEO);
            n += 1;
        }
        if audio {
            streams[n] = (STREAM_TYPE_AAC, PID_AUDIO);
            n += 1;
        }
        if (streams, n) != (self.pmt_streams, self.pmt_len) {
            if self.pmt_len != 0 {
                self.pmt_version = (self.pmt_version + 1) & 0x1f;
            }
            self.pmt_streams = streams;
            self.pmt_len = n;
        }
    }

    /// The PID that carries the PCR: video when present, else audio.
    pub(crate) fn pcr_pid(&self) -> u16 {
        if self.pmt_streams[..self.pmt_len]
            .iter()
            .any(|s| s.1 == PID_VIDEO)
        {
            PID_VIDEO
        } else {
            PID_AUDIO
        }
    }

    fn write_section(&mut self, out: &mut BytesMut, pid: u16, section: &[u8]) {
        let cc = self.next_cc(pid);
        let start = out.len();
        out.extend_from_slice(&[SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0]);
        out.extend_from_slice(section);
        out.extend_from_slice(&crc32_mpeg2(section).to_be_bytes());
        out.resize(start + PACKET, 0xff);
    }

    /// Writes PAT then PMT, one packet each.
    pub(crate) fn write_psi(&mut self, out: &mut BytesMut) {
        // section_length counts from after itself through the CRC.
        let pat = [
            0x00,
            0xb0,
            13,
            0x00,
            0x01, // transport_stream_id
            0xc1, // version 0, current
            0,
            0,
            0x00,
            0x01, // program 1
            0xe0 | (PID_PMT >> 8) as u8,
            PID_PMT as u8,
        ];
        self.write_section(out, PID_PAT, &pat);

        let mut pmt = [0u8; 12 + 5 * 2];
        let n = self.pmt_len;
        let section_len = 9 + 5 * n + 4;
        let pcr_pid = self.pcr_pid();
        pmt[..12].copy_from_slice(&[
            0x02,
            0xb0,
            section_len as u8,
            0x00,
            0x01, // program_number
            0xc1 | (self.pmt_version << 1),
            0,
            0,
            0xe0 | (pcr_pid >> 8) as u8,
            pcr_pid as u8,
            0xf0,
            0x00, // program_info_length 0
        ]);
        for (i, (stream_type, pid)) in self.pmt_streams[..n].iter().enumerate() {
            pmt[12 + 5 * i..17 + 5 * i].copy_from_slice(&[
                *stream_type,
                0xe0 | (pid >> 8) as u8,
                *pid as u8,
                0xf0,
                0x00,
            ]);
        }
        self.write_section(out, PID_PMT, &pmt[..12 + 5 * n]);
    }

    /// Writes an adaptation-field-only packet carrying a PCR (keeps the PCR interval bounded
    /// when the PCR PID is sparse, e.g. low frame-rate video).
    pub(crate) fn write_pcr_only(&mut self, out: &mut BytesMut, pid: u16, pcr: u64) {
        // CC does not advance on packets without payload; reuse the last value.
        let cc = self.cc(pid).wrapping_sub(1) & 0x0f;
        let start = out.len();
        out.extend_from_slice(&[SYNC, (pid >> 8) as u8, pid as u8, 0x20 | cc, 183, 0x10]);
        out.extend_from_slice(&pcr_bytes(pcr));
        out.resize(start + PACKET, 0xff);
    }

    /// Packetises one PES (`es` is the whole elementary-stream payload) onto `pid`.
    pub(crate) fn write_pes(&mut self, out: &mut BytesMut, start: PesStart, es: &[&[u8]]) {
        let PesStart {
            pid,
            stream_id,
            pts,
            dts,
            ..
        } = start;
        let es_len: usize = es.iter().map(|s| s.len()).sum();
        let mut hdr = [0u8; 19];
        let with_dts = pts != dts;
        let hdr_data_len = if with_dts { 10 } else { 5 };
        let pes_len = 3 + hdr_data_len + es_len;
        // 0 = unbounded, allowed only for video, which is the only stream that gets this big.
        let pes_len = if pes_len > 0xffff { 0 } else { pes_len };
        hdr[..9].copy_from_slice(&[
            0,
            0,
            1,
            stream_id,
            (pes_len >> 8) as u8,
            pes_len as u8,
            0x84, // marker bits, data_alignment_indicator
            if with_dts { 0xc0 } else { 0x80 },
            hdr_data_len as u8,
        ]);
        hdr[9..14].copy_from_slice(&ts_bytes(if with_dts { 0x3 } else { 0x2 }, pts));
        if with_dts {
            hdr[14..19].copy_from_slice(&ts_bytes(0x1, dts));
        }
        let hdr = &hdr[..9 + hdr_data_len];

        let mut chunks = std::iter::once(hdr).chain(es.iter().copied());
        let mut cur: &[u8] = &[];
        let mut remaining = hdr.len() + es_len;
        let mut first = true;
        while remaining > 0 {
            // Adaptation field: flags byte (+ PCR) on the first packet when asked for.
            let mut af = [0u8; 7];
            let mut content = 0; // flags byte + optional fields
            if first && (start.pcr.is_some() || start.random_access || start.discontinuity) {
                af[0] = u8::from(start.discontinuity) << 7
                    | u8::from(start.random_access) << 6
                    | u8::from(start.pcr.is_some()) << 4;
                content = 1;
                if let Some(pcr) = start.pcr {
                    af[1..7].copy_from_slice(&pcr_bytes(pcr));
                    content = 7;
                }
            }
            // Bytes after the adaptation_field_length byte, if there is a field at all.
            let mut af_len = (content > 0).then_some(content);
            let mut payload = PACKET - 4 - af_len.map_or(0, |l| 1 + l);
            if remaining < payload {
                // Last packet: stuff through the adaptation field (PES payloads can't be padded).
                let extra = payload - remaining;
                af_len = Some(match af_len {
                    None => extra - 1,
                    Some(l) => l + extra,
                });
                if content == 0 && extra >= 2 {
                    content = 1; // an all-zero flags byte precedes stuffing
                }
                payload = remaining;
            }
            let cc = self.next_cc(pid);
            let afc = if af_len.is_some() { 0x30 } else { 0x10 };
            out.extend_from_slice(&[
                SYNC,
                u8::from(first) << 6 | (pid >> 8) as u8,
                pid as u8,
                afc | cc,
            ]);
            if let Some(l) = af_len {
                out.extend_from_slice(&[l as u8]);
                out.extend_from_slice(&af[..content]);
                out.resize(out.len() + (l - content), 0xff);
            }
            let mut need = payload;
            while need > 0 {
                if cur.is_empty() {
                    match chunks.next() {
                        Some(c) => cur = c,
                        None => break,
                    }
                    continue;
                }
                let take = need.min(cur.len());
                out.extend_from_slice(&cur[..take]);
                cur = &cur[take..];
                need -= take;
            }
            remaining -= payload;
            first = false;
        }
    }
}

fn ts_bytes(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TS_MASK;
    [
        prefix << 4 | ((ts >> 29) as u8 & 0x0e) | 1,
        (ts >> 22) as u8,
        ((ts >> 14) as u8 & 0xfe) | 1,
        (ts >> 7) as u8,
        ((ts << 1) as u8) | 1,
    ]
}

fn pcr_bytes(base: u64) -> [u8; 6] {
    let b = base & TS_MASK;
    [
        (b >> 25) as u8,
        (b >> 17) as u8,
        (b >> 9) as u8,
        (b >> 1) as u8,
        ((b & 1) as u8) << 7 | 0x7e,
        0,
    ]
}

fn read_ts(b: &[u8]) -> Option<u64> {
    let b: &[u8; 5] = b.get(..5)?.try_into().ok()?;
    Some(
        (u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1),
    )
}

/// What [`probe_segment`] measured from a segment's PES headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentProbe {
    /// First DTS (PTS when no DTS) in ms of the measured PID, on the TS timeline (which
    /// includes the muxer's constant [`crate::TIMESTAMP_OFFSET_MS`]).
    pub first_dts_ms: u64,
    /// Last DTS − first DTS plus the last frame's duration (estimated from the previous DTS
    /// step on the same PID).
    pub duration_ms: u64,
    /// The first PES carries the discontinuity indicator this muxer sets on the first segment
    /// after a resume or format change.
    pub discontinuity: bool,
}

/// Per-PID DTS tracking for [`probe_segment`].
#[derive(Clone, Copy, Default)]
struct PidTimes {
    pid: u16,
    first: u64,
    last: u64,
    step: u64,
}

/// How much of a torn segment (a write cut short, e.g. by a full disk) holds only whole
/// frames: the length up to the start of its last PES packet, unless that PES declares a
/// length and is all there. Only the last PES can be torn (a frame's packets are written
/// one after another), so this drops at most one frame; a segment cut inside a packet must
/// first be cut to whole packets. Returns `ts.len()` for a segment with no elementary PES.
pub fn whole_frames_len(ts: &[u8]) -> usize {
    let whole = ts.len() - ts.len() % PACKET;
    let header = |k: usize| {
        let pkt = &ts[k * PACKET..(k + 1) * PACKET];
        let pid = u16::from(pkt[1] & 0x1f) << 8 | u16::from(pkt[2]);
        let afc = (pkt[3] >> 4) & 3;
        let start = if afc & 2 != 0 {
            5 + usize::from(pkt[4])
        } else {
            4
        };
        let payload = if afc & 1 != 0 && start < PACKET {
            &pkt[start..]
        } else {
            &[][..]
        };
        (pkt[0] == SYNC, pkt[1] & 0x40 != 0, pid, payload)
    };
    let n = whole / PACKET;
    let Some(last) = (0..n).rev().find(|&k| {
        let (sync, pusi, pid, _) = header(k);
        sync && pusi && pid != PID_PAT && pid != PID_PMT
    }) else {
        return ts.len();
    };
    let (_, _, pid, first) = header(last);
    if first.len() >= 6 && first[..3] == [0, 0, 1] {
        let declared = usize::from(u16::from_be_bytes([first[4], first[5]]));
        if declared > 0 {
            let got: usize = (last..n)
                .map(header)
                .filter(|h| h.0 && h.2 == pid)
                .map(|h| h.3.len())
                .sum();
            if got >= 6 + declared {
                return whole;
            }
        }
    }
    last * PACKET
}

/// Measures a TS segment from its PES timestamps (for rebuilding a playlist after a crash).
/// Uses the PCR PID named by the PMT (video when present, as the writer measures segments),
/// else every PID. Handles 33-bit wrap within the segment. `None` when no PES timestamp is
/// found.
pub fn probe_segment(ts: &[u8]) -> Option<SegmentProbe> {
    let mut pids: [PidTimes; 4] = Default::default();
    let mut n_pids = 0;
    let mut discontinuity = None;
    let mut pcr_pid = None;
    for pkt in ts.chunks_exact(PACKET) {
        if pkt[0] != SYNC {
            continue;
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = u16::from(pkt[1] & 0x1f) << 8 | u16::from(pkt[2]);
        let afc = (pkt[3] >> 4) & 3;
        let mut pos = 4;
        let mut af_discontinuity = false;
        if afc & 2 != 0 {
            let af_len = usize::from(pkt[4]);
            af_discontinuity = af_len > 0 && pkt[5] & 0x80 != 0;
            pos += 1 + af_len;
        }
        if afc & 1 == 0 || !pusi || pid == PID_PAT {
            continue;
        }
        let Some(payload) = pkt.get(pos..) else {
            continue;
        };
        if pid == PID_PMT {
            // pointer_field 0, then the section: PCR_PID is at bytes 8..10.
            if let (Some(0), Some(hi), Some(lo)) =
                (payload.first(), payload.get(9), payload.get(10))
            {
                pcr_pid = Some(u16::from(hi & 0x1f) << 8 | u16::from(*lo));
            }
            continue;
        }
        if payload.len() < 14 || payload[..3] != [0, 0, 1] {
            continue;
        }
        discontinuity.get_or_insert(af_discontinuity);
        let dts = match payload[7] >> 6 {
            3 => payload.get(14..).and_then(read_ts),
            2 => read_ts(&payload[9..]),
            _ => None,
        };
        let Some(dts) = dts else { continue };
        let entry = match pids[..n_pids].iter().position(|p| p.pid == pid) {
            Some(k) => &mut pids[k],
            None if n_pids < pids.len() => {
                pids[n_pids] = PidTimes {
                    pid,
                    first: dts,
                    last: dts,
                    step: 0,
                };
                n_pids += 1;
                &mut pids[n_pids - 1]
            }
            None => continue,
        };
        // Unwrap relative to the previous value: a large backwards step is a 33-bit wrap.
        let prev = entry.last;
        let mut cur = dts | (prev & !TS_MASK);
        if cur + (1 << 32) < prev {
            cur += 1 << 33;
        }
        if cur > prev {
            entry.step = cur - prev;
            entry.last = cur;
        }
    }
    let all = &pids[..n_pids];
    let measured: &[PidTimes] = match all.iter().position(|p| Some(p.pid) == pcr_pid) {
        Some(k) => &all[k..=k],
        None => all,
    };
    let first = measured.iter().map(|p| p.first).min()?;
    let end = measured.iter().map(|p| p.last + p.step).max()?;
    Some(SegmentProbe {
        first_dts_ms: first / 90,
        duration_ms: (end - first) / 90,
        discontinuity: discontinuity.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_known_pat() {
        // CRC of the canonical single-program PAT (tsid 1, PMT PID 0x1000) as ffmpeg writes it.
        let pat = [0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00];
        assert_eq!(crc32_mpeg2(&pat), 0x2ab104b2);
    }

    #[test]
    fn pes_packetisation_sizes_and_stuffing() {
        let mut m = TsMuxer::new();
        m.set_streams(Some(0x1b), true);
        for len in [
            0usize, 1, 150, 162, 163, 164, 169, 170, 171, 183, 184, 500, 70_000,
        ] {
            let mut out = BytesMut::new();
            let es = vec![0xabu8; len];
            let start = PesStart {
                pid: PID_VIDEO,
                stream_id: STREAM_ID_VIDEO,
                pts: 93_000,
                dts: 90_000,
                pcr: Some(90_000),
                random_access: true,
                discontinuity: false,
            };
            m.write_pes(&mut out, start, &[&es]);
            assert_eq!(out.len() % PACKET, 0, "len {len}");
            // The ES bytes survive exactly: count payload bytes after headers.
            let mut payload = 0;
            for p in out.chunks(PACKET) {
                assert_eq!(p[0], SYNC);
                let mut pos = 4;
                if p[3] & 0x20 != 0 {
                    pos += 1 + usize::from(p[4]);
                }
                assert!(pos <= PACKET, "len {len}");
                payload += PACKET - pos;
            }
            assert_eq!(payload, 19 + len, "len {len}");
        }
    }

    #[test]
    fn a_torn_last_frame_is_cut_a_whole_one_kept() {
        let mut m = TsMuxer::new();
        m.set_streams(Some(0x1b), true);
        let mut out = BytesMut::new();
        m.write_psi(&mut out);
        let pes = |m: &mut TsMuxer, out: &mut BytesMut, pid, stream_id, len| {
            let start = PesStart {
                pid,
                stream_id,
                pts: 90_000,
                dts: 90_000,
                pcr: None,
                random_access: false,
                discontinuity: false,
            };
            m.write_pes(out, start, &[&vec![0x55u8; len]]);
        };
        pes(&mut m, &mut out, PID_VIDEO, STREAM_ID_VIDEO, 5_000);
        let after_first = out.len();
        pes(&mut m, &mut out, PID_VIDEO, STREAM_ID_VIDEO, 4_000);
        let whole = out.to_vec();
        // Frames under 64 KiB declare their PES length: a whole segment stays whole; torn
        // inside its last frame, it is cut back to the frame before.
        assert_eq!(whole_frames_len(&whole), whole.len());
        assert_eq!(
            whole_frames_len(&whole[..after_first + 3 * PACKET]),
            after_first
        );
        assert_eq!(whole_frames_len(&whole[..after_first]), after_first);
        // A bigger frame has PES length 0 (unbounded): whether it is all there cannot be
        // told, so as the last PES of a torn segment it goes.
        let mut big = BytesMut::from(&whole[..]);
        pes(&mut m, &mut big, PID_VIDEO, STREAM_ID_VIDEO, 70_000);
        assert_eq!(whole_frames_len(&big), whole.len());
        // An audio PES declares its length: kept when all there, cut when torn.
        let mut out = BytesMut::from(&whole[..after_first]);
        pes(&mut m, &mut out, PID_AUDIO, STREAM_ID_AUDIO, 600);
        let with_audio = out.to_vec();
        assert_eq!(whole_frames_len(&with_audio), with_audio.len());
        assert_eq!(
            whole_frames_len(&with_audio[..with_audio.len() - PACKET]),
            after_first
        );
        // Nothing but PSI: nothing to cut.
        let mut psi = BytesMut::new();
        m.write_psi(&mut psi);
        assert_eq!(whole_frames_len(&psi), psi.len());
    }

    #[test]
    fn timestamps_round_trip() {
        for ts in [0u64, 1, 90_000, TS_MASK, 0x1_2345_6789] {
            assert_eq!(read_ts(&ts_bytes(2, ts)), Some(ts & TS_MASK));
        }
    }
}
