//! Spool → final file. Blocking (file copies and fsyncs): run it on the blocking pool.
//!
//! Order (the recording invariant): final file written and fsynced, directory fsynced →
//! catalogue row + event 100 in one transaction (caller) → spool removed (caller). A crash at
//! any point leaves the spool, from which the same steps can be redone.

use super::muxer::{ClosePlan, HLS_PLAYLIST, PlanError};
use super::{RecordContext, RecordError};
use crate::model::Format;
use crate::store::disk::{Storage, materialize, sync_dir};
use livetape_catalog::Recording;
use livetape_hls::SegmentInfo;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

const MS_PER_DAY: i64 = 86_400_000;

/// A file whose spool is complete and closed, waiting to be finalized.
pub struct ClosedFile {
    pub ctx: Arc<RecordContext>,
    pub format: Format,
    pub file_id: String,
    pub spool_path: PathBuf,
    pub started_wall_ms: i64,
    pub ended_wall_ms: i64,
    pub media_start_ms: u64,
    pub video: Option<(String, u32, u32)>,
    pub(crate) plan: ClosePlan,
}

impl ClosedFile {
    /// The same file, to be finalized again from its spool alone (as crash recovery does):
    /// what a retry after a failed finalize needs.
    pub fn for_retry(&self) -> ClosedFile {
        ClosedFile {
            ctx: Arc::clone(&self.ctx),
            format: self.format,
            file_id: self.file_id.clone(),
            spool_path: self.spool_path.clone(),
            started_wall_ms: self.started_wall_ms,
            ended_wall_ms: self.ended_wall_ms,
            media_start_ms: self.media_start_ms,
            video: self.video.clone(),
            plan: ClosePlan::Recover,
        }
    }
}

/// A finalized, durable file and the catalogue row that describes it.
pub struct FinishedFile {
    pub recording: Recording,
    pub spool_path: PathBuf,
}

pub fn finalize(
    c: ClosedFile,
    storage: &Storage,
    public_url: &str,
    now_ms: i64,
) -> Result<FinishedFile, RecordError> {
    let fmt = c.format.as_str();
    let io = |source| RecordError::Io {
        stream: c.ctx.stream.clone(),
        format: fmt,
        path: c.spool_path.clone(),
        source,
    };
    let rel = storage.record_rel_path(
        &c.ctx.appname,
        &c.ctx.stream,
        c.started_wall_ms,
        c.ended_wall_ms,
        &c.file_id,
        c.format.ext(),
    );
    let dest = storage.root().join(&rel);
    let (size, duration_ms) = if c.format == Format::Hls {
        pin_meta(&c.spool_path, c.ended_wall_ms, None).map_err(io)?;
        let segments = match c.plan {
            ClosePlan::Hls { segments } => Some(segments),
            _ => None,
        };
        match finalize_hls(&c.spool_path, segments, &dest) {
            Ok(Some(done)) => done,
            Ok(None) => {
                return Err(RecordError::Empty {
                    stream: c.ctx.stream.clone(),
                    format: fmt,
                    path: c.spool_path.clone(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(RecordError::Mux {
                    stream: c.ctx.stream.clone(),
                    format: fmt,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(io(e)),
        }
    } else {
        let spool_exists = c.spool_path.exists();
        // A spool adopted by an interrupted in-place or disk-full finalize is already at `dest`.
        let source = if spool_exists {
            c.spool_path.as_path()
        } else {
            dest.as_path()
        };
        let plan = c.plan.resolve(c.format, source).map_err(|e| match e {
            PlanError::Io(e) => io(e),
            PlanError::Malformed(reason) => RecordError::Mux {
                stream: c.ctx.stream.clone(),
                format: fmt,
                reason,
            },
        })?;
        if plan.empty {
            if !spool_exists {
                // Adopted by an earlier run before it died: the file at `dest` goes too.
                let _ = std::fs::remove_file(&dest);
            }
            return Err(RecordError::Empty {
                stream: c.ctx.stream.clone(),
                format: fmt,
                path: c.spool_path.clone(),
            });
        }
        let rel_str = rel.to_string_lossy().into_owned();
        let size = if plan.in_place {
            // The spool becomes the final file: its head is rewritten, then it is renamed into
            // place. The destination is pinned first, so a crash after the rename is recovered
            // from `dest` (and writing the same head again is harmless).
            let final_len = plan.prefix.len() as u64 + plan.ranges.iter().map(|r| r.1).sum::<u64>();
            if spool_exists {
                pin_meta(&c.spool_path, c.ended_wall_ms, Some(rel_str)).map_err(io)?;
            }
            crate::store::disk::rewrite_head(source, &plan.prefix, final_len).map_err(io)?;
            if spool_exists {
                crate::store::disk::adopt_spool(&c.spool_path, &dest).map_err(io)?
            } else {
                final_len
            }
        } else if !spool_exists && dest.exists() {
            pin_meta(&c.spool_path, c.ended_wall_ms, None).map_err(io)?;
            // Adopted by an interrupted disk-full finalize: the file is already in place.
            std::fs::metadata(&dest).map_err(io)?.len()
        } else {
            pin_meta(&c.spool_path, c.ended_wall_ms, None).map_err(io)?;
            match materialize(&c.spool_path, &plan.prefix, &plan.ranges, &dest) {
                Ok(size) => size,
                Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                    tracing::warn!(
                        file_id = c.file_id,
                        "disk full: the spool itself becomes the final file"
                    );
                    pin_meta(&c.spool_path, c.ended_wall_ms, Some(rel_str)).map_err(io)?;
                    crate::store::disk::adopt_spool(&c.spool_path, &dest).map_err(io)?
                }
                Err(e) => return Err(io(e)),
            }
        };
        (size, plan.duration_ms)
    };
    crate::failpoint::hit("finalize.copied");
    let (video_codec, width, height) = c.video.clone().unwrap_or_default();
    let recording = Recording {
        video_url: format!("{public_url}/vod/{}/{}", c.file_id, c.format.url_name()),
        file_id: c.file_id,
        sequence: c.ctx.sequence.clone(),
        app: c.ctx.domain.clone(),
        appname: c.ctx.appname.clone(),
        stream_id: c.ctx.stream.clone(),
        format: fmt.to_owned(),
        start_ms: c.started_wall_ms,
        end_ms: c.ended_wall_ms,
        duration_ms: duration_ms as i64,
        size_bytes: size,
        path: rel.to_string_lossy().into_owned(),
        stream_param: c.ctx.stream_param.clone(),
        video_codec,
        width,
        height,
        media_start_ms: c.media_start_ms as i64,
        created_at_ms: now_ms,
        expires_at_ms: (c.ctx.storage_days > 0).then(|| {
            let days = i64::try_from(c.ctx.storage_days).unwrap_or(i64::MAX);
            c.ended_wall_ms
                .saturating_add(days.saturating_mul(MS_PER_DAY))
        }),
    };
    Ok(FinishedFile {
        recording,
        spool_path: c.spool_path,
    })
}

/// Pins, in the spool's metadata, the end time (so a recovery picks the same final name) and,
/// when the spool itself is about to become the final file, its destination. One write, and
/// none when nothing changes.
fn pin_meta(spool: &Path, ended_wall_ms: i64, adopted: Option<String>) -> io::Result<()> {
    let Ok(mut meta) = super::recover::read_meta(spool) else {
        return Ok(());
    };
    let adopted = adopted.or_else(|| meta.adopted.clone());
    if meta.ended_wall_ms == Some(ended_wall_ms) && meta.adopted == adopted {
        return Ok(());
    }
    meta.ended_wall_ms = Some(ended_wall_ms);
    meta.adopted = adopted;
    super::recover::write_meta(spool, &meta)
}

/// HLS: the spool directory becomes the recording's directory. Segments from an interrupted
/// run are re-measured from the files (`probe_segment`), a torn tail segment is cut to whole
/// TS packets or dropped, the final VOD playlist is written, everything is fsynced, and the
/// directory is renamed into `records/` (atomic; a crash after it is recovered from `dest`).
/// `None`: not one complete segment, nothing to catalogue.
fn finalize_hls(
    spool: &Path,
    segments: Option<Vec<SegmentInfo>>,
    dest: &Path,
) -> io::Result<Option<(u64, u64)>> {
    let dir = if spool.exists() { spool } else { dest };
    let segments = match segments {
        Some(s) => s,
        None => measure_segments(dir)?,
    };
    if segments.is_empty() {
        return Ok(None);
    }
    let playlist = livetape_hls::rebuild_playlist(&segments, true);
    crate::failpoint::io("finalize.hls_playlist")?;
    let tmp = dir.join(".playlist.tmp");
    std::fs::write(&tmp, playlist.as_bytes())?;
    std::fs::rename(&tmp, dir.join(HLS_PLAYLIST))?;
    let mut size = 0;
    for s in &segments {
        let f = std::fs::File::open(dir.join(&s.uri))?;
        size += f.metadata()?.len();
        f.sync_all()?;
    }
    std::fs::File::open(dir.join(HLS_PLAYLIST))?.sync_all()?;
    sync_dir(dir)?;
    if dir != dest {
        let parent = dest.parent().ok_or_else(|| io::Error::other("no parent"))?;
        std::fs::create_dir_all(parent)?;
        crate::failpoint::io("finalize.hls_rename")?;
        std::fs::rename(dir, dest)?;
        sync_dir(parent)?;
        if let Some(spool_dir) = spool.parent() {
            sync_dir(spool_dir)?;
        }
    }
    Ok(Some((size, segments.iter().map(|s| s.duration_ms).sum())))
}

/// Rebuilds the segment list of an HLS directory from the segment files themselves.
fn measure_segments(dir: &Path) -> io::Result<Vec<SegmentInfo>> {
    const TS_PACKET: u64 = 188;
    let mut names: Vec<(u64, String)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((livetape_hls::parse_segment_uri(&name)?, name))
        })
        .collect();
    names.sort();
    let last = names.last().map(|(i, _)| *i);
    let mut out = Vec::new();
    for (index, name) in names {
        let path = dir.join(&name);
        let len = std::fs::metadata(&path)?.len();
        let mut whole = len - len % TS_PACKET;
        let mut data = std::fs::read(&path)?;
        if Some(index) == last {
            // The segment being written when the run was cut: a write cut short (full disk,
            // crash) can leave its last frame partial, which decoders report as corrupt.
            // Cut back to whole frames, as FLV and MP4 recovery do.
            whole = livetape_hls::whole_frames_len(&data[..whole as usize]) as u64;
        }
        if whole != len {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(whole)?;
            data.truncate(whole as usize);
        }
        match livetape_hls::probe_segment(&data) {
            Some(p) => out.push(SegmentInfo {
                index,
                uri: name,
                duration_ms: p.duration_ms,
                bytes: whole,
                discontinuity: p.discontinuity,
                first_dts_ms: p.first_dts_ms,
            }),
            None => {
                tracing::warn!(segment = %path.display(), "unreadable HLS segment dropped");
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(out)
}
