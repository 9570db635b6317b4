//! Network lists: the allowed-IP list a service sets for its staff logins,
//! written as CIDR blocks (`203.0.113.0/24`, `2001:db8::/32`) or single
//! addresses.

use std::fmt;
use std::net::IpAddr;

/// One network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`; host bits must be zero, so a typo
    /// like `10.0.0.1/8` is refused rather than silently widened.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        let cidr = Cidr { network, prefix };
        if !cidr.contains(network) || cidr.masked(network) != bits(network) {
            return Err(format!("{text:?}: the address has bits set beyond the prefix"));
        }
        Ok(cidr)
    }

    fn masked(&self, addr: IpAddr) -> u128 {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let host_bits = width - u32::from(self.prefix);
        let mask = if host_bits >= 128 { 0 } else { !0u128 << host_bits };
        bits(addr) & mask
    }

    /// Whether `addr` is in the network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        addr.is_ipv4() == self.network.is_ipv4() && self.masked(addr) == self.masked(self.network)
    }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Whether `addr` may log in under `list` (empty: from anywhere).
pub fn allowed(list: &[Cidr], addr: Option<IpAddr>) -> bool {
    list.is_empty() || addr.is_some_and(|a| list.iter().any(|c| c.contains(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(net.contains(ip("203.0.113.7")));
        assert!(!net.contains(ip("203.0.114.7")));
        assert!(net.contains(ip("::ffff:203.0.113.9")), "IPv4-mapped");
        assert!(!net.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "300.1.1.1", "", "10.0.0.0/", "2001:db8::/129", "x/8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_list_allows_everyone_and_an_unknown_address_nothing_else() {
        assert!(allowed(&[], None));
        let list = [Cidr::parse("10.0.0.0/8").unwrap()];
        assert!(allowed(&list, Some(ip("10.1.2.3"))));
        assert!(!allowed(&list, Some(ip("11.1.2.3"))));
        assert!(!allowed(&list, None));
    }
}
