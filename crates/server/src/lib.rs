//! livetape: ingest → stream hub → recorders → storage → catalogue → notifier; the HTTP faces
//! read the catalogue and storage. The modules, from the bottom of that flow up (who may import
//! whom: ARCHITECTURE.md, "Layers"):
//!
//! - `model` (the vocabulary), `clock`, `failpoint`, `net` (connection caps, write deadlines); `config` (the file schema); `metrics`
//! - `store` (local disk, the bucket)
//! - `record` (recorders, spools, finalize, recovery), `hub` (who publishes what, live feeds),
//!   `rules` (the live template/rule set)
//! - `archive` (uploads, retention, two-phase deletes), as jobs with narrow handles
//! - `state` (`AppState`), `push` (a push's life), `ingest` (one driver per protocol),
//!   `http` (every axum type), `app` (start, stop, recovery); `bench` (the load generator CLI)

mod app;
pub(crate) mod archive;
pub mod bench;
pub mod clock;
pub mod config;
pub mod failpoint;
pub(crate) mod http;
pub(crate) mod hub;
pub(crate) mod ingest;
pub(crate) mod keys;
pub mod metrics;
pub mod model;
pub(crate) mod net;
pub(crate) mod push;
pub(crate) mod record;
pub(crate) mod rules;
pub(crate) mod state;
pub mod store;

pub use app::{Running, StartError, start};

/// The OpenAPI document of `/v1`, as `GET /v1/openapi.json` serves it (JSON text).
pub fn openapi_json() -> &'static str {
    http::openapi_json()
}
