//! Relay storage: a trait (so PostgreSQL can follow) and the embedded
//! SQLite implementation. Holds devices (public keys and salted secret
//! hashes only), prekeys, invite hashes and mailboxes of ciphertext.

use std::path::Path;
use std::sync::Mutex;

use alcove_proto::relay::{
    DeviceBundle, PreKey, PreKeyBundles, PreKeyCount, PreKeyUpload, SignedPreKey,
};
use alcove_proto::wire::Envelope;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::RelayError;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Storage outcomes the API maps to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid invite")]
    InvalidInvite,
    #[error("account exists")]
    AccountExists,
    #[error("not found")]
    NotFound,
    #[error("too many devices")]
    TooManyDevices,
    #[error("mailbox full")]
    MailboxFull,
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("internal: {0}")]
    Internal(String),
}

/// A device as registered: public identity, registration id and the salted
/// hash of its auth secret (never the secret).
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub registration_id: u32,
    pub identity_key: Vec<u8>,
    pub salt: Vec<u8>,
    pub secret_hash: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// `alcove_proto::relay::push_registration::Kind` as i32.
    pub kind: i32,
    pub endpoint: String,
}

/// Where each envelope of a send went.
#[derive(Debug, Default)]
pub struct Enqueued {
    /// Devices that received a new envelope (not a duplicate).
    pub fresh: Vec<u32>,
}

pub trait Storage: Send + Sync + 'static {
    fn create_invite(&self, token_hash: &[u8], now: u64, expires_at: Option<u64>) -> Result<()>;
    /// Creates the account (consuming the invite) with its first device.
    /// `delivery_key_hash`: see `set_delivery_key`.
    fn register(
        &self,
        invite_hash: &[u8],
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        delivery_key_hash: Option<&[u8]>,
        now: u64,
    ) -> Result<u32>;
    /// Adds the next device (ids are never reused); `TooManyDevices` when
    /// the account already has `max_devices`.
    fn add_device(
        &self,
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        now: u64,
        max_devices: u32,
    ) -> Result<u32>;
    /// Deletes a device, its keys and its queued mail (the WAL scrubbed),
    /// keeping only a tombstone with its hashed secret so the device can
    /// be told it was revoked. Device ids are never reused.
    fn revoke_device(&self, account_id: &str, device_id: u32, now: u64) -> Result<()>;
    /// The account's registered identity key (what sender certificates bind).
    fn identity_key(&self, account_id: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces the hash of the account's sealed-sender delivery key.
    fn set_delivery_key(&self, account_id: &str, hash: &[u8]) -> Result<()>;
    /// The stored delivery-key hash; `None` for an unknown account or one
    /// that never set a key.
    fn delivery_key_hash(&self, account_id: &str) -> Result<Option<Vec<u8>>>;
    /// The hashed secret of a device, live or revoked (one lookup per
    /// authentication, so a revoked device can be told what it is).
    fn device_secret(&self, account_id: &str, device_id: u32) -> Result<Option<DeviceSecret>>;
    fn upload_prekeys(&self, account_id: &str, device_id: u32, keys: &PreKeyUpload) -> Result<()>;
    fn prekey_count(&self, account_id: &str, device_id: u32) -> Result<PreKeyCount>;
    /// One bundle per device, consuming one-time keys atomically.
    fn take_bundles(&self, account_id: &str) -> Result<PreKeyBundles>;
    /// (device id, registration id) of every device of an account.
    fn devices(&self, account_id: &str) -> Result<Vec<(u32, u32)>>;
    /// Queues one envelope per device unless its mailbox is over `quota`.
    fn enqueue(
        &self,
        account_id: &str,
        envelopes: &[Envelope],
        quota: &MailboxQuota,
    ) -> Result<Enqueued>;
    /// Oldest first; returns (page, more).
    fn fetch(
        &self,
        account_id: &str,
        device_id: u32,
        limit: u32,
        not_before: u64,
    ) -> Result<(Vec<Envelope>, bool)>;
    fn ack(&self, account_id: &str, device_id: u32, guids: &[Vec<u8>]) -> Result<()>;
    fn purge_expired(&self, not_before: u64) -> Result<usize>;
    /// Takes or renews the single-reader lease; false when another holds it.
    fn acquire_reader(
        &self,
        account_id: &str,
        device_id: u32,
        reader: &str,
        now: u64,
        until: u64,
    ) -> Result<bool>;
    fn release_reader(&self, account_id: &str, device_id: u32, reader: &str) -> Result<()>;
    fn reader_active(&self, account_id: &str, device_id: u32, now: u64) -> Result<bool>;
    fn set_push(&self, account_id: &str, device_id: u32, target: Option<&PushTarget>)
        -> Result<()>;
    fn push_target(&self, account_id: &str, device_id: u32) -> Result<Option<PushTarget>>;
    /// Drops a push target the provider says is gone (only if unchanged).
    fn drop_push(&self, account_id: &str, device_id: u32, endpoint: &str) -> Result<()>;
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE invites (token_hash BLOB PRIMARY KEY, created_at INTEGER NOT NULL,
        expires_at INTEGER, used INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE accounts (account_id TEXT PRIMARY KEY, identity_key BLOB NOT NULL,
        created_at INTEGER NOT NULL);
     CREATE TABLE devices (account_id TEXT NOT NULL REFERENCES accounts(account_id),
        device_id INTEGER NOT NULL, registration_id INTEGER NOT NULL,
        salt BLOB NOT NULL, secret_hash BLOB NOT NULL,
        push_kind INTEGER, push_endpoint TEXT, created_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, device_id));
     CREATE TABLE signed_prekeys (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
        kind INTEGER NOT NULL, key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
        signature BLOB NOT NULL, PRIMARY KEY (account_id, device_id, kind));
     CREATE TABLE one_time_prekeys (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
        kind INTEGER NOT NULL, key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
        signature BLOB, PRIMARY KEY (account_id, device_id, kind, key_id));
     CREATE TABLE mailbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL, device_id INTEGER NOT NULL, guid BLOB NOT NULL,
        envelope BLOB NOT NULL, server_timestamp INTEGER NOT NULL,
        UNIQUE (account_id, device_id, guid));
     CREATE INDEX mailbox_by_device ON mailbox (account_id, device_id, seq);
     CREATE INDEX mailbox_by_time ON mailbox (server_timestamp);
     CREATE TABLE readers (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
        reader TEXT NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, device_id));",
    // v2: sealed sender: the hash of each account's delivery key.
    "ALTER TABLE accounts ADD COLUMN delivery_key_hash BLOB;",
    // v3: mailboxes and reader leases keyed by an opaque per-device number
    // instead of the account id: queued mail does not repeat the
    // recipient's account id on disk (only `accounts`, `devices` and the
    // prekey tables hold it). Live reader leases are dropped.
    "ALTER TABLE devices ADD COLUMN mailbox_id INTEGER;
     UPDATE devices SET mailbox_id = rowid;
     CREATE UNIQUE INDEX devices_by_mailbox ON devices (mailbox_id);
     CREATE TABLE mailbox_v3 (seq INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox_id INTEGER NOT NULL, guid BLOB NOT NULL,
        envelope BLOB NOT NULL, server_timestamp INTEGER NOT NULL,
        UNIQUE (mailbox_id, guid));
     INSERT INTO mailbox_v3 (seq, mailbox_id, guid, envelope, server_timestamp)
        SELECT m.seq, d.mailbox_id, m.guid, m.envelope, m.server_timestamp
        FROM mailbox m JOIN devices d
          ON d.account_id = m.account_id AND d.device_id = m.device_id;
     DROP TABLE mailbox;
     ALTER TABLE mailbox_v3 RENAME TO mailbox;
     CREATE INDEX mailbox_by_box ON mailbox (mailbox_id, seq);
     CREATE INDEX mailbox_by_time ON mailbox (server_timestamp);
     DROP TABLE readers;
     CREATE TABLE readers (mailbox_id INTEGER NOT NULL UNIQUE,
        reader TEXT NOT NULL, expires_at INTEGER NOT NULL);",
    // v4: no AUTOINCREMENT on the mailbox: `sqlite_sequence` kept a
    // lifetime count of every envelope ever queued. A plain rowid key
    // still orders the queue (new rows get max + 1) and forgets the count
    // once delivered mail is gone.
    "CREATE TABLE mailbox_v4 (seq INTEGER PRIMARY KEY,
        mailbox_id INTEGER NOT NULL, guid BLOB NOT NULL,
        envelope BLOB NOT NULL, server_timestamp INTEGER NOT NULL,
        UNIQUE (mailbox_id, guid));
     INSERT INTO mailbox_v4 SELECT seq, mailbox_id, guid, envelope, server_timestamp FROM mailbox;
     DROP TABLE mailbox;
     ALTER TABLE mailbox_v4 RENAME TO mailbox;
     CREATE INDEX mailbox_by_box ON mailbox (mailbox_id, seq);
     CREATE INDEX mailbox_by_time ON mailbox (server_timestamp);
     DELETE FROM sqlite_sequence WHERE name IN ('mailbox', 'mailbox_v3');",
    // v5: tombstones of revoked devices (hashed secret only), so a revoked
    // device gets a distinct answer and its id is never handed out again.
    "CREATE TABLE revoked_devices (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
        salt BLOB NOT NULL, secret_hash BLOB NOT NULL, revoked_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, device_id));",
    // v6: each queued envelope's size and whether it was signed (unsealed),
    // for the byte quota and the unsolicited share of a mailbox, and what
    // each mailbox holds, kept by triggers in the same transaction as every
    // insert and delete (ack, expiry, revocation alike): the quota check on
    // every send reads one row, however long the queue.
    "ALTER TABLE mailbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE mailbox ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
     UPDATE mailbox SET size = length(envelope);
     CREATE TABLE mailbox_usage (mailbox_id INTEGER PRIMARY KEY,
        envelopes INTEGER NOT NULL, bytes INTEGER NOT NULL,
        signed_envelopes INTEGER NOT NULL, signed_bytes INTEGER NOT NULL);
     INSERT INTO mailbox_usage
        SELECT mailbox_id, count(*), sum(size), sum(signed), sum(size * signed)
        FROM mailbox GROUP BY mailbox_id;
     CREATE TRIGGER mailbox_usage_add AFTER INSERT ON mailbox BEGIN
        INSERT INTO mailbox_usage VALUES
            (NEW.mailbox_id, 1, NEW.size, NEW.signed, NEW.size * NEW.signed)
        ON CONFLICT (mailbox_id) DO UPDATE SET
            envelopes = envelopes + 1, bytes = bytes + NEW.size,
            signed_envelopes = signed_envelopes + NEW.signed,
            signed_bytes = signed_bytes + NEW.size * NEW.signed;
     END;
     CREATE TRIGGER mailbox_usage_remove AFTER DELETE ON mailbox BEGIN
        UPDATE mailbox_usage SET
            envelopes = envelopes - 1, bytes = bytes - OLD.size,
            signed_envelopes = signed_envelopes - OLD.signed,
            signed_bytes = signed_bytes - OLD.size * OLD.signed
        WHERE mailbox_id = OLD.mailbox_id;
        DELETE FROM mailbox_usage WHERE mailbox_id = OLD.mailbox_id AND envelopes <= 0;
     END;",
];

/// What a device's mailbox holds: (envelopes, bytes, signed envelopes,
/// signed bytes). Runs on every send: one row of `mailbox_usage`, kept by
/// triggers (no row: an empty mailbox).
const MAILBOX_USAGE: &str = "SELECT envelopes, bytes, signed_envelopes, signed_bytes
     FROM mailbox_usage WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2)";

/// A device's salted secret hash as stored; `revoked` for a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSecret {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub revoked: bool,
}

/// How much one device's mailbox holds. Signed (unsealed) mail — all a
/// stranger can send, since sealed mail needs the recipient's delivery key
/// — may fill only half of it, by count and by bytes, so a flood from
/// strangers leaves room for the recipient's contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxQuota {
    pub max_envelopes: u32,
    pub max_bytes: u64,
}

impl MailboxQuota {
    fn admits(&self, queued: (u64, u64, u64, u64), size: u64, signed: bool) -> bool {
        let (count, bytes, signed_count, signed_bytes) = queued;
        let total_ok =
            count < u64::from(self.max_envelopes) && bytes.saturating_add(size) <= self.max_bytes;
        let share_ok = !signed
            || (signed_count < u64::from(self.max_envelopes / 2)
                && signed_bytes.saturating_add(size) <= self.max_bytes / 2);
        total_ok && share_ok
    }
}

/// The relay database and its `-wal`/`-shm` files are the owner's only
/// (0600), whatever the umask: SQLite gives the side files the main
/// file's mode, so creating the main file 0600 first covers all three.
fn restrict_permissions(path: &Path) -> Result<(), RelayError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A one-time key row: (key id, public key, signature if signed).
type OneTimeRow = (u32, Vec<u8>, Option<Vec<u8>>);

const EC: i64 = 0;
const KYBER: i64 = 1;

pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<Self, RelayError> {
        restrict_permissions(path)?;
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;",
        )?;
        let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(RelayError::SchemaTooNew(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| StorageError::Internal("storage lock poisoned".into()))
    }
}

/// Delivered mail must leave no bytes behind: `secure_delete` zeroes the
/// rows in the database pages, but earlier page images (with the envelope)
/// stay in the WAL file until it is overwritten. A truncating checkpoint
/// after each delete writes the zeroed pages home and empties the WAL.
/// Best effort: a reader holding an old snapshot makes it a partial
/// checkpoint, and the next delete tries again.
fn scrub_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

fn insert_device(
    tx: &Connection,
    account_id: &str,
    device_id: u32,
    d: &NewDevice,
    now: u64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash, created_at,
            mailbox_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT coalesce(max(mailbox_id), 0) + 1 FROM devices))",
        params![account_id, device_id, d.registration_id, d.salt, d.secret_hash, now as i64],
    )?;
    Ok(())
}

fn store_keys(tx: &Connection, account_id: &str, device_id: u32, k: &PreKeyUpload) -> Result<()> {
    let mut signed = tx.prepare_cached(
        "INSERT OR REPLACE INTO signed_prekeys (account_id, device_id, kind, key_id, public_key, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    if let Some(s) = &k.signed_prekey {
        signed.execute(params![
            account_id,
            device_id,
            EC,
            s.id,
            s.public_key,
            s.signature
        ])?;
    }
    if let Some(s) = &k.kyber_last_resort {
        signed.execute(params![
            account_id,
            device_id,
            KYBER,
            s.id,
            s.public_key,
            s.signature
        ])?;
    }
    let mut one = tx.prepare_cached(
        "INSERT OR REPLACE INTO one_time_prekeys (account_id, device_id, kind, key_id, public_key, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for p in &k.one_time_prekeys {
        one.execute(params![
            account_id,
            device_id,
            EC,
            p.id,
            p.public_key,
            Option::<Vec<u8>>::None
        ])?;
    }
    for p in &k.one_time_kyber_prekeys {
        one.execute(params![
            account_id,
            device_id,
            KYBER,
            p.id,
            p.public_key,
            p.signature
        ])?;
    }
    Ok(())
}

impl Storage for SqliteStorage {
    fn create_invite(&self, token_hash: &[u8], now: u64, expires_at: Option<u64>) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO invites (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![token_hash, now as i64, expires_at.map(|e| e as i64)],
        )?;
        Ok(())
    }

    fn register(
        &self,
        invite_hash: &[u8],
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        delivery_key_hash: Option<&[u8]>,
        now: u64,
    ) -> Result<u32> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let used = tx.execute(
            "UPDATE invites SET used = 1 WHERE token_hash = ?1 AND used = 0
               AND (expires_at IS NULL OR expires_at > ?2)",
            params![invite_hash, now as i64],
        )?;
        if used == 0 {
            return Err(StorageError::InvalidInvite);
        }
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM accounts WHERE account_id = ?1",
            [account_id],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StorageError::AccountExists);
        }
        tx.execute(
            "INSERT INTO accounts (account_id, identity_key, created_at, delivery_key_hash)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                account_id,
                device.identity_key,
                now as i64,
                delivery_key_hash
            ],
        )?;
        insert_device(&tx, account_id, 1, device, now)?;
        store_keys(&tx, account_id, 1, keys)?;
        tx.commit()?;
        Ok(1)
    }

    fn add_device(
        &self,
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        now: u64,
        max_devices: u32,
    ) -> Result<u32> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let count: u32 = tx.query_row(
            "SELECT count(*) FROM devices WHERE account_id = ?1",
            [account_id],
            |r| r.get(0),
        )?;
        if count >= max_devices {
            return Err(StorageError::TooManyDevices);
        }
        let next: Option<u32> = tx.query_row(
            "SELECT max(d) + 1 FROM (
                SELECT device_id AS d FROM devices WHERE account_id = ?1
                UNION ALL SELECT device_id FROM revoked_devices WHERE account_id = ?1)
             WHERE EXISTS (SELECT 1 FROM devices WHERE account_id = ?1)",
            [account_id],
            |r| r.get(0),
        )?;
        let next = next.ok_or(StorageError::NotFound)?;
        if next > 127 {
            return Err(StorageError::TooManyDevices);
        }
        insert_device(&tx, account_id, next, device, now)?;
        store_keys(&tx, account_id, next, keys)?;
        tx.commit()?;
        Ok(next)
    }

    fn revoke_device(&self, account_id: &str, device_id: u32, now: u64) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO revoked_devices (account_id, device_id, salt, secret_hash, revoked_at)
             SELECT account_id, device_id, salt, secret_hash, ?3 FROM devices
             WHERE account_id = ?1 AND device_id = ?2",
            params![account_id, device_id, now as i64],
        )?;
        for table in ["mailbox", "readers"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2)"),
                params![account_id, device_id],
            )?;
        }
        for table in ["one_time_prekeys", "signed_prekeys", "devices"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE account_id = ?1 AND device_id = ?2"),
                params![account_id, device_id],
            )?;
        }
        tx.commit()?;
        // The deleted ciphertext must not linger in the WAL either.
        scrub_wal(&conn);
        Ok(())
    }

    fn identity_key(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()?
            .prepare_cached("SELECT identity_key FROM accounts WHERE account_id = ?1")?
            .query_row([account_id], |r| r.get(0))
            .optional()?)
    }

    fn set_delivery_key(&self, account_id: &str, hash: &[u8]) -> Result<()> {
        let n = self.conn()?.execute(
            "UPDATE accounts SET delivery_key_hash = ?2 WHERE account_id = ?1",
            params![account_id, hash],
        )?;
        if n == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    fn delivery_key_hash(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()?
            .prepare_cached("SELECT delivery_key_hash FROM accounts WHERE account_id = ?1")?
            .query_row([account_id], |r| r.get::<_, Option<Vec<u8>>>(0))
            .optional()?
            .flatten())
    }

    fn device_secret(&self, account_id: &str, device_id: u32) -> Result<Option<DeviceSecret>> {
        Ok(self
            .conn()?
            .prepare_cached(
                "SELECT salt, secret_hash, 0 FROM devices WHERE account_id = ?1 AND device_id = ?2
                 UNION ALL
                 SELECT salt, secret_hash, 1 FROM revoked_devices WHERE account_id = ?1 AND device_id = ?2",
            )?
            .query_row(params![account_id, device_id], |r| {
                Ok(DeviceSecret {
                    salt: r.get(0)?,
                    hash: r.get(1)?,
                    revoked: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn upload_prekeys(&self, account_id: &str, device_id: u32, keys: &PreKeyUpload) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        store_keys(&tx, account_id, device_id, keys)?;
        tx.commit()?;
        Ok(())
    }

    fn prekey_count(&self, account_id: &str, device_id: u32) -> Result<PreKeyCount> {
        let conn = self.conn()?;
        let count = |kind: i64| -> Result<u32> {
            Ok(conn.query_row(
                "SELECT count(*) FROM one_time_prekeys WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3",
                params![account_id, device_id, kind],
                |r| r.get(0),
            )?)
        };
        Ok(PreKeyCount {
            one_time_prekeys: count(EC)?,
            one_time_kyber_prekeys: count(KYBER)?,
        })
    }

    fn take_bundles(&self, account_id: &str) -> Result<PreKeyBundles> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let identity_key: Vec<u8> = tx
            .query_row(
                "SELECT identity_key FROM accounts WHERE account_id = ?1",
                [account_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StorageError::NotFound)?;
        let devices: Vec<(u32, u32)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT device_id, registration_id FROM devices WHERE account_id = ?1 ORDER BY device_id",
            )?;
            let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut out = PreKeyBundles::default();
        for (device_id, registration_id) in devices {
            let signed = |kind: i64| -> Result<Option<SignedPreKey>> {
                Ok(tx
                    .query_row(
                        "SELECT key_id, public_key, signature FROM signed_prekeys
                         WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3",
                        params![account_id, device_id, kind],
                        |r| {
                            Ok(SignedPreKey {
                                id: r.get(0)?,
                                public_key: r.get(1)?,
                                signature: r.get(2)?,
                            })
                        },
                    )
                    .optional()?)
            };
            let take = |kind: i64| -> Result<Option<OneTimeRow>> {
                let row: Option<OneTimeRow> = tx
                    .query_row(
                        "SELECT key_id, public_key, signature FROM one_time_prekeys
                         WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3 ORDER BY key_id LIMIT 1",
                        params![account_id, device_id, kind],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                if let Some((id, _, _)) = &row {
                    tx.execute(
                        "DELETE FROM one_time_prekeys WHERE account_id = ?1 AND device_id = ?2 AND kind = ?3 AND key_id = ?4",
                        params![account_id, device_id, kind, id],
                    )?;
                }
                Ok(row)
            };
            let Some(signed_prekey) = signed(EC)? else {
                continue;
            };
            let kyber_prekey = match take(KYBER)? {
                Some((id, public_key, signature)) => Some(SignedPreKey {
                    id,
                    public_key,
                    signature: signature.unwrap_or_default(),
                }),
                None => signed(KYBER)?,
            };
            if kyber_prekey.is_none() {
                continue;
            }
            let one_time_prekey = take(EC)?.map(|(id, public_key, _)| PreKey { id, public_key });
            out.devices.push(DeviceBundle {
                device_id,
                registration_id,
                identity_key: identity_key.clone(),
                signed_prekey: Some(signed_prekey),
                kyber_prekey,
                one_time_prekey,
            });
        }
        tx.commit()?;
        Ok(out)
    }

    fn devices(&self, account_id: &str) -> Result<Vec<(u32, u32)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT device_id, registration_id FROM devices WHERE account_id = ?1 ORDER BY device_id",
        )?;
        let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn enqueue(
        &self,
        account_id: &str,
        envelopes: &[Envelope],
        quota: &MailboxQuota,
    ) -> Result<Enqueued> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Enqueued::default();
        for env in envelopes {
            let queued: (u64, u64, u64, u64) = tx
                .prepare_cached(MAILBOX_USAGE)?
                .query_row(params![account_id, env.destination_device], |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                        r.get::<_, i64>(2)?.max(0) as u64,
                        r.get::<_, i64>(3)?.max(0) as u64,
                    ))
                })
                .optional()?
                .unwrap_or_default();
            let dup: bool = tx
                .prepare_cached("SELECT count(*) > 0 FROM mailbox WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND guid = ?3")?
                .query_row(params![account_id, env.destination_device, env.guid], |r| r.get(0))?;
            if dup {
                continue;
            }
            let bytes = env.encode_to_vec();
            let signed = !env.source_account.is_empty();
            if !quota.admits(queued, bytes.len() as u64, signed) {
                return Err(StorageError::MailboxFull);
            }
            tx.prepare_cached(
                "INSERT INTO mailbox (mailbox_id, guid, envelope, server_timestamp, size, signed)
                 VALUES ((SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2), ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                account_id,
                env.destination_device,
                env.guid,
                bytes,
                env.server_timestamp as i64,
                bytes.len() as i64,
                signed
            ])?;
            out.fresh.push(env.destination_device);
        }
        tx.commit()?;
        Ok(out)
    }

    fn fetch(
        &self,
        account_id: &str,
        device_id: u32,
        limit: u32,
        not_before: u64,
    ) -> Result<(Vec<Envelope>, bool)> {
        let conn = self.conn()?;
        let expired = conn.prepare_cached("DELETE FROM mailbox WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND server_timestamp < ?3")?
            .execute(params![account_id, device_id, not_before as i64])?;
        if expired > 0 {
            scrub_wal(&conn);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT envelope FROM mailbox WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![account_id, device_id, limit + 1], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let mut out = Vec::new();
        for row in rows {
            let bytes = row?;
            out.push(
                Envelope::decode(&bytes[..])
                    .map_err(|_| StorageError::Internal("stored envelope".into()))?,
            );
        }
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    fn ack(&self, account_id: &str, device_id: u32, guids: &[Vec<u8>]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut deleted = 0;
        {
            let mut stmt = tx.prepare_cached(
                "DELETE FROM mailbox WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND guid = ?3",
            )?;
            for g in guids {
                deleted += stmt.execute(params![account_id, device_id, g])?;
            }
        }
        tx.commit()?;
        if deleted > 0 {
            scrub_wal(&conn);
        }
        Ok(())
    }

    fn purge_expired(&self, not_before: u64) -> Result<usize> {
        let conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM mailbox WHERE server_timestamp < ?1",
            [not_before as i64],
        )?;
        if n > 0 {
            scrub_wal(&conn);
        }
        Ok(n)
    }

    fn acquire_reader(
        &self,
        account_id: &str,
        device_id: u32,
        reader: &str,
        now: u64,
        until: u64,
    ) -> Result<bool> {
        let n = self.conn()?.execute(
            "INSERT INTO readers (mailbox_id, reader, expires_at) VALUES ((SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2), ?3, ?4)
             ON CONFLICT (mailbox_id) DO UPDATE SET reader = excluded.reader, expires_at = excluded.expires_at
             WHERE readers.reader = excluded.reader OR readers.expires_at <= ?5",
            params![account_id, device_id, reader, until as i64, now as i64],
        )?;
        Ok(n == 1)
    }

    fn release_reader(&self, account_id: &str, device_id: u32, reader: &str) -> Result<()> {
        self.conn()?.execute(
            "DELETE FROM readers WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND reader = ?3",
            params![account_id, device_id, reader],
        )?;
        Ok(())
    }

    fn reader_active(&self, account_id: &str, device_id: u32, now: u64) -> Result<bool> {
        Ok(self.conn()?.query_row(
            "SELECT count(*) > 0 FROM readers WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND expires_at > ?3",
            params![account_id, device_id, now as i64],
            |r| r.get(0),
        )?)
    }

    fn set_push(
        &self,
        account_id: &str,
        device_id: u32,
        target: Option<&PushTarget>,
    ) -> Result<()> {
        self.conn()?.execute(
            "UPDATE devices SET push_kind = ?3, push_endpoint = ?4 WHERE account_id = ?1 AND device_id = ?2",
            params![account_id, device_id, target.map(|t| t.kind), target.map(|t| t.endpoint.clone())],
        )?;
        Ok(())
    }

    fn push_target(&self, account_id: &str, device_id: u32) -> Result<Option<PushTarget>> {
        let row: Option<(Option<i32>, Option<String>)> = self
            .conn()?
            .prepare_cached("SELECT push_kind, push_endpoint FROM devices WHERE account_id = ?1 AND device_id = ?2")?
            .query_row(params![account_id, device_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((Some(kind), Some(endpoint))) => Some(PushTarget { kind, endpoint }),
            _ => None,
        })
    }

    fn drop_push(&self, account_id: &str, device_id: u32, endpoint: &str) -> Result<()> {
        self.conn()?.execute(
            "UPDATE devices SET push_kind = NULL, push_endpoint = NULL
             WHERE account_id = ?1 AND device_id = ?2 AND push_endpoint = ?3",
            params![account_id, device_id, endpoint],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(device: u32, signed: bool, size: usize) -> Envelope {
        Envelope {
            guid: {
                let mut g = vec![0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut g);
                g
            },
            r#type: 1,
            source_account: if signed {
                "sender".into()
            } else {
                String::new()
            },
            source_device: u32::from(signed),
            destination_device: device,
            ciphertext: vec![7; size],
            server_timestamp: 1_000,
        }
    }

    /// The usage rows the triggers keep, against the queue itself.
    fn usage_matches_queue(storage: &SqliteStorage) {
        let conn = storage.conn().expect("conn");
        let kept: Vec<(i64, i64, i64, i64, i64)> = conn
            .prepare("SELECT * FROM mailbox_usage ORDER BY mailbox_id")
            .expect("usage")
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("usage rows");
        let counted: Vec<(i64, i64, i64, i64, i64)> = conn
            .prepare(
                "SELECT mailbox_id, count(*), sum(size), sum(signed), sum(size * signed)
                 FROM mailbox GROUP BY mailbox_id ORDER BY mailbox_id",
            )
            .expect("count")
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("count rows");
        assert_eq!(kept, counted);
    }

    #[test]
    fn mailbox_usage_follows_every_insert_ack_expiry_and_revocation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = SqliteStorage::open(&dir.path().join("relay.db")).expect("open");
        storage.create_invite(b"invite", 0, None).expect("invite");
        let device = NewDevice {
            registration_id: 7,
            identity_key: vec![5; 33],
            salt: vec![1; 16],
            secret_hash: vec![2; 32],
        };
        storage
            .register(
                b"invite",
                "acct",
                &device,
                &PreKeyUpload::default(),
                None,
                0,
            )
            .expect("register");
        storage
            .add_device("acct", &device, &PreKeyUpload::default(), 0, 5)
            .expect("second device");
        let quota = MailboxQuota {
            max_envelopes: 1_000,
            max_bytes: 10_000_000,
        };
        let mut guids = Vec::new();
        for i in 0..40 {
            let e = envelope(1 + i % 2, i % 3 == 0, 100 + i as usize * 10);
            guids.push(e.guid.clone());
            storage
                .enqueue("acct", std::slice::from_ref(&e), &quota)
                .expect("enqueue");
            // A replayed envelope is stored (and counted) once.
            storage.enqueue("acct", &[e], &quota).expect("replay");
        }
        usage_matches_queue(&storage);
        storage.ack("acct", 1, &guids[..10]).expect("ack");
        usage_matches_queue(&storage);
        storage.purge_expired(2_000).expect("purge");
        usage_matches_queue(&storage);
        let conn = storage.conn().expect("conn");
        let left: i64 = conn
            .query_row("SELECT count(*) FROM mailbox_usage", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0, "an empty mailbox keeps no usage row");
        drop(conn);
        for i in 0..6 {
            storage
                .enqueue("acct", &[envelope(2, i % 2 == 0, 500)], &quota)
                .expect("enqueue");
        }
        storage.revoke_device("acct", 2, 0).expect("revoke");
        usage_matches_queue(&storage);
    }

    #[test]
    fn the_quota_check_reads_one_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = SqliteStorage::open(&dir.path().join("relay.db")).expect("open");
        let conn = storage.conn().expect("conn");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {MAILBOX_USAGE}"))
            .expect("plan")
            .query_map(params!["a", 1], |r| r.get::<_, String>(3))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows");
        assert!(
            plan.iter()
                .any(|l| l.contains("SEARCH mailbox_usage USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.contains("SCAN")), "{plan:?}");
    }
}
