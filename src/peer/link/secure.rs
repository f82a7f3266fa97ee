//! TLS on the registry connection, set up on the connector thread: the
//! certificate is checked against the fingerprint pinned for the address
//! (`--registry-fingerprint`, or the one trusted on first use), and a new
//! address's fingerprint is remembered. `--insecure` skips all of it.

use crate::tls::known::Known;
use crate::tls::{pin, split, Fingerprint};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// How the peer talks to registries.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plaintext (`--insecure`): anyone on the network reads everything.
    Insecure,
    /// TLS, the certificate pinned by `pinned` (every address), else by the
    /// fingerprint `known` holds for the address, else trusted on first use.
    Tls {
        pinned: Option<Fingerprint>,
        known: Known,
    },
}

/// A connection to a registry, TLS or plaintext.
pub struct RegistryStream {
    pub tcp: TcpStream,
    tls: Option<Arc<split::Shared>>,
}

/// The two halves of a connection, for the reader and writer threads.
pub type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);

impl RegistryStream {
    /// A plaintext connection.
    pub fn plain(tcp: TcpStream) -> RegistryStream {
        RegistryStream { tcp, tls: None }
    }

    pub fn halves(&self) -> io::Result<Halves> {
        Ok(match &self.tls {
            Some(shared) => (
                Box::new(split::Reader::new(shared.clone())?),
                Box::new(split::Writer::new(shared.clone())),
            ),
            None => (
                Box::new(self.tcp.try_clone()?),
                Box::new(self.tcp.try_clone()?),
            ),
        })
    }
}

/// Why a connection was not made.
pub enum Failure {
    /// The registry did not answer as it should; try the next one or later.
    Failed(String),
    /// The registry's certificate is not the one trusted: told loudly.
    Refused(String),
}

/// Secures a fresh connection to `addr`. With it, a note to show (a
/// certificate trusted on first use).
pub fn secure(
    mut tcp: TcpStream,
    addr: SocketAddr,
    security: &Security,
) -> Result<(RegistryStream, Option<String>), Failure> {
    let (pinned, known) = match security {
        Security::Insecure => return Ok((RegistryStream::plain(tcp), None)),
        Security::Tls { pinned, known } => (*pinned, known),
    };
    let key = addr.to_string();
    let remembered = if pinned.is_some() {
        None
    } else {
        known.lookup(&key)
    };
    let expect = pinned.or(remembered);
    let (config, seen) = pin::client_config(expect);
    let mut conn =
        pin::client_connection(config).map_err(|e| Failure::Failed(format!("TLS: {e}")))?;
    if let Err(e) = split::handshake(&mut conn, &mut tcp) {
        let got = *seen.lock().unwrap_or_else(|p| p.into_inner());
        return Err(match (got, expect) {
            (Some(got), Some(want)) if got != want => {
                Failure::Refused(refusal(&key, got, want, pinned.is_some(), known))
            }
            _ if got.is_none() => Failure::Failed(format!(
                "the registry at {key} did not answer in TLS ({e}): it may be an old \
                 (version 1) registry, which a peer reaches only with --insecure (and \
                 then everything it sends can be read on the network), or a registry \
                 refusing this connection (too many from this address)"
            )),
            _ => Failure::Failed(format!("TLS with the registry at {key} failed: {e}")),
        });
    }
    let got = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    let note = match (expect, got) {
        // Registries that share a certificate directory are one identity:
        // one already trusted at another address is trusted here quietly.
        (None, Some(fp)) if known.trusts(fp) => {
            if let Err(e) = known.remember(&key, fp) {
                log::warn!("{e}");
            }
            log::info!("the registry at {key} has a certificate already trusted: {fp}");
            None
        }
        (None, Some(fp)) => {
            let saved = match known.remember(&key, fp) {
                Ok(()) => format!("remembered in {}", known.path.display()),
                Err(e) => format!("not remembered: {e}"),
            };
            Some(format!(
                "trusting the registry at {key} on first use: certificate {fp} ({saved}); \
                 compare it with the one the registry prints"
            ))
        }
        _ => None,
    };
    Ok((
        RegistryStream {
            tls: Some(split::Shared::new(
                conn,
                tcp.try_clone()
                    .map_err(|e| Failure::Failed(e.to_string()))?,
            )),
            tcp,
        },
        note,
    ))
}

fn refusal(key: &str, got: Fingerprint, want: Fingerprint, pinned: bool, known: &Known) -> String {
    if pinned {
        format!(
            "REFUSED the registry at {key}: its certificate is {got}, not the pinned {want} \
             (--registry-fingerprint / LANCHAT_REGISTRY_FINGERPRINT). Someone may be \
             intercepting the connection; check the fingerprint the registry prints"
        )
    } else {
        format!(
            "REFUSED the registry at {key}: its certificate is {got}, but this machine \
             trusted {want} for that address before. Someone may be intercepting the \
             connection. If the registry really has a new certificate (its operator sees \
             it with `registry --fingerprint`), trust the new one with \
             `peer --forget-registry {key}` (or delete its line in {})",
            known.path.display()
        )
    }
}

impl Security {
    /// From the command line: `--insecure`, `--registry-fingerprint`
    /// (`LANCHAT_REGISTRY_FINGERPRINT`), `--known-registries`.
    pub fn from_flags(
        insecure: bool,
        fingerprint: Option<&str>,
        known: Option<&std::path::Path>,
    ) -> Result<Security, String> {
        let pinned = match fingerprint.map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => Some(f.parse::<Fingerprint>()?),
            None => None,
        };
        match (insecure, pinned) {
            (true, Some(_)) => {
                Err("--insecure and --registry-fingerprint contradict each other".into())
            }
            (true, None) => Ok(Security::Insecure),
            (false, pinned) => Ok(Security::Tls {
                pinned,
                known: Known::new(&known.map_or_else(crate::tls::known::default_path, Into::into)),
            }),
        }
    }
}

/// `peer --forget-registry HOST:PORT`: forgets the certificate trusted for
/// each address `entry` resolves to; what to tell the user.
pub fn forget(entry: &str, known: &Known) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let mut keys = vec![entry.to_string()];
    if let Ok(addrs) = entry.to_socket_addrs() {
        keys.extend(addrs.map(|a| a.to_string()));
    }
    keys.dedup();
    let mut forgotten = Vec::new();
    for k in &keys {
        if known.forget(k)? && !forgotten.contains(k) {
            forgotten.push(k.clone());
        }
    }
    if forgotten.is_empty() {
        return Ok(format!(
            "no certificate was trusted for {entry} in {}",
            known.path.display()
        ));
    }
    Ok(format!(
        "forgot the certificate trusted for {} ({}); the next connection trusts the one it is shown",
        forgotten.join(", "),
        known.path.display()
    ))
}
