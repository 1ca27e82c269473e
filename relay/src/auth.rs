//! Device credentials: HTTP Basic `<account>.<device>:<hex secret>`. The
//! relay stores a random salt and SHA-256(salt || secret) per device: a
//! thief of its database gets nothing that logs in.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(crate) fn hash_secret(salt: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"alcove-relay-device-secret-v1");
    h.update(salt);
    h.update(secret);
    h.finalize().to_vec()
}

pub(crate) fn hash_invite(token: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"alcove-relay-invite-v1");
    h.update(token.as_bytes());
    h.finalize().to_vec()
}

pub(crate) fn verify(salt: &[u8], stored: &[u8], secret: &[u8]) -> bool {
    bool::from(hash_secret(salt, secret).ct_eq(stored))
}

/// Parses the Authorization header into (account id, device id, secret).
pub(crate) fn parse_basic(header: &str) -> Option<(String, u32, Vec<u8>)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret_hex) = text.split_once(':')?;
    let (account, device) = user.rsplit_once('.')?;
    if !valid_account_id(account) {
        return None;
    }
    let device: u32 = device.parse().ok()?;
    let secret = hex::decode(secret_hex).ok()?;
    if secret.len() != 32 {
        return None;
    }
    Some((account.to_owned(), device, secret))
}

pub(crate) fn valid_account_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
