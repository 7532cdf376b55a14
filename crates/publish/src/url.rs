use crate::PublishError;

const DEFAULT_PORT: u16 = 1935;

/// `rtmp://host[:port]/app/stream[?query]`, split the way encoders split it: the first path
/// segment is the app, everything after it (query included) the publish name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpUrl {
    /// As written, brackets kept for IPv6 literals so `host:port` stays connectable.
    pub host: String,
    pub port: u16,
    pub app: String,
    pub stream: String,
}

impl RtmpUrl {
    pub fn parse(url: &str) -> Result<Self, PublishError> {
        let bad = |reason| PublishError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or_else(|| bad("scheme must be rtmp://"))?;
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("missing /app/stream"))?;
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal without a port ends with ']' and has colons inside.
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse::<u16>().map_err(|_| bad("invalid port"))?)
            }
            _ => (authority, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let (app, stream) = path
            .split_once('/')
            .ok_or_else(|| bad("missing stream name"))?;
        if app.is_empty() || stream.is_empty() {
            return Err(bad("empty app or stream name"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            stream: stream.to_owned(),
        })
    }

    /// The `tcUrl` of the connect command.
    pub fn tc_url(&self) -> String {
        format!("rtmp://{}:{}/{}", self.host, self.port, self.app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_encoder_style_urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:19350/live/cam1?txSecret=a&txTime=b").unwrap();
        assert_eq!(
            u,
            RtmpUrl {
                host: "127.0.0.1".into(),
                port: 19350,
                app: "live".into(),
                stream: "cam1?txSecret=a&txTime=b".into()
            }
        );
        assert_eq!(u.tc_url(), "rtmp://127.0.0.1:19350/live");
        let u = RtmpUrl::parse("rtmp://example.com/app/a/b").unwrap();
        assert_eq!((u.port, u.stream.as_str()), (1935, "a/b"));
        let u = RtmpUrl::parse("rtmp://[::1]/live/s").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 1935));
        let u = RtmpUrl::parse("rtmp://[::1]:99/live/s").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 99));
        for bad in [
            "http://h/a/s",
            "rtmp://h",
            "rtmp://h/app",
            "rtmp://h:x/a/s",
            "rtmp://:1/a/s",
            "rtmp://h//s",
            "rtmp://h/a/",
        ] {
            assert!(
                matches!(RtmpUrl::parse(bad), Err(PublishError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
