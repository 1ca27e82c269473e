//! Sender certificates checked once per page: a page of sealed mail from
//! one contact carries the same certificate on every envelope, and its two
//! signatures (the relay's server certificate against the pinned trust
//! root, then the sender certificate against the server key) cost more
//! than decrypting the message. The cache is keyed on the certificate's
//! exact bytes, so a different certificate — another sender, a renewed
//! one, a forgery — is always checked in full; expiry is rechecked for
//! every envelope.

use std::collections::HashMap;

use libsignal_protocol::{PublicKey, SenderCertificate, Timestamp};

use crate::error::{Error, Result};

/// Certificates whose signatures checked out during one page, with their
/// expiry (milliseconds).
#[derive(Default)]
pub(crate) struct CertificateCache {
    valid: HashMap<Vec<u8>, u64>,
}

impl CertificateCache {
    /// Whether `cert` is signed (through the relay's server certificate)
    /// by `trust_root` and unexpired at `now` (ms): a forged or foreign
    /// certificate is `InvalidSenderCertificate`, a lapsed one
    /// `SenderCertificateExpired`.
    pub(crate) fn check(
        &mut self,
        cert: &SenderCertificate,
        trust_root: &PublicKey,
        now: u64,
    ) -> Result<()> {
        let bytes = cert.serialized().map_err(Error::from)?;
        let expires = match self.valid.get(bytes) {
            Some(&expires) => expires,
            None => {
                // libsignal's own check (signer against the root, then the
                // certificate's signature), at the epoch so that expiry is
                // told apart below rather than folded into "invalid".
                let signed = cert
                    .validate(trust_root, Timestamp::from_epoch_millis(0))
                    .map_err(|_| Error::InvalidSenderCertificate)?;
                if !signed {
                    return Err(Error::InvalidSenderCertificate);
                }
                let expires = cert
                    .expiration()
                    .map_err(|_| Error::InvalidSenderCertificate)?
                    .epoch_millis();
                self.valid.insert(bytes.to_vec(), expires);
                expires
            }
        };
        // As libsignal: valid up to and including its expiry instant.
        if now > expires {
            return Err(Error::SenderCertificateExpired);
        }
        Ok(())
    }
}
