//! File descriptors are shared by everything: sockets, spools, final files, the catalogue. A
//! flood of connections that takes them all makes finalize and the catalogue fail (EMFILE)
//! for the pushes that are recording. So at start the soft limit is raised to the hard one,
//! and the connection caps are lowered, if need be, to leave room for the recordings.

/// Descriptors kept for the process itself (runtime, listeners, the catalogue, logs), plus an
/// eighth of the limit for files being finalized and served.
const FD_RESERVE_BASE: u64 = 64;
/// Descriptors an RTMP push may hold: its socket and one spool per format (HLS: playlist and
/// the open segment), and the final file being written.
const FDS_PER_PUSH: u64 = 8;
/// Descriptors an HTTP connection may hold: its socket and a file it serves.
const FDS_PER_HTTP: u64 = 2;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now in force.
pub(crate) fn raise_nofile() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (l.current, l.maximum)
        && cur < max
    {
        l.current = Some(max);
        if setrlimit(Resource::Nofile, l).is_err() {
            l.current = Some(cur);
        }
    }
    l.current
}

/// The connection caps that fit `nofile` descriptors: half of what is left after the reserve
/// for pushes, a quarter for HTTP connections. A configured cap (0 = none) is kept when lower.
pub(crate) fn fit(nofile: Option<u64>, rtmp: usize, http: usize) -> (usize, usize) {
    let Some(n) = nofile else {
        return (rtmp, http);
    };
    let budget = n.saturating_sub(FD_RESERVE_BASE + n / 8);
    let cap = |configured: usize, fits: u64| {
        let fits = usize::try_from(fits.max(1)).unwrap_or(usize::MAX);
        if configured == 0 {
            fits
        } else {
            configured.min(fits)
        }
    };
    (
        cap(rtmp, budget / 2 / FDS_PER_PUSH),
        cap(http, budget / 4 / FDS_PER_HTTP),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_shrink_to_fit_the_descriptor_limit() {
        // 1024 descriptors: 832 to share, 52 pushes, 104 HTTP connections.
        assert_eq!(fit(Some(1024), 4096, 4096), (52, 104));
        // A roomy limit keeps the configured caps; "no cap" becomes what fits.
        assert_eq!(fit(Some(1 << 20), 4096, 4096), (4096, 4096));
        assert_eq!(fit(Some(1 << 20), 0, 0), (57_340, 114_680));
        assert_eq!(fit(None, 7, 0), (7, 0));
        assert_eq!(fit(Some(10), 4096, 4096), (1, 1));
    }
}
