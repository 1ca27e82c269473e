//! Trusting a self-hosted relay under a private CA: the invite card may
//! carry the SHA-256 (over the DER) of a certificate in the relay's chain,
//! and then that pin, and no trust store, decides for that relay:
//!
//! - the relay's own certificate (a self-signed relay, or a leaf pinned
//!   on purpose): exactly that certificate is accepted, whatever its name
//!   or dates (rotating it means new cards);
//! - the private CA's certificate, served in the relay's chain
//!   (`fullchain.pem` with the CA in it): the chain is verified by webpki
//!   up to that CA as its only root, so the relay's certificate must be
//!   issued by it, unexpired and for the relay's host name, and the relay
//!   may renew its certificate under the same CA without new cards.
//!
//! The handshake's signatures are always checked by rustls (its own
//! verification functions). Anything else is `pin_mismatch`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// What a handshake's certificate chain is checked against.
#[derive(Debug)]
enum Trust {
    /// The card's pin: the relay's certificate or its CA's.
    Pin([u8; 32]),
    /// Nothing (a system without any CA certificate): every chain refused.
    Nothing,
}

#[derive(Debug)]
struct Pinned {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

fn sha256(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

impl Pinned {
    /// `ca` (pinned, served in the chain) as the only root: webpki checks
    /// the path, the dates and the name.
    fn verify_under(
        &self,
        ca: &CertificateDer<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&self.provider))
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pin = match self.trust {
            Trust::Pin(pin) => pin,
            Trust::Nothing => {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ))
            }
        };
        if sha256(end_entity) == pin {
            return Ok(ServerCertVerified::assertion());
        }
        match intermediates.iter().find(|c| sha256(c) == pin) {
            Some(ca) => self.verify_under(
                ca,
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
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

/// A verifier that accepts the chain `sha256` names (see the module doc).
pub(crate) fn verifier(
    sha256: [u8; 32],
    provider: Arc<CryptoProvider>,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Pinned {
        trust: Trust::Pin(sha256),
        provider,
    })
}

/// A verifier that refuses every chain as `UnknownIssuer`.
pub(crate) fn trust_nothing(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Pinned {
        trust: Trust::Nothing,
        provider,
    })
}
