//! Names from the network: stream keys, their limits, and rule globs.

/// Longest app or stream name accepted from a publisher (bytes).
pub const MAX_NAME_LEN: usize = 256;

/// One stream: the app it is published under and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub app: String,
    pub stream: String,
}

/// Shell-style glob with `*` and `?`, used by record and callback rules.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// How specific a rule pattern is: exact beats glob beats `*`.
pub fn specificity(pattern: &str) -> u8 {
    if pattern == "*" {
        0
    } else if pattern.contains(['*', '?']) {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("live", "live2"));
    }
}

/// A publisher's `stream_param` as the API and the console show it: the `txSecret` pair
/// removed (it is a live credential for the stream until `txTime`). Callbacks keep the whole
/// string, as Tencent's do.
pub fn without_push_secret(stream_param: &str) -> String {
    stream_param
        .split('&')
        .filter(|kv| {
            let key = kv.split_once('=').map_or(*kv, |(k, _)| k);
            !key.eq_ignore_ascii_case("txSecret")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod push_secret_tests {
    use super::without_push_secret;

    #[test]
    fn the_secret_goes_and_everything_else_stays() {
        assert_eq!(
            without_push_secret("txSecret=abc&txTime=5F5E1000&room=7"),
            "txTime=5F5E1000&room=7"
        );
        assert_eq!(without_push_secret("a=1&TXSECRET=x"), "a=1");
        assert_eq!(without_push_secret(""), "");
        assert_eq!(without_push_secret("txSecretive=1"), "txSecretive=1");
    }
}
