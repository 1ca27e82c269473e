//! Sealed sender on the relay: the keys that sign sender certificates, and
//! the delivery-key check for mail that names no sender.
//!
//! libsignal does all of it: a trust root signs a server certificate
//! (`ServerCertificate`), whose key signs short-lived `SenderCertificate`s
//! binding an account id, a device id and the account's registered identity
//! key. Receivers verify them against the trust root they pinned at
//! enrolment. The keys live in files next to (not inside) the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libsignal_protocol::{
    DeviceId, KeyPair, PrivateKey, PublicKey, SenderCertificate, ServerCertificate, Timestamp,
};
use sha2::{Digest, Sha256};

use crate::config::SealedSenderConfig;
use crate::error::RelayError;
use crate::storage::StorageConfig;

const TRUST_ROOT_PUB: &str = "trust_root.pub";
const TRUST_ROOT_KEY: &str = "trust_root.key";
const SERVER_KEY: &str = "server.key";
const SERVER_CERT: &str = "server.cert";

/// Length of a delivery key.
pub const DELIVERY_KEY_LEN: usize = 32;

/// The loaded keys: what signing a sender certificate needs.
pub(crate) struct SealedSender {
    trust_root: PublicKey,
    server_cert: ServerCertificate,
    server_key: PrivateKey,
    cert_ttl: Duration,
}

impl std::fmt::Debug for SealedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSender").finish_non_exhaustive()
    }
}

fn key_error(what: &str, e: impl std::fmt::Display) -> RelayError {
    RelayError::Internal(format!("sealed sender {what}: {e}"))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), RelayError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn create_dir_private(dir: &Path) -> Result<(), RelayError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)?;
    Ok(())
}

/// Creates the trust root and a server certificate in `dir` (which must
/// not hold any of the key files yet).
fn generate(dir: &Path) -> Result<(), RelayError> {
    let mut rng = rand::rng();
    let root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    // Key ids are not secret; a random one avoids libsignal's list of
    // revoked ids and known Signal certificates.
    let key_id = loop {
        let id = rand::random::<u32>();
        if id != 0xDEADC357 && id > 3 && id != 0x7357C357 {
            break id;
        }
    };
    let cert = ServerCertificate::new(key_id, server.public_key, &root.private_key, &mut rng)
        .map_err(|e| key_error("server certificate", e))?;
    let cert = cert
        .serialized()
        .map_err(|e| key_error("server certificate", e))?;
    write_private(&dir.join(TRUST_ROOT_KEY), &root.private_key.serialize())?;
    write_private(&dir.join(SERVER_KEY), &server.private_key.serialize())?;
    write_private(&dir.join(SERVER_CERT), cert)?;
    // Written last: its presence marks a complete set.
    write_private(&dir.join(TRUST_ROOT_PUB), &root.public_key.serialize())?;
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, RelayError> {
    std::fs::read(dir.join(name)).map_err(|e| key_error(name, e))
}

impl SealedSender {
    /// Loads the keys from the configured directory, creating them at first
    /// start. A directory holding only some of the files is refused rather
    /// than overwritten: a new trust root would break every client that
    /// pinned the old one.
    pub(crate) fn load_or_create(
        cfg: &SealedSenderConfig,
        storage: &StorageConfig,
    ) -> Result<Self, RelayError> {
        let dir = key_dir(cfg, storage)?;
        let present = |n: &str| dir.join(n).exists();
        let needed = [TRUST_ROOT_PUB, SERVER_KEY, SERVER_CERT];
        if !needed.iter().any(|n| present(n)) && !present(TRUST_ROOT_KEY) {
            create_dir_private(&dir)?;
            generate(&dir)?;
            tracing::info!("sealed sender keys created");
        } else if let Some(missing) = needed.iter().find(|n| !present(n)) {
            return Err(key_error(
                "keys",
                format!("{missing} is missing from the key directory; refusing to start"),
            ));
        }
        Self::load(&dir, cfg.cert_ttl)
    }

    fn load(dir: &Path, cert_ttl: Duration) -> Result<Self, RelayError> {
        let trust_root = PublicKey::deserialize(&read(dir, TRUST_ROOT_PUB)?)
            .map_err(|e| key_error(TRUST_ROOT_PUB, e))?;
        let server_key = PrivateKey::deserialize(&read(dir, SERVER_KEY)?)
            .map_err(|e| key_error(SERVER_KEY, e))?;
        let server_cert = ServerCertificate::deserialize(&read(dir, SERVER_CERT)?)
            .map_err(|e| key_error(SERVER_CERT, e))?;
        let valid = server_cert
            .validate(&trust_root)
            .map_err(|e| key_error(SERVER_CERT, e))?;
        let matches = server_key
            .public_key()
            .ok()
            .zip(server_cert.public_key().ok())
            .is_some_and(|(a, b)| a == b);
        if !valid || !matches {
            return Err(key_error(
                SERVER_CERT,
                "not signed by the trust root or not for the server key",
            ));
        }
        Ok(Self {
            trust_root,
            server_cert,
            server_key,
            cert_ttl,
        })
    }

    /// The trust root public key, serialized (33 bytes).
    pub(crate) fn trust_root(&self) -> Vec<u8> {
        self.trust_root.serialize().to_vec()
    }

    /// A sender certificate for one device, valid for the configured TTL
    /// from `now_ms`.
    pub(crate) fn issue(
        &self,
        account_id: &str,
        device_id: u32,
        identity_key: &[u8],
        now_ms: u64,
    ) -> Result<Vec<u8>, String> {
        let key = PublicKey::deserialize(identity_key).map_err(|e| e.to_string())?;
        let device = u8::try_from(device_id)
            .ok()
            .and_then(|d| DeviceId::new(d).ok())
            .ok_or("device id out of range")?;
        let expires = now_ms.saturating_add(self.cert_ttl.as_millis() as u64);
        let cert = SenderCertificate::new(
            account_id.to_owned(),
            None,
            key,
            device,
            Timestamp::from_epoch_millis(expires),
            self.server_cert.clone(),
            &self.server_key,
            &mut rand::rng(),
        )
        .map_err(|e| e.to_string())?;
        Ok(cert.serialized().map_err(|e| e.to_string())?.to_vec())
    }
}

/// The trust root public key (33 bytes) of the relay on `storage` (a path
/// means its SQLite file), creating the keys if the relay never ran. For
/// `alcove relay keys` and practice admins who print it on invite cards.
pub fn trust_root_public_key(
    cfg: &SealedSenderConfig,
    storage: impl Into<StorageConfig>,
) -> Result<Vec<u8>, RelayError> {
    Ok(SealedSender::load_or_create(cfg, &storage.into())?.trust_root())
}

/// Where the sealed-sender keys of the relay on `storage` live under `cfg`.
pub fn key_dir(
    cfg: &SealedSenderConfig,
    storage: impl Into<StorageConfig>,
) -> Result<PathBuf, RelayError> {
    cfg.key_dir_for(&storage.into()).ok_or_else(|| {
        RelayError::Internal("[sealed_sender] key_dir is required with this storage backend".into())
    })
}

/// What the relay stores for a delivery key: SHA-256 under a domain tag.
/// The key is 32 random bytes, so no salt or slow hash is needed.
pub(crate) fn hash_delivery_key(key: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"alcove-relay-delivery-key-v1");
    h.update(key);
    h.finalize().to_vec()
}

/// Constant-time check of a presented key against the stored hash. With no
/// stored hash (unknown account, or one that never set a key) the same work
/// is done against a dummy, so timing does not say which it was.
pub(crate) fn delivery_key_matches(stored: Option<&[u8]>, presented: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let dummy = [0u8; 32];
    let candidate = hash_delivery_key(presented);
    let ok = candidate.ct_eq(stored.unwrap_or(&dummy));
    bool::from(ok) && stored.is_some() && presented.len() == DELIVERY_KEY_LEN
}
