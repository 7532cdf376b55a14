//! What happens to finished recordings after they are catalogued: uploads to the bucket,
//! retention, two-phase deletes. Each runs as a job with the handles it uses (never the whole
//! server state).

mod deletes;
mod retention;
mod upload;

pub(crate) use deletes::{Deletes, Reason, local_garbage_id};
pub(crate) use retention::Retention;
pub(crate) use upload::Uploader;
