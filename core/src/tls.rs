//! How the relay client decides whether to trust a relay's TLS
//! certificate, and how a refusal becomes a typed error.
//!
//! Without a pin the platform decides (rustls-platform-verifier): Android's
//! TrustManager and Apple's Security.framework on phones, so a practice's
//! certificate from any CA the phone trusts works, including a CA the user
//! or their employer installed; the system CA bundle on Linux (which
//! honours `SSL_CERT_FILE` / `SSL_CERT_DIR`). No roots are bundled. With the
//! invite card's pin, [`crate::tls_pin`] decides instead.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig};

use crate::error::{Error, Result};

/// A rustls client configuration for the relay: the card's pin when there
/// is one, the platform's verifier otherwise. ring, TLS 1.2 and 1.3, h2.
pub(crate) fn client_config(pin: Option<[u8; 32]>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match pin {
        Some(pin) => crate::tls_pin::verifier(pin, Arc::clone(&provider)),
        None => platform_verifier(Arc::clone(&provider))?,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Internal("tls protocol versions".into()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn platform_verifier(provider: Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>> {
    #[cfg(target_os = "android")]
    if !android::ready() {
        // The verifier would panic at the first handshake without the JVM
        // handles; refuse here, where the app's developer sees it at once.
        return Err(Error::Internal(
            "TLS: call AlcoveAndroid.init(context) before the first client".into(),
        ));
    }
    match rustls_platform_verifier::Verifier::new(Arc::clone(&provider)) {
        Ok(v) => Ok(Arc::new(v)),
        // Linux only: no CA bundle could be read. The client still opens
        // (reading stored messages needs no relay); every unpinned
        // handshake is refused as `UntrustedCertificate`.
        Err(e) => {
            tracing::warn!(error = %e, "no trusted CA certificates on this system");
            Ok(crate::tls_pin::trust_nothing(provider))
        }
    }
}

/// A fixed code when `e` (a failed relay call) is a certificate refused by
/// the platform or the pin: the user or the practice must act, retrying
/// will not help. `None` for every other failure.
pub(crate) fn refusal(e: &reqwest::Error) -> Option<&'static str> {
    certificate_error(e)
}

/// A fixed code for the certificate refusal somewhere in `e`'s sources.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return Some(reason(c));
        }
        // io::Error's `source()` skips the error it wraps (hyper wraps
        // tokio-rustls' io::Error in another): look inside instead.
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn reason(c: &CertificateError) -> &'static str {
    use CertificateError as C;
    match c {
        C::UnknownIssuer => "unknown_issuer",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
        C::NotValidForName | C::NotValidForNameContext { .. } => "wrong_host",
        C::Revoked => "revoked",
        C::BadSignature => "bad_signature",
        C::ApplicationVerificationFailure => "pin_mismatch",
        // Apple's and Windows' verifiers say why in text only.
        _ => "untrusted",
    }
}

/// Android: rustls-platform-verifier calls into the JVM, so the app hands
/// it a Context first (alcove-ffi's `AlcoveAndroid.init`).
#[cfg(target_os = "android")]
pub mod android {
    use std::sync::atomic::{AtomicBool, Ordering};

    static READY: AtomicBool = AtomicBool::new(false);

    /// Called by the FFI once rustls-platform-verifier holds the JVM's
    /// handles (`rustls_platform_verifier::android::init_with_env`).
    pub fn verifier_initialised() {
        READY.store(true, Ordering::Release);
    }

    pub(crate) fn ready() -> bool {
        READY.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_refusal_is_found_inside_an_io_error() {
        let rustls_err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        assert_eq!(certificate_error(&io), Some("unknown_issuer"));
        // As reqwest hands it over: hyper's io::Error around tokio-rustls'.
        let nested = std::io::Error::other(io);
        assert_eq!(certificate_error(&nested), Some("unknown_issuer"));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_error(&plain), None);
        let other =
            std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(certificate_error(&other), None);
    }

    #[test]
    fn every_refusal_has_a_fixed_code() {
        assert_eq!(reason(&CertificateError::Expired), "expired");
        assert_eq!(reason(&CertificateError::NotValidForName), "wrong_host");
        assert_eq!(
            reason(&CertificateError::ApplicationVerificationFailure),
            "pin_mismatch"
        );
        assert_eq!(reason(&CertificateError::BadEncoding), "untrusted");
    }
}
