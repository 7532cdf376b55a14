//! A real S3-compatible server (`s3s-fs`, installed by `scripts/test.sh`).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Credentials and bucket of the test S3 server.
pub const S3_ACCESS_KEY: &str = "livetapetest";
pub const S3_SECRET_KEY: &str = "livetapesecret";
pub const S3_BUCKET: &str = "rec";

/// `s3s-fs` on 127.0.0.1, storing buckets as directories under `root` (objects as plain
/// files: `root/{bucket}/{key}`). Killed on drop.
pub struct S3Server {
    child: std::process::Child,
    pub port: u16,
    pub root: PathBuf,
}

/// A port nobody listens on right now (bound then released).
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768–60999): a port taken from `:0` is in it, and
    // while a test holds it free (to start a server there later) any outgoing connection or
    // `:0` listener of a parallel test may be handed the same port — s3s-fs then failed to
    // bind and the readiness check connected to someone else's listener.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos()) as usize
        ^ std::process::id() as usize;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for i in 0..4000 {
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + ((seed + k * 7919 + i) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
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

    /// A port nobody listens on right now.
    pub fn free_port() -> u16 {
        free_port()
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
        // Polling a TCP connect is the only readiness signal s3s-fs gives.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
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
