//! Fault injection (crash points and the I/O-error sweep): see the `livetape-failpoint` crate.

pub use livetape_failpoint::{POINTS, SITES, hit, io};
