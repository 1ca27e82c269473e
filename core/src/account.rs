//! The account on this device: its identity and the database that holds
//! everything else.

use std::path::Path;

use libsignal_protocol::{DeviceId, IdentityKeyPair, ProtocolAddress};
use rusqlite::Connection;

use crate::db::{self, Cipher, DbKey, StorageLayout};
use crate::error::{Error, Result};
use crate::store::local_account::{self, LocalAccount};

use crate::time::now_ms;

/// Opaque account ids: 1..=64 of `[A-Za-z0-9-]` (a UUID in practice). They
/// name nobody; display names live only in the encrypted database.
pub fn validate_account_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::InvalidArgument("account id".into()));
    }
    Ok(())
}

pub(crate) fn device_id(id: u32) -> Result<DeviceId> {
    u8::try_from(id)
        .ok()
        .and_then(|d| DeviceId::new(d).ok())
        .ok_or_else(|| Error::InvalidArgument("device id".into()))
}

pub(crate) fn address(account_id: &str, device: u32) -> Result<ProtocolAddress> {
    validate_account_id(account_id)?;
    Ok(ProtocolAddress::new(
        account_id.to_owned(),
        device_id(device)?,
    ))
}

/// Who may advance the ratchet across processes (see `lease.rs`).
#[derive(Debug, Clone)]
pub(crate) struct LeaseConfig {
    pub holder: String,
    pub ttl_ms: u64,
}

/// One Alcove account on one device, over its own SQLCipher database.
pub struct Account {
    pub(crate) conn: Connection,
    pub(crate) cipher: Cipher,
    pub(crate) account_id: String,
    pub(crate) device_id: u32,
    pub(crate) registration_id: u32,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) clock: fn() -> u64,
    pub(crate) lease: Option<LeaseConfig>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Creates a new account (identity key pair, registration id) in a new
    /// database at `path`. `device_id` is 1 for a first device.
    pub fn create(path: &Path, key: &DbKey, account_id: &str, device_id: u32) -> Result<Self> {
        Self::create_in(path, key, account_id, device_id, StorageLayout::Standard)
    }

    /// Like [`Account::create`], with the database laid out as `layout`
    /// (`SharedContainer` for an iOS app-group file shared with the NSE).
    /// [`Account::open`] later reads the layout from the key-check sidecar.
    pub fn create_in(
        path: &Path,
        key: &DbKey,
        account_id: &str,
        device_id: u32,
        layout: StorageLayout,
    ) -> Result<Self> {
        Self::create_inner(path, key, account_id, device_id, Cipher::SqlCipher, layout)
    }

    #[doc(hidden)]
    pub fn create_with(
        path: &Path,
        key: &DbKey,
        account_id: &str,
        device_id: u32,
        cipher: Cipher,
    ) -> Result<Self> {
        Self::create_inner(
            path,
            key,
            account_id,
            device_id,
            cipher,
            StorageLayout::Standard,
        )
    }

    fn create_inner(
        path: &Path,
        key: &DbKey,
        account_id: &str,
        device_id: u32,
        cipher: Cipher,
        layout: StorageLayout,
    ) -> Result<Self> {
        // What an interrupted wipe left at this path is finished first: its
        // marker must never outlive it and wipe the new account.
        if crate::wipe::in_progress(path) {
            crate::wipe::wipe(path)?;
        }
        validate_account_id(account_id)?;
        crate::account::device_id(device_id)?;
        let conn = db::open_or_create(path, key, cipher, layout)?;
        if local_account::exists(&conn)? {
            return Err(Error::AccountExists);
        }
        let mut rng = rand::rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        // Registration ids are 14-bit, as libsignal expects.
        let registration_id = rand::Rng::random_range(&mut rng, 1..16380u32);
        local_account::insert(
            &conn,
            &LocalAccount {
                account_id: account_id.to_owned(),
                device_id,
                registration_id,
                identity_key_pair: identity.serialize().to_vec(),
            },
            now_ms(),
        )?;
        tracing::info!(device = device_id, "account created");
        Ok(Self {
            conn,
            cipher,
            account_id: account_id.to_owned(),
            device_id,
            registration_id,
            identity,
            clock: crate::time::now_ms,
            lease: None,
        })
    }

    /// Opens the account in an existing database.
    pub fn open(path: &Path, key: &DbKey) -> Result<Self> {
        Self::open_with(path, key, Cipher::SqlCipher)
    }

    #[doc(hidden)]
    pub fn open_with(path: &Path, key: &DbKey, cipher: Cipher) -> Result<Self> {
        // A wipe that was interrupted is finished, never undone.
        if crate::wipe::in_progress(path) {
            crate::wipe::wipe(path)?;
            return Err(Error::NoAccount);
        }
        if !path.exists() {
            return Err(Error::NoAccount);
        }
        let conn = db::open(path, key, cipher)?;
        let LocalAccount {
            account_id,
            device_id,
            registration_id,
            identity_key_pair,
        } = local_account::get(&conn)?.ok_or(Error::NoAccount)?;
        let identity =
            IdentityKeyPair::try_from(&identity_key_pair[..]).map_err(|_| Error::Corrupt)?;
        Ok(Self {
            conn,
            cipher,
            account_id,
            device_id,
            registration_id,
            identity,
            clock: crate::time::now_ms,
            lease: None,
        })
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// Our public identity key, serialized (33 bytes).
    pub fn identity_key(&self) -> Vec<u8> {
        self.identity.identity_key().serialize().to_vec()
    }

    /// Checks every page of the database file against SQLCipher's HMACs.
    pub fn verify_integrity(&self) -> Result<()> {
        db::verify_integrity(&self.conn, self.cipher)
    }

    /// Checkpoints the WAL into the main file and truncates it (before the
    /// app is suspended, and before closing).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Closes the database, checkpointing first.
    pub fn close(self) -> Result<()> {
        self.checkpoint()?;
        self.conn.close().map_err(|(_, e)| Error::from(e))
    }

    #[doc(hidden)]
    /// Tests move time with this (prekey rotation).
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = clock;
    }

    pub(crate) fn now(&self) -> u64 {
        (self.clock)()
    }

    #[doc(hidden)]
    /// Raw access for tests that inspect stored state.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
