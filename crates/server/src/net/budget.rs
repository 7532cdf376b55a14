//! A memory budget shared by connections that are not yet authenticated: each one charges
//! what it holds (read buffer, partial messages) and is closed when its charge would take the
//! total over the limit. With the per-connection bounds this caps what strangers can make
//! the server hold, however many of them connect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub(crate) fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: self.clone(),
            held: 0,
        }
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// One connection's part of the budget, released when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<MemoryBudget>,
    held: usize,
}

impl Charge {
    /// Sets this connection's charge to `bytes`; false (and nothing changed) if that would
    /// take the total over the limit.
    pub(crate) fn set(&mut self, bytes: usize) -> bool {
        if bytes <= self.held {
            self.budget
                .used
                .fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
            return true;
        }
        let more = bytes - self.held;
        let before = self.budget.used.fetch_add(more, Ordering::Relaxed);
        if before + more > self.budget.limit {
            self.budget.used.fetch_sub(more, Ordering::Relaxed);
            return false;
        }
        self.held = bytes;
        true
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_to_the_limit_and_are_released() {
        let b = MemoryBudget::new(100);
        let mut x = b.charge();
        let mut y = b.charge();
        assert!(x.set(60));
        assert!(!y.set(50), "60 + 50 > 100");
        assert_eq!(b.used(), 60);
        assert!(y.set(40));
        assert!(x.set(10), "shrinking always works");
        assert!(y.set(90));
        drop(y);
        assert_eq!(b.used(), 10);
        drop(x);
        assert_eq!(b.used(), 0);
    }
}
