//! Real publishers: Debian's ffmpeg pushing a fixture over RTMP with `-c copy`.

use std::net::SocketAddr;
use std::path::Path;

/// How fast [`publish`] sends.
#[derive(Clone, Copy, Debug)]
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
/// ffmpeg separately so names with `/` or `..` reach the server verbatim. Returns whether
/// ffmpeg exited successfully (a refused publish is `false`).
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
        .args(["-c", "copy", "-f", "flv", "-rtmp_app", app])
        .args(["-rtmp_playpath", playpath])
        .arg(format!("rtmp://{addr}/{app}"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.status()
        .await
        .expect("ffmpeg runs (apt-get install ffmpeg)")
        .success()
}
