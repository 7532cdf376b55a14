//! Callback outbox deliverer: takes due events from a persistent outbox, signs them
//! (`t = now + 600`, `sign = md5(key + t)`, recomputed per attempt), POSTs them as JSON and
//! records the outcome with Tencent's retry policy. At-least-once; receivers dedupe on the
//! `X-Livetape-Event-Id` header (or Tencent's own keys, spec §7.3).
//!
//! The outbox itself (a DB table) is behind the [`Outbox`] trait so this crate stays free of the
//! catalogue; time comes from an injected [`Clock`].
//!
//! **Ordering guarantee**: events with the same [`PendingEvent::ordering_key`] (e.g. one stream)
//! are never in flight at the same time and start in id order. Holding later events back while
//! an earlier one waits for its retry is the [`Outbox`]'s job (`due` returns only what may be
//! sent now); livetape's catalogue does that per stream, so ordering survives outages.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use livetape_tencent::{RetryPolicy, sign_body};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Header carrying the stable event id on every attempt.
pub const EVENT_ID_HEADER: &str = "X-Livetape-Event-Id";
/// Tencent: no response within 20 s counts as a failure.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_CONCURRENCY: usize = 256;
pub const DEFAULT_BATCH_LIMIT: u32 = 256;
/// Safety-net poll while idle (events committed without a `wake()` are still found).
pub const DEFAULT_MAX_IDLE_POLL: Duration = Duration::from_secs(1);
/// Longest error text passed to [`Outbox::failed`].
const MAX_ERROR_LEN: usize = 512;

/// One outbox row to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// Outbox row id; also the delivery order within an `ordering_key`.
    pub id: i64,
    /// Stable id sent as [`EVENT_ID_HEADER`] on every attempt.
    pub event_id: String,
    /// Events sharing this key (e.g. `domain/app/stream`) are delivered one at a time, by id.
    /// Use a unique value (e.g. `event_id`) to opt out.
    pub ordering_key: String,
    pub url: String,
    /// JSON object **without** `t`/`sign`.
    pub body: String,
    /// Callback key (may be empty: `sign = md5("" + t)`).
    pub sign_key: String,
    /// Attempts already made.
    pub attempts: u32,
    /// Total attempts allowed (1 + retries), see [`RetryPolicy`].
    pub max_attempts: u32,
    pub retry_interval_ms: u64,
}

/// The persistent outbox, implemented by the catalogue (DB) and by test fakes.
pub trait Outbox: Send + Sync + 'static {
    type Error: Display + Send + 'static;

    /// Undelivered, not-dead events with `next_at <= now_ms`, ascending by id, at most `limit`.
    fn due(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<PendingEvent>, Self::Error>> + Send;

    /// Earliest `next_at` of any undelivered, not-dead event.
    fn next_due_at(&self) -> impl Future<Output = Result<Option<i64>, Self::Error>> + Send;

    /// The receiver at `url` answered HTTP 200.
    fn delivered(
        &self,
        id: i64,
        url: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// An attempt failed. `attempts` is the new total; `next_at_ms == None` means give up (dead).
    fn failed(
        &self,
        id: i64,
        url: &str,
        attempts: u32,
        next_at_ms: Option<i64>,
        error: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Events [`Outbox::due`] returned that this notifier did not start (their key is busy,
    /// or no capacity was left): an outbox that hands events out exclusively (claims shared
    /// by several nodes) makes them available again. The default does nothing.
    fn release(&self, ids: &[i64]) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = ids;
        async { Ok(()) }
    }
}

/// Wall-clock source, injected so tests can control `t` and due times.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// Per-POST timeout (Tencent: 20 s).
    pub request_timeout: Duration,
    /// Maximum POSTs in flight.
    pub concurrency: usize,
    /// Rows fetched per scan (on top of those already in flight).
    pub batch_limit: u32,
    /// Longest sleep without a wake-up or a due event.
    pub max_idle_poll: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            batch_limit: DEFAULT_BATCH_LIMIT,
            max_idle_poll: DEFAULT_MAX_IDLE_POLL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("building the HTTP client failed: {0}")]
    Client(#[from] reqwest::Error),
    #[error("notifier did not stop within {0:?}; in-flight posts were aborted and will be resent")]
    ShutdownTimedOut(Duration),
}

/// Cheap clonable handle to wake the notifier (e.g. right after committing an event).
#[derive(Clone, Debug)]
pub struct NotifierWaker(Arc<Notify>);

impl NotifierWaker {
    pub fn wake(&self) {
        // notify_one stores a permit if the loop is busy, so no wake-up is lost.
        self.0.notify_one();
    }
}

/// Owner handle of a running notifier. Dropping it stops the notifier (in-flight posts finish).
#[derive(Debug)]
pub struct NotifierHandle {
    waker: NotifierWaker,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl NotifierHandle {
    /// Look for due events now instead of at the next poll.
    pub fn wake(&self) {
        self.waker.wake();
    }

    pub fn waker(&self) -> NotifierWaker {
        self.waker.clone()
    }

    /// Stop taking new events and wait up to `timeout` for in-flight posts to finish and be
    /// recorded. On timeout they are aborted (their rows stay due and are resent later).
    pub async fn shutdown(mut self, timeout: Duration) -> Result<(), NotifyError> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.task.abort();
                Err(NotifyError::ShutdownTimedOut(timeout))
            }
        }
    }
}

pub struct Notifier;

impl Notifier {
    /// Start the delivery loop on the current tokio runtime.
    pub fn spawn<O: Outbox, C: Clock>(
        outbox: Arc<O>,
        clock: Arc<C>,
        config: NotifierConfig,
    ) -> Result<NotifierHandle, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            // Only a 200 acknowledges; a redirect is a failure, not something to follow.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("livetape/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker {
            outbox,
            clock,
            client,
            config,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            in_flight_keys: HashSet::new(),
        };
        let task = tokio::spawn(worker.run(wake.clone(), stop_rx));
        Ok(NotifierHandle {
            waker: NotifierWaker(wake),
            stop: stop_tx,
            task,
        })
    }
}

struct Worker<O, C> {
    outbox: Arc<O>,
    clock: Arc<C>,
    client: reqwest::Client,
    config: NotifierConfig,
    tasks: JoinSet<()>,
    /// tokio task id → (event id, ordering key), so aborted/panicked tasks are cleaned up too.
    running: HashMap<tokio::task::Id, (i64, String)>,
    in_flight_keys: HashSet<String>,
}

impl<O: Outbox, C: Clock> Worker<O, C> {
    async fn run(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            let wait = self.scan().await;
            tokio::select! {
                biased;
                // Err = handle dropped: stop as well.
                r = stop.changed() => if r.is_err() || *stop.borrow() { break },
                Some(res) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finished(res);
                    // Coalesce completions so a burst costs one rescan, not one per POST.
                    while let Some(res) = self.tasks.try_join_next_with_id() {
                        self.finished(res);
                    }
                }
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        while let Some(res) = self.tasks.join_next_with_id().await {
            self.finished(res);
        }
    }

    fn finished(&mut self, res: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match res {
            Ok((id, ())) => id,
            Err(e) => {
                tracing::error!(error = %e, "callback delivery task failed");
                e.id()
            }
        };
        if let Some((_, key)) = self.running.remove(&id) {
            self.in_flight_keys.remove(&key);
        }
    }

    /// Start every startable due event; return how long to sleep if nothing else happens.
    async fn scan(&mut self) -> Duration {
        let idle = self.config.max_idle_poll;
        let now = self.clock.now_ms();
        let mut more_waiting = false;
        if self.tasks.len() < self.config.concurrency {
            let in_flight = u32::try_from(self.running.len()).unwrap_or(u32::MAX);
            let limit = self.config.batch_limit.saturating_add(in_flight);
            match self.outbox.due(now, limit).await {
                Ok(mut batch) => {
                    let full = batch.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
                    batch.sort_by_key(|e| e.id);
                    let in_flight_ids: HashSet<i64> =
                        self.running.values().map(|(id, _)| *id).collect();
                    let mut blocked: HashSet<String> = HashSet::new();
                    let mut started_all = true;
                    let mut not_started = Vec::new();
                    for ev in batch {
                        if in_flight_ids.contains(&ev.id) {
                            blocked.insert(ev.ordering_key);
                            continue;
                        }
                        if self.in_flight_keys.contains(&ev.ordering_key)
                            || blocked.contains(&ev.ordering_key)
                        {
                            // Later events of this key wait for the earlier one.
                            blocked.insert(ev.ordering_key);
                            not_started.push(ev.id);
                            continue;
                        }
                        if self.tasks.len() >= self.config.concurrency {
                            started_all = false;
                            not_started.push(ev.id);
                            continue;
                        }
                        blocked.insert(ev.ordering_key.clone());
                        self.start(ev);
                    }
                    if !not_started.is_empty()
                        && let Err(e) = self.outbox.release(&not_started).await
                    {
                        tracing::warn!(error = %e, "outbox: releasing unstarted events failed");
                    }
                    // Rows beyond the batch may be due and startable right away.
                    more_waiting =
                        full && started_all && self.tasks.len() < self.config.concurrency;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: fetching due events failed");
                    return idle;
                }
            }
        }
        if more_waiting {
            return Duration::ZERO;
        }
        match self.outbox.next_due_at().await {
            // Something is due but could not start (in flight, blocked by its key, or no
            // capacity): a task completion triggers the next scan, so don't spin.
            Ok(Some(at)) if at > now => {
                let ms = u64::try_from(at.saturating_sub(now)).unwrap_or(u64::MAX);
                Duration::from_millis(ms).min(idle)
            }
            Ok(_) => idle,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: next_due_at failed");
                idle
            }
        }
    }

    fn start(&mut self, ev: PendingEvent) {
        let (id, key) = (ev.id, ev.ordering_key.clone());
        let attempt = deliver(
            self.outbox.clone(),
            self.clock.clone(),
            self.client.clone(),
            ev,
        );
        let handle = self.tasks.spawn(attempt);
        self.in_flight_keys.insert(key.clone());
        self.running.insert(handle.id(), (id, key));
    }
}

/// One attempt: sign, POST, record the outcome.
async fn deliver<O: Outbox, C: Clock>(
    outbox: Arc<O>,
    clock: Arc<C>,
    client: reqwest::Client,
    ev: PendingEvent,
) {
    let attempts = ev.attempts.saturating_add(1);
    let now_s = clock.now_ms().div_euclid(1000);
    let outcome = match sign_body(&ev.body, &ev.sign_key, now_s) {
        Ok(body) => post(&client, &ev, body).await.map_err(|e| (e, true)),
        // A malformed stored body can never succeed: dead-letter it at once.
        Err(e) => Err((e.to_string(), false)),
    };
    let done_ms = clock.now_ms();
    let failure = match outcome {
        Ok(()) => {
            tracing::debug!(id = ev.id, event_id = %ev.event_id, attempts, "callback delivered");
            None
        }
        Err((mut error, retryable)) => {
            truncate(&mut error, MAX_ERROR_LEN);
            let policy = RetryPolicy {
                max_attempts: ev.max_attempts,
                interval_ms: ev.retry_interval_ms,
            };
            let next = if retryable {
                policy.after_failure(attempts, done_ms)
            } else {
                None
            };
            if next.is_some() {
                tracing::warn!(id = ev.id, url = %ev.url, attempts, %error, "callback failed, will retry");
            } else {
                tracing::error!(id = ev.id, event_id = %ev.event_id, url = %ev.url, attempts, %error, "callback given up after its last retry: listed as dead; resent when this receiver answers again");
            }
            Some((next, error))
        }
    };
    // The outcome is known: recording it is retried while the catalogue is away, so a
    // delivered event is not held (and its stream's later events behind it) until its claim
    // runs out. Given up only after OUTCOME_RETRY_FOR: then the row stays due and is resent
    // (at-least-once).
    let started = std::time::Instant::now();
    let mut wait = OUTCOME_RETRY_FIRST;
    loop {
        let recorded = match &failure {
            None => outbox.delivered(ev.id, &ev.url, done_ms).await,
            Some((next, error)) => outbox.failed(ev.id, &ev.url, attempts, *next, error).await,
        };
        let Err(e) = recorded else { break };
        if started.elapsed() >= OUTCOME_RETRY_FOR {
            tracing::warn!(id = ev.id, error = %e, "outbox: recording delivery outcome failed; the event stays due and is resent");
            break;
        }
        tracing::warn!(id = ev.id, error = %e, retry_in_ms = wait.as_millis() as u64, "outbox: recording delivery outcome failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(OUTCOME_RETRY_MAX);
    }
}

/// Retry schedule for recording a delivery's outcome in the outbox (see [`deliver`]).
const OUTCOME_RETRY_FIRST: Duration = Duration::from_millis(100);
const OUTCOME_RETRY_MAX: Duration = Duration::from_secs(5);
const OUTCOME_RETRY_FOR: Duration = Duration::from_secs(600);

async fn post(client: &reqwest::Client, ev: &PendingEvent, body: String) -> Result<(), String> {
    let resp = client
        .post(&ev.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, &ev.event_id)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            // The outbox row (shown to API clients) says only that no answer came: whether the
            // connection was refused, reset or timed out would tell an API client what lives
            // at an address it pointed a callback at. The log keeps the detail.
            tracing::warn!(id = ev.id, url = %ev.url, error = %error_chain(&e), "callback: no HTTP answer");
            NO_ANSWER.to_owned()
        })?;
    // Tencent: only HTTP 200 acknowledges; the response body is ignored.
    match resp.status() {
        reqwest::StatusCode::OK => Ok(()),
        s => Err(format!("HTTP {s}")),
    }
}

/// `last_error` of an attempt that got no HTTP answer — refused, reset or timed out alike
/// (see [`post`]); an HTTP answer is recorded as `HTTP <status>`.
pub const NO_ANSWER: &str = "no HTTP answer (refused, reset or timed out; see the log)";

fn error_chain(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "aé".repeat(10);
        truncate(&mut s, 4);
        assert_eq!(s, "aéa");
        let mut short = "ok".to_owned();
        truncate(&mut short, 10);
        assert_eq!(short, "ok");
    }

    #[test]
    fn system_clock_is_plausible() {
        // After 2020-01-01 and before 2100.
        let now = SystemClock.now_ms();
        assert!(now > 1_577_836_800_000 && now < 4_102_444_800_000, "{now}");
    }
}
