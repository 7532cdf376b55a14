//! Where recordings are kept: the local data dir (spools, finished files, the free-space floor)
//! and the S3-compatible bucket; and the journal of push facts a failed catalogue write must
//! not lose.

pub mod bucket;
pub mod disk;
pub(crate) mod journal;
