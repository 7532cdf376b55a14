//! Where recordings are kept: the local data dir (spools, finished files, the free-space floor)
//! and the S3-compatible bucket.

pub mod bucket;
pub mod disk;
