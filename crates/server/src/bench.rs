//! `livetape bench publish`: N concurrent RTMP publishers in one process, all sending the same
//! FLV held once in memory (payloads shared, see `livetape_publish`), and a summary of what
//! happened: streams ok/failed by cause, bytes, achieved bitrate and the process's own CPU.
//! [`query`]: the catalogue query benchmark (`seed-catalog`, `query`).

pub mod query;

use livetape_media::MediaFrame;
use livetape_publish::{
    DEFAULT_CONNECT_TIMEOUT, Pace, PublishError, PublishOptions, PublishStats, RtmpUrl,
    publish_frames,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stream name prefix when the URL names only the app.
pub const DEFAULT_PREFIX: &str = "bench-";
/// Upper bound for `--streams` (each stream is a socket and a task).
pub const MAX_STREAMS: usize = 10_000;
/// Failed streams whose error is printed in the human summary (JSON has all).
const ERRORS_SHOWN: usize = 10;
/// `/proc/self/stat` counts CPU time in USER_HZ ticks. Linux exports 100 Hz there on x86 and
/// ARM whatever the kernel's HZ; without libc (the workspace forbids `unsafe`) we cannot ask
/// `sysconf(_SC_CLK_TCK)`, so this is assumed. Resolution is therefore 10 ms.
const USER_HZ: f64 = 100.0;

/// What to run.
#[derive(Clone, Debug)]
pub struct PublishBench {
    /// `rtmp://host[:port]/app[/prefix][?query]`.
    pub url: String,
    pub streams: usize,
    /// Media per stream; the clip is looped and cut at a GOP boundary. `None`: one pass.
    pub duration: Option<Duration>,
    pub file: PathBuf,
    pub pace: Pace,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid bench URL {url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("--streams must be 1..={MAX_STREAMS}, got {0}")]
    Streams(usize),
    #[error("--duration must be a positive number of seconds")]
    Duration,
    #[error("{0}")]
    Publish(#[from] PublishError),
    #[error("{0} holds no audio or video frames")]
    EmptyClip(PathBuf),
}

/// Why streams failed, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    /// No TCP connection (refused, unreachable, timed out).
    pub connect: usize,
    /// The server answered the publish with an error status.
    pub rejected: usize,
    /// Broke during the RTMP negotiation or while sending media.
    pub publish: usize,
}

/// The summary, printed as text or (`--json`) as one JSON object.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub url: String,
    /// `realtime`, `fast` or `rate:X`.
    pub pace: String,
    pub streams: usize,
    pub ok: usize,
    pub failed: usize,
    pub failures: FailureCounts,
    /// Media sent per stream (seconds of timestamps), as planned.
    pub media_s_per_stream: f64,
    /// Audio/video/script messages sent, all streams.
    pub frames_sent: u64,
    /// Bytes written to sockets by all streams (RTMP handshake and framing included).
    pub bytes_sent: u64,
    /// From the first connect until the last publisher finished.
    pub wall_s: f64,
    /// `bytes_sent` over `wall_s`.
    pub aggregate_kbps: f64,
    /// Mean over the streams that succeeded of bytes over their own publish time.
    pub per_stream_kbps: f64,
    /// utime + stime of this process during the run (`null` without /proc).
    pub cpu_s: Option<f64>,
    /// `cpu_s / wall_s`, in percent of one core.
    pub cpu_percent_of_core: Option<f64>,
    /// CPU per stream per second of media, in percent of one core: what one real-time
    /// stream costs, comparable between paces.
    pub cpu_percent_per_realtime_stream: Option<f64>,
    /// `stream <i>: <error>` for every failed stream, by stream index.
    pub errors: Vec<String>,
    /// One entry per stream that succeeded, by index: what its recording must hold and when it
    /// unpublished (for end → callback latencies).
    pub per_stream: Vec<StreamReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamReport {
    pub index: usize,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub bytes_sent: u64,
    pub unpublished_unix_ms: u64,
}

/// The URLs of streams `0..n`: `{base}/{prefix}{i}{?query}`.
pub fn stream_urls(url: &str, n: usize) -> Result<Vec<String>, BenchError> {
    let bad = |reason| BenchError::Url {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| bad("scheme must be rtmp://"))?;
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("missing /app"))?;
    let (app, prefix) = path.split_once('/').unwrap_or((path, ""));
    // A query (e.g. push auth) stays after the stream name: `app/prefix?q` or `app?q`.
    let (app, app_query) = app.split_once('?').unwrap_or((app, ""));
    let (prefix, query) = match prefix.split_once('?') {
        Some((p, q)) => (p, q),
        None => (prefix, app_query),
    };
    if app.is_empty() {
        return Err(bad("empty app"));
    }
    let prefix = if prefix.is_empty() {
        DEFAULT_PREFIX
    } else {
        prefix
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let urls: Vec<String> = (0..n)
        .map(|i| format!("rtmp://{authority}/{app}/{prefix}{i}{query}"))
        .collect();
    // Same parser as the publishers: a bad host or port fails here, not N times later.
    if let Some(u) = urls.first() {
        RtmpUrl::parse(u)?;
    }
    Ok(urls)
}

fn pace_name(p: Pace) -> String {
    match p {
        Pace::Realtime => "realtime".into(),
        Pace::Fast => "fast".into(),
        Pace::Rate(r) => format!("rate:{r}"),
    }
}

/// utime + stime of the whole process (every thread, live or exited) from `/proc/self/stat`.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 2 (comm) may contain spaces and ')': fields are counted after its last ')'.
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = after_comm.split_whitespace().skip(11); // starts at field 3; utime is 14
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

/// Media span of one pass of `frames`, as `livetape_publish` loops it (last − first + one
/// video frame interval).
fn clip_span(frames: &[MediaFrame]) -> Duration {
    let (Some(first), Some(last)) = (
        frames.iter().map(|f| f.dts_ms).min(),
        frames.iter().map(|f| f.dts_ms).max(),
    ) else {
        return Duration::ZERO;
    };
    let video = frames
        .iter()
        .filter(|f| f.kind == livetape_media::MediaKind::Video)
        .count() as u64;
    let gap = if video > 1 {
        ((last - first) / (video - 1)).max(1)
    } else {
        40
    };
    Duration::from_millis(last - first + gap)
}

fn classify(e: &PublishError) -> fn(&mut FailureCounts) {
    match e {
        PublishError::Connect { .. }
        | PublishError::Timeout("connecting")
        | PublishError::InvalidUrl { .. } => |c| c.connect += 1,
        PublishError::Rejected { .. } => |c| c.rejected += 1,
        _ => |c| c.publish += 1,
    }
}

/// Loads the clip, runs every publisher concurrently and summarises. Must run inside a tokio
/// runtime; the FLV is read before the clock and CPU meter start.
pub async fn run(b: &PublishBench) -> Result<BenchReport, BenchError> {
    if b.streams == 0 || b.streams > MAX_STREAMS {
        return Err(BenchError::Streams(b.streams));
    }
    if b.duration.is_some_and(|d| d.is_zero()) {
        return Err(BenchError::Duration);
    }
    let urls = stream_urls(&b.url, b.streams)?;
    let frames: Arc<[MediaFrame]> = livetape_publish::load_flv(&b.file)?.into();
    if !frames
        .iter()
        .any(|f| f.kind != livetape_media::MediaKind::Script)
    {
        return Err(BenchError::EmptyClip(b.file.clone()));
    }
    let media = b.duration.unwrap_or_else(|| clip_span(&frames));

    let cpu_before = process_cpu();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, url) in urls.into_iter().enumerate() {
        let opts = PublishOptions {
            pace: b.pace,
            loops: if b.duration.is_some() { u32::MAX } else { 1 },
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            media_limit: b.duration,
            ..PublishOptions::new(url)
        };
        let frames = Arc::clone(&frames);
        tasks.spawn(async move { (i, publish_frames(frames, &opts).await) });
    }
    let mut ok: Vec<(usize, PublishStats)> = Vec::with_capacity(b.streams);
    let mut failures = FailureCounts::default();
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(stats))) => ok.push((i, stats)),
            Ok((i, Err(e))) => {
                classify(&e)(&mut failures);
                errors.push((i, format!("stream {i}: {e}")));
            }
            Err(e) => {
                failures.publish += 1;
                errors.push((usize::MAX, format!("publisher task failed: {e}")));
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(process_cpu())
        .map(|(a, b)| b.saturating_sub(a).as_secs_f64());
    errors.sort();
    ok.sort_by_key(|(i, _)| *i);
    let per_stream = ok
        .iter()
        .map(|(i, s)| StreamReport {
            index: *i,
            video_frames: s.video_frames,
            audio_frames: s.audio_frames,
            bytes_sent: s.bytes_sent,
            unpublished_unix_ms: s.unpublished_unix_ms,
        })
        .collect();
    let ok: Vec<PublishStats> = ok.into_iter().map(|(_, s)| s).collect();

    let bytes_sent: u64 = ok.iter().map(|s| s.bytes_sent).sum();
    let kbps = |bytes: u64, secs: f64| {
        if secs > 0.0 {
            bytes as f64 * 8.0 / secs / 1000.0
        } else {
            0.0
        }
    };
    let per_stream_kbps = if ok.is_empty() {
        0.0
    } else {
        ok.iter()
            .map(|s| kbps(s.bytes_sent, s.duration.as_secs_f64()))
            .sum::<f64>()
            / ok.len() as f64
    };
    let media_s = media.as_secs_f64();
    Ok(BenchReport {
        url: b.url.clone(),
        pace: pace_name(b.pace),
        streams: b.streams,
        ok: ok.len(),
        failed: b.streams - ok.len(),
        failures,
        media_s_per_stream: media_s,
        frames_sent: ok.iter().map(|s| s.frames_sent).sum(),
        bytes_sent,
        wall_s: wall,
        aggregate_kbps: kbps(bytes_sent, wall),
        per_stream_kbps,
        cpu_s: cpu,
        cpu_percent_of_core: cpu.filter(|_| wall > 0.0).map(|c| c / wall * 100.0),
        cpu_percent_per_realtime_stream: cpu
            .filter(|_| media_s > 0.0)
            .map(|c| c / b.streams as f64 / media_s * 100.0),
        errors: errors.into_iter().map(|(_, e)| e).collect(),
        per_stream,
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.failures;
        writeln!(
            f,
            "bench publish: {} streams x {:.1} s of media to {} (pace {})",
            self.streams, self.media_s_per_stream, self.url, self.pace
        )?;
        writeln!(
            f,
            "  streams  {} ok, {} failed (connect {}, rejected {}, publish {})",
            self.ok, self.failed, c.connect, c.rejected, c.publish
        )?;
        writeln!(
            f,
            "  sent     {:.2} MB, {} frames in {:.2} s: {:.1} Mbit/s aggregate, {:.2} Mbit/s per stream",
            self.bytes_sent as f64 / 1e6,
            self.frames_sent,
            self.wall_s,
            self.aggregate_kbps / 1000.0,
            self.per_stream_kbps / 1000.0
        )?;
        match (
            self.cpu_s,
            self.cpu_percent_of_core,
            self.cpu_percent_per_realtime_stream,
        ) {
            (Some(cpu), Some(core), Some(rt)) => writeln!(
                f,
                "  cpu      {cpu:.2} s ({core:.1}% of one core), {:.1} ms per stream, {rt:.3}% of a core per real-time stream",
                cpu * 1000.0 / self.streams as f64
            )?,
            _ => writeln!(f, "  cpu      unavailable (no /proc/self/stat)")?,
        }
        // Say so when the run is too short for 10 ms ticks to mean much.
        if self.cpu_s.is_some() && self.wall_s < 1.0 {
            writeln!(
                f,
                "           (cpu counted in 10 ms ticks: run longer for a precise figure)"
            )?;
        }
        for e in self.errors.iter().take(ERRORS_SHOWN) {
            writeln!(f, "  {e}")?;
        }
        if self.errors.len() > ERRORS_SHOWN {
            writeln!(
                f,
                "  ... and {} more (see --json)",
                self.errors.len() - ERRORS_SHOWN
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_take_the_prefix_and_keep_the_query() {
        let u = |s| stream_urls(s, 2).unwrap();
        assert_eq!(
            u("rtmp://h:1936/live"),
            ["rtmp://h:1936/live/bench-0", "rtmp://h:1936/live/bench-1"]
        );
        assert_eq!(
            u("rtmp://h/live/"),
            ["rtmp://h/live/bench-0", "rtmp://h/live/bench-1"]
        );
        assert_eq!(
            u("rtmp://h/live/cam"),
            ["rtmp://h/live/cam0", "rtmp://h/live/cam1"]
        );
        assert_eq!(
            u("rtmp://h/live/cam-?txSecret=a&txTime=b"),
            [
                "rtmp://h/live/cam-0?txSecret=a&txTime=b",
                "rtmp://h/live/cam-1?txSecret=a&txTime=b"
            ]
        );
        assert_eq!(
            u("rtmp://h/live?k=v"),
            ["rtmp://h/live/bench-0?k=v", "rtmp://h/live/bench-1?k=v"]
        );
        for bad in [
            "http://h/live",
            "rtmp://h",
            "rtmp://h/",
            "rtmp://:1/live",
            "rtmp://h:x/live",
        ] {
            assert!(stream_urls(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_meter_reads_this_process() {
        let before = process_cpu().expect("/proc/self/stat is readable on Linux");
        // Burn CPU until the meter shows 50 ms more (10 ms ticks); a meter that does not
        // move ends the loop by the wall-clock bound instead and fails.
        let t = Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after < before + Duration::from_millis(50) && t.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = process_cpu().unwrap();
        }
        assert!(
            after >= before + Duration::from_millis(50),
            "{before:?} → {after:?}"
        );
    }

    #[test]
    fn failures_are_classified() {
        let mut c = FailureCounts::default();
        let refused = PublishError::Connect {
            addr: "a".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        classify(&refused)(&mut c);
        classify(&PublishError::Timeout("connecting"))(&mut c);
        classify(&PublishError::Rejected {
            code: "NetStream.Publish.BadName".into(),
            description: String::new(),
        })(&mut c);
        classify(&PublishError::Closed("publishing"))(&mut c);
        classify(&PublishError::Timeout("waiting for the socket"))(&mut c);
        assert_eq!(
            c,
            FailureCounts {
                connect: 2,
                rejected: 1,
                publish: 2
            }
        );
    }
}
