//! Start-up recovery: every spool left by an earlier run (crash, kill -9, power cut, or a
//! reconnect window cut short by a restart) becomes a finished, catalogued recording with its
//! event 100, through the same finalize → catalogue → delete path as a normal close.
//!
//! Idempotent: a spool whose file id is already catalogued (the crash hit between commit and
//! spool deletion) is only deleted; a crash during recovery is recovered by the next start.

use super::muxer::ClosePlan;
use super::{ClosedFile, RecordContext};
use crate::model::Format;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Written beside each spool when it is created: what the catalogue row will need.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpoolMeta {
    pub file_id: String,
    pub format: Format,
    pub ctx: RecordContext,
    pub started_wall_ms: i64,
    pub media_start_ms: u64,
    pub video: Option<(String, u32, u32)>,
    /// Set when finalize starts, so a recovery picks the same end time (and so the same final
    /// file name) as the interrupted finalize.
    #[serde(default)]
    pub ended_wall_ms: Option<i64>,
    /// Set just before a disk-full finalize renames the spool itself into `records/` (as this
    /// relative path): recovery then catalogues that file instead of looking for the spool.
    #[serde(default)]
    pub adopted: Option<String>,
}

pub fn meta_path(spool: &Path) -> PathBuf {
    spool.with_extension("json")
}

pub fn write_meta(spool: &Path, meta: &SpoolMeta) -> io::Result<()> {
    crate::failpoint::io("spool.meta")?;
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    // Replace atomically: a crash mid-write must not leave unreadable metadata.
    let tmp = spool.with_extension("json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, meta_path(spool))
}

pub fn read_meta(spool: &Path) -> Result<SpoolMeta, String> {
    std::fs::read(meta_path(spool))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
}

/// Removes a spool and its metadata once its recording is catalogued. An HLS spool was
/// renamed into `records/` by finalize, so only its metadata is left to remove.
pub fn remove(spool: &Path) -> io::Result<()> {
    crate::failpoint::io("spool.remove")?;
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if !spool.is_dir() {
        gone(std::fs::remove_file(spool))?;
    }
    gone(std::fs::remove_file(meta_path(spool)))
}

/// Removes a spool that holds nothing to catalogue (no media frame, or not one complete HLS
/// segment), directory and all, and its metadata.
pub fn discard(spool: &Path) -> io::Result<()> {
    if spool.is_dir() {
        std::fs::remove_dir_all(spool)?;
    }
    remove(spool)
}

/// Where spools that can never be finalized are moved (inside the spool directory, which
/// [`scan`] reads only one level deep).
pub const QUARANTINE_DIR: &str = "quarantine";

/// Moves a spool (file or HLS directory) and its metadata into `spool/quarantine/`, where
/// neither recovery nor anything else touches them again; an operator can inspect or delete
/// them. Returns the new location of the spool.
pub fn quarantine(spool: &Path) -> io::Result<PathBuf> {
    let dir = spool
        .parent()
        .ok_or_else(|| io::Error::other("spool has no parent"))?
        .join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir)?;
    let name = spool
        .file_name()
        .ok_or_else(|| io::Error::other("spool has no name"))?;
    let to = dir.join(name);
    if spool.exists() {
        std::fs::rename(spool, &to)?;
    }
    let meta = meta_path(spool);
    if meta.exists() {
        std::fs::rename(&meta, meta_path(&to))?;
    }
    crate::store::disk::sync_dir(&dir)?;
    if let Some(parent) = spool.parent() {
        crate::store::disk::sync_dir(parent)?;
    }
    Ok(to)
}

/// What start-up found in the spool directory.
pub enum Found {
    /// A spool to finalize.
    Spool(ClosedFile),
    /// A spool without readable metadata: kept aside, never deleted.
    Unreadable { spool: PathBuf, reason: String },
}

/// Lists the spools left by an earlier run.
pub fn scan(spool_dir: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut metas = Vec::new();
    for entry in std::fs::read_dir(spool_dir)? {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("part") if !meta_path(&path).exists() => found.push(Found::Unreadable {
                reason: "no metadata beside it".into(),
                spool: path,
            }),
            Some("json") => metas.push(path),
            _ => {}
        }
    }
    for meta_file in metas {
        let meta: SpoolMeta = match std::fs::read(&meta_file)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(reason) => {
                found.push(Found::Unreadable {
                    spool: meta_file,
                    reason,
                });
                continue;
            }
        };
        let spool = meta_file.with_extension("part");
        // An HLS spool may already have been renamed into records/ by an interrupted
        // finalize (its end time is pinned then); finalize picks it up there.
        let renamed =
            (meta.format == Format::Hls && meta.ended_wall_ms.is_some()) || meta.adopted.is_some();
        if !spool.exists() && !renamed {
            // Catalogued and removed, all but this file.
            let _ = std::fs::remove_file(&meta_file);
            continue;
        }
        let ended = match meta.ended_wall_ms {
            Some(e) => e,
            // The file's end: when it was last written.
            None => std::fs::metadata(&spool)?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(meta.started_wall_ms, |d| d.as_millis() as i64)
                .max(meta.started_wall_ms),
        };
        found.push(Found::Spool(ClosedFile {
            ctx: Arc::new(meta.ctx),
            format: meta.format,
            file_id: meta.file_id,
            spool_path: spool,
            started_wall_ms: meta.started_wall_ms,
            ended_wall_ms: ended,
            media_start_ms: meta.media_start_ms,
            video: meta.video,
            plan: ClosePlan::Recover,
        }));
    }
    Ok(found)
}

/// A spool that holds no media at all (created just before a crash): nothing to recover.
pub fn is_empty(spool: &Path) -> bool {
    if spool.is_dir() {
        std::fs::read_dir(spool).map_or(true, |d| {
            !d.filter_map(|e| e.ok()).any(|e| {
                e.file_name().to_string_lossy().ends_with(".ts")
                    && e.metadata().is_ok_and(|m| m.len() >= 188)
            })
        })
    } else {
        std::fs::metadata(spool).is_ok_and(|m| m.len() == 0)
    }
}
