//! Sealed sender on the device: the relay's trust root pinned at
//! enrolment, our delivery key (shared with contacts inside encrypted
//! content), the contacts' delivery keys, and our cached sender
//! certificate. libsignal does the cryptography (`sealed_sender_encrypt`,
//! `sealed_sender_decrypt`, certificate validation).

use libsignal_protocol::{PublicKey, SenderCertificate, Timestamp};
use rusqlite::Connection;

use crate::account::{validate_account_id, Account};
use crate::error::{Error, Result};
use crate::store::{delivery_keys, settings};

/// Length of a delivery key.
pub const DELIVERY_KEY_LEN: usize = 32;

/// A cached certificate is replaced when it expires within this margin, so
/// one in use never runs out between sending and the receiver's check.
pub const CERT_REFRESH_MARGIN_MS: u64 = 60 * 60 * 1000;

const TRUST_ROOT: &str = "sealed_trust_root";
pub(crate) const DELIVERY_KEY: &str = "sealed_delivery_key";
const SENDER_CERT: &str = "sealed_sender_certificate";

impl Account {
    /// Pins the relay's sealed-sender trust root (33 bytes, from the
    /// registration response). Pinning the same key again is a no-op; a
    /// different key is refused: a relay cannot swap it silently.
    pub fn pin_trust_root(&mut self, trust_root: &[u8]) -> Result<()> {
        PublicKey::deserialize(trust_root)
            .map_err(|_| Error::InvalidArgument("trust root is not a public key".into()))?;
        match self.setting(TRUST_ROOT)? {
            Some(existing) if existing == trust_root => Ok(()),
            Some(_) => Err(Error::InvalidArgument(
                "a different sealed-sender trust root is already pinned".into(),
            )),
            None => self.set_setting(TRUST_ROOT, trust_root),
        }
    }

    /// The pinned trust root, if the relay offered sealed sender.
    pub fn trust_root(&self) -> Result<Option<Vec<u8>>> {
        self.setting(TRUST_ROOT)
    }

    pub(crate) fn trust_root_key(&self) -> Result<Option<PublicKey>> {
        self.setting(TRUST_ROOT)?
            .map(|b| PublicKey::deserialize(&b).map_err(|_| Error::Corrupt))
            .transpose()
    }

    /// Our delivery key: contacts who hold it may send to us sealed.
    pub fn delivery_key(&self) -> Result<Option<Vec<u8>>> {
        self.setting(DELIVERY_KEY)
    }

    /// Sets our delivery key (32 bytes). The relay must learn its hash too
    /// (registration or `PUT /v1/delivery-key`).
    pub fn set_delivery_key(&mut self, key: &[u8]) -> Result<()> {
        if key.len() != DELIVERY_KEY_LEN {
            return Err(Error::InvalidArgument(
                "delivery key must be 32 bytes".into(),
            ));
        }
        self.set_setting(DELIVERY_KEY, key)
    }

    /// The delivery key `remote_account` shared with us, if any.
    pub fn remote_delivery_key(&self, remote_account: &str) -> Result<Option<Vec<u8>>> {
        delivery_keys::get(&self.conn, remote_account)
    }

    /// Forgets a contact's delivery key the relay refused (they changed
    /// it); the next message goes with credentials and their reply brings
    /// the new one.
    pub fn forget_remote_delivery_key(&mut self, remote_account: &str) -> Result<()> {
        delivery_keys::forget(&self.conn, remote_account)
    }

    /// Our sender certificate if one is cached that stays valid for at
    /// least `CERT_REFRESH_MARGIN_MS`.
    pub(crate) fn cached_sender_certificate(&self) -> Result<Option<SenderCertificate>> {
        let Some(bytes) = self.setting(SENDER_CERT)? else {
            return Ok(None);
        };
        Ok(self
            .check_own_certificate(&bytes, CERT_REFRESH_MARGIN_MS)
            .ok())
    }

    /// Drops the cached sender certificate.
    pub(crate) fn forget_sender_certificate(&mut self) -> Result<()> {
        settings::remove(&self.conn, SENDER_CERT)
    }

    /// Verifies a certificate the relay issued us (against the pinned
    /// root, for our account, device and identity key, valid for a while
    /// yet) and caches it.
    pub(crate) fn store_sender_certificate(&mut self, bytes: &[u8]) -> Result<SenderCertificate> {
        let cert = self.check_own_certificate(bytes, 0)?;
        self.set_setting(SENDER_CERT, bytes)?;
        Ok(cert)
    }

    fn check_own_certificate(&self, bytes: &[u8], margin_ms: u64) -> Result<SenderCertificate> {
        let root = self
            .trust_root_key()?
            .ok_or(Error::InvalidSenderCertificate)?;
        let cert =
            SenderCertificate::deserialize(bytes).map_err(|_| Error::InvalidSenderCertificate)?;
        let at = Timestamp::from_epoch_millis(self.now().saturating_add(margin_ms));
        let valid = cert
            .validate(&root, at)
            .map_err(|_| Error::InvalidSenderCertificate)?;
        let ours = cert.sender_uuid().ok() == Some(self.account_id.as_str())
            && cert.sender_device_id().ok().map(u32::from) == Some(self.device_id)
            && cert
                .key()
                .is_ok_and(|k| k.serialize()[..] == self.identity_key()[..]);
        if !valid || !ours {
            return Err(Error::InvalidSenderCertificate);
        }
        Ok(cert)
    }
}

/// Records the delivery key a contact sent us (inside a message that
/// decrypted under their session: it is theirs).
pub(crate) fn save_remote_delivery_key(
    conn: &Connection,
    remote_account: &str,
    key: &[u8],
    now: u64,
) -> Result<()> {
    validate_account_id(remote_account)?;
    if key.len() != DELIVERY_KEY_LEN {
        return Ok(());
    }
    delivery_keys::save(conn, remote_account, key, now)
}

/// Builds a sender certificate from raw bytes without checking it (the
/// receiver checks): for sending.
pub(crate) fn parse_certificate(bytes: &[u8]) -> Result<SenderCertificate> {
    SenderCertificate::deserialize(bytes).map_err(|_| Error::InvalidSenderCertificate)
}
