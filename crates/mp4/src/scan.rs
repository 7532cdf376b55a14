//! Spool scanning and the faststart plan: one code path for normal close and crash recovery.

use crate::Mp4Error;
use crate::boxes::{
    BoxWriter, FourCc, MOVIE_TIMESCALE, Rd, find, mdat_header, next_box, parse_header,
};
use crate::track::{FLAG_IS_NON_SYNC, TrackInfo, TrackKind, TrakTiming, write_trak};
use bytes::Bytes;
use std::ops::Range;

/// Largest `moov`/`moof` the scanner reads into memory. Ours are a few KiB; a bigger `moof` is
/// treated as the torn tail, a bigger `moov` as an error.
pub const MAX_BOX_BYTES: u64 = 16 << 20;
/// Samples per track (about 6 days at 30 fps). Keeps the final `moov` far below 4 GiB.
pub const MAX_SAMPLES_PER_TRACK: usize = 16 << 20;
/// Samples in one fragment; bounds the staging memory of a hostile `moof`.
const MAX_SAMPLES_PER_FRAGMENT: usize = 1 << 20;
const MAX_TRACKS: usize = 8;

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION: u32 = 0x02;
const TFHD_DURATION: u32 = 0x08;
const TFHD_SIZE: u32 = 0x10;
const TFHD_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_FIRST_FLAGS: u32 = 0x004;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;

/// What the scanner needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanStep {
    /// Read `len` bytes at `offset` and pass them to [`SpoolScanner::feed`] (fewer at EOF).
    Read { offset: u64, len: usize },
    /// Call [`SpoolScanner::finish`].
    Done,
}

/// A byte range of the spool to append to the final file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolRange {
    pub offset: u64,
    pub len: u64,
}

/// How to build the faststart file: write `prefix`, then append each `copy_ranges` entry of the
/// spool in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizePlan {
    /// `ftyp` + `moov` + `mdat` header.
    pub prefix: Bytes,
    pub copy_ranges: Vec<SpoolRange>,
    pub final_len: u64,
    pub duration_ms: u64,
    pub video_samples: u32,
    pub audio_samples: u32,
    /// End of the last complete fragment: everything after it was torn or unreadable.
    pub valid_spool_len: u64,
}

#[derive(Clone, Copy)]
struct StagedSample {
    size: u32,
    duration: u32,
    cts: i32,
    sync: bool,
}

struct StagedRun {
    track: usize,
    offset: u64,
    len: u64,
    start_dts: u64,
    samples: Range<usize>,
}

struct STrack {
    info: TrackInfo,
    sizes: Vec<u32>,
    durations: Vec<u32>,
    cts: Vec<i32>,
    /// 1-based numbers of sync samples.
    sync: Vec<u32>,
    /// (offset within the final `mdat` payload, sample count).
    chunks: Vec<(u64, u32)>,
    first_dts: u64,
    last_dts: u64,
    next_dts: u64,
}

enum State {
    Header,
    Body {
        kind: FourCc,
        header_len: u64,
        size: u64,
    },
    Done,
}

/// Scans a fragmented spool without reading media bytes. Drive it with [`next_step`](Self::next_step)
/// and [`feed`](Self::feed) until [`ScanStep::Done`], then call [`finish`](Self::finish).
/// [`plan_faststart`] does this for an in-memory spool.
pub struct SpoolScanner {
    spool_len: u64,
    pos: u64,
    state: State,
    have_moov: bool,
    tracks: Vec<STrack>,
    moof_pending: bool,
    runs: Vec<StagedRun>,
    staged: Vec<StagedSample>,
    copy: Vec<SpoolRange>,
    payload_len: u64,
    valid_len: u64,
}

impl SpoolScanner {
    /// `spool_len` is the spool file's current size.
    pub fn new(spool_len: u64) -> Self {
        Self {
            spool_len,
            pos: 0,
            state: State::Header,
            have_moov: false,
            tracks: Vec::new(),
            moof_pending: false,
            runs: Vec::new(),
            staged: Vec::new(),
            copy: Vec::new(),
            payload_len: 0,
            valid_len: 0,
        }
    }

    pub fn next_step(&mut self) -> ScanStep {
        match self.state {
            State::Header => {
                let remaining = self.spool_len.saturating_sub(self.pos);
                if remaining < 8 {
                    self.state = State::Done;
                    return ScanStep::Done;
                }
                ScanStep::Read {
                    offset: self.pos,
                    len: remaining.min(16) as usize,
                }
            }
            State::Body { size, .. } => ScanStep::Read {
                offset: self.pos,
                // size <= MAX_BOX_BYTES, checked when the header was read.
                len: size as usize,
            },
            State::Done => ScanStep::Done,
        }
    }

    /// Feeds the bytes asked for by the last [`ScanStep::Read`]. Torn or garbled data ends the scan
    /// (`Ok`); only a bad `moov` or a limit overflow is an error.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Mp4Error> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Header => self.on_header(data),
            State::Body {
                kind,
                header_len,
                size,
            } => {
                let (Some(whole), Ok(hl)) =
                    (data.get(..size as usize), usize::try_from(header_len))
                else {
                    return Ok(()); // short read: torn tail
                };
                let body = whole.get(hl..).unwrap_or(&[]);
                if &kind == b"moov" {
                    self.parse_moov(body)?;
                    self.have_moov = true;
                    self.valid_len = self.pos + size;
                } else if self.parse_moof(self.pos, body).is_ok() {
                    self.moof_pending = true;
                } else {
                    return Ok(()); // garbled moof: stop here
                }
                self.pos += size;
                self.state = State::Header;
                Ok(())
            }
            State::Done => Ok(()),
        }
    }

    fn on_header(&mut self, data: &[u8]) -> Result<(), Mp4Error> {
        let Ok(Some(h)) = parse_header(data) else {
            return Ok(());
        };
        let remaining = self.spool_len.saturating_sub(self.pos);
        // Size 0 ("to the end") is never written by us: treat as a torn tail.
        let Some(size) = h.size.filter(|&s| s <= remaining) else {
            return Ok(());
        };
        match &h.kind {
            b"moov" | b"moof" => {
                if &h.kind == b"moov" && size > MAX_BOX_BYTES {
                    return Err(Mp4Error::TooLarge {
                        what: "moov",
                        limit: MAX_BOX_BYTES,
                    });
                }
                let usable = if &h.kind == b"moov" {
                    !self.have_moov
                } else {
                    self.have_moov && size <= MAX_BOX_BYTES
                };
                if usable {
                    self.state = State::Body {
                        kind: h.kind,
                        header_len: h.header_len,
                        size,
                    };
                }
                // else: stays Done
            }
            b"mdat" => {
                if std::mem::take(&mut self.moof_pending) {
                    let data = self.pos + h.header_len..self.pos + size;
                    if !self.runs.iter().all(|r| {
                        r.offset >= data.start && r.offset.saturating_add(r.len) <= data.end
                    }) {
                        return Ok(()); // the moof points outside its mdat
                    }
                    self.commit()?;
                    self.valid_len = self.pos + size;
                }
                self.pos += size;
                self.state = State::Header;
            }
            _ => {
                self.pos += size;
                self.state = State::Header;
            }
        }
        Ok(())
    }

    fn parse_moov(&mut self, body: &[u8]) -> Result<(), Mp4Error> {
        let mut buf = body;
        let mut trex = Vec::new();
        while let Some(c) = next_box(&mut buf)? {
            match &c.kind {
                b"trak" => {
                    if let Some(info) = parse_trak(c.body)? {
                        if self.tracks.len() >= MAX_TRACKS {
                            return Err(Mp4Error::TooLarge {
                                what: "tracks",
                                limit: MAX_TRACKS as u64,
                            });
                        }
                        if self.tracks.iter().any(|t| t.info.track_id == info.track_id) {
                            return Err(malformed("moov", "duplicate track id"));
                        }
                        self.tracks.push(STrack {
                            info,
                            sizes: Vec::new(),
                            durations: Vec::new(),
                            cts: Vec::new(),
                            sync: Vec::new(),
                            chunks: Vec::new(),
                            first_dts: 0,
                            last_dts: 0,
                            next_dts: 0,
                        });
                    }
                }
                b"mvex" => {
                    let mut m = c.body;
                    while let Some(t) = next_box(&mut m)? {
                        if &t.kind == b"trex" {
                            let mut r = Rd::new(t.body, "trex");
                            r.full_header()?;
                            let id = r.u32()?;
                            r.u32()?;
                            trex.push((id, r.u32()?, r.u32()?, r.u32()?));
                        }
                    }
                }
                _ => {}
            }
        }
        for (id, dur, size, flags) in trex {
            if let Some(t) = self.tracks.iter_mut().find(|t| t.info.track_id == id) {
                t.info.default_duration = dur;
                t.info.default_size = size;
                t.info.default_flags = flags;
            }
        }
        if self.tracks.is_empty() {
            return Err(malformed("moov", "no audio or video track"));
        }
        Ok(())
    }

    fn parse_moof(&mut self, moof_start: u64, body: &[u8]) -> Result<(), Mp4Error> {
        self.runs.clear();
        self.staged.clear();
        let mut next_dts = [0u64; MAX_TRACKS];
        for (n, t) in next_dts.iter_mut().zip(&self.tracks) {
            *n = t.next_dts;
        }
        let mut buf = body;
        while let Some(traf) = next_box(&mut buf)? {
            if &traf.kind != b"traf" {
                continue;
            }
            let tfhd = find(traf.body, b"tfhd")?.ok_or(malformed("traf", "no tfhd"))?;
            let mut r = Rd::new(tfhd.body, "tfhd");
            let (_, flags) = r.full_header()?;
            let id = r.u32()?;
            let Some(idx) = self.tracks.iter().position(|t| t.info.track_id == id) else {
                continue;
            };
            let info = &self.tracks[idx].info;
            let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
                r.u64()?
            } else {
                moof_start
            };
            if flags & TFHD_SAMPLE_DESCRIPTION != 0 {
                r.u32()?;
            }
            let def_dur = if flags & TFHD_DURATION != 0 {
                r.u32()?
            } else {
                info.default_duration
            };
            let def_size = if flags & TFHD_SIZE != 0 {
                r.u32()?
            } else {
                info.default_size
            };
            let def_flags = if flags & TFHD_FLAGS != 0 {
                r.u32()?
            } else {
                info.default_flags
            };
            let mut dts = next_dts.get(idx).copied().unwrap_or(0);
            if let Some(tfdt) = find(traf.body, b"tfdt")? {
                let mut r = Rd::new(tfdt.body, "tfdt");
                let (v, _) = r.full_header()?;
                dts = r.versioned(v)?;
            }
            let mut cursor = base;
            let mut children = traf.body;
            while let Some(trun) = next_box(&mut children)? {
                if &trun.kind != b"trun" {
                    continue;
                }
                let mut r = Rd::new(trun.body, "trun");
                let (version, tflags) = r.full_header()?;
                let count = r.u32()? as usize;
                let offset = if tflags & TRUN_DATA_OFFSET != 0 {
                    let off = r.u32()? as i32;
                    base.checked_add_signed(i64::from(off))
                        .ok_or(malformed("trun", "data offset before file start"))?
                } else {
                    cursor
                };
                let first_flags = if tflags & TRUN_FIRST_FLAGS != 0 {
                    Some(r.u32()?)
                } else {
                    None
                };
                let per_sample = 4
                    * (tflags & (TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTS)).count_ones()
                        as usize;
                if count.saturating_mul(per_sample) > r.remaining()
                    || self.staged.len() + count > MAX_SAMPLES_PER_FRAGMENT
                {
                    return Err(malformed("trun", "sample count exceeds the box"));
                }
                let first = self.staged.len();
                let start_dts = dts;
                let mut len = 0u64;
                for i in 0..count {
                    let duration = if tflags & TRUN_DURATION != 0 {
                        r.u32()?
                    } else {
                        def_dur
                    };
                    let size = if tflags & TRUN_SIZE != 0 {
                        r.u32()?
                    } else {
                        def_size
                    };
                    let sflags = if tflags & TRUN_FLAGS != 0 {
                        r.u32()?
                    } else if i == 0 {
                        first_flags.unwrap_or(def_flags)
                    } else {
                        def_flags
                    };
                    let cts = if tflags & TRUN_CTS != 0 {
                        let raw = r.u32()?;
                        if version == 0 {
                            i32::try_from(raw).unwrap_or(i32::MAX)
                        } else {
                            raw as i32
                        }
                    } else {
                        0
                    };
                    self.staged.push(StagedSample {
                        size,
                        duration,
                        cts,
                        sync: sflags & FLAG_IS_NON_SYNC == 0,
                    });
                    len += u64::from(size);
                    dts = dts.saturating_add(u64::from(duration));
                }
                self.runs.push(StagedRun {
                    track: idx,
                    offset,
                    len,
                    start_dts,
                    samples: first..self.staged.len(),
                });
                cursor = offset.saturating_add(len);
            }
            if let Some(n) = next_dts.get_mut(idx) {
                *n = dts;
            }
        }
        Ok(())
    }

    /// Moves the staged fragment into the track tables; its data becomes the next copy ranges.
    fn commit(&mut self) -> Result<(), Mp4Error> {
        for run in &self.runs {
            let (Some(t), Some(samples)) = (
                self.tracks.get_mut(run.track),
                self.staged.get(run.samples.clone()),
            ) else {
                continue;
            };
            if samples.is_empty() {
                continue;
            }
            if t.sizes.len() + samples.len() > MAX_SAMPLES_PER_TRACK {
                return Err(Mp4Error::TooLarge {
                    what: "samples per track",
                    limit: MAX_SAMPLES_PER_TRACK as u64,
                });
            }
            t.chunks.push((self.payload_len, samples.len() as u32));
            self.payload_len += run.len;
            match self.copy.last_mut() {
                Some(last) if last.offset + last.len == run.offset => last.len += run.len,
                _ => self.copy.push(SpoolRange {
                    offset: run.offset,
                    len: run.len,
                }),
            }
            let mut dts = run.start_dts;
            for s in samples {
                if let Some(prev) = t.durations.last_mut() {
                    // A sample lasts until the next one's decode time.
                    *prev = u32::try_from(dts.saturating_sub(t.last_dts)).unwrap_or(u32::MAX);
                } else {
                    t.first_dts = dts;
                }
                t.sizes.push(s.size);
                t.durations.push(s.duration);
                t.cts.push(s.cts);
                if s.sync {
                    t.sync.push(t.sizes.len() as u32);
                }
                t.last_dts = dts;
                dts = dts.saturating_add(u64::from(s.duration));
            }
            t.next_dts = dts;
        }
        self.runs.clear();
        self.staged.clear();
        Ok(())
    }

    /// Builds the faststart plan from everything scanned.
    pub fn finish(mut self) -> Result<FinalizePlan, Mp4Error> {
        if !self.have_moov {
            return Err(Mp4Error::NoInit);
        }
        self.tracks.retain(|t| !t.sizes.is_empty());
        if self.tracks.is_empty() {
            return Err(Mp4Error::Empty);
        }
        for t in &mut self.tracks {
            // The file's last sample repeats the previous duration.
            let n = t.durations.len();
            if n >= 2 {
                t.durations[n - 1] = t.durations[n - 2];
            }
        }
        let timings = edit_lists(&self.tracks);

        let mut ftyp = BoxWriter::default();
        crate::boxes::write_ftyp(&mut ftyp, &[b"isom", b"iso2", b"mp41"]);
        let probe = |co64| {
            let mut w = BoxWriter::default();
            write_final_moov(&mut w, &self.tracks, &timings, 0, co64);
            w.len() as u64
        };
        let mut co64 = false;
        let mut moov_len = probe(false);
        let mdat_len = mdat_header(self.payload_len).len() as u64;
        if ftyp.len() as u64 + moov_len + mdat_len + self.payload_len > u64::from(u32::MAX) {
            co64 = true;
            moov_len = probe(true);
        }
        let base = ftyp.len() as u64 + moov_len + mdat_len;
        let mut w = ftyp;
        write_final_moov(&mut w, &self.tracks, &timings, base, co64);
        w.bytes(&mdat_header(self.payload_len));
        debug_assert_eq!(w.len() as u64, base);

        let count = |kind| {
            self.tracks
                .iter()
                .filter(|t| t.info.kind == kind)
                .map(|t| t.sizes.len() as u32)
                .sum()
        };
        Ok(FinalizePlan {
            final_len: base + self.payload_len,
            prefix: w.buf.into(),
            copy_ranges: self.copy,
            duration_ms: timings.iter().map(|t| t.movie_duration).max().unwrap_or(0),
            video_samples: count(TrackKind::Video),
            audio_samples: count(TrackKind::Audio),
            valid_spool_len: self.valid_len,
        })
    }
}

/// Scans an in-memory spool and plans its faststart file.
pub fn plan_faststart(spool: &[u8]) -> Result<FinalizePlan, Mp4Error> {
    let mut s = SpoolScanner::new(spool.len() as u64);
    while let ScanStep::Read { offset, len } = s.next_step() {
        let data = usize::try_from(offset)
            .ok()
            .and_then(|o| spool.get(o..))
            .unwrap_or(&[]);
        s.feed(data.get(..len).unwrap_or(data))?;
    }
    s.finish()
}

fn malformed(what: &'static str, reason: &'static str) -> Mp4Error {
    Mp4Error::Malformed { what, reason }
}

fn parse_trak(trak: &[u8]) -> Result<Option<TrackInfo>, Mp4Error> {
    let missing = |what| malformed(what, "missing");
    let tkhd = find(trak, b"tkhd")?.ok_or(missing("tkhd"))?;
    let mut r = Rd::new(tkhd.body, "tkhd");
    let (v, _) = r.full_header()?;
    r.take(if v == 1 { 16 } else { 8 })?;
    let track_id = r.u32()?;
    r.u32()?;
    r.versioned(v)?;
    r.take(8 + 8 + 36)?;
    let width = r.u32()?;
    let height = r.u32()?;

    let mdia = find(trak, b"mdia")?.ok_or(missing("mdia"))?;
    let mdhd = find(mdia.body, b"mdhd")?.ok_or(missing("mdhd"))?;
    let mut r = Rd::new(mdhd.body, "mdhd");
    let (v, _) = r.full_header()?;
    r.take(if v == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(malformed("mdhd", "zero timescale"));
    }
    let hdlr = find(mdia.body, b"hdlr")?.ok_or(missing("hdlr"))?;
    let mut r = Rd::new(hdlr.body, "hdlr");
    r.full_header()?;
    r.u32()?;
    let kind = match r.take(4)? {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        _ => return Ok(None),
    };
    let minf = find(mdia.body, b"minf")?.ok_or(missing("minf"))?;
    let stbl = find(minf.body, b"stbl")?.ok_or(missing("stbl"))?;
    let stsd = find(stbl.body, b"stsd")?.ok_or(missing("stsd"))?;
    Ok(Some(TrackInfo {
        track_id,
        kind,
        timescale,
        width,
        height,
        stsd: Bytes::copy_from_slice(stsd.whole),
        default_duration: 0,
        default_size: 0,
        default_flags: 0,
    }))
}

fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    let ms = u128::from(ticks) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Edit lists that start presentation at 0 and keep tracks in sync: each track's first
/// presentation time (first decode time + its composition offset) relative to the earliest
/// track becomes an empty edit, and `media_time` skips the track's initial composition offset.
fn edit_lists(tracks: &[STrack]) -> Vec<TrakTiming> {
    let start_ms = |t: &STrack| {
        let cts0 = i64::from(t.cts.first().copied().unwrap_or(0));
        let pts = (i128::from(t.first_dts) + i128::from(cts0)).max(0);
        ticks_to_ms(u64::try_from(pts).unwrap_or(u64::MAX), t.info.timescale)
    };
    let earliest = tracks.iter().map(start_ms).min().unwrap_or(0);
    tracks
        .iter()
        .map(|t| {
            let media_duration: u64 = t.durations.iter().map(|&d| u64::from(d)).sum();
            let media_ms = ticks_to_ms(media_duration, t.info.timescale);
            let delay = start_ms(t) - earliest;
            let media_time = i64::from(t.cts.first().copied().unwrap_or(0).max(0));
            let mut edits = Vec::new();
            if delay > 0 {
                edits.push((delay, -1));
            }
            if delay > 0 || media_time > 0 {
                edits.push((media_ms, media_time));
            }
            TrakTiming {
                media_duration,
                movie_duration: delay + media_ms,
                edits,
            }
        })
        .collect()
}

fn write_final_moov(
    w: &mut BoxWriter,
    tracks: &[STrack],
    timings: &[TrakTiming],
    base: u64,
    co64: bool,
) {
    w.boxed(b"moov", |w| {
        let duration = timings.iter().map(|t| t.movie_duration).max().unwrap_or(0);
        let next = tracks
            .iter()
            .map(|t| t.info.track_id)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        crate::boxes::write_mvhd(w, duration, next);
        for (t, timing) in tracks.iter().zip(timings) {
            write_trak(w, &t.info, timing, |w| write_tables(w, t, base, co64));
        }
    });
}

/// Writes `count` placeholder, then run-length entries; patches the count.
fn rle<T: Copy + PartialEq>(
    w: &mut BoxWriter,
    values: &[T],
    mut put: impl FnMut(&mut BoxWriter, u32, T),
) {
    let count_pos = w.len();
    w.u32(0);
    let mut entries = 0u32;
    let mut it = values.iter().copied().peekable();
    while let Some(v) = it.next() {
        let mut n = 1u32;
        while it.next_if_eq(&v).is_some() {
            n += 1;
        }
        put(w, n, v);
        entries += 1;
    }
    w.buf[count_pos..count_pos + 4].copy_from_slice(&entries.to_be_bytes());
}

fn write_tables(w: &mut BoxWriter, t: &STrack, base: u64, co64: bool) {
    w.full(b"stts", 0, 0, |w| {
        rle(w, &t.durations, |w, n, d| {
            w.u32(n);
            w.u32(d);
        });
    });
    if t.cts.iter().any(|&c| c != 0) {
        let v1 = t.cts.iter().any(|&c| c < 0);
        w.full(b"ctts", u8::from(v1), 0, |w| {
            rle(w, &t.cts, |w, n, c| {
                w.u32(n);
                w.i32(c);
            });
        });
    }
    if t.sync.len() < t.sizes.len() {
        w.full(b"stss", 0, 0, |w| {
            w.u32(t.sync.len() as u32);
            for &s in &t.sync {
                w.u32(s);
            }
        });
    }
    w.full(b"stsc", 0, 0, |w| {
        let count_pos = w.len();
        w.u32(0);
        let mut entries = 0u32;
        let mut prev = None;
        for (i, &(_, n)) in t.chunks.iter().enumerate() {
            if prev != Some(n) {
                w.u32(i as u32 + 1);
                w.u32(n);
                w.u32(1);
                entries += 1;
                prev = Some(n);
            }
        }
        w.buf[count_pos..count_pos + 4].copy_from_slice(&entries.to_be_bytes());
    });
    w.full(b"stsz", 0, 0, |w| {
        w.u32(0);
        w.u32(t.sizes.len() as u32);
        for &s in &t.sizes {
            w.u32(s);
        }
    });
    if co64 {
        w.full(b"co64", 0, 0, |w| {
            w.u32(t.chunks.len() as u32);
            for &(off, _) in &t.chunks {
                w.u64(base + off);
            }
        });
    } else {
        w.full(b"stco", 0, 0, |w| {
            w.u32(t.chunks.len() as u32);
            for &(off, _) in &t.chunks {
                w.u32((base + off) as u32);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ASC, AVCC, audio, spool, video};
    use crate::{AudioTrack, FragmentWriter, VideoTrack};
    use proptest::prelude::*;

    fn scan(spool: &[u8]) -> SpoolScanner {
        let mut s = SpoolScanner::new(spool.len() as u64);
        while let ScanStep::Read { offset, len } = s.next_step() {
            let d = &spool[offset as usize..];
            s.feed(&d[..len.min(d.len())]).unwrap();
        }
        s
    }

    #[test]
    fn durations_come_from_decode_times_across_fragments() {
        let v = VideoTrack::avc(Bytes::from_static(AVCC)).unwrap();
        let mut w = FragmentWriter::new(Some(v), None, 0).unwrap();
        let mut bytes = w.init_segment().to_vec();
        let mut out = Vec::new();
        for (i, dts) in [0u64, 33, 67, 100, 133].into_iter().enumerate() {
            if i == 2 || i == 3 {
                w.flush(&mut out); // fragments of 2, 1 and 2 samples
            }
            w.push(&video(dts, i == 0 || i == 3, 66, 5)).unwrap();
        }
        w.flush(&mut out);
        out.iter().for_each(|b| bytes.extend_from_slice(b));
        let s = scan(&bytes);
        let t = &s.tracks[0];
        // Fragment-final samples carried estimates; the scanner fixed them from the next tfdt.
        assert_eq!(&t.durations[..4], &[2970, 3060, 2970, 2970]);
        assert_eq!(t.sync, vec![1, 4]);
        assert_eq!(t.cts, vec![5940; 5]);
        assert_eq!(t.chunks, vec![(0, 2), (10, 1), (15, 2)]);
        let plan = s.finish().unwrap();
        assert_eq!(plan.video_samples, 5);
        // 5 samples x 33.2 ms (the last repeats 2970 ticks), presentation starts at 0 thanks to the edit list.
        assert_eq!(plan.duration_ms, 166);
        assert_eq!(plan.copy_ranges.len(), 3);
        assert_eq!(plan.copy_ranges.iter().map(|r| r.len).sum::<u64>(), 25);
        let elst = plan.prefix.windows(4).position(|b| b == b"elst").unwrap();
        // v0, one entry: segment 166 ms, media_time 66 ms at 90 kHz.
        assert_eq!(&plan.prefix[elst + 8..elst + 12], &1u32.to_be_bytes());
        assert_eq!(&plan.prefix[elst + 12..elst + 16], &166u32.to_be_bytes());
        assert_eq!(&plan.prefix[elst + 16..elst + 20], &5940u32.to_be_bytes());
    }

    #[test]
    fn later_track_gets_an_empty_edit() {
        let a = AudioTrack::aac(Bytes::from_static(ASC)).unwrap();
        let v = VideoTrack::avc(Bytes::from_static(AVCC)).unwrap();
        let mut w = FragmentWriter::new(Some(v), Some(a), 0).unwrap();
        let mut bytes = w.init_segment().to_vec();
        let mut out = Vec::new();
        w.push(&audio(0, 3)).unwrap();
        w.push(&audio(21, 3)).unwrap();
        w.push(&video(50, true, 0, 3)).unwrap();
        w.push(&video(83, false, 0, 3)).unwrap();
        w.flush(&mut out);
        out.iter().for_each(|b| bytes.extend_from_slice(b));
        let s = scan(&bytes);
        let timings = edit_lists(&s.tracks);
        assert_eq!(timings[0].edits, vec![(50, -1), (66, 0)]);
        assert!(timings[1].edits.is_empty());
        assert_eq!(timings[0].movie_duration, 116);
    }

    #[test]
    fn garbage_and_missing_init() {
        assert_eq!(plan_faststart(&[]), Err(Mp4Error::NoInit));
        assert_eq!(plan_faststart(b"\0\0\0\x08free"), Err(Mp4Error::NoInit));
        let sp = spool();
        let init_end = scan(&sp).tracks.len(); // smoke: two tracks found
        assert_eq!(init_end, 2);
        // A moof that points outside its mdat ends the scan at the previous fragment.
        let plan = plan_faststart(&sp).unwrap();
        let mut bad = sp.clone();
        let second_moof = plan.copy_ranges[0].offset + plan.copy_ranges[0].len;
        let trun = bad[second_moof as usize..]
            .windows(4)
            .position(|b| b == b"trun")
            .unwrap();
        let off = second_moof as usize + trun + 12;
        bad[off..off + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
        let p = plan_faststart(&bad).unwrap();
        assert_eq!(p.valid_spool_len, second_moof);
        assert_eq!(p.copy_ranges, plan.copy_ranges[..1]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = plan_faststart(&b) {
                prop_assert!(p.valid_spool_len <= b.len() as u64);
            }
        }

        #[test]
        fn mutated_spools_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut sp = spool();
            for (i, v) in edits {
                let i = i.index(sp.len());
                sp[i] = v;
            }
            sp.truncate(cut.index(sp.len() + 1));
            if let Ok(p) = plan_faststart(&sp) {
                prop_assert!(p.valid_spool_len <= sp.len() as u64);
                for r in &p.copy_ranges {
                    prop_assert!(r.offset + r.len <= p.valid_spool_len);
                }
                prop_assert_eq!(
                    p.final_len,
                    p.prefix.len() as u64 + p.copy_ranges.iter().map(|r| r.len).sum::<u64>()
                );
            }
        }
    }
}
