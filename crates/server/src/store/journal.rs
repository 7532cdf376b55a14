//! The journal of push facts: what a crash during a catalogue outage would otherwise cost.
//!
//! A push's end (errcode, end time: so its duration) and its recording-status events (332) are
//! catalogue writes. When one fails (the database is away, its disk is full) it is retried
//! until written (`push::retry`), and its fact is also written here, fsynced, so that a crash
//! (or a stop) before the retry succeeds does not lose it: the next start applies every fact
//! left here, in order, before anything else touches the catalogue — before start-up recovery
//! catalogues the push's files (event 100) and before open sessions are ended as "server
//! restart" (errcode 5, which a replayed end has then made moot). A fact is removed once
//! written. Files are recovered from their spools and need no journal.
//!
//! Replay is idempotent, since a crash can come between a write and the removal of its fact:
//! an end only ends a session still open (and enqueues its event 0 only then), and events whose
//! ids are already in the outbox are left out ([`Fact::replay`]). (One delivered and purged
//! from the outbox since, days later, would go out again: receivers dedupe on the event id.)
//!
//! One file per fact (`journal/{seq:020}.json`, written to a temp name, fsynced, renamed, the
//! directory fsynced): facts are few (only failed writes), so a file each keeps removal a
//! single unlink and a torn write impossible.

use livetape_catalog::{Catalog, CatalogError, NewEvent};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A catalogue write of a push, as data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Fact {
    /// `Catalog::end_push_after`.
    EndPush {
        sequence: String,
        ended_at_ms: i64,
        errcode: i32,
        errmsg: String,
        first: Vec<NewEvent>,
        events: Vec<NewEvent>,
    },
    /// `Catalog::insert_events`.
    Events { events: Vec<NewEvent> },
}

impl Fact {
    /// Writes the fact.
    pub(crate) async fn apply(&self, catalog: &Catalog) -> Result<(), CatalogError> {
        match self {
            Fact::EndPush {
                sequence,
                ended_at_ms,
                errcode,
                errmsg,
                first,
                events,
            } => catalog
                .end_push_after(
                    sequence,
                    *ended_at_ms,
                    *errcode,
                    errmsg,
                    first.clone(),
                    events.clone(),
                )
                .await
                .map(drop),
            Fact::Events { events } => catalog.insert_events(events.clone()).await,
        }
    }

    /// Writes the fact left by an earlier run, less the events already queued (its write may
    /// have gone through just before the crash).
    pub(crate) async fn replay(&self, catalog: &Catalog) -> Result<(), CatalogError> {
        let mut fact = self.clone();
        let ids: Vec<String> = match &fact {
            Fact::EndPush { first, events, .. } => first.iter().chain(events),
            Fact::Events { events } => events.iter().chain(&[]),
        }
        .map(|e| e.event_id.clone())
        .collect();
        let known = catalog.known_event_ids(&ids).await?;
        let fresh = |evs: &mut Vec<NewEvent>| evs.retain(|e| !known.contains(&e.event_id));
        match &mut fact {
            Fact::EndPush { first, events, .. } => {
                fresh(first);
                fresh(events);
            }
            Fact::Events { events } => fresh(events),
        }
        fact.apply(catalog).await
    }
}

/// The journal directory of one data dir.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    next: AtomicU64,
}

/// A fact on disk; [`Entry::remove`] once it is written to the catalogue.
#[derive(Debug)]
pub(crate) struct Entry {
    path: PathBuf,
}

impl Entry {
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            // Replaying a written fact is harmless.
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a journal entry");
        }
    }
}

impl Journal {
    pub(crate) const DIR: &'static str = "journal";

    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join(Self::DIR);
        std::fs::create_dir_all(&dir)?;
        let last = Self::names(&dir)?.last().map_or(0, |(n, _)| *n);
        Ok(Self {
            dir,
            next: AtomicU64::new(last + 1),
        })
    }

    /// Writes `fact` durably (see the module docs).
    pub(crate) fn record(&self, fact: &Fact) -> io::Result<Entry> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{n:020}.json"));
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec(fact).map_err(io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        crate::store::disk::sync_dir(&self.dir)?;
        Ok(Entry { path })
    }

    /// The facts left by an earlier run, oldest first. An unreadable one (it cannot be torn:
    /// it was renamed into place whole) is logged and skipped.
    pub(crate) fn pending(&self) -> io::Result<Vec<(Entry, Fact)>> {
        let mut out = Vec::new();
        for (_, path) in Self::names(&self.dir)? {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(fact) => out.push((Entry { path }, fact)),
                Err(reason) => {
                    tracing::error!(path = %path.display(), reason, "unreadable journal entry kept aside");
                }
            }
        }
        Ok(out)
    }

    fn names(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some((name.strip_suffix(".json")?.parse().ok()?, e.path()))
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> NewEvent {
        NewEvent {
            event_id: id.into(),
            event_type: 332,
            url: "http://r/".into(),
            body: "{}".into(),
            sign_key: "k".into(),
            stream_id: "s".into(),
            max_attempts: 1,
            retry_interval_ms: 1000,
            created_at_ms: 1,
        }
    }

    #[test]
    fn facts_survive_a_reopen_in_order_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let a = j
            .record(&Fact::Events {
                events: vec![ev("a")],
            })
            .unwrap();
        j.record(&Fact::Events {
            events: vec![ev("b")],
        })
        .unwrap();
        a.remove();
        j.record(&Fact::Events {
            events: vec![ev("c")],
        })
        .unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let ids: Vec<String> = j
            .pending()
            .unwrap()
            .into_iter()
            .map(|(_, f)| match f {
                Fact::Events { events } => events[0].event_id.clone(),
                Fact::EndPush { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(ids, ["b", "c"]);
        // Numbering goes on after the last one left.
        j.record(&Fact::Events {
            events: vec![ev("d")],
        })
        .unwrap();
        assert_eq!(j.pending().unwrap().len(), 3);
    }
}
