//! The embedded SQLite backend: one database file (0600, WAL,
//! `secure_delete`) behind one connection. Every [`Storage`] call runs its
//! transaction on tokio's blocking pool, one at a time under the
//! connection's lock, as the relay always did; rusqlite's errors become
//! [`StorageError`]s here and nowhere else.
//!
//! Mail deleted on the request path (acks, expiry on a read) is zeroed by
//! `secure_delete` in the page images it commits, but older images stay in
//! the WAL until a truncating checkpoint: the relay runs that off the
//! request path ([`Storage::scrub_deleted`], driven by the server's
//! scrubber at most once per `wal_scrub_interval`), at shutdown, and at
//! every open (after a crash).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use alcove_proto::relay::{
    DeviceBundle, PreKey, PreKeyBundles, PreKeyCount, PreKeyUpload, SignedPreKey,
};
use alcove_proto::wire::Envelope;
use prost::Message;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::{
    migrations, AckedMail, Cut, DeviceSecret, Enqueued, MailboxQuota, NewDevice, PageCut,
    PushTarget, Queued, Result, Role, Storage, StorageError, StoredEnvelope, SyncPage, SyncStep,
    Synced,
};

/// SQLite's failures, by kind only: its messages can name tables and
/// columns but never carry values, and the kind is all callers act on.
impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageError::Busy,
            Some(code) => StorageError::Backend(format!("sqlite: {code:?}")),
            None => StorageError::Backend(
                match e {
                    rusqlite::Error::QueryReturnedNoRows => "sqlite: no row",
                    rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..) => {
                        "sqlite: unexpected column value"
                    }
                    _ => "sqlite: client error",
                }
                .into(),
            ),
        }
    }
}

fn io_error(what: &str, e: &std::io::Error) -> StorageError {
    // The kind, not the message: no paths in errors that reach logs.
    StorageError::Backend(format!("{what}: {:?}", e.kind()))
}

/// The relay database and its `-wal`/`-shm` files are the owner's only
/// (0600), whatever the umask: SQLite gives the side files the main
/// file's mode, so creating the main file 0600 first covers all three.
fn restrict_permissions(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_error("database file", &e))?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io_error("database file permissions", &e))?;
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

/// What a device's mailbox holds: (envelopes, bytes, signed envelopes,
/// signed bytes). Runs on every send: one row of `mailbox_usage`, kept by
/// triggers (migration v6; no row: an empty mailbox).
const MAILBOX_USAGE: &str = "SELECT envelopes, bytes, signed_envelopes, signed_bytes
     FROM mailbox_usage WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2)";

pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
    scrub: Arc<PendingScrub>,
}

/// Whether mail was deleted since the last WAL scrub, and the scrubber's
/// wake-up (a permit is kept when it is not waiting, so none is lost).
#[derive(Default)]
struct PendingScrub {
    pending: AtomicBool,
    notify: tokio::sync::Notify,
}

impl PendingScrub {
    fn deleted(&self, rows: usize) {
        if rows > 0 {
            self.pending.store(true, Ordering::SeqCst);
            self.notify.notify_one();
        }
    }
}

impl SqliteStorage {
    /// Opens (creating if absent) and migrates the database file. Blocks:
    /// call it off the runtime or through [`super::StorageConfig::open`].
    pub fn open(path: &Path) -> Result<Self> {
        restrict_permissions(path)?;
        let mut conn = Connection::open(path)?;
        // One connection serves every request, so its page cache is the
        // relay's: SQLite's default 2 MiB holds about 1,000 first (PreKey)
        // messages, and a mailbox larger than that was read from the OS,
        // a `pread` per page, on every fetch. 32 MiB (allocated as used)
        // keeps recent mail resident.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON; PRAGMA cache_size = -32768;",
        )?;
        migrations::migrate(&mut conn)?;
        // The single-reader lease per mailbox, in memory (see migration
        // v8): taken, renewed and released inside each /sync transaction
        // as before, but a fetch that deletes nothing commits no page of
        // the file, so it syncs nothing to disk.
        conn.execute_batch(
            "PRAGMA temp_store = MEMORY;
             CREATE TEMP TABLE readers (mailbox_id INTEGER NOT NULL UNIQUE,
                reader TEXT NOT NULL, expires_at INTEGER NOT NULL);",
        )?;
        // What a relay that crashed left unscrubbed in the WAL goes now.
        scrub_wal(&conn);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            scrub: Arc::default(),
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StorageError::Backend("storage lock poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StorageError::Backend("storage task failed".into()))?
    }
}

#[async_trait::async_trait]
impl Storage for SqliteStorage {
    async fn create_invite(
        &self,
        token_hash: &[u8],
        role: Role,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<()> {
        let token_hash = token_hash.to_vec();
        self.run(move |c| create_invite(c, &token_hash, role, now, expires_at))
            .await
    }

    async fn mint_invite(
        &self,
        token_hash: &[u8],
        minted_by: &str,
        now: u64,
        expires_at: u64,
        max_open: u32,
    ) -> Result<()> {
        let (token_hash, minted_by) = (token_hash.to_vec(), minted_by.to_owned());
        self.run(move |c| mint_invite(c, &token_hash, &minted_by, now, expires_at, max_open))
            .await
    }

    async fn open_invites(&self, minted_by: &str, now: u64) -> Result<u32> {
        let minted_by = minted_by.to_owned();
        self.run(move |c| open_invites(c, &minted_by, now)).await
    }

    async fn account_role(&self, account_id: &str) -> Result<Option<Role>> {
        let account = account_id.to_owned();
        self.run(move |c| account_role(c, &account)).await
    }

    async fn register(
        &self,
        invite_hash: &[u8],
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        delivery_key_hash: Option<&[u8]>,
        now: u64,
    ) -> Result<u32> {
        let (invite, account, device, keys) = (
            invite_hash.to_vec(),
            account_id.to_owned(),
            device.clone(),
            keys.clone(),
        );
        let delivery = delivery_key_hash.map(<[u8]>::to_vec);
        self.run(move |c| {
            register(
                c,
                &invite,
                &account,
                &device,
                &keys,
                delivery.as_deref(),
                now,
            )
        })
        .await
    }

    async fn add_device(
        &self,
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        now: u64,
        max_devices: u32,
    ) -> Result<u32> {
        let (account, device, keys) = (account_id.to_owned(), device.clone(), keys.clone());
        self.run(move |c| add_device(c, &account, &device, &keys, now, max_devices))
            .await
    }

    async fn revoke_device(&self, account_id: &str, device_id: u32, now: u64) -> Result<()> {
        let account = account_id.to_owned();
        self.run(move |c| revoke_device(c, &account, device_id, now))
            .await
    }

    async fn identity_key(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        let account = account_id.to_owned();
        self.run(move |c| identity_key(c, &account)).await
    }

    async fn set_account_role(&self, account_id: &str, role: Role) -> Result<()> {
        let account = account_id.to_owned();
        self.run(move |c| set_account_role(c, &account, role)).await
    }

    async fn set_delivery_key(&self, account_id: &str, hash: &[u8]) -> Result<()> {
        let (account, hash) = (account_id.to_owned(), hash.to_vec());
        self.run(move |c| set_delivery_key(c, &account, &hash))
            .await
    }

    async fn delivery_key_hash(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        let account = account_id.to_owned();
        self.run(move |c| delivery_key_hash(c, &account)).await
    }

    async fn device_secret(
        &self,
        account_id: &str,
        device_id: u32,
    ) -> Result<Option<DeviceSecret>> {
        let account = account_id.to_owned();
        self.run(move |c| device_secret(c, &account, device_id))
            .await
    }

    async fn upload_prekeys(
        &self,
        account_id: &str,
        device_id: u32,
        keys: &PreKeyUpload,
    ) -> Result<()> {
        let (account, keys) = (account_id.to_owned(), keys.clone());
        self.run(move |c| upload_prekeys(c, &account, device_id, &keys))
            .await
    }

    async fn prekey_count(&self, account_id: &str, device_id: u32) -> Result<PreKeyCount> {
        let account = account_id.to_owned();
        self.run(move |c| prekey_count(c, &account, device_id))
            .await
    }

    async fn take_bundles(&self, account_id: &str) -> Result<PreKeyBundles> {
        let account = account_id.to_owned();
        self.run(move |c| take_bundles(c, &account)).await
    }

    async fn devices(&self, account_id: &str) -> Result<Vec<(u32, u32)>> {
        let account = account_id.to_owned();
        self.run(move |c| devices(c, &account)).await
    }

    async fn enqueue(
        &self,
        account_id: &str,
        envelopes: &[Envelope],
        quota: &MailboxQuota,
    ) -> Result<Enqueued> {
        let (account, envelopes, quota) = (account_id.to_owned(), envelopes.to_vec(), *quota);
        self.run(move |c| enqueue(c, &account, &envelopes, &quota))
            .await
    }

    async fn mailbox_usage(&self, account_id: &str, device_id: u32) -> Result<Queued> {
        let account = account_id.to_owned();
        self.run(move |c| usage(c, &account, device_id)).await
    }

    async fn fetch(
        &self,
        account_id: &str,
        device_id: u32,
        limit: u32,
        not_before: u64,
    ) -> Result<(Vec<Envelope>, bool)> {
        let account = account_id.to_owned();
        let (page, expired) = self
            .run(move |c| fetch(c, &account, device_id, limit, not_before))
            .await?;
        self.scrub.deleted(expired);
        Ok(page)
    }

    async fn ack(&self, account_id: &str, device_id: u32, guids: &[Vec<u8>]) -> Result<()> {
        let (account, guids) = (account_id.to_owned(), guids.to_vec());
        let deleted = self
            .run(move |c| ack(c, &account, device_id, &guids))
            .await?;
        self.scrub.deleted(deleted);
        Ok(())
    }

    async fn sync(&self, account_id: &str, device_id: u32, step: &SyncStep) -> Result<Synced> {
        let (account, step) = (account_id.to_owned(), step.clone());
        let (synced, deleted) = self
            .run(move |c| sync(c, &account, device_id, &step))
            .await?;
        self.scrub.deleted(deleted);
        Ok(synced)
    }

    async fn delete_acked(&self, batch: &[AckedMail]) -> Result<usize> {
        let batch = batch.to_vec();
        let deleted = self.run(move |c| delete_acked(c, &batch)).await?;
        self.scrub.deleted(deleted);
        Ok(deleted)
    }

    async fn deleted_mail(&self) {
        self.scrub.notify.notified().await;
    }

    async fn scrub_deleted(&self) -> Result<()> {
        if !self.scrub.pending.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let done = self.run(|c| checkpoint(c)).await;
        if !matches!(done, Ok(true)) {
            // Not finished (an outside reader held an old snapshot) or
            // failed: the scrubber tries again after its interval.
            self.scrub.deleted(1);
        }
        done.map(|_| ())
    }

    async fn purge_expired(&self, not_before: u64) -> Result<usize> {
        self.run(move |c| purge_expired(c, not_before)).await
    }

    async fn acquire_reader(
        &self,
        account_id: &str,
        device_id: u32,
        reader: &str,
        now: u64,
        until: u64,
    ) -> Result<bool> {
        let (account, reader) = (account_id.to_owned(), reader.to_owned());
        self.run(move |c| acquire_reader(c, &account, device_id, &reader, now, until))
            .await
    }

    async fn release_reader(&self, account_id: &str, device_id: u32, reader: &str) -> Result<()> {
        let (account, reader) = (account_id.to_owned(), reader.to_owned());
        self.run(move |c| release_reader(c, &account, device_id, &reader))
            .await
    }

    async fn reader_active(&self, account_id: &str, device_id: u32, now: u64) -> Result<bool> {
        let account = account_id.to_owned();
        self.run(move |c| reader_active(c, &account, device_id, now))
            .await
    }

    async fn set_push(
        &self,
        account_id: &str,
        device_id: u32,
        target: Option<&PushTarget>,
    ) -> Result<()> {
        let (account, target) = (account_id.to_owned(), target.cloned());
        self.run(move |c| set_push(c, &account, device_id, target.as_ref()))
            .await
    }

    async fn push_target(&self, account_id: &str, device_id: u32) -> Result<Option<PushTarget>> {
        let account = account_id.to_owned();
        self.run(move |c| push_target(c, &account, device_id)).await
    }

    async fn drop_push(&self, account_id: &str, device_id: u32, endpoint: &str) -> Result<()> {
        let (account, endpoint) = (account_id.to_owned(), endpoint.to_owned());
        self.run(move |c| drop_push(c, &account, device_id, &endpoint))
            .await
    }
}

// The blocking bodies, one transaction each.

/// Delivered mail must leave no bytes behind: `secure_delete` zeroes the
/// rows in the page images a delete commits, but earlier images (with the
/// envelope) stay in the WAL, and in the main file until the zeroed pages
/// are written home. A truncating checkpoint writes them home and empties
/// the WAL. Whether it completed: a reader holding an old snapshot (only
/// an outside tool: the relay has one connection) makes it partial.
fn checkpoint(conn: &Connection) -> Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// [`checkpoint`] at once, for the rare deletes that scrub in place
/// (revocation, the sweeper's purge, open): best effort, logged.
fn scrub_wal(conn: &Connection) {
    match checkpoint(conn) {
        Ok(true) => {}
        Ok(false) => tracing::warn!("WAL checkpoint incomplete: a reader holds an old snapshot"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

/// A u64 seq or time as SQLite's INTEGER.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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

fn create_invite(
    conn: &mut Connection,
    token_hash: &[u8],
    role: Role,
    now: u64,
    expires_at: Option<u64>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO invites (token_hash, created_at, expires_at, role) VALUES (?1, ?2, ?3, ?4)",
        params![
            token_hash,
            now as i64,
            expires_at.map(|e| e as i64),
            role.as_str()
        ],
    )?;
    Ok(())
}

/// Unused invites minted by an account that have not expired at `?2`
/// (read through the partial index `invites_by_minter`).
const OPEN_INVITES: &str = "SELECT count(*) FROM invites
     WHERE minted_by = ?1 AND used = 0 AND expires_at > ?2";

fn open_invites(conn: &mut Connection, minted_by: &str, now: u64) -> Result<u32> {
    Ok(conn
        .prepare_cached(OPEN_INVITES)?
        .query_row(params![minted_by, now as i64], |r| r.get(0))?)
}

fn mint_invite(
    conn: &mut Connection,
    token_hash: &[u8],
    minted_by: &str,
    now: u64,
    expires_at: u64,
    max_open: u32,
) -> Result<()> {
    // Immediate: the count and the insert are one step, so concurrent
    // mints cannot both pass the quota.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let open: u32 = tx
        .prepare_cached(OPEN_INVITES)?
        .query_row(params![minted_by, now as i64], |r| r.get(0))?;
    if open >= max_open {
        return Err(StorageError::InviteQuota);
    }
    tx.execute(
        "INSERT INTO invites (token_hash, created_at, expires_at, role, minted_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token_hash,
            now as i64,
            expires_at as i64,
            Role::Client.as_str(),
            minted_by
        ],
    )?;
    tx.commit()?;
    Ok(())
}

fn account_role(conn: &mut Connection, account_id: &str) -> Result<Option<Role>> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM accounts WHERE account_id = ?1")?
        .query_row([account_id], |r| r.get(0))
        .optional()?;
    role.map(|r| {
        Role::parse(&r).ok_or_else(|| StorageError::Backend("sqlite: unknown stored role".into()))
    })
    .transpose()
}

fn register(
    conn: &mut Connection,
    invite_hash: &[u8],
    account_id: &str,
    device: &NewDevice,
    keys: &PreKeyUpload,
    delivery_key_hash: Option<&[u8]>,
    now: u64,
) -> Result<u32> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The invite's role, and the invite used up (forgetting who minted it)
    // in the same step.
    let role: Option<String> = tx
        .query_row(
            "UPDATE invites SET used = 1, minted_by = NULL WHERE token_hash = ?1 AND used = 0
               AND (expires_at IS NULL OR expires_at > ?2)
             RETURNING role",
            params![invite_hash, now as i64],
            |r| r.get(0),
        )
        .optional()?;
    let Some(role) = role else {
        return Err(StorageError::InvalidInvite);
    };
    let exists: bool = tx.query_row(
        "SELECT count(*) > 0 FROM accounts WHERE account_id = ?1",
        [account_id],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StorageError::AccountExists);
    }
    tx.execute(
        "INSERT INTO accounts (account_id, identity_key, created_at, delivery_key_hash, role)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            account_id,
            device.identity_key,
            now as i64,
            delivery_key_hash,
            role
        ],
    )?;
    insert_device(&tx, account_id, 1, device, now)?;
    store_keys(&tx, account_id, 1, keys)?;
    tx.commit()?;
    Ok(1)
}

fn add_device(
    conn: &mut Connection,
    account_id: &str,
    device: &NewDevice,
    keys: &PreKeyUpload,
    now: u64,
    max_devices: u32,
) -> Result<u32> {
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

fn revoke_device(conn: &mut Connection, account_id: &str, device_id: u32, now: u64) -> Result<()> {
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
    scrub_wal(conn);
    Ok(())
}

fn identity_key(conn: &mut Connection, account_id: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT identity_key FROM accounts WHERE account_id = ?1")?
        .query_row([account_id], |r| r.get(0))
        .optional()?)
}

fn set_account_role(conn: &mut Connection, account_id: &str, role: Role) -> Result<()> {
    let n = conn.execute(
        "UPDATE accounts SET role = ?2 WHERE account_id = ?1",
        params![account_id, role.as_str()],
    )?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

fn set_delivery_key(conn: &mut Connection, account_id: &str, hash: &[u8]) -> Result<()> {
    let n = conn.execute(
        "UPDATE accounts SET delivery_key_hash = ?2 WHERE account_id = ?1",
        params![account_id, hash],
    )?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

fn delivery_key_hash(conn: &mut Connection, account_id: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT delivery_key_hash FROM accounts WHERE account_id = ?1")?
        .query_row([account_id], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()?
        .flatten())
}

fn device_secret(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
) -> Result<Option<DeviceSecret>> {
    Ok(conn
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

fn upload_prekeys(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    keys: &PreKeyUpload,
) -> Result<()> {
    let tx = conn.transaction()?;
    store_keys(&tx, account_id, device_id, keys)?;
    tx.commit()?;
    Ok(())
}

fn prekey_count(conn: &Connection, account_id: &str, device_id: u32) -> Result<PreKeyCount> {
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

fn take_bundles(conn: &mut Connection, account_id: &str) -> Result<PreKeyBundles> {
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

fn devices(conn: &mut Connection, account_id: &str) -> Result<Vec<(u32, u32)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, registration_id FROM devices WHERE account_id = ?1 ORDER BY device_id",
    )?;
    let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn enqueue(
    conn: &mut Connection,
    account_id: &str,
    envelopes: &[Envelope],
    quota: &MailboxQuota,
) -> Result<Enqueued> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Enqueued::default();
    for env in envelopes {
        let queued = usage(&tx, account_id, env.destination_device)?;
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

/// The device's row of `mailbox_usage` ([`MAILBOX_USAGE`]).
fn usage(conn: &Connection, account_id: &str, device_id: u32) -> Result<Queued> {
    Ok(conn
        .prepare_cached(MAILBOX_USAGE)?
        .query_row(params![account_id, device_id], |r| {
            Ok(Queued {
                count: r.get::<_, i64>(0)?.max(0) as u64,
                bytes: r.get::<_, i64>(1)?.max(0) as u64,
                signed_count: r.get::<_, i64>(2)?.max(0) as u64,
                signed_bytes: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// The oldest page; also returns how many expired envelopes it deleted.
fn fetch(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    limit: u32,
    not_before: u64,
) -> Result<((Vec<Envelope>, bool), usize)> {
    // By the time index (see `sync`): only expired rows are visited.
    let expired = conn.prepare_cached("DELETE FROM mailbox INDEXED BY mailbox_by_time WHERE server_timestamp < ?3 AND mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2)")?
        .execute(params![account_id, device_id, not_before as i64])?;
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
                .map_err(|_| StorageError::Backend("stored envelope does not decode".into()))?,
        );
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok(((out, more), expired))
}

/// Deletes the named envelopes; returns how many there were.
fn ack(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    guids: &[Vec<u8>],
) -> Result<usize> {
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
    Ok(deleted)
}

/// Acknowledged envelopes of several mailboxes, in one immediate
/// transaction (one commit, one sync of the WAL for the whole batch).
fn delete_acked(conn: &mut Connection, batch: &[AckedMail]) -> Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut deleted = 0;
    {
        let mut mailbox = tx.prepare_cached(
            "SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2",
        )?;
        let mut delete =
            tx.prepare_cached("DELETE FROM mailbox WHERE mailbox_id = ?1 AND guid = ?2")?;
        for acked in batch {
            let Some(id) = mailbox
                .query_row(params![acked.account_id, acked.device_id], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
            else {
                continue;
            };
            for g in &acked.guids {
                deleted += delete.execute(params![id, g])?;
            }
        }
    }
    tx.commit()?;
    Ok(deleted)
}

/// One [`SyncStep`] in one immediate transaction (one commit, one sync of
/// the WAL); also returns how many envelopes it deleted.
fn sync(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    step: &SyncStep,
) -> Result<(Synced, usize)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mailbox: i64 = tx
        .prepare_cached("SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2")?
        .query_row(params![account_id, device_id], |r| r.get(0))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    let leased = tx
        .prepare_cached(
            "INSERT INTO readers (mailbox_id, reader, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (mailbox_id) DO UPDATE SET reader = excluded.reader, expires_at = excluded.expires_at
             WHERE readers.reader = excluded.reader OR readers.expires_at <= ?4",
        )?
        .execute(params![mailbox, step.reader, int(step.lease_until), int(step.now)])?;
    if leased != 1 {
        // Dropping the transaction rolls it back: nothing was written.
        return Ok((Synced::Busy, 0));
    }
    let mut deleted = 0;
    {
        let mut ack =
            tx.prepare_cached("DELETE FROM mailbox WHERE mailbox_id = ?1 AND guid = ?2")?;
        for g in &step.ack {
            deleted += ack.execute(params![mailbox, g])?;
        }
    }
    // By the time index: only expired rows (usually none) are visited.
    // Left to itself SQLite picks `mailbox_by_box` and reads every row
    // of the mailbox on every call: 1,000 rows for each page of a
    // 1,000-message sync.
    deleted += tx
        .prepare_cached(
            "DELETE FROM mailbox INDEXED BY mailbox_by_time
             WHERE server_timestamp < ?2 AND mailbox_id = ?1",
        )?
        .execute(params![mailbox, int(step.not_before)])?;
    let mut page = SyncPage {
        cursor: step.after,
        follows: step.after,
        ..SyncPage::default()
    };
    let hidden: HashSet<&[u8]> = step.hidden.iter().map(Vec::as_slice).collect();
    let is_hidden = |row: &rusqlite::Row<'_>, col| -> Result<bool> {
        Ok(!hidden.is_empty() && hidden.contains(blob(row, col)?))
    };
    {
        let mut stmt = tx.prepare_cached(
            "SELECT seq, size, envelope, guid FROM mailbox WHERE mailbox_id = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let mut cut = PageCut::new(step);
        let rows_wanted = cut.rows_wanted(hidden.len());
        let mut rows = stmt.query(params![mailbox, int(step.after), rows_wanted])?;
        // Row by row: an envelope past the budget is never copied.
        while let Some(row) = rows.next()? {
            if is_hidden(row, 3)? {
                continue;
            }
            let size = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
            match cut.next(size) {
                Cut::Stop => {
                    page.more = true;
                    break;
                }
                Cut::Skip => page.follows = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                Cut::Take => page.envelopes.push(StoredEnvelope {
                    guid: blob(row, 3)?.to_vec(),
                    encoded: blob(row, 2)?.to_vec(),
                }),
            }
            page.cursor = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
        }
    }
    if step.prekeys && !page.more {
        page.prekeys = Some(prekey_count(&tx, account_id, device_id)?);
    }
    if step.release {
        tx.prepare_cached("DELETE FROM readers WHERE mailbox_id = ?1 AND reader = ?2")?
            .execute(params![mailbox, step.reader])?;
        // Mail left beside the hidden GUIDs: more rows than there are
        // hidden GUIDs, or one of the first that is not hidden.
        let mut stmt =
            tx.prepare_cached("SELECT guid FROM mailbox WHERE mailbox_id = ?1 LIMIT ?2")?;
        let mut rows = stmt.query(params![mailbox, hidden.len() as i64 + 1])?;
        while let Some(row) = rows.next()? {
            if !is_hidden(row, 0)? {
                page.left = true;
                break;
            }
        }
    }
    tx.commit()?;
    Ok((Synced::Page(page), deleted))
}

/// A BLOB column of `row`, borrowed.
fn blob<'r>(row: &'r rusqlite::Row<'_>, col: usize) -> Result<&'r [u8]> {
    row.get_ref(col)?
        .as_blob()
        .map_err(|_| StorageError::Backend("sqlite: unexpected column value".into()))
}

fn purge_expired(conn: &mut Connection, not_before: u64) -> Result<usize> {
    let n = conn.execute(
        "DELETE FROM mailbox WHERE server_timestamp < ?1",
        [not_before as i64],
    )?;
    if n > 0 {
        scrub_wal(conn);
    }
    Ok(n)
}

fn acquire_reader(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    reader: &str,
    now: u64,
    until: u64,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT INTO readers (mailbox_id, reader, expires_at) VALUES ((SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2), ?3, ?4)
         ON CONFLICT (mailbox_id) DO UPDATE SET reader = excluded.reader, expires_at = excluded.expires_at
         WHERE readers.reader = excluded.reader OR readers.expires_at <= ?5",
        params![account_id, device_id, reader, until as i64, now as i64],
    )?;
    Ok(n == 1)
}

fn release_reader(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    reader: &str,
) -> Result<()> {
    conn.execute(
        "DELETE FROM readers WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND reader = ?3",
        params![account_id, device_id, reader],
    )?;
    Ok(())
}

fn reader_active(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    now: u64,
) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) > 0 FROM readers WHERE mailbox_id = (SELECT mailbox_id FROM devices WHERE account_id = ?1 AND device_id = ?2) AND expires_at > ?3",
        params![account_id, device_id, now as i64],
        |r| r.get(0),
    )?)
}

fn set_push(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    target: Option<&PushTarget>,
) -> Result<()> {
    conn.execute(
        "UPDATE devices SET push_kind = ?3, push_endpoint = ?4 WHERE account_id = ?1 AND device_id = ?2",
        params![account_id, device_id, target.map(|t| t.kind), target.map(|t| t.endpoint.clone())],
    )?;
    Ok(())
}

fn push_target(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
) -> Result<Option<PushTarget>> {
    let row: Option<(Option<i32>, Option<String>)> = conn
        .prepare_cached(
            "SELECT push_kind, push_endpoint FROM devices WHERE account_id = ?1 AND device_id = ?2",
        )?
        .query_row(params![account_id, device_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(match row {
        Some((Some(kind), Some(endpoint))) => Some(PushTarget { kind, endpoint }),
        _ => None,
    })
}

fn drop_push(
    conn: &mut Connection,
    account_id: &str,
    device_id: u32,
    endpoint: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE devices SET push_kind = NULL, push_endpoint = NULL
         WHERE account_id = ?1 AND device_id = ?2 AND push_endpoint = ?3",
        params![account_id, device_id, endpoint],
    )?;
    Ok(())
}

/// What only SQLite has: the trigger-kept `mailbox_usage` table and the
/// plan of the quota check. The backend-neutral half (usage equals the
/// queue) is in the conformance suite.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    type Row = (i64, i64, i64, i64, i64);

    fn rows(conn: &Connection, sql: &str) -> Vec<Row> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The usage rows the triggers keep, against the queue itself: no
    /// row for an empty mailbox, none left behind by a revoked device.
    fn usage_rows_are_the_queue(storage: &SqliteStorage) {
        let conn = storage.conn.lock().unwrap();
        assert_eq!(
            rows(&conn, "SELECT * FROM mailbox_usage ORDER BY mailbox_id"),
            rows(
                &conn,
                "SELECT mailbox_id, count(*), sum(size), sum(signed), sum(size * signed)
                 FROM mailbox GROUP BY mailbox_id ORDER BY mailbox_id",
            )
        );
    }

    fn envelope(guid: u8, device: u32, signed: bool, size: usize, at: u64) -> Envelope {
        Envelope {
            guid: vec![guid; 16],
            r#type: 1,
            source_account: if signed {
                "sender".into()
            } else {
                String::new()
            },
            source_device: u32::from(signed),
            destination_device: device,
            ciphertext: vec![7; size],
            server_timestamp: at,
        }
    }

    fn device() -> NewDevice {
        NewDevice {
            registration_id: 7,
            identity_key: vec![5; 33],
            salt: vec![1; 16],
            secret_hash: vec![2; 32],
        }
    }

    /// A relay database at `path` holding account "acct" with device 1.
    async fn with_account(path: &std::path::Path) -> SqliteStorage {
        let storage = SqliteStorage::open(path).unwrap();
        storage
            .create_invite(b"invite", Role::Client, 0, None)
            .await
            .unwrap();
        storage
            .register(
                b"invite",
                "acct",
                &device(),
                &PreKeyUpload::default(),
                None,
                0,
            )
            .await
            .unwrap();
        storage
    }

    #[tokio::test]
    async fn usage_rows_follow_every_insert_ack_expiry_and_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let storage = with_account(&dir.path().join("relay.db")).await;
        storage
            .add_device("acct", &device(), &PreKeyUpload::default(), 0, 5)
            .await
            .unwrap();
        let quota = MailboxQuota {
            max_envelopes: 1_000,
            max_bytes: 10_000_000,
        };
        let mut guids = Vec::new();
        for i in 0..40u8 {
            let e = envelope(
                i,
                1 + u32::from(i % 2),
                i % 3 == 0,
                100 + usize::from(i) * 10,
                1_000,
            );
            guids.push(e.guid.clone());
            storage
                .enqueue("acct", std::slice::from_ref(&e), &quota)
                .await
                .unwrap();
            storage.enqueue("acct", &[e], &quota).await.unwrap();
        }
        usage_rows_are_the_queue(&storage);
        storage.ack("acct", 1, &guids[..10]).await.unwrap();
        usage_rows_are_the_queue(&storage);
        storage.purge_expired(2_000).await.unwrap();
        usage_rows_are_the_queue(&storage);
        let left: i64 = storage
            .conn
            .lock()
            .unwrap()
            .query_row("SELECT count(*) FROM mailbox_usage", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "an empty mailbox keeps no usage row");
        for i in 0..6u8 {
            storage
                .enqueue(
                    "acct",
                    &[envelope(100 + i, 2, i % 2 == 0, 500, 3_000)],
                    &quota,
                )
                .await
                .unwrap();
        }
        storage.revoke_device("acct", 2, 0).await.unwrap();
        usage_rows_are_the_queue(&storage);
    }

    /// Frames in the WAL (its size; nothing here checkpoints it).
    fn wal_len(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("relay.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn a_fetch_writes_nothing_to_disk_and_leases_end_with_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let storage = with_account(&path).await;
        let quota = MailboxQuota {
            max_envelopes: 1_000,
            max_bytes: 10_000_000,
        };
        for i in 0..20u8 {
            storage
                .enqueue("acct", &[envelope(i, 1, false, 300, 1_000)], &quota)
                .await
                .unwrap();
        }
        let step = |reader: &str, after: u64, release: bool| SyncStep {
            reader: reader.into(),
            now: 2_000,
            lease_until: 60_000,
            not_before: 500,
            ack: Vec::new(),
            hidden: (0..5u8).map(|i| vec![i; 16]).collect(),
            after,
            limit: 10,
            max_bytes: 1 << 20,
            skip: 0,
            release,
            prekeys: true,
        };
        let before = wal_len(dir.path());
        // Two pages and the releasing call: lease taken, renewed, let go.
        let Synced::Page(first) = storage
            .sync("acct", 1, &step("app", 0, false))
            .await
            .unwrap()
        else {
            panic!("lease refused");
        };
        assert_eq!(first.envelopes.len(), 10);
        assert_eq!(first.envelopes[0].guid, vec![5; 16], "hidden ones skipped");
        // The lease holds against another reader meanwhile.
        assert!(matches!(
            storage
                .sync("acct", 1, &step("extension", 0, false))
                .await
                .unwrap(),
            Synced::Busy
        ));
        assert!(storage.reader_active("acct", 1, 2_000).await.unwrap());
        let Synced::Page(second) = storage
            .sync("acct", 1, &step("app", first.cursor, false))
            .await
            .unwrap()
        else {
            panic!("lease refused");
        };
        assert_eq!(second.envelopes.len(), 5);
        storage
            .sync("acct", 1, &step("app", 0, true))
            .await
            .unwrap();
        assert!(!storage.reader_active("acct", 1, 2_000).await.unwrap());
        assert_eq!(before, wal_len(dir.path()), "a fetch appended to the WAL");

        // A lease is the process's: a relay opened again starts with none.
        storage
            .acquire_reader("acct", 1, "app", 2_000, 60_000)
            .await
            .unwrap();
        drop(storage);
        let storage = SqliteStorage::open(&path).unwrap();
        assert!(!storage.reader_active("acct", 1, 2_000).await.unwrap());
        assert!(storage
            .acquire_reader("acct", 1, "extension", 2_000, 60_000)
            .await
            .unwrap());
        // Expired mail is still deleted by the step, a write as before.
        let mut expire = step("extension", 0, false);
        expire.not_before = 5_000;
        storage.sync("acct", 1, &expire).await.unwrap();
        assert_eq!(storage.mailbox_usage("acct", 1).await.unwrap().count, 0);
    }

    #[test]
    fn the_invite_quota_reads_the_minters_open_invites_only() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("relay.db")).unwrap();
        let conn = storage.conn.lock().unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OPEN_INVITES}"))
            .unwrap()
            .query_map(params!["dr", 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|l| l.contains("invites_by_minter")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.contains("SCAN")), "{plan:?}");
    }

    #[test]
    fn the_quota_check_reads_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("relay.db")).unwrap();
        let conn = storage.conn.lock().unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {MAILBOX_USAGE}"))
            .unwrap()
            .query_map(params!["a", 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|l| l.contains("SEARCH mailbox_usage USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.contains("SCAN")), "{plan:?}");
    }
}
