//! Test harness: an in-process livetape on ephemeral ports, a real HTTP callback receiver,
//! real ffmpeg publishers and real ffprobe checks.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use livetape::clock::SystemClock;
use livetape::config::Config;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use livetape_testkit::{CLIP_10S, CLIP_60S, Clip};
pub const CALLBACK_KEY: &str = "cbkey123";
/// Upper bound for anything awaited; tests wait on events, this only stops a hang.
pub const WAIT: Duration = Duration::from_secs(30);

/// A generated clip (made with ffmpeg on first use, cached under `target/testkit`).
pub fn fixture(clip: Clip) -> PathBuf {
    livetape_testkit::fixture(&clip)
}

/// A scripted "status" that never answers (see [`Receiver::script`]).
pub const HANG: u16 = 0;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub body: Value,
    pub event_id: String,
    pub status: u16,
}

#[derive(Clone)]
struct RecvState {
    tx: mpsc::UnboundedSender<Delivery>,
    script: Arc<Mutex<std::collections::HashMap<String, VecDeque<u16>>>>,
}

/// A real HTTP server recording every callback; answers 200 unless scripted otherwise.
pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    script: Arc<Mutex<std::collections::HashMap<String, VecDeque<u16>>>>,
}

async fn on_post(
    State(st): State<RecvState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let status = st
        .script
        .lock()
        .unwrap()
        .get_mut(uri.path())
        .and_then(|q| q.pop_front())
        .unwrap_or(200);
    let body: Value = serde_json::from_str(&body).expect("callback body is JSON");
    let event_id = headers
        .get("x-livetape-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let _ = st.tx.send(Delivery {
        body,
        event_id,
        status,
    });
    if status == HANG {
        // Never answers: the sender's request stays in flight until it gives up.
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(Default::default()));
        let app = Router::new()
            .route("/{*path}", post(on_post))
            .with_state(RecvState {
                tx,
                script: script.clone(),
            });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            rx,
            script,
        }
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

    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("timed out waiting for a callback")
            .expect("receiver closed")
    }

    /// Waits for the next acknowledged delivery of `event_type` (skipping others).
    pub async fn next_of(&mut self, event_type: i64) -> Delivery {
        loop {
            let d = self.next().await;
            if d.status == 200 && d.body["event_type"] == event_type {
                return d;
            }
        }
    }

    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

pub struct TestServer {
    pub running: livetape::Running,
    pub dir: tempfile::TempDir,
    pub receiver: Receiver,
    cfg: Config,
    /// Where [`TestServer::download`] puts files (not the data dir, which may be a tiny tmpfs).
    downloads: tempfile::TempDir,
}

impl TestServer {
    /// `extra` is TOML appended to a config with ephemeral ports, a temp data dir and a callback
    /// template pointing at the receiver.
    pub async fn start(extra: &str) -> Self {
        Self::start_with("", extra, true).await
    }

    /// `server_keys` go inside the `[server]` table.
    pub async fn start_with(server_keys: &str, extra: &str, callbacks: bool) -> Self {
        // Server logs in test output (captured unless a test fails): LIVETAPE_LOG=debug for more.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("LIVETAPE_LOG")
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::start().await;
        let mut toml = format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            public_url = "http://127.0.0.1:1"
            {server_keys}
            "#
        );
        if !server_keys.contains("data_dir") {
            toml.push_str(&format!("data_dir = \"{}\"\n", dir.path().display()));
        }
        if callbacks {
            toml.push_str(&format!(
                r#"
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            stream_begin_url = "{u}/begin"
            stream_end_url = "{u}/end"
            record_url = "{u}/record"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            "#,
                u = receiver.url
            ));
        }
        toml.push_str(extra);
        let cfg = Config::from_toml_str(&toml).expect("test config");
        let running = livetape::start(cfg.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        Self {
            running,
            dir,
            receiver,
            cfg,
            downloads: tempfile::tempdir().unwrap(),
        }
    }

    /// Downloads the recording an event 100 announced, through its playback URL, checks its
    /// size against `file_size`, and returns the local copy.
    pub async fn download(&self, event: &Value) -> PathBuf {
        let rec = self.recording(event["file_id"].as_str().unwrap()).await;
        let url = rec["video_url"].as_str().unwrap();
        let bytes = reqwest::get(self.local_url(url))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, event["file_size"].as_u64().unwrap());
        let name = url.rsplit('/').next().unwrap();
        let p = self
            .downloads
            .path()
            .join(format!("{}-{name}", event["file_id"].as_str().unwrap()));
        std::fs::write(&p, &bytes).unwrap();
        p
    }

    /// Stops the server and starts a new one on the same data dir and config (new ports).
    pub async fn restart(self) -> Self {
        let Self {
            running,
            dir,
            receiver,
            cfg,
            downloads,
        } = self;
        running.shutdown().await;
        let running = livetape::start(cfg.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        Self {
            running,
            dir,
            receiver,
            cfg,
            downloads,
        }
    }

    pub fn rtmp(&self) -> SocketAddr {
        self.running.rtmp_addr
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.running.http_addr, path)
    }

    /// GET `path` with `api_key` as the bearer token; the JSON answer.
    pub async fn api_json(&self, path: &str, api_key: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.http(path))
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `video_url` points at `public_url`; tests reach the same path on the bound port.
    pub fn local_url(&self, video_url: &str) -> String {
        let path = video_url.split_once("/vod/").map(|(_, p)| p).unwrap();
        self.http(&format!("/vod/{path}"))
    }

    pub fn data_path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Publishes a fixture with `ffmpeg -c copy` (as fast as the server reads). Returns
    /// whether ffmpeg succeeded.
    pub async fn publish(&self, app: &str, playpath: &str, clip: &Path) -> bool {
        publish(self.rtmp(), app, playpath, clip, Pace::Fast).await
    }

    pub async fn recording(&self, file_id: &str) -> Value {
        reqwest::get(self.http(&format!("/v1/recordings/{file_id}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[derive(Clone, Copy)]
pub enum Pace {
    /// As fast as the server reads. Only for clips under 2.5 MB: ffmpeg closes the socket
    /// without reading the server's last RTMP Acknowledgement, and the resulting TCP RST makes
    /// the kernel discard whatever the server had not yet read (any RTMP server loses that tail).
    Fast,
    /// `-readrate N`: N times real time.
    Rate(u32),
    Realtime,
}

/// `ffmpeg -i clip -c copy -f flv rtmp://addr/app/playpath`; app and playpath are given to
/// ffmpeg separately so names with `/` or `..` reach the server verbatim.
pub async fn publish(addr: SocketAddr, app: &str, playpath: &str, clip: &Path, pace: Pace) -> bool {
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
    match pace {
        Pace::Fast => {}
        Pace::Rate(n) => {
            cmd.args(["-readrate", &n.to_string()]);
        }
        Pace::Realtime => {
            cmd.arg("-re");
        }
    }
    cmd.arg("-i")
        .arg(clip)
        .args([
            "-c",
            "copy",
            "-f",
            "flv",
            "-rtmp_app",
            app,
            "-rtmp_playpath",
            playpath,
        ])
        .arg(format!("rtmp://{addr}/{app}"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.status().await.expect("ffmpeg runs").success()
}

/// (video packets, audio packets) as ffprobe counts them.
pub fn probe_counts(path: &Path) -> (u64, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args(["stream=codec_type,nb_read_packets", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut counts = (0, 0);
    for s in v["streams"].as_array().unwrap() {
        let n: u64 = s["nb_read_packets"].as_str().unwrap().parse().unwrap();
        match s["codec_type"].as_str().unwrap() {
            "video" => counts.0 += n,
            "audio" => counts.1 += n,
            _ => {}
        }
    }
    counts
}

/// Decodes the whole file; returns ffmpeg's error output (empty = clean).
pub fn decode_errors(path: &Path) -> String {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!("\nexit status {}", out.status));
    }
    s
}

pub fn md5_hex(s: &str) -> String {
    use md5::Digest;
    let d = md5::Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `t`/`sign` of a delivered body.
pub fn assert_signed(body: &Value) {
    let t = body["t"].as_i64().expect("t is a JSON number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (t - now - 600).abs() <= 5,
        "t = now + 600, got {t} at {now}"
    );
    assert_eq!(body["sign"], md5_hex(&format!("{CALLBACK_KEY}{t}")));
}

/// A fresh PostgreSQL database for one test, created through the admin URL in
/// `TEST_DATABASE_URL` (./scripts/test.sh sets it) and dropped by [`PgDatabase::drop_db`].
/// Panics without `TEST_DATABASE_URL`: the PostgreSQL tests must never pass silently.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// `[catalog] url` for the server.
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .expect(
                "TEST_DATABASE_URL is not set: the PostgreSQL tests need an admin URL such as \
                 postgres://livetape:livetape@127.0.0.1:5432/postgres; run ./scripts/test.sh",
            );
        let name = format!("lt_{:016x}", rand::random::<u64>());
        pg_admin(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin.rsplit_once('/').expect("admin URL names a database");
        let url = format!("{base}/{name}");
        Self { admin, name, url }
    }

    /// Best effort: a failed test leaves its database behind.
    pub async fn drop_db(self) {
        pg_admin(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn pg_admin(admin: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to TEST_DATABASE_URL: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// Credentials and bucket of the test S3 server ([`S3Server`]).
pub const S3_ACCESS_KEY: &str = "livetapetest";
pub const S3_SECRET_KEY: &str = "livetapesecret";
pub const S3_BUCKET: &str = "rec";

/// A real S3-compatible server (`s3s-fs`) on 127.0.0.1, storing buckets as directories under
/// `root` (objects as plain files: `root/{bucket}/{key}`). Killed on drop.
pub struct S3Server {
    child: std::process::Child,
    pub port: u16,
    pub root: PathBuf,
}

impl S3Server {
    /// `s3s-fs` on PATH or in ~/.cargo/bin.
    pub fn binary() -> PathBuf {
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("s3s-fs"))
                .find(|p| p.is_file())
        });
        let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/s3s-fs"));
        on_path.or(home.filter(|p| p.is_file())).expect(
            "s3s-fs not found: cargo install s3s-fs --version 0.14.1 --features binary --locked",
        )
    }

    /// A port nobody listens on right now (bound then released).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts on `port` with `root` (the bucket directory is created), and waits until it
    /// accepts connections.
    pub async fn start_on(root: &Path, port: u16) -> Self {
        std::fs::create_dir_all(root.join(S3_BUCKET)).unwrap();
        let child = std::process::Command::new(Self::binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let s = Self {
            child,
            port,
            root: root.to_path_buf(),
        };
        let deadline = std::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "s3s-fs did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s
    }

    /// The file s3s-fs keeps for object `key` of the test bucket.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(S3_BUCKET).join(key)
    }

    /// `[storage]` for a livetape using this server (`extra` keys appended to the table).
    pub fn toml(port: u16, extra: &str) -> String {
        format!(
            r#"
            [storage]
            kind = "s3"
            endpoint = "http://127.0.0.1:{port}"
            bucket = "{S3_BUCKET}"
            access_key_id = "{S3_ACCESS_KEY}"
            secret_access_key = "{S3_SECRET_KEY}"
            path_style = true
            prefix = "lt/v1"
            {extra}
            "#
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `livetape serve` child process (killed on drop).
pub struct Proc {
    pub child: std::process::Child,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
}

impl Proc {
    /// SIGKILL (a crash, as far as the server can tell), then reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `livetape serve` (the real binary), optionally with `LIVETAPE_CRASH_AT`; waits for the
/// line with its addresses (printed once start-up recovery is done and it serves).
pub fn spawn(config: &Path, crash_at: Option<&str>) -> Proc {
    spawn_maybe(config, crash_at).expect("server started")
}

/// Like [`spawn`], but `None` if the server died before serving (a crash injected into
/// start-up recovery).
pub fn spawn_maybe(config: &Path, crash_at: Option<&str>) -> Option<Proc> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_livetape"));
    cmd.args(["serve", "--config"])
        .arg(config)
        .env(
            "LIVETAPE_LOG",
            std::env::var("TEST_SERVER_LOG").unwrap_or("warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(p) = crash_at {
        cmd.env("LIVETAPE_CRASH_AT", p);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let status = child.wait().unwrap();
        assert!(!status.success(), "exited before serving: {status:?}");
        return None;
    }
    // "livetape: rtmp://127.0.0.1:X http://127.0.0.1:Y"
    let addr = |scheme: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(scheme))
            .unwrap_or_else(|| panic!("no {scheme} in {line:?}"))
            .parse()
            .unwrap()
    };
    Some(Proc {
        rtmp: addr("rtmp://"),
        http: addr("http://"),
        child,
    })
}
