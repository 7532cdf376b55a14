//! Callback retry policy (spec §1.2), sans-IO: the caller supplies `now` and persists the result.

/// Retries after the first attempt for push/interrupt/record events ("up to 12").
pub const DEFAULT_RETRIES: u32 = 12;
/// Interval between attempts for push/interrupt/record events (1 min).
pub const DEFAULT_INTERVAL_MS: u64 = 60_000;
/// Screenshot events (200): up to 5 retries, 2 min apart.
pub const SCREENSHOT_RETRIES: u32 = 5;
pub const SCREENSHOT_INTERVAL_MS: u64 = 120_000;

/// How often and how far apart an event is (re)sent.
///
/// `max_attempts` counts **all** attempts: Tencent's "up to 12 retries" means
/// `max_attempts = 1 + 12 = 13`. Use [`RetryPolicy::from_retries`] to build it from a retry count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub interval_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::from_retries(DEFAULT_RETRIES, DEFAULT_INTERVAL_MS)
    }
}

impl RetryPolicy {
    /// `retries` re-sends after the initial attempt.
    pub fn from_retries(retries: u32, interval_ms: u64) -> Self {
        RetryPolicy {
            max_attempts: retries.saturating_add(1),
            interval_ms,
        }
    }

    /// Screenshot (event 200) defaults.
    pub fn screenshot() -> Self {
        Self::from_retries(SCREENSHOT_RETRIES, SCREENSHOT_INTERVAL_MS)
    }

    /// After `attempts_done` failed attempts (including the one that just failed), the time of
    /// the next attempt, or `None` to give up (dead letter).
    pub fn after_failure(&self, attempts_done: u32, now_ms: i64) -> Option<i64> {
        if attempts_done >= self.max_attempts {
            return None;
        }
        let interval = i64::try_from(self.interval_ms).unwrap_or(i64::MAX);
        Some(now_ms.saturating_add(interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_spec() {
        let p = RetryPolicy::default();
        assert_eq!(
            p,
            RetryPolicy {
                max_attempts: 13,
                interval_ms: 60_000
            }
        );
        assert_eq!(
            RetryPolicy::screenshot(),
            RetryPolicy {
                max_attempts: 6,
                interval_ms: 120_000
            }
        );
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = RetryPolicy::from_retries(2, 1000);
        assert_eq!(p.after_failure(1, 5), Some(1005));
        assert_eq!(p.after_failure(2, 5), Some(1005));
        assert_eq!(p.after_failure(3, 5), None);
        assert_eq!(p.after_failure(u32::MAX, 5), None);
        let never = RetryPolicy::from_retries(0, 1000);
        assert_eq!(never.after_failure(1, 0), None);
        let huge = RetryPolicy::from_retries(u32::MAX, u64::MAX);
        assert_eq!(huge.max_attempts, u32::MAX);
        assert_eq!(huge.after_failure(1, 1), Some(i64::MAX));
    }

    #[test]
    fn twelve_retries_means_thirteen_posts() {
        let p = RetryPolicy::default();
        let sent = (1..)
            .take_while(|&n| p.after_failure(n, 0).is_some())
            .count()
            + 1;
        assert_eq!(sent, 13);
    }
}
