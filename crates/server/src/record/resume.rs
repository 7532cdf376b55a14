//! The reconnect window: a recording whose push ended waits here for `resume_s`; a push of
//! the same stream within the window takes it back and continues the same files.

use super::{ClosedFile, RecordContext, RecordError, RecordStatus, Recorder};
use crate::model::StreamKey;
use std::collections::HashMap;
use std::sync::Mutex;

struct Parked {
    recorder: Recorder,
    /// Distinguishes successive parkings of one stream, so a stale timer does nothing.
    generation: u64,
}

#[derive(Default)]
pub struct Parking {
    parked: Mutex<HashMap<StreamKey, Parked>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Parking {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks a recording; returns the generation to hand back to [`Parking::expire`].
    pub fn park(&self, key: StreamKey, recorder: Recorder) -> u64 {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            key,
            Parked {
                recorder,
                generation,
            },
        );
        generation
    }

    /// A new push of `key`: the parked recording, if its window is still open.
    pub fn take(&self, key: &StreamKey) -> Option<Recorder> {
        self.lock().remove(key).map(|p| p.recorder)
    }

    /// The window of `generation` has passed: closes its files if nobody resumed it.
    pub fn expire(
        &self,
        key: &StreamKey,
        generation: u64,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) -> Option<(RecordContext, Vec<RecordStatus>)> {
        let mut parked = self.lock();
        if parked.get(key).is_none_or(|p| p.generation != generation) {
            return None;
        }
        let mut p = parked.remove(key)?;
        drop(parked);
        p.recorder.finish(now_ms, closed, errors);
        Some((p.recorder.context().clone(), p.recorder.take_statuses()))
    }

    /// Closes every parked recording (shutdown); returns their status changes.
    pub fn drain(
        &self,
        now_ms: i64,
        closed: &mut Vec<ClosedFile>,
        errors: &mut Vec<RecordError>,
    ) -> Vec<(RecordContext, Vec<RecordStatus>)> {
        let all: Vec<Parked> = self.lock().drain().map(|(_, p)| p).collect();
        all.into_iter()
            .map(|mut p| {
                p.recorder.finish(now_ms, closed, errors);
                (p.recorder.context().clone(), p.recorder.take_statuses())
            })
            .collect()
    }
}
