//! [`Scenario`]: the config a test server runs with, built from parts, with the data dir and
//! the callback receiver it points at. The server suite turns a prepared scenario into a
//! running server (`TestServer::from_scenario`); this crate stays free of livetape itself so
//! every crate can depend on it.

use crate::receiver::Receiver;

/// The key of the callback template a scenario writes (bodies are signed with it).
pub const CALLBACK_KEY: &str = "cbkey123";

/// A livetape config under construction: ephemeral RTMP and HTTP ports on 127.0.0.1, a fresh
/// temp data dir, and a callback template `cb` (key [`CALLBACK_KEY`], retry every second)
/// sending begin/end/record events to a real [`Receiver`] at `/begin`, `/end`, `/record`.
#[derive(Default)]
#[must_use]
pub struct Scenario {
    server_keys: String,
    extra: String,
    no_callbacks: bool,
}

/// A scenario ready to start: the TOML, the data dir it names (unless `data_dir` was given in
/// the server keys) and the receiver.
pub struct Prepared {
    pub toml: String,
    pub dir: tempfile::TempDir,
    pub receiver: Receiver,
}

impl Scenario {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys inside the `[server]` table (e.g. `data_dir = "..."` to use another one).
    pub fn server(mut self, keys: &str) -> Self {
        self.server_keys.push_str(keys);
        self.server_keys.push('\n');
        self
    }

    /// TOML appended to the config: templates, rules, `[storage]`, `[catalog]`, ...
    pub fn config(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// No callback template (the receiver still runs, and gets nothing).
    pub fn without_callbacks(mut self) -> Self {
        self.no_callbacks = true;
        self
    }

    /// Starts the receiver and writes the TOML.
    pub async fn prepare(self) -> Prepared {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::start().await;
        let http_listen = if self.server_keys.contains("http_listen") {
            ""
        } else {
            "http_listen = \"127.0.0.1:0\""
        };
        let mut toml = format!(
            r#"
            [server]
            rtmp_listen = "127.0.0.1:0"
            {http_listen}
            public_url = "http://127.0.0.1:1"
            {}
            "#,
            self.server_keys
        );
        if !self.server_keys.contains("data_dir") {
            toml.push_str(&format!("data_dir = \"{}\"\n", dir.path().display()));
        }
        if !self.no_callbacks {
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
        toml.push_str(&self.extra);
        Prepared {
            toml,
            dir,
            receiver,
        }
    }
}
