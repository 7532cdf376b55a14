//! Spool → final file. Blocking (file copies and fsyncs): run it on the blocking pool.
//!
//! Order (the recording invariant): final file written and fsynced, directory fsynced →
//! catalogue row + event 100 in one transaction (caller) → spool removed (caller). A crash at
//! any point leaves the spool, from which the same steps can be redone.

use super::muxer::ClosePlan;
use super::{RecordContext, RecordError};
use crate::config::Format;
use crate::storage::{Storage, materialize};
use livetape_catalog::Recording;
use std::path::PathBuf;
use std::sync::Arc;

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
    let plan = c
        .plan
        .resolve(c.format, &c.spool_path)
        .map_err(|e| RecordError::Mux {
            stream: c.ctx.stream.clone(),
            format: fmt,
            reason: e,
        })?;
    let rel = storage.record_rel_path(
        &c.ctx.appname,
        &c.ctx.stream,
        c.started_wall_ms,
        c.ended_wall_ms,
        &c.file_id,
        c.format.ext(),
    );
    let dest = storage.root().join(&rel);
    // Pin the end time before writing the final file (see recover::SpoolMeta).
    if let Ok(mut meta) = super::recover::read_meta(&c.spool_path)
        && meta.ended_wall_ms != Some(c.ended_wall_ms)
    {
        meta.ended_wall_ms = Some(c.ended_wall_ms);
        super::recover::write_meta(&c.spool_path, &meta).map_err(io)?;
    }
    let size = materialize(&c.spool_path, &plan.prefix, &plan.ranges, &dest).map_err(io)?;
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
        duration_ms: plan.duration_ms as i64,
        size_bytes: size,
        path: rel.to_string_lossy().into_owned(),
        stream_param: c.ctx.stream_param.clone(),
        video_codec,
        width,
        height,
        media_start_ms: c.media_start_ms as i64,
        created_at_ms: now_ms,
    };
    Ok(FinishedFile {
        recording,
        spool_path: c.spool_path,
    })
}
