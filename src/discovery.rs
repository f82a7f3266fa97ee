//! Finding the registry on the LAN with DNS-SD over multicast DNS
//! (see protocol.md, "Discovery").
//!
//! The registry announces [`SERVICE_TYPE`] with its port and a TXT record
//! (`proto`, the protocol version); a peer started without `--registry`
//! and without `REGISTRY_ADDR` browses for a moment ([`browse`]) and uses
//! what it found. Only IPv4 is announced and browsed.

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The DNS-SD service type of a lanchat registry.
pub const SERVICE_TYPE: &str = "_lanchat._tcp.local.";
/// The protocol version put in the TXT record (`proto=`).
pub const PROTO_VERSION: &str = "1";
/// How long a stop waits for the goodbye packets to go out.
const STOP_WAIT: Duration = Duration::from_millis(500);

/// A registry's announcement, withdrawn by [`Announcer::stop`].
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

/// The instance name a registry announces: "lanchat registry on HOST:PORT".
pub fn instance_name(host: &str, port: u16) -> String {
    format!("lanchat registry on {host}:{port}")
}

impl Announcer {
    /// Announces a registry listening on `listen`. On an unspecified
    /// address (0.0.0.0) every interface's address is announced; a registry
    /// that listens on loopback only is not announced (`Err`).
    pub fn start(listen: SocketAddr, host: &str) -> Result<Announcer, String> {
        let ip = listen.ip();
        if ip.is_loopback() {
            return Err(format!("{ip} is reachable from this machine only"));
        }
        if !ip.is_ipv4() {
            return Err("only IPv4 addresses are announced".into());
        }
        let daemon = ServiceDaemon::new().map_err(|e| e.to_string())?;
        let _ = daemon.disable_interface(IfKind::IPv6);
        let _ = daemon.disable_interface(IfKind::LoopbackV4);
        let name = instance_name(host, listen.port());
        // A name of its own, not HOST.local.: that one belongs to the
        // machine's own responder (Avahi), and two registries on hosts of
        // the same name (or one host) must not merge their addresses.
        let host_name = format!("lanchat-{}-{}.local.", dns_label(host), listen.port());
        let props = [("proto", PROTO_VERSION)];
        let info = if ip.is_unspecified() {
            ServiceInfo::new(
                SERVICE_TYPE,
                &name,
                &host_name,
                "",
                listen.port(),
                &props[..],
            )
            .map(ServiceInfo::enable_addr_auto)
        } else {
            ServiceInfo::new(
                SERVICE_TYPE,
                &name,
                &host_name,
                ip,
                listen.port(),
                &props[..],
            )
        }
        .map_err(|e| e.to_string())?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(|e| e.to_string())?;
        Ok(Announcer { daemon, fullname })
    }

    /// The announced instance's full DNS-SD name.
    pub fn fullname(&self) -> &str {
        &self.fullname
    }

    /// Withdraws the announcement (goodbye packets) and stops the mDNS
    /// thread, waiting at most half a second for each.
    pub fn stop(self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(STOP_WAIT);
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(STOP_WAIT);
        }
    }
}

/// A host name as one DNS label (letters, digits and '-').
fn dns_label(host: &str) -> String {
    let label: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    if label.is_empty() {
        "lanchat".into()
    } else {
        label
    }
}

/// A registry found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// Its instance name ("lanchat registry on HOST:PORT").
    pub name: String,
    /// Where to reach it.
    pub addr: SocketAddr,
    /// Its protocol version (TXT `proto`), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
}

/// Browses for registries for `wait`, then returns those found, sorted by
/// name (then address). An error (no multicast socket) is an empty list
/// plus the reason.
pub fn browse(wait: Duration) -> (Vec<Found>, Option<String>) {
    let daemon = match ServiceDaemon::new() {
        Ok(d) => d,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let _ = daemon.disable_interface(IfKind::IPv6);
    let rx = match daemon.browse(SERVICE_TYPE) {
        Ok(rx) => rx,
        Err(e) => {
            let _ = daemon.shutdown();
            return (Vec::new(), Some(e.to_string()));
        }
    };
    let mut found = BTreeMap::new();
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(s)) => {
                let mut ips: Vec<IpAddr> = s
                    .addresses
                    .iter()
                    .map(|a| a.to_ip_addr())
                    .filter(IpAddr::is_ipv4)
                    .collect();
                ips.sort();
                let Some(ip) = ips.first() else { continue };
                let name = s
                    .fullname
                    .strip_suffix(SERVICE_TYPE)
                    .unwrap_or(&s.fullname)
                    .trim_end_matches('.')
                    .replace("\\.", ".")
                    .replace("\\\\", "\\");
                let proto = s.get_property_val_str("proto").map(String::from);
                let addr = SocketAddr::new(*ip, s.port);
                found.insert((name.clone(), addr), Found { name, addr, proto });
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    if let Ok(rx) = daemon.shutdown() {
        let _ = rx.recv_timeout(STOP_WAIT);
    }
    (found.into_values().collect(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_one_label() {
        assert_eq!(dns_label("lab.example"), "lab-example");
        assert_eq!(dns_label(""), "lanchat");
        assert_eq!(dns_label(&"x".repeat(100)).len(), 40);
    }

    #[test]
    fn loopback_only_registries_are_not_announced() {
        let err = Announcer::start("127.0.0.1:15600".parse().unwrap(), "h")
            .err()
            .expect("refused");
        assert!(err.contains("this machine only"), "{err}");
    }
}
