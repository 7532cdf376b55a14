//! A real HTTP server that records every callback POST it gets, for the suites that check what
//! a sender (the notifier, the server) delivers.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The header the notifier puts its event id in.
pub const EVENT_ID_HEADER: &str = "x-livetape-event-id";

/// A scripted "status" that never answers (see [`Receiver::script`]): the sender's request
/// stays in flight until it gives up.
pub const HANG: u16 = 0;

/// Upper bound for [`Receiver::next`]; tests wait on deliveries, this only stops a hang.
pub const RECEIVE_WAIT: Duration = Duration::from_secs(30);

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Request path, e.g. `/record`.
    pub path: String,
    pub body: Value,
    /// The `x-livetape-event-id` header ("" if absent).
    pub event_id: String,
    pub content_type: String,
    /// What the receiver answered (or [`HANG`]).
    pub status: u16,
}

type Scripts = Arc<Mutex<HashMap<String, VecDeque<u16>>>>;
type Holds = Arc<Mutex<HashMap<String, oneshot::Receiver<()>>>>;

#[derive(Clone)]
struct Shared {
    tx: mpsc::UnboundedSender<Delivery>,
    script: Scripts,
    holds: Holds,
}

/// Answers 200 to every POST unless scripted otherwise; every request is reported, in arrival
/// order, through [`Receiver::next`].
pub struct Receiver {
    /// `http://127.0.0.1:port`, no trailing slash.
    pub url: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    script: Scripts,
    holds: Holds,
}

async fn on_post(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = uri.path().to_owned();
    let status = st
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(|q| q.pop_front())
        .unwrap_or(200);
    let body: Value = serde_json::from_str(&body).expect("callback body is JSON");
    let event_id = header(EVENT_ID_HEADER);
    let gate = st.holds.lock().unwrap().remove(&event_id);
    let _ = st.tx.send(Delivery {
        path,
        body,
        event_id,
        content_type: header("content-type"),
        status,
    });
    if let Some(gate) = gate {
        let _ = gate.await;
    }
    if status == HANG {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).expect("scripted status is a valid HTTP status")
}

impl Receiver {
    /// Listens on an ephemeral port of 127.0.0.1 (inside the current tokio runtime).
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Scripts::default();
        let holds = Holds::default();
        let app = Router::new()
            .route("/{*path}", post(on_post))
            .with_state(Shared {
                tx,
                script: script.clone(),
                holds: holds.clone(),
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            rx,
            script,
            holds,
        }
    }

    /// The URL of `path` on this receiver (`path` starts with `/`).
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The next responses to POSTs on `path`, in order (then 200).
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .extend(statuses);
    }

    pub fn clear_script(&self, path: &str) {
        self.script.lock().unwrap().remove(path);
    }

    /// Holds the answer to the request carrying `event_id` until the returned sender fires
    /// (or is dropped): an in-flight delivery the test controls.
    pub fn hold(&self, event_id: &str) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.holds.lock().unwrap().insert(event_id.to_owned(), rx);
        tx
    }

    /// The next request, whatever it was answered.
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(RECEIVE_WAIT, self.rx.recv())
            .await
            .expect("timed out waiting for a callback")
            .expect("receiver closed")
    }

    /// The next acknowledged (200) delivery of `event_type`, skipping others.
    pub async fn next_of(&mut self, event_type: i64) -> Delivery {
        loop {
            let d = self.next().await;
            if d.status == 200 && d.body["event_type"] == event_type {
                return d;
            }
        }
    }

    /// A request already received, if any (never waits).
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}
