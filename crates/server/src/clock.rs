//! The one clock the server reads; everything else is handed `now`. Shared with the notifier.

use std::sync::Arc;

pub use livetape_notify::{Clock, SystemClock};

pub type SharedClock = Arc<dyn Clock>;

/// Adapts a shared trait object to APIs that take a concrete `C: Clock`.
pub(crate) struct DynClock(pub SharedClock);

impl Clock for DynClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}
