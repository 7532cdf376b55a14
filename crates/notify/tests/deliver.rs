//! Notifier against a real local HTTP receiver (`livetape_testkit::Receiver`, axum on 127.0.0.1) and an in-memory outbox
//! (a legitimate fake of the DB boundary; the DB outbox is tested in the catalogue crate).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livetape_notify::{
    Clock, EVENT_ID_HEADER, Notifier, NotifierConfig, Outbox, PendingEvent, SystemClock,
};
use livetape_tencent::callback::PushInfo;
use livetape_tencent::{StreamEvent, callback_sign};
use livetape_testkit::Receiver;
use serde_json::Value;
use tokio::sync::watch;

/// Upper bound for anything that should happen promptly; never used as synchronisation.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq)]
enum RowState {
    Pending,
    Delivered,
    Dead,
}

#[derive(Clone, Debug)]
struct Row {
    ev: PendingEvent,
    next_at: i64,
    state: RowState,
    errors: Vec<String>,
    /// Times the notifier handed it back unstarted ([`Outbox::release`]).
    released: u32,
}

/// In-memory outbox; `version` ticks on every change so tests can await conditions.
struct MemOutbox {
    rows: Mutex<Vec<Row>>,
    version: watch::Sender<u64>,
    next_due_calls: watch::Sender<u64>,
}

impl MemOutbox {
    fn new() -> Arc<Self> {
        Arc::new(MemOutbox {
            rows: Mutex::new(Vec::new()),
            version: watch::channel(0).0,
            next_due_calls: watch::channel(0).0,
        })
    }

    fn insert(&self, ev: PendingEvent, next_at: i64) {
        self.rows.lock().unwrap().push(Row {
            ev,
            next_at,
            state: RowState::Pending,
            errors: vec![],
            released: 0,
        });
        self.version.send_modify(|v| *v += 1);
    }

    fn rows(&self) -> Vec<Row> {
        self.rows.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, cond: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let mut rx = self.version.subscribe();
        let fut = async {
            loop {
                let rows = self.rows();
                if cond(&rows) {
                    return rows;
                }
                rx.changed().await.unwrap();
            }
        };
        tokio::time::timeout(LIMIT, fut)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", self.rows()))
    }

    fn update(&self, id: i64, f: impl FnOnce(&mut Row)) {
        if let Some(r) = self.rows.lock().unwrap().iter_mut().find(|r| r.ev.id == id) {
            f(r);
        }
        self.version.send_modify(|v| *v += 1);
    }
}

impl Outbox for MemOutbox {
    type Error = String;

    async fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<PendingEvent>, String> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|r| r.state == RowState::Pending && r.next_at <= now_ms)
            .take(limit as usize)
            .map(|r| r.ev.clone())
            .collect())
    }

    async fn next_due_at(&self) -> Result<Option<i64>, String> {
        let at = self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.state == RowState::Pending)
            .map(|r| r.next_at)
            .min();
        self.next_due_calls.send_modify(|v| *v += 1);
        Ok(at)
    }

    async fn release(&self, ids: &[i64]) -> Result<(), String> {
        for id in ids {
            self.update(*id, |r| r.released += 1);
        }
        Ok(())
    }

    async fn delivered(&self, id: i64, _url: &str, _now_ms: i64) -> Result<(), String> {
        self.update(id, |r| r.state = RowState::Delivered);
        Ok(())
    }

    async fn failed(
        &self,
        id: i64,
        _url: &str,
        attempts: u32,
        next_at_ms: Option<i64>,
        error: &str,
    ) -> Result<(), String> {
        self.update(id, |r| {
            r.ev.attempts = attempts;
            r.errors.push(error.to_owned());
            match next_at_ms {
                Some(at) => r.next_at = at,
                None => r.state = RowState::Dead,
            }
        });
        Ok(())
    }
}

/// A clock the test moves by hand.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Start a real receiver answering `script` (then 200) on `/cb`; returns that URL.
async fn receiver(script: &[u16]) -> (String, Receiver) {
    let r = Receiver::start().await;
    r.script("/cb", script);
    (r.at("/cb"), r)
}

fn push_end_body() -> String {
    let info = PushInfo {
        appid: 1,
        domain: "push.example.com".into(),
        app_name: "live".into(),
        stream: "s1".into(),
        sequence: "42".into(),
        ..PushInfo::default()
    };
    serde_json::to_string(&StreamEvent::push_end(
        info,
        1_700_000_000,
        128_581,
        1,
        "stopped",
    ))
    .unwrap()
}

fn event(id: i64, url: &str, max_attempts: u32, retry_interval_ms: u64) -> PendingEvent {
    PendingEvent {
        id,
        event_id: format!("evt-{id}"),
        ordering_key: "push.example.com/live/s1".into(),
        url: url.to_owned(),
        body: push_end_body(),
        sign_key: "secret".into(),
        attempts: 0,
        max_attempts,
        retry_interval_ms,
    }
}

fn fast_config() -> NotifierConfig {
    NotifierConfig {
        request_timeout: Duration::from_secs(5),
        max_idle_poll: Duration::from_millis(200),
        ..Default::default()
    }
}

#[tokio::test]
async fn delivers_signed_body_with_exact_types() {
    let (url, mut rx) = receiver(&[]).await;
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &url, 13, 60_000), 0);
    let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000_123)));
    let handle = Notifier::spawn(outbox.clone(), clock, fast_config()).unwrap();

    let got = rx.next().await;
    // The receiver reads the id from the header the notifier writes (names are case-blind).
    assert!(livetape_testkit::EVENT_ID_HEADER.eq_ignore_ascii_case(EVENT_ID_HEADER));
    assert_eq!(got.event_id, "evt-1");
    assert_eq!(got.content_type, "application/json");
    let b = &got.body;
    assert_eq!(b["t"], 1_700_000_600);
    assert!(b["t"].is_i64());
    assert_eq!(
        b["sign"].as_str(),
        Some(callback_sign("secret", 1_700_000_600).as_str())
    );
    assert_eq!(b["push_duration"], Value::String("128581".into()));
    assert!(b["errcode"].is_i64() && b["event_time"].is_i64());
    assert_eq!(b["event_type"], 0);

    let rows = outbox
        .wait_for("delivered", |r| r[0].state == RowState::Delivered)
        .await;
    assert_eq!(rows[0].ev.attempts, 0, "no failure recorded");
    handle.shutdown(LIMIT).await.unwrap();
    assert!(rx.try_next().is_none(), "delivered exactly once");
}

#[tokio::test]
async fn retries_after_500_until_200() {
    let (url, mut rx) = receiver(&[500, 503]).await;
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &url, 13, 10), 0);
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();

    for _ in 0..3 {
        assert_eq!(
            rx.next().await.event_id,
            "evt-1",
            "same event id on every attempt"
        );
    }
    let rows = outbox
        .wait_for("delivered", |r| r[0].state == RowState::Delivered)
        .await;
    assert_eq!(rows[0].ev.attempts, 2);
    assert_eq!(
        rows[0].errors,
        vec![
            "HTTP 500 Internal Server Error",
            "HTTP 503 Service Unavailable"
        ]
    );
    handle.shutdown(LIMIT).await.unwrap();
    assert!(rx.try_next().is_none(), "no fourth request");
}

#[tokio::test]
async fn connection_refused_gives_up_after_max_attempts() {
    // Port 1 (tcpmux): nobody listens there. A port bound and released would do, but another
    // test's receiver can be handed the same ephemeral port and answer 200 (seen under load).
    let port = 1;
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &format!("http://127.0.0.1:{port}/cb"), 3, 5), 0);
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();

    let rows = outbox
        .wait_for("dead", |r| r[0].state == RowState::Dead)
        .await;
    assert_eq!(rows[0].ev.attempts, 3);
    assert_eq!(rows[0].errors.len(), 3);
    assert!(
        rows[0]
            .errors
            .iter()
            .all(|e| e == livetape_notify::NO_ANSWER),
        "{:?}",
        rows[0].errors
    );
    handle.shutdown(LIMIT).await.unwrap();
}

#[tokio::test]
async fn wake_delivers_immediately() {
    let (url, mut rx) = receiver(&[]).await;
    let outbox = MemOutbox::new();
    // Poll so rarely that only wake() can explain a prompt delivery.
    let cfg = NotifierConfig {
        max_idle_poll: Duration::from_secs(60),
        ..Default::default()
    };
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), cfg).unwrap();
    // Wait until the idle loop has finished its first scan (it asks for the next due time).
    let mut calls = outbox.next_due_calls.subscribe();
    tokio::time::timeout(LIMIT, calls.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();

    let t0 = Instant::now();
    outbox.insert(event(1, &url, 13, 60_000), 0);
    handle.wake();
    let got = rx.next().await;
    let latency = t0.elapsed();
    assert_eq!(got.event_id, "evt-1");
    // Target is well under 100 ms; the bound is loose for a loaded CI machine.
    assert!(latency < Duration::from_secs(2), "wake latency {latency:?}");
    eprintln!("wake → receiver latency: {latency:?}");
    handle.shutdown(LIMIT).await.unwrap();
}

#[tokio::test]
async fn t_and_sign_recomputed_per_attempt() {
    let (url, mut rx) = receiver(&[500]).await;
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &url, 13, 60_000), 0);
    let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000_000_000)));
    let cfg = NotifierConfig {
        max_idle_poll: Duration::from_secs(60),
        ..Default::default()
    };
    let handle = Notifier::spawn(outbox.clone(), clock.clone(), cfg).unwrap();

    let first = rx.next().await.body;
    let rows = outbox
        .wait_for("first failure", |r| r[0].ev.attempts == 1)
        .await;
    // Retry is scheduled one interval later on the injected clock.
    assert_eq!(rows[0].next_at, 1_000_000_060_000);
    // 11 minutes later: the first signature would have expired.
    clock.0.store(1_000_000_660_000, Ordering::SeqCst);
    handle.wake();
    let second = rx.next().await.body;

    assert_eq!(first["t"], 1_000_000_600);
    assert_eq!(second["t"], 1_000_001_260);
    for b in [&first, &second] {
        let t = b["t"].as_i64().unwrap();
        assert_eq!(
            b["sign"].as_str(),
            Some(callback_sign("secret", t).as_str())
        );
    }
    assert_ne!(first["sign"], second["sign"]);
    outbox
        .wait_for("delivered", |r| r[0].state == RowState::Delivered)
        .await;
    handle.shutdown(LIMIT).await.unwrap();
}

#[tokio::test]
async fn one_stream_in_order_others_in_parallel() {
    // evt-1 is held open by the receiver: evt-2..4 (same stream) must wait for it, while
    // evt-5..8 (other streams) go out meanwhile.
    let (url, mut rx) = receiver(&[]).await;
    let release = rx.hold("evt-1");
    let outbox = MemOutbox::new();
    for id in 1..=4 {
        outbox.insert(event(id, &url, 13, 60_000), 0);
    }
    for id in 5..=8 {
        let ev = PendingEvent {
            ordering_key: format!("other-{id}"),
            ..event(id, &url, 13, 60_000)
        };
        outbox.insert(ev, 0);
    }
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(rx.next().await.event_id);
    }
    seen.sort();
    assert_eq!(seen, ["evt-1", "evt-5", "evt-6", "evt-7", "evt-8"]);
    // The waiting ones were handed back (an outbox with claims frees them for other
    // nodes); the ones being sent never were.
    outbox
        .wait_for("evt-2..4 released", |r| {
            r.iter()
                .filter(|r| (2..=4).contains(&r.ev.id))
                .all(|r| r.released > 0)
        })
        .await;
    assert!(
        outbox
            .rows()
            .iter()
            .filter(|r| r.ev.id == 1 || r.ev.id >= 5)
            .all(|r| r.released == 0)
    );
    release.send(()).unwrap();
    for expected in ["evt-2", "evt-3", "evt-4"] {
        assert_eq!(rx.next().await.event_id, expected);
    }
    outbox
        .wait_for("all delivered", |r| {
            r.iter().all(|r| r.state == RowState::Delivered)
        })
        .await;
    handle.shutdown(LIMIT).await.unwrap();
}

#[tokio::test]
async fn malformed_body_is_dead_lettered_without_posting() {
    let (url, mut rx) = receiver(&[]).await;
    let outbox = MemOutbox::new();
    outbox.insert(
        PendingEvent {
            body: "not json".into(),
            ..event(1, &url, 13, 10)
        },
        0,
    );
    outbox.insert(
        PendingEvent {
            ordering_key: "k2".into(),
            ..event(2, &url, 13, 10)
        },
        0,
    );
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();
    let rows = outbox
        .wait_for("settled", |r| {
            r[0].state == RowState::Dead && r[1].state == RowState::Delivered
        })
        .await;
    assert_eq!(rows[0].ev.attempts, 1);
    assert!(
        rows[0].errors[0].contains("not a JSON object"),
        "{:?}",
        rows[0].errors
    );
    handle.shutdown(LIMIT).await.unwrap();
    assert_eq!(rx.next().await.event_id, "evt-2");
    assert!(
        rx.try_next().is_none(),
        "the malformed event was never posted"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_post_finish() {
    let (url, mut rx) = receiver(&[]).await;
    let release = rx.hold("evt-1");
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &url, 13, 60_000), 0);
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();
    assert_eq!(rx.next().await.event_id, "evt-1"); // now held in flight
    let shutdown = tokio::spawn(handle.shutdown(LIMIT));
    release.send(()).unwrap();
    shutdown.await.unwrap().unwrap();
    assert_eq!(
        outbox.rows()[0].state,
        RowState::Delivered,
        "outcome recorded before stopping"
    );
}

#[tokio::test]
async fn shutdown_timeout_aborts_and_leaves_event_due() {
    let (url, mut rx) = receiver(&[]).await;
    let _release = rx.hold("evt-1");
    let outbox = MemOutbox::new();
    outbox.insert(event(1, &url, 13, 60_000), 0);
    let handle = Notifier::spawn(outbox.clone(), Arc::new(SystemClock), fast_config()).unwrap();
    assert_eq!(rx.next().await.event_id, "evt-1");
    let res = handle.shutdown(Duration::from_millis(50)).await;
    assert!(
        matches!(res, Err(livetape_notify::NotifyError::ShutdownTimedOut(_))),
        "{res:?}"
    );
    let row = &outbox.rows()[0];
    assert_eq!(
        (row.state.clone(), row.ev.attempts),
        (RowState::Pending, 0),
        "will be resent"
    );
}
