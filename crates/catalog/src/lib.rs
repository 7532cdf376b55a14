//! The livetape catalogue: push sessions, recordings, the webhook outbox and the
//! run-time editable record/callback templates and rules,
//! stored in SQLite (a PostgreSQL twin will follow; the SQL stays portable
//! where that is cheap: epoch-ms `i64` times, caller-generated TEXT ids).
//!
//! Invariants:
//! - a `recordings` row is inserted only after its file is complete and
//!   fsynced (the caller's duty), so a row always points at a whole file;
//! - an outbox row is written in the same transaction as the change that
//!   causes it, so a committed change always has its webhook queued and a
//!   rolled-back change never does;
//! - a successful write has been fsynced (WAL, `synchronous=FULL`);
//! - deleting a recording is two-phase: `tombstone_recording` removes the
//!   row and queues its path in `garbage` in one transaction; the caller
//!   removes the file, then `forget_garbage`. A crash in between leaves the
//!   garbage row, so no file is ever orphaned silently.
//!
//! Time is always passed in by the caller (`now_ms`); the catalogue reads no
//! clock.

mod catalog;
mod deliveries;
mod error;
mod model;
mod synth;
mod templates;
mod uploads;
mod writer;

pub use catalog::{BUSY_TIMEOUT, Catalog, MAX_LIST_LIMIT};
pub use deliveries::DeliveryQuery;
pub use error::{CatalogError, Result};
pub use model::{
    NewEvent, NewPush, OutboxEvent, OutboxState, PushSession, Recording, RecordingQuery, SortOrder,
    UnknownOutboxState,
};
pub use synth::{
    SEED_STREAM_PREFIX, SeedReport, SeedSpec, seed_appname, seed_stream_for, seed_stream_name,
};
pub use templates::{
    CallbackRuleDef, CallbackTemplateDef, RecordRuleDef, RecordTemplateDef, StoredRule,
    StoredTemplate, TemplateSeed, TemplateSet,
};
pub use uploads::PendingUpload;

#[cfg(test)]
mod internal_tests;
