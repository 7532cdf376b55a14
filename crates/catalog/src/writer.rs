//! Group commit: the hot writes (push start/end, recording rows, outbox marks) go through one
//! writer task that commits whatever queued up while the previous commit was being fsynced in
//! **one** transaction, each write in its own savepoint.
//!
//! Both engines: on PostgreSQL the batch saves the per-commit WAL flush the same way.
//!
//! Why: SQLite has one writer at a time, and a connection that finds the lock taken waits in
//! SQLite's busy handler, which *sleeps* (1, 2, 5, … 100 ms). With 200 streams ending at once,
//! 200 recording rows and 200 delivery marks queued behind each other's fsyncs and those
//! sleeps, and the last callback left seconds after its stream ended. Here a burst of N writes
//! costs one fsync per batch instead of N, and nobody sleeps.
//!
//! Every write of the hot paths goes through here, the outbox claims and stream leases too:
//! a write that went to the pool directly would meet the batch's lock and sleep in the busy
//! handler (measured: 200 lease releases at one stream end each, serialized behind the
//! batches, put ~170 ms between a push's end and its event 0 being sent).
//!
//! Durability is unchanged: a write's caller hears `Ok` only after the batch's `COMMIT` (WAL,
//! `synchronous=FULL`) returned. Isolation is unchanged too: a write that fails is rolled back
//! to its savepoint and reported to its own caller; the others in the batch still commit.
//!
//! Layering: the statements a write runs live in `sql` (which imports nothing above it); the
//! `Catalog` methods build a [`Write`] and submit it here. Nothing here calls back up.

use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Begin, Conn, Db};
use crate::error::{CatalogError, Result};
use crate::model::{NewEvent, NewPush, OutboxEvent, Recording};
use crate::sql::{leases, outbox, recordings, sessions};

/// Writes per transaction at most: bounds how long one batch holds the write lock.
const MAX_BATCH: usize = 512;

/// One write the writer task applies; its outcome is the number of rows it changed.
pub(crate) enum Write {
    BeginPush(Box<NewPush>, Option<NewEvent>),
    EndPush {
        sequence: String,
        ended_at_ms: i64,
        errcode: i32,
        errmsg: String,
        /// Enqueued whether or not the session was still open.
        first: Vec<NewEvent>,
        events: Vec<NewEvent>,
    },
    InsertRecording(Box<Recording>, Vec<NewEvent>),
    InsertEvents(Vec<NewEvent>),
    MarkDelivered {
        id: i64,
        now_ms: i64,
    },
    MarkFailed {
        id: i64,
        attempts_done: u32,
        next_attempt_at_ms: Option<i64>,
        error: String,
    },
    ClaimDue {
        node: String,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    },
    ReleaseClaims {
        node: String,
        ids: Vec<i64>,
    },
    AcquireLease {
        stream_key: String,
        node: String,
        now_ms: i64,
        until_ms: i64,
    },
    RenewLeases {
        node: String,
        until_ms: i64,
    },
    ReleaseLease {
        stream_key: String,
        node: String,
    },
}

/// What a write returns: most count the rows they changed.
#[derive(Debug)]
pub(crate) enum Applied {
    Rows(u64),
    /// Claimed events ([`Write::ClaimDue`]).
    Events(Vec<OutboxEvent>),
    /// [`Write::AcquireLease`]: `None` = taken, `Some(holder)` = held by another node.
    Lease(Option<String>),
}

impl Write {
    fn op(&self) -> &'static str {
        match self {
            Write::BeginPush(..) => "begin_push",
            Write::EndPush { .. } => "end_push",
            Write::InsertRecording(..) => "insert_recording",
            Write::InsertEvents(_) => "insert_events",
            Write::MarkDelivered { .. } => "mark_delivered",
            Write::MarkFailed { .. } => "mark_failed",
            Write::ClaimDue { .. } => "claim_due_events",
            Write::ReleaseClaims { .. } => "release_claims",
            Write::AcquireLease { .. } => "acquire_stream_lease",
            Write::RenewLeases { .. } => "renew_stream_leases",
            Write::ReleaseLease { .. } => "release_stream_lease",
        }
    }

    fn key(&self) -> String {
        match self {
            Write::BeginPush(p, _) => format!("sequence={}", p.sequence),
            Write::EndPush { sequence, .. } => format!("sequence={sequence}"),
            Write::InsertRecording(r, _) => format!("file_id={}", r.file_id),
            Write::InsertEvents(_) => String::new(),
            Write::MarkDelivered { id, .. } | Write::MarkFailed { id, .. } => format!("id={id}"),
            Write::ClaimDue { node, .. }
            | Write::ReleaseClaims { node, .. }
            | Write::RenewLeases { node, .. } => format!("node={node}"),
            Write::AcquireLease { stream_key, .. } | Write::ReleaseLease { stream_key, .. } => {
                format!("stream_key={stream_key}")
            }
        }
    }

    async fn apply(&self, conn: &mut Conn<'_>) -> Result<Applied> {
        let rows = match self {
            Write::ClaimDue {
                node,
                now_ms,
                until_ms,
                limit,
            } => {
                let events = outbox::claim_due_in(conn, node, *now_ms, *until_ms, *limit).await?;
                return Ok(Applied::Events(events));
            }
            Write::AcquireLease {
                stream_key,
                node,
                now_ms,
                until_ms,
            } => {
                let held =
                    leases::acquire_lease_in(conn, stream_key, node, *now_ms, *until_ms).await?;
                return Ok(Applied::Lease(held));
            }
            Write::ReleaseClaims { node, ids } => {
                outbox::release_claims_in(conn, node, ids).await?
            }
            Write::RenewLeases { node, until_ms } => {
                leases::renew_leases_in(conn, node, *until_ms).await?
            }
            Write::ReleaseLease { stream_key, node } => {
                leases::release_lease_in(conn, stream_key, node).await?
            }
            Write::BeginPush(push, event) => {
                sessions::begin_push_in(conn, push, event.as_ref()).await?
            }
            Write::EndPush {
                sequence,
                ended_at_ms,
                errcode,
                errmsg,
                first,
                events,
            } => {
                let (at, code) = (*ended_at_ms, *errcode);
                sessions::end_push_in(conn, sequence, at, code, errmsg, first, events).await?
            }
            Write::InsertRecording(rec, events) => {
                recordings::insert_recording_in(conn, rec, events).await?
            }
            Write::InsertEvents(events) => {
                outbox::insert_events_in(conn, "insert_events", events).await?;
                0
            }
            Write::MarkDelivered { id, now_ms } => {
                outbox::mark_delivered_in(conn, *id, *now_ms).await?
            }
            Write::MarkFailed {
                id,
                attempts_done,
                next_attempt_at_ms,
                error,
            } => {
                outbox::mark_failed_in(conn, *id, *attempts_done, *next_attempt_at_ms, error)
                    .await?
            }
        };
        Ok(Applied::Rows(rows))
    }
}

struct Job {
    write: Write,
    done: oneshot::Sender<Result<Applied>>,
}

/// Handle to the writer task; cheap to clone. The task ends when every handle is gone.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    /// Transactions committed so far (tests check that bursts share them).
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn spawn(db: Db) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(db, rx, commits.clone()));
        Self { jobs, commits }
    }

    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues a write that counts rows and waits until the batch holding it is durable.
    pub(crate) async fn submit(&self, write: Write) -> Result<u64> {
        match self.submit_any(write).await? {
            Applied::Rows(n) => Ok(n),
            other => unreachable!("a row-counting write returned {other:?}"),
        }
    }

    /// Queues `write` and waits until the batch holding it is durable (or failed).
    pub(crate) async fn submit_any(&self, write: Write) -> Result<Applied> {
        let (op, key) = (write.op(), write.key());
        let (done, rx) = oneshot::channel();
        let stopped = || CatalogError::Commit {
            op,
            key: key.clone(),
            reason: "the catalogue writer has stopped".into(),
        };
        // The I/O-error sweep: as if the database had dropped the connection (not applied).
        livetape_failpoint::io("catalog.write").map_err(|e| CatalogError::Commit {
            op,
            key: key.clone(),
            reason: format!("injected: {e}"),
        })?;
        self.jobs.send(Job { write, done }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Job>, commits: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Everything queued while the previous batch was committing forms the next batch.
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&db, &mut batch).await;
        commits.fetch_add(1, Ordering::Relaxed);
    }
}

/// Applies and commits `batch` (emptied), answering every job.
///
/// First all writes in one plain transaction: a savepoint per write would double the
/// statements, and with sqlx's SQLite every statement is a round trip to its worker thread
/// (two context switches), which is most of what a burst of writes costs. Writes rarely
/// fail; when one does, that attempt is rolled back and the batch is redone with a
/// savepoint per write, so only the failed write is lost.
async fn commit_batch(db: &Db, batch: &mut Vec<Job>) {
    if batch.len() > 1 {
        let fast: std::result::Result<Option<Vec<Applied>>, sqlx::Error> =
            on_pool!(db, |pool| async {
                let mut tx = pool.begin_write().await?;
                let mut applied = Vec::with_capacity(batch.len());
                for job in batch.iter() {
                    match job.write.apply(&mut Conn::from(&mut *tx)).await {
                        Ok(a) => applied.push(a),
                        Err(_) => {
                            tx.rollback().await?;
                            return Ok(None);
                        }
                    }
                }
                tx.commit().await?;
                Ok(Some(applied))
            }
            .await);
        match fast {
            Ok(Some(applied)) => {
                for (job, a) in batch.drain(..).zip(applied) {
                    let _ = job.done.send(Ok(a));
                }
                return;
            }
            // A write failed and nothing was committed: redo write by write below.
            Ok(None) => {}
            // The transaction failed (or its COMMIT did, which may even have taken effect on
            // a server that went away): never redo, every write fails.
            Err(e) => return fail_all(batch, Vec::new(), &e),
        }
    }
    commit_isolated(db, batch).await;
}

/// Answers every job of a batch whose transaction failed: nothing of it is durable.
/// `reached` are the jobs already taken out of `batch`.
fn fail_all(
    batch: &mut Vec<Job>,
    reached: Vec<(oneshot::Sender<Result<Applied>>, &'static str, String)>,
    e: &sqlx::Error,
) {
    let reason = e.to_string();
    let unreached = batch
        .drain(..)
        .map(|j| (j.done, j.write.op(), j.write.key()));
    for (done, op, key) in reached.into_iter().chain(unreached) {
        let _ = done.send(Err(CatalogError::Commit {
            op,
            key,
            reason: reason.clone(),
        }));
    }
}

/// [`commit_batch`]'s careful path: each write in its own savepoint.
async fn commit_isolated(db: &Db, batch: &mut Vec<Job>) {
    // (answer channel, op, key, outcome) per job, in batch order.
    let mut answers = Vec::with_capacity(batch.len());
    let outcome: std::result::Result<(), sqlx::Error> = on_pool!(db, |pool| async {
        let mut tx = pool.begin_write().await?;
        let alone = batch.len() == 1;
        for job in batch.drain(..) {
            let (op, key) = (job.write.op(), job.write.key());
            let r = if alone {
                // Alone: the transaction itself is the unit; a failure rolls it back below.
                job.write.apply(&mut Conn::from(&mut *tx)).await
            } else {
                // A savepoint: on PostgreSQL also what keeps a failed statement from
                // aborting the whole transaction.
                let mut sp = tx.begin().await?;
                let r = job.write.apply(&mut Conn::from(&mut *sp)).await;
                if r.is_ok() {
                    sp.commit().await?;
                } else {
                    sp.rollback().await?;
                }
                r
            };
            let failed_alone = alone && r.is_err();
            answers.push((job.done, op, key, r));
            if failed_alone {
                return tx.rollback().await;
            }
        }
        tx.commit().await
    }
    .await);
    match outcome {
        Ok(()) => {
            for (done, _, _, r) in answers {
                let _ = done.send(r);
            }
        }
        Err(e) => {
            // Nothing of the batch is durable: every write fails, including those that
            // applied. Jobs not reached yet are still in `batch`.
            let reached = answers.into_iter().map(|(d, op, key, _)| (d, op, key));
            fail_all(batch, reached.collect(), &e);
        }
    }
}
