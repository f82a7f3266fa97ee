//! Peer addresses (`protocol.md`, `login`): which IP the registry records for
//! a peer, and how both sides compare addresses. An IPv4 client on a
//! dual-stack socket shows as `::ffff:a.b.c.d`; it is always recorded and
//! compared as `a.b.c.d`.

use super::messages::{ApiError, ErrorCode};
use std::fmt;
use std::net::IpAddr;

/// A `login` or `resume` address the registry refuses (`invalid_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// `tcp_port` or `udp_port` is 0.
    Port,
    /// `advertise_ip` does not parse as an IP address.
    AdvertiseIp,
    /// `advertise_ip` parses, but no peer can reach anyone there: the
    /// unspecified address, a broadcast or multicast address, or loopback
    /// named by a peer that is not on the registry's machine.
    Unreachable(&'static str),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Port => "tcp_port and udp_port must be 1-65535",
            AddrError::AdvertiseIp => "advertise_ip is not an IP address",
            AddrError::Unreachable(why) => why,
        })
    }
}

impl std::error::Error for AddrError {}

impl From<AddrError> for ApiError {
    fn from(e: AddrError) -> ApiError {
        ApiError::new(ErrorCode::InvalidAddress, e.to_string())
    }
}

/// An IPv4-mapped IPv6 address as plain IPv4; any other address unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Both ports a peer listens on must be real ports.
pub fn check_ports(tcp_port: u16, udp_port: u16) -> Result<(), AddrError> {
    if tcp_port == 0 || udp_port == 0 {
        Err(AddrError::Port)
    } else {
        Ok(())
    }
}

/// The IP recorded for a peer: `advertise_ip` if given, else the address the
/// registry sees the connection come from; normalised either way. An
/// advertised address must be one other peers can reach: not unspecified
/// (`0.0.0.0`, `::`), broadcast or multicast, and loopback only from a
/// connection that itself comes from loopback.
pub fn peer_ip(seen: IpAddr, advertise: Option<&str>) -> Result<IpAddr, AddrError> {
    let Some(s) = advertise else {
        return Ok(normalize(seen));
    };
    let ip = normalize(s.parse().map_err(|_| AddrError::AdvertiseIp)?);
    let why = match ip {
        _ if ip.is_unspecified() => Some(
            "advertise_ip is the unspecified address: give the address other peers reach you at",
        ),
        _ if ip.is_multicast() => Some("advertise_ip is a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("advertise_ip is the broadcast address"),
        _ if ip.is_loopback() && !normalize(seen).is_loopback() => {
            Some("advertise_ip is a loopback address, but you are not on the registry's machine")
        }
        _ => None,
    };
    match why {
        Some(why) => Err(AddrError::Unreachable(why)),
        None => Ok(ip),
    }
}

/// Whether `a` is the address written `b` (as a registry lists it).
pub fn same_ip(a: IpAddr, b: &str) -> bool {
    b.parse::<IpAddr>()
        .is_ok_and(|b| normalize(a) == normalize(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_ipv4_is_plain_ipv4() {
        assert_eq!(normalize(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(normalize(ip("10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(normalize(ip("fe80::1")), ip("fe80::1"));
        assert!(same_ip(ip("::ffff:127.0.0.1"), "127.0.0.1"));
        assert!(same_ip(ip("127.0.0.1"), "::ffff:127.0.0.1"));
        assert!(!same_ip(ip("127.0.0.1"), "127.0.0.2"));
        assert!(!same_ip(ip("127.0.0.1"), "localhost"));
    }

    #[test]
    fn advertised_address_wins() {
        let seen = ip("::ffff:192.168.1.9");
        assert_eq!(peer_ip(seen, None), Ok(ip("192.168.1.9")));
        assert_eq!(
            peer_ip(seen, Some("::ffff:192.168.1.20")),
            Ok(ip("192.168.1.20"))
        );
        assert_eq!(peer_ip(seen, Some("nope")), Err(AddrError::AdvertiseIp));
        assert_eq!(peer_ip(seen, Some("10.1.2.3")), Ok(ip("10.1.2.3")));
        assert_eq!(peer_ip(seen, Some("fe80::1")), Ok(ip("fe80::1")));
        for bad in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "239.1.2.3",
            "ff02::1",
            "127.0.0.1",
            "::1",
        ] {
            assert!(
                matches!(peer_ip(seen, Some(bad)), Err(AddrError::Unreachable(_))),
                "{bad}"
            );
        }
        let local = ip("127.0.0.1");
        assert_eq!(peer_ip(local, Some("127.0.0.5")), Ok(ip("127.0.0.5")));
        assert_eq!(peer_ip(local, Some("::1")), Ok(ip("::1")));
        let e = ApiError::from(AddrError::AdvertiseIp);
        assert_eq!(e.code, ErrorCode::InvalidAddress);
        assert_eq!(e.message, "advertise_ip is not an IP address");
    }

    #[test]
    fn ports_must_be_real() {
        assert_eq!(check_ports(1, 65535), Ok(()));
        assert_eq!(check_ports(0, 1), Err(AddrError::Port));
        assert_eq!(check_ports(1, 0), Err(AddrError::Port));
        assert_eq!(
            ApiError::from(AddrError::Port).message,
            "tcp_port and udp_port must be 1-65535"
        );
    }
}
