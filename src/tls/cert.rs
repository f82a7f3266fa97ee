//! The registry's certificate: made at first start (`rcgen`, self-signed,
//! ECDSA P-256), kept as `registry-cert.pem` and `registry-key.pem` (mode
//! 0600) in its certificate directory, loaded on later starts.

use super::{provider, Fingerprint, SERVER_NAME};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CERT_FILE: &str = "registry-cert.pem";
pub const KEY_FILE: &str = "registry-key.pem";

/// The registry's identity: its TLS configuration and fingerprint.
#[derive(Debug, Clone)]
pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    pub fingerprint: Fingerprint,
    /// The certificate file.
    pub cert_path: PathBuf,
}

/// Loads the certificate and key in `dir`, or makes them (and `dir`) when
/// neither exists. `Ok((identity, true))` when they were just made.
pub fn load_or_create(dir: &Path) -> Result<(Identity, bool), String> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let created = !cert_path.exists() && !key_path.exists();
    if created {
        create(dir, &cert_path, &key_path)?;
    }
    let cert = CertificateDer::from_pem_file(&cert_path)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read the key {}: {e}", key_path.display()))?;
    let fingerprint = Fingerprint::of(&cert);
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| format!("certificate {}: {e}", cert_path.display()))?;
    Ok((
        Identity {
            config: Arc::new(config),
            fingerprint,
            cert_path,
        },
        created,
    ))
}

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|e| format!("cannot make a certificate: {e}"))?;
    write_private(key_path, made.key_pair.serialize_pem().as_bytes())?;
    fs::write(cert_path, made.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))
}

/// Writes a file only its owner can read (mode 0600 on Unix).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The user's configuration directory for lanchat:
/// `$XDG_CONFIG_HOME/lanchat`, else `~/.config/lanchat`, else `./.lanchat`.
pub fn config_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = var("XDG_CONFIG_HOME") {
        return PathBuf::from(x).join("lanchat");
    }
    match var("HOME") {
        Some(h) => PathBuf::from(h).join(".config").join("lanchat"),
        None => PathBuf::from(".lanchat"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let (a, made) = load_or_create(dir.path()).unwrap();
        assert!(made);
        let (b, made) = load_or_create(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(a.fingerprint, b.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            load_or_create(other.path()).unwrap().0.fingerprint,
            a.fingerprint
        );
    }
}
