//! The peer's check of the registry's certificate: only its SHA-256
//! fingerprint counts (no certificate authority, no name), compared with
//! the pinned one; the handshake signature is still verified with the
//! provider's algorithms, so only the holder of the pinned key gets through.
//! With nothing pinned yet (trust on first use) any certificate passes and
//! the caller records what it saw ([`Seen`]).

use super::{provider, Fingerprint, SERVER_NAME};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The fingerprint the last handshake presented (set even when refused).
pub type Seen = Arc<Mutex<Option<Fingerprint>>>;

#[derive(Debug)]
struct PinVerifier {
    expect: Option<Fingerprint>,
    seen: Seen,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(got);
        match self.expect {
            Some(want) if want != got => Err(rustls::Error::General(format!(
                "registry certificate {got} is not the pinned {want}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that accepts only a certificate whose
/// fingerprint is `expect` (any, when `None`: trust on first use), and the
/// slot where the fingerprint it was shown lands.
pub fn client_config(expect: Option<Fingerprint>) -> (Arc<rustls::ClientConfig>, Seen) {
    let seen = Seen::default();
    let provider = provider();
    let verifier = Arc::new(PinVerifier {
        expect,
        seen: seen.clone(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.3"))
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    (Arc::new(config), seen)
}

/// A client connection to a registry under `config`.
pub fn client_connection(
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::ClientConnection, rustls::Error> {
    let name = ServerName::try_from(SERVER_NAME).unwrap_or_else(|_| unreachable!("a valid name"));
    rustls::ClientConnection::new(config, name)
}
