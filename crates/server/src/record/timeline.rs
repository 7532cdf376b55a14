//! A recording's timeline: publisher timestamps mapped onto one continuous, sane clock.
//!
//! Publishers' clocks are not to be trusted: relays forward the source's clock (a first
//! timestamp of hours), a source switch or an encoder restart makes it jump minutes forward
//! or back, a resumed push restarts at 0. Files, split decisions and durations all run on the
//! mapped time, so none of that shows in a recording: a jump becomes one frame step, a
//! resume continues [`RESUME_GAP_MS`] after the last frame. Small backward steps (audio and
//! video interleave a little out of order) are left alone; each muxer keeps its own tracks
//! monotonic. Sans-IO: `now_ms` is the caller's clock.

/// Gap inserted between the last frame of a push and the first of the push that resumes it
/// (a new push starts with a keyframe: one frame step is enough).
pub const RESUME_GAP_MS: u64 = 40;

/// Gap put in place of a clock jump when the jumping track's frame step is not known yet. A
/// known step is used instead: the first frame after the jump lands one step after its
/// track's previous frame, which undoes a jump of the whole clock exactly — even inside a
/// GOP, where B-frames after the jump are displayed before a reference frame sent before it.
pub const JUMP_GAP_MS: u64 = 40;

/// Steps above this are not taken as a track's frame interval.
const MAX_FRAME_STEP_MS: u64 = 1_000;

/// One track's last mapped timestamp and frame step.
#[derive(Clone, Copy, Debug, Default)]
struct TrackClock {
    last: Option<u64>,
    step: Option<u64>,
}

/// A forward step this much larger than the wall time that passed is a clock jump, not a
/// pause (a publisher that stalls for a minute also sends its next frame a minute later by
/// the wall clock, and that gap is real).
pub const MAX_FORWARD_JUMP_MS: u64 = 10_000;

/// A backward step larger than this is a clock reset; smaller ones are interleave jitter.
pub const MAX_BACKWARD_STEP_MS: u64 = 3_000;

/// What [`Timeline::map`] found about a frame's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jump {
    None,
    /// The clock leapt forward by this many ms (more than wall time explains).
    Forward(u64),
    /// The clock went back by this many ms.
    Backward(u64),
}

#[derive(Debug, Default)]
pub struct Timeline {
    /// Added to every incoming timestamp.
    offset: i64,
    /// Largest mapped timestamp so far, and the wall time it arrived.
    last: Option<(u64, i64)>,
    /// A push resumed this recording: re-anchor at its first frame.
    resume_pending: bool,
    /// Video, audio.
    tracks: [TrackClock; 2],
}

impl Timeline {
    /// The next frame starts a resumed push: it continues the timeline whatever its clock.
    pub fn resume(&mut self) {
        self.resume_pending = self.last.is_some();
    }

    /// Largest mapped timestamp so far.
    pub fn last(&self) -> Option<u64> {
        self.last.map(|(t, _)| t)
    }

    /// Where a tag without timing of its own (a sequence header) goes: its timestamp mapped
    /// with the current offset, or the latest time if that would be a jump. Moves nothing.
    pub fn place(&self, dts_ms: u64) -> u64 {
        let raw = i64::try_from(dts_ms).unwrap_or(i64::MAX);
        let mapped = u64::try_from(raw.saturating_add(self.offset).max(0)).unwrap_or(0);
        match self.last {
            Some((last, _))
                if self.resume_pending
                    || mapped > last + MAX_FORWARD_JUMP_MS
                    || mapped + MAX_BACKWARD_STEP_MS < last =>
            {
                last
            }
            _ => mapped,
        }
    }

    /// Maps a publisher timestamp (ms) of a frame of track `video` (else audio) onto the
    /// timeline.
    pub fn map(&mut self, dts_ms: u64, video: bool, now_ms: i64) -> (u64, Jump) {
        let track = usize::from(!video);
        let mut jump = Jump::None;
        let raw = i64::try_from(dts_ms).unwrap_or(i64::MAX);
        if let Some((last, last_wall)) = self.last {
            let mapped = raw.saturating_add(self.offset);
            let step = mapped.saturating_sub(i64::try_from(last).unwrap_or(i64::MAX));
            let wall = now_ms.saturating_sub(last_wall).max(0);
            let resumed = std::mem::take(&mut self.resume_pending);
            if !resumed {
                if step > 0 && step.unsigned_abs() > MAX_FORWARD_JUMP_MS + wall.unsigned_abs() {
                    jump = Jump::Forward(step.unsigned_abs());
                } else if step < 0 && step.unsigned_abs() > MAX_BACKWARD_STEP_MS {
                    jump = Jump::Backward(step.unsigned_abs());
                }
            }
            let next = match self.tracks[track] {
                _ if resumed => Some(last.saturating_add(RESUME_GAP_MS)),
                _ if jump == Jump::None => None,
                TrackClock {
                    last: Some(l),
                    step: Some(s),
                } => Some(l + s),
                _ => Some(last.saturating_add(JUMP_GAP_MS)),
            };
            if let Some(next) = next {
                let next = i64::try_from(next).unwrap_or(i64::MAX);
                self.offset = next.saturating_sub(raw);
            }
        }
        let mapped = u64::try_from(raw.saturating_add(self.offset).max(0)).unwrap_or(0);
        match self.last {
            Some((l, _)) if l >= mapped => {}
            _ => self.last = Some((mapped, now_ms)),
        }
        let t = &mut self.tracks[track];
        if let Some(l) = t.last
            && mapped > l
            && mapped - l <= MAX_FRAME_STEP_MS
            && jump == Jump::None
        {
            t.step = Some(mapped - l);
        }
        t.last = Some(t.last.map_or(mapped, |l| l.max(mapped)));
        (mapped, jump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_start_and_steady_clock_pass_through() {
        let mut t = Timeline::default();
        let start = 3_000_000_000_u64;
        assert_eq!(t.map(start, true, 0), (start, Jump::None));
        assert_eq!(t.map(start + 33, true, 33), (start + 33, Jump::None));
        // Interleave jitter: a few ms back is kept as is.
        assert_eq!(t.map(start + 20, false, 40), (start + 20, Jump::None));
        assert_eq!(t.last(), Some(start + 33));
    }

    #[test]
    fn forward_jump_is_undone_by_the_track_step() {
        let mut t = Timeline::default();
        t.map(1_000, true, 0);
        t.map(1_010, false, 5);
        t.map(1_033, true, 33);
        t.map(1_031, false, 33);
        let (m, j) = t.map(301_066, true, 66);
        assert_eq!(j, Jump::Forward(300_033));
        assert_eq!(m, 1_066, "one video step after the last video frame");
        // The other track follows with the same correction.
        assert_eq!(t.map(301_052, false, 70), (1_052, Jump::None));
        assert_eq!(t.map(301_099, true, 99).0, 1_099);
    }

    #[test]
    fn a_real_pause_is_kept() {
        let mut t = Timeline::default();
        t.map(0, true, 0);
        // 60 s without frames, by both clocks: a stall, not a jump.
        assert_eq!(t.map(60_000, true, 60_010), (60_000, Jump::None));
        // Unpaced publishers run far ahead of the wall clock in small steps: no jump.
        for i in 1..1000 {
            assert_eq!(t.map(60_000 + i * 33, true, 60_010).1, Jump::None);
        }
    }

    #[test]
    fn backward_reset_and_resume() {
        let mut t = Timeline::default();
        t.map(50_000, false, 0);
        let (m, j) = t.map(0, true, 10);
        assert_eq!(j, Jump::Backward(50_000));
        assert_eq!(m, 50_000 + JUMP_GAP_MS, "no video step known yet");
        t.resume();
        let (m, j) = t.map(7, true, 20);
        assert_eq!((m, j), (50_000 + JUMP_GAP_MS + RESUME_GAP_MS, Jump::None));
    }
}
