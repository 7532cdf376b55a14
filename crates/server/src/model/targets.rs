//! Which hosts a callback URL set over the API may name. The config file is the operator's and
//! is trusted; an API client is not: without this, anyone holding the API key could point
//! callbacks at the server's own loopback services or a cloud metadata address
//! (169.254.169.254) and read the answers' status in `last_error`.

use std::net::IpAddr;

/// An address block, `10.0.0.0/8` or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{s}`: prefix must be 0..={max}"))?
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32u32),
            IpAddr::V6(v) => (u128::from(v), 128u32),
        };
        let ((net, w1), (ip, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        let shift = w1 - u32::from(self.prefix);
        shift >= w1 || (net >> shift) == (ip >> shift)
    }
}

/// Addresses an API client may not target unless allowed: this machine and its link.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_loopback() || v.is_link_local() || v.is_unspecified() || v.is_broadcast()
        }
        IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || v.is_unicast_link_local()
                || v.to_ipv4_mapped().is_some_and(|m| internal(IpAddr::V4(m)))
        }
    }
}

/// Why `url`'s host may not be a callback target set over the API, if it may not.
pub fn refused_target(url: &str, allow: &[Cidr]) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = host.to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(format!(
            "`{host}` is this machine: callback targets set over the API may not be loopback \
             or link-local unless [callbacks] allow_targets lists them"
        ));
    }
    let ip: IpAddr = name.parse().ok()?;
    (internal(ip) && !allow.iter().any(|c| c.contains(ip))).then(|| {
        format!(
            "`{ip}` is a loopback or link-local address: callback targets set over the API may \
             not be one unless [callbacks] allow_targets lists it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_and_metadata_are_refused_unless_allowed() {
        let none: [Cidr; 0] = [];
        for u in [
            "http://127.0.0.1:8080/cb",
            "http://127.1.2.3/cb",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:9/x",
            "http://[fe80::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://0.0.0.0/x",
            "https://user:pw@localhost/x",
            "http://api.LOCALHOST/x",
        ] {
            assert!(refused_target(u, &none).is_some(), "{u}");
        }
        for u in [
            "http://10.1.2.3/cb",
            "https://hooks.example.com/cb",
            "http://192.168.1.5:9000/cb",
            "http://[2001:db8::1]/x",
        ] {
            assert_eq!(refused_target(u, &none), None, "{u}");
        }
        let allow: Vec<Cidr> = ["127.0.0.0/8", "::1"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(refused_target("http://127.0.0.1:8080/cb", &allow), None);
        assert_eq!(refused_target("http://[::1]/cb", &allow), None);
        assert!(refused_target("http://169.254.169.254/", &allow).is_some());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("169.254.1.1".parse().unwrap()));
    }
}
