//! Which registry address to dial. `--registry` is a comma-separated list
//! of `host:port` entries, and an entry whose name resolves to several
//! addresses counts as all of them. The connector tries them in turn,
//! starting after the address last connected (round-robin), with addresses
//! that recently failed or whose connection died tried last.

use super::secure::{secure, Failure, RegistryStream, Security};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An address that failed or died is tried after the others for this long.
const AVOID_FOR: Duration = Duration::from_secs(30);

/// The entries of a `--registry` list (blank entries are ignored).
pub fn parse_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

/// What a connection attempt learnt, for the next one.
#[derive(Debug, Default)]
pub struct Report {
    /// Addresses the list resolved to.
    pub candidates: usize,
    /// Addresses that refused or timed out.
    pub failed: Vec<SocketAddr>,
    /// A registry refused for its certificate: what to tell the user.
    pub refused: Option<String>,
    /// Something to show once connected (a certificate trusted on first use).
    pub note: Option<String>,
}

/// The list and what the link knows about its addresses.
pub struct Addrs {
    entries: Vec<String>,
    /// Addresses the list resolved to at the last attempt.
    known: usize,
    avoid: HashMap<SocketAddr, Instant>,
    /// The address last connected.
    pub last: Option<SocketAddr>,
    /// TLS or not, and what is pinned.
    pub security: Security,
}

impl Addrs {
    pub fn new(list: &str) -> Addrs {
        let mut entries = parse_list(list);
        if entries.is_empty() {
            // Reported by the connector as "resolves to nothing".
            entries.push(list.to_string());
        }
        Addrs {
            entries,
            known: 0,
            avoid: HashMap::new(),
            last: None,
            security: Security::Insecure,
        }
    }

    /// Whether there is another registry to move to.
    pub fn has_alternatives(&self) -> bool {
        self.entries.len() > 1 || self.known > 1
    }

    /// Try `addr` after the others for a while.
    pub fn avoid(&mut self, addr: SocketAddr, now: Instant) {
        self.avoid.insert(addr, now + AVOID_FOR);
    }

    pub fn learn(&mut self, report: &Report, now: Instant) {
        self.known = report.candidates;
        for a in &report.failed {
            self.avoid(*a, now);
        }
    }

    /// What the connector thread needs for one attempt.
    pub fn plan(&mut self, now: Instant) -> Plan {
        self.avoid.retain(|_, until| *until > now);
        Plan {
            entries: self.entries.clone(),
            after: self.last,
            avoid: self.avoid.keys().copied().collect(),
            security: self.security.clone(),
        }
    }
}

/// One connection attempt (run on the connector thread: it resolves names).
pub struct Plan {
    entries: Vec<String>,
    after: Option<SocketAddr>,
    avoid: Vec<SocketAddr>,
    security: Security,
}

impl Plan {
    /// The order to try `resolved` in: duplicates dropped, starting after
    /// the address last connected, avoided ones last.
    pub fn order(&self, resolved: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = Vec::with_capacity(resolved.len());
        for a in resolved {
            if !all.contains(&a) {
                all.push(a);
            }
        }
        if let Some(i) = self.after.and_then(|l| all.iter().position(|a| *a == l)) {
            all.rotate_left(i + 1);
        }
        let (avoided, fresh): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|a| self.avoid.contains(a));
        fresh.into_iter().chain(avoided).collect()
    }

    /// Resolves every entry and connects to the first address that answers.
    pub fn connect(self) -> (Result<RegistryStream, String>, Report) {
        let mut last = format!("{} resolves to nothing", self.entries.join(","));
        let mut resolved = Vec::new();
        for entry in &self.entries {
            match entry.to_socket_addrs() {
                Ok(addrs) => resolved.extend(addrs),
                Err(e) => last = format!("cannot resolve {entry}: {e}"),
            }
        }
        let order = self.order(resolved);
        let mut report = Report {
            candidates: order.len(),
            ..Report::default()
        };
        for a in order {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => match secure(s, a, &self.security) {
                    Ok((s, note)) => {
                        report.note = note;
                        return (Ok(s), report);
                    }
                    Err(Failure::Failed(e)) => {
                        last = e;
                        report.failed.push(a);
                    }
                    Err(Failure::Refused(e)) => {
                        last = e.clone();
                        report.refused = Some(e);
                        report.failed.push(a);
                    }
                },
                Err(e) => {
                    last = format!("cannot connect to {a}: {e}");
                    report.failed.push(a);
                }
            }
        }
        if report.failed.len() > 1 && report.refused.is_none() {
            let tried: Vec<String> = report.failed.iter().map(|a| a.to_string()).collect();
            last = format!("no registry answered ({}); {last}", tried.join(", "));
        }
        (Err(last), report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn plan(after: Option<u16>, avoid: &[u16]) -> Plan {
        Plan {
            entries: Vec::new(),
            after: after.map(a),
            avoid: avoid.iter().map(|p| a(*p)).collect(),
            security: Security::Insecure,
        }
    }

    #[test]
    fn lists_split_on_commas_and_ignore_blanks() {
        assert_eq!(parse_list("h1:1, h2:2,,"), ["h1:1", "h2:2"]);
        assert_eq!(parse_list("127.0.0.1:15600"), ["127.0.0.1:15600"]);
        assert!(!Addrs::new("127.0.0.1:15600").has_alternatives());
        assert!(Addrs::new("a:1,b:2").has_alternatives());
        let mut one_name = Addrs::new("lab:15600");
        one_name.learn(
            &Report {
                candidates: 2,
                ..Report::default()
            },
            Instant::now(),
        );
        assert!(one_name.has_alternatives());
    }

    #[test]
    fn order_starts_after_the_last_address_and_tries_avoided_ones_last() {
        let all = || vec![a(1), a(2), a(3), a(2)];
        assert_eq!(plan(None, &[]).order(all()), [a(1), a(2), a(3)]);
        assert_eq!(plan(Some(1), &[]).order(all()), [a(2), a(3), a(1)]);
        assert_eq!(plan(Some(3), &[]).order(all()), [a(1), a(2), a(3)]);
        assert_eq!(plan(Some(1), &[1, 2]).order(all()), [a(3), a(2), a(1)]);
        assert_eq!(plan(Some(9), &[1]).order(all()), [a(2), a(3), a(1)]);
    }

    #[test]
    fn avoidance_wears_off() {
        let mut addrs = Addrs::new("127.0.0.1:1,127.0.0.1:2");
        let now = Instant::now();
        addrs.avoid(a(1), now);
        assert_eq!(addrs.plan(now).avoid, [a(1)]);
        assert!(addrs.plan(now + AVOID_FOR).avoid.is_empty());
    }
}
