//! Connection caps per listener: at most `total` open connections, at most `per_ip` from one
//! address. A connection over a cap is closed at once (before any byte is read), so a flood
//! of idle sockets cannot take the fd table, and with it finalize and the catalogue, from
//! the pushes that are recording.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Total(usize),
    PerIp(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(f, "{n} connections open (the listener's cap)"),
            Refused::PerIp(n) => write!(f, "{n} connections open from this address (the cap)"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConnLimits {
    total: usize,
    per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl ConnLimits {
    /// `0` means no cap.
    pub(crate) fn new(total: usize, per_ip: usize) -> Arc<Self> {
        let cap = |n: usize| if n == 0 { usize::MAX } else { n };
        Arc::new(Self {
            total: cap(total),
            per_ip: cap(per_ip),
            open: Mutex::default(),
        })
    }

    /// A permit for one connection from `ip`, released when dropped.
    pub(crate) fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refused> {
        let mut open = self.lock();
        if open.total >= self.total {
            return Err(Refused::Total(self.total));
        }
        let n = open.by_ip.entry(ip).or_default();
        if *n >= self.per_ip {
            return Err(Refused::PerIp(self.per_ip));
        }
        *n += 1;
        open.total += 1;
        Ok(ConnPermit {
            limits: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open connection's place under the caps.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address_and_frees_on_drop() {
        let l = ConnLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = l.try_open(a).unwrap();
        let _a2 = l.try_open(a).unwrap();
        assert_eq!(l.try_open(a).unwrap_err(), Refused::PerIp(2));
        let _b1 = l.try_open(b).unwrap();
        assert_eq!(l.try_open(b).unwrap_err(), Refused::Total(3));
        drop(a1);
        assert_eq!(l.open(), 2);
        let _b2 = l.try_open(b).unwrap();
        let unlimited = ConnLimits::new(0, 0);
        let many: Vec<_> = (0..1000).map(|_| unlimited.try_open(a).unwrap()).collect();
        assert_eq!(unlimited.open(), many.len());
    }
}
