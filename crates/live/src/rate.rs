//! A stream's bitrate and frame rate: moving averages over the last few seconds of media time.

/// Seconds averaged.
const WINDOW_S: usize = 5;
const BUCKET_MS: u64 = 1_000;

/// Bytes per 1-s bucket of DTS, averaged over [`WINDOW_S`] buckets. Media time rather than
/// wall time: no clock read per frame, and a burst-read backlog is not counted as bitrate.
#[derive(Debug, Default)]
pub struct RateMeter {
    bucket_start: Option<u64>,
    bucket_bytes: u64,
    bucket_frames: u64,
    history: [u64; WINDOW_S],
    /// Frames per closed bucket, beside `history`.
    frames: [u64; WINDOW_S],
    filled: usize,
    pos: usize,
}

impl RateMeter {
    /// Counts one frame; returns the new average (kbit/s) whenever a bucket closes.
    pub fn push(&mut self, dts_ms: u64, bytes: usize) -> Option<u64> {
        let start = *self.bucket_start.get_or_insert(dts_ms);
        let mut result = None;
        if dts_ms < start {
            // Timestamps went back (publisher restarted its clock): restart the bucket.
            self.bucket_start = Some(dts_ms);
        } else if dts_ms - start >= BUCKET_MS {
            let elapsed = (dts_ms - start) / BUCKET_MS;
            self.close(self.bucket_bytes, self.bucket_frames);
            // Silent seconds count as zero, but a long gap just empties the window.
            for _ in 1..elapsed.min(WINDOW_S as u64) {
                self.close(0, 0);
            }
            self.bucket_bytes = 0;
            self.bucket_frames = 0;
            self.bucket_start = Some(if elapsed > WINDOW_S as u64 {
                dts_ms
            } else {
                start + elapsed * BUCKET_MS
            });
            result = Some(self.kbps());
        }
        self.bucket_bytes += bytes as u64;
        self.bucket_frames += 1;
        result
    }

    fn close(&mut self, bytes: u64, frames: u64) {
        self.history[self.pos] = bytes;
        self.frames[self.pos] = frames;
        self.pos = (self.pos + 1) % WINDOW_S;
        self.filled = (self.filled + 1).min(WINDOW_S);
    }

    /// The average over the closed buckets, kbit/s (0 before the first second).
    pub fn kbps(&self) -> u64 {
        if self.filled == 0 {
            return 0;
        }
        let bytes: u64 = self.history.iter().sum();
        bytes * 8 / (self.filled as u64 * BUCKET_MS)
    }

    /// Frames per second over the closed buckets, rounded (0 before the first second).
    pub fn fps(&self) -> u64 {
        if self.filled == 0 {
            return 0;
        }
        let frames: u64 = self.frames.iter().sum();
        let s = self.filled as u64 * BUCKET_MS / 1000;
        (frames + s / 2) / s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_stream_reports_its_rate() {
        let mut m = RateMeter::default();
        let mut last = None;
        // 125 000 bytes per second = 1000 kbit/s, in 40 ms frames.
        for i in 0..300u64 {
            if let Some(k) = m.push(i * 40, 5_000) {
                last = Some(k);
            }
        }
        assert_eq!(last, Some(1000));
        assert_eq!(m.fps(), 25);
    }

    #[test]
    fn frame_rate_counts_frames_per_second_of_media_time() {
        let mut m = RateMeter::default();
        assert_eq!(m.fps(), 0);
        // 30 fps for 3 s (frames 33 ms apart), then AAC-like 43 fps.
        for i in 0..90u64 {
            m.push(i * 1000 / 30, 100);
        }
        m.push(3_000, 100);
        assert_eq!(m.fps(), 30);
        let mut a = RateMeter::default();
        for i in 0..430u64 {
            a.push(i * 1024 * 1000 / 44_100, 10);
        }
        assert_eq!(a.fps(), 43);
    }

    #[test]
    fn silence_lowers_the_average_and_backwards_time_is_harmless() {
        let mut m = RateMeter::default();
        for i in 0..100u64 {
            m.push(i * 100, 12_500);
        }
        assert_eq!(m.kbps(), 1000);
        // Two silent seconds, then a frame: the average falls.
        let k = m.push(12_950, 0).unwrap();
        assert!(k < 1000 && k > 0, "{k}");
        assert_eq!(m.push(5, 10), None);
        // A huge jump empties the window instead of looping.
        assert_eq!(m.push(u64::MAX / 2, 0), Some(0));
    }
}
