//! The livetape catalogue: push sessions, recordings, the webhook outbox and the
//! run-time editable templates and rules of any kind (record, callback, ..; see `templates`),
//! stored in SQLite (one node) or PostgreSQL (one or many nodes): one [`Catalog`], two
//! engines, each with its own migrations, the same schema (epoch-ms `i64` times,
//! caller-generated TEXT ids) and one conformance test suite (see `backend`).
//!
//! Invariants:
//! - a `recordings` row is inserted only after its file is complete and
//!   fsynced (the caller's duty), so a row always points at a whole file;
//! - an outbox row is written in the same transaction as the change that
//!   causes it, so a committed change always has its webhook queued and a
//!   rolled-back change never does;
//! - a successful write has been fsynced (SQLite: WAL, `synchronous=FULL`;
//!   PostgreSQL: its commit);
//! - an outbox row claimed by a node (`claim_due_events`) is sent by no other node
//!   until the claim expires; a stream lease (`acquire_stream_lease`) is held by at
//!   most one node at a time until it expires;
//! - deleting a recording is two-phase: `tombstone_recording` removes the
//!   row and queues its path in `garbage` in one transaction; the caller
//!   removes the file, then `forget_garbage`. A crash in between leaves the
//!   garbage row, so no file is ever orphaned silently.
//!
//! Time is always passed in by the caller (`now_ms`); the catalogue reads no
//! clock.

#[macro_use]
mod backend;
mod auth_keys;
mod catalog;
mod cluster;
mod deliveries;
mod error;
mod forbidden;
mod model;
mod pushes;
mod sql;
mod synth;
mod templates;
mod uploads;
mod writer;

pub use auth_keys::{AuthKeys, AuthKind};
pub use backend::redact_url;
pub use catalog::{BUSY_TIMEOUT, Catalog, MAX_LIST_LIMIT};
pub use cluster::stream_lease_key;
pub use deliveries::{DeadReceiver, DeliveryQuery};
pub use error::{CatalogError, Result};
pub use forbidden::ForbiddenStream;
pub use model::{
    KindRule, NewEvent, NewPush, OutboxEvent, OutboxState, PushSession, RawSeed, RawTemplate,
    RawTemplateSet, Recording, RecordingQuery, RuleDef, SeedRule, SeedTemplate, SortOrder,
    StoredRule, StoredTemplate, UnknownOutboxState,
};
pub use pushes::{PushQuery, StreamMatch};
pub use synth::{
    SEED_STREAM_PREFIX, SeedReport, SeedSpec, seed_appname, seed_stream_for, seed_stream_name,
};
pub use templates::{CALLBACK_KIND, RECORD_KIND, TemplateBody, template_what};
pub use uploads::PendingUpload;

#[cfg(test)]
mod internal_tests;
