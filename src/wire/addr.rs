//! Host addresses as one 128-bit key, IPv4 mapped into IPv6 space.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 host address. IPv4 is stored IPv4-mapped
/// (`::ffff:a.b.c.d`), so both families share one key type and one table;
/// [`Addr::ip`] turns it back into the family it came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub u128);

const V4_MAPPED: u128 = 0xffff_0000_0000;

impl Addr {
    /// From the four bytes of an IPv4 address in network order.
    #[inline]
    pub fn from_v4(b: [u8; 4]) -> Addr {
        Addr(V4_MAPPED | u128::from(u32::from_be_bytes(b)))
    }

    /// From the sixteen bytes of an IPv6 address in network order.
    #[inline]
    pub fn from_v6(b: [u8; 16]) -> Addr {
        Addr(u128::from_be_bytes(b))
    }

    /// Which of `n` parts (the aggregator's partitions) the address falls
    /// in: the same on every thread and every run.
    #[inline]
    pub fn part(self, n: usize) -> usize {
        if n == 1 {
            return 0;
        }
        let x = (self.0 as u64) ^ ((self.0 >> 64) as u64).rotate_left(29);
        let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 32) as usize) % n
    }

    /// True for an IPv4 host.
    pub fn is_v4(self) -> bool {
        self.0 >> 32 == V4_MAPPED >> 32
    }

    /// The address in its own family.
    pub fn ip(self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.0 as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::from_v4(v4.octets()),
            IpAddr::V6(v6) => Addr::from_v6(v6.octets()),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ip().fmt(f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({})", self.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trips_in_its_own_family() {
        let a = Addr::from_v4([192, 0, 2, 7]);
        assert!(a.is_v4());
        assert_eq!(a.to_string(), "192.0.2.7");
        assert_eq!(Addr::from(a.ip()), a);
    }

    #[test]
    fn v6_round_trips() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let a = Addr::from(ip);
        assert!(!a.is_v4());
        assert_eq!(a.ip(), ip);
        assert_eq!(a.to_string(), "2001:db8::1");
    }

    #[test]
    fn mapped_v6_literal_is_the_v4_host() {
        // A v4-mapped IPv6 address on the wire is the same host as its v4 form.
        let ip: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Addr::from(ip), Addr::from_v4([10, 0, 0, 1]));
    }
}
