//! The statements, one module per table or concern. Each function runs on a [`Conn`] (a
//! pooled connection, or the group-commit writer's transaction) and knows nothing of
//! [`Catalog`] or of the writer: these modules import only `backend`, `error`, `model` and
//! one another (`sessions` and `recordings` queue their events through `outbox`), so the
//! writer can call them without anything below calling back up.
//!
//! [`Conn`]: crate::backend::Conn
//! [`Catalog`]: crate::catalog::Catalog

pub(crate) mod leases;
pub(crate) mod outbox;
pub(crate) mod recordings;
pub(crate) mod sessions;
pub(crate) mod templates;
pub(crate) mod uploads;
