//! Test harness: an in-process livetape on ephemeral ports, a real HTTP callback receiver,
//! real ffmpeg publishers and real ffprobe checks. Every `/v1` answer a test reaches through
//! [`TestServer::http`] is checked against the server's OpenAPI document ([`spec`]).

pub mod spec;

use livetape::clock::SystemClock;
use livetape::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use livetape_testkit::{
    CALLBACK_KEY, CLIP_2S, CLIP_10S, CLIP_60S, Clip, Delivery, HANG, Pace, PgCluster, PgDatabase,
    Receiver, S3_BUCKET, S3Server, Scenario, probe_counts, publish, venv_python,
};
/// Upper bound for anything awaited; tests wait on events, this only stops a hang.
pub const WAIT: Duration = Duration::from_secs(30);

/// A generated clip (made with ffmpeg on first use, cached under `target/testkit`).
pub fn fixture(clip: Clip) -> PathBuf {
    livetape_testkit::fixture(&clip)
}

pub struct TestServer {
    pub running: livetape::Running,
    pub dir: tempfile::TempDir,
    pub receiver: Receiver,
    cfg: Config,
    /// Where [`TestServer::download`] puts files (not the data dir, which may be a tiny tmpfs).
    downloads: tempfile::TempDir,
    /// The proxy [`TestServer::http`] sends `/v1` requests through; checks every answer.
    pub api: spec::SpecCheck,
}

impl TestServer {
    /// `extra` is TOML appended to a config with ephemeral ports, a temp data dir and a callback
    /// template pointing at the receiver.
    pub async fn start(extra: &str) -> Self {
        Self::start_with("", extra, true).await
    }

    /// `server_keys` go inside the `[server]` table.
    pub async fn start_with(server_keys: &str, extra: &str, callbacks: bool) -> Self {
        let mut scenario = Scenario::new().server(server_keys).config(extra);
        if !callbacks {
            scenario = scenario.without_callbacks();
        }
        Self::from_scenario(scenario).await
    }

    /// Starts an in-process server on the scenario's config.
    pub async fn from_scenario(scenario: Scenario) -> Self {
        // Server logs in test output (captured unless a test fails): LIVETAPE_LOG=debug for more.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("LIVETAPE_LOG")
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let livetape_testkit::Prepared {
            toml,
            dir,
            receiver,
        } = scenario.prepare().await;
        let cfg = Config::from_toml_str(&toml).expect("test config");
        let running = livetape::start(cfg.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let api = spec::SpecCheck::start(running.http_addr).await;
        Self {
            running,
            dir,
            receiver,
            cfg,
            downloads: tempfile::tempdir().unwrap(),
            api,
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
            api,
        } = self;
        running.shutdown().await;
        let running = livetape::start(cfg.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let api = api.restarted(running.http_addr).await;
        Self {
            running,
            dir,
            receiver,
            cfg,
            downloads,
            api,
        }
    }

    pub fn rtmp(&self) -> SocketAddr {
        self.running.rtmp_addr
    }

    /// A URL of the server. `/v1` paths go through [`TestServer::api`], which checks each
    /// answer against `/v1/openapi.json` and passes it on unchanged.
    pub fn http(&self, path: &str) -> String {
        if path == "/v1" || path.starts_with("/v1/") || path.starts_with("/v1?") {
            format!("http://{}{}", self.api.addr, path)
        } else {
            format!("http://{}{}", self.running.http_addr, path)
        }
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

/// Decodes the whole file with Debian's ffmpeg; returns its error output (empty = clean).
pub fn decode_errors(path: &Path) -> String {
    livetape_testkit::decode_errors(Path::new("ffmpeg"), path)
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

/// Writes `dir/livetape.toml` for a [`spawn`]ed server: ports from the OS, data in
/// `dir/data`, callbacks of every push to `receiver` (`/begin`, `/end`, `/record`, retried
/// every second); `server_keys` go inside `[server]`, `extra` (whole tables) after the rest.
pub fn binary_config(dir: &Path, receiver: &str, server_keys: &str, extra: &str) -> PathBuf {
    let p = dir.join("livetape.toml");
    std::fs::write(
        &p,
        format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            data_dir = "{}"
            {server_keys}
            [[callback_template]]
            name = "cb"
            key = "{CALLBACK_KEY}"
            stream_begin_url = "{receiver}/begin"
            stream_end_url = "{receiver}/end"
            record_url = "{receiver}/record"
            retry_interval_s = 1
            [[callback_rule]]
            template = "cb"
            {extra}
            "#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    p
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
    spawn_with(config, crash_at, None)
}

/// Like [`spawn_maybe`], with the descriptor limit (soft and hard) set to `nofile` by
/// util-linux `prlimit`, as an operator's `ulimit -n` would.
pub fn spawn_with(config: &Path, crash_at: Option<&str>, nofile: Option<u64>) -> Option<Proc> {
    let env: Vec<(&str, &str)> = crash_at
        .map(|p| ("LIVETAPE_CRASH_AT", p))
        .into_iter()
        .collect();
    spawn_env(config, &env, nofile)
}

/// Like [`spawn_with`], with more environment variables (e.g. the I/O-error sweep's).
pub fn spawn_env(config: &Path, env: &[(&str, &str)], nofile: Option<u64>) -> Option<Proc> {
    launch(config, env, nofile, None)
}

/// Like [`spawn_maybe`], as the unprivileged user `nobody` (util-linux `setpriv`; the tests
/// run as root), so file modes apply to the server as they would in production.
pub fn spawn_as_nobody(config: &Path) -> Option<Proc> {
    launch(config, &[], None, Some("nobody"))
}

fn launch(
    config: &Path,
    env: &[(&str, &str)],
    nofile: Option<u64>,
    user: Option<&str>,
) -> Option<Proc> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_livetape");
    let mut cmd = match (nofile, user) {
        (None, None) => Command::new(bin),
        (Some(n), None) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
            c
        }
        (None, Some(u)) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", u, "--regid", "nogroup", "--clear-groups", "--"])
                .arg(bin);
            c
        }
        (Some(_), Some(_)) => unimplemented!("prlimit and setpriv together"),
    };
    cmd.args(["serve", "--config"])
        .arg(config)
        .env(
            "LIVETAPE_LOG",
            std::env::var("TEST_SERVER_LOG").unwrap_or("warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.envs(env.iter().copied());
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

/// A series' value from `/metrics` of the server at `http` (`name` or `name{labels}`, as
/// exposed); 0 when absent.
pub async fn metric(http: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
