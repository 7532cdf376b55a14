//! A TCP proxy in front of a real server (PostgreSQL, a bucket) that a test can cut: every
//! open connection reset and the port closed, so new connections are refused — what a
//! database that was stopped looks like to its clients; then restored on the same port.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl TcpProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = first.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let mut state = up.subscribe();
        tokio::spawn(async move {
            let mut listener = Some(first);
            loop {
                let l = match listener.take() {
                    Some(l) => l,
                    None => match TcpListener::bind(addr).await {
                        Ok(l) => l,
                        Err(_) => return,
                    },
                };
                loop {
                    let for_conn = state.clone();
                    tokio::select! {
                        r = l.accept() => {
                            let Ok((client, _)) = r else { return };
                            let mut cut = for_conn;
                            tokio::spawn(async move {
                                let Ok(mut server) = TcpStream::connect(target).await else {
                                    return;
                                };
                                let mut client = client;
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    _ = cut.wait_for(|up| !*up) => {
                                        // Reset, not a clean close: what a dead peer looks like.
                                        let _ = client.set_zero_linger();
                                    }
                                }
                            });
                        }
                        r = state.wait_for(|up| !*up) => {
                            if r.is_err() { return; }
                            break;
                        }
                    }
                }
                // Cut: the port is closed (connections refused) until restored.
                drop(l);
                if state.wait_for(|up| *up).await.is_err() {
                    return;
                }
            }
        });
        Self { addr, up }
    }

    /// Resets every open connection and closes the port until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}
