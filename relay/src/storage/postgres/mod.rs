//! The PostgreSQL backend: several stateless relay processes on one
//! database. A pool of connections (`deadpool-postgres` over
//! `tokio-postgres`); every [`Storage`] call is one statement or one
//! transaction, with row locks where concurrent processes meet (the
//! single-reader lease is an `INSERT ... ON CONFLICT` on one row, a
//! one-time prekey is claimed with `FOR UPDATE SKIP LOCKED`, a send locks
//! its recipients' device rows before it checks their quota). The
//! driver's errors become [`StorageError`]s here and nowhere else, by
//! SQLSTATE only: PostgreSQL's messages can quote values.
//!
//! `accounts.rs` holds invites, accounts and devices; `keys.rs` prekeys;
//! `mail.rs` mailboxes, reader leases and push targets; `wakes.rs` the
//! cross-instance [`crate::Wake`]; `rate_limits.rs` the shared counters;
//! `migrations.rs` the schema; `import.rs` the copy from an SQLite
//! relay database (`alcove relay migrate-to-postgres`).

mod accounts;
mod devices;
pub mod import;
mod keys;
mod mail;
mod migrations;
pub(crate) mod rate_limits;
pub(crate) mod wakes;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use alcove_proto::relay::{PreKeyBundles, PreKeyCount, PreKeyUpload};
use alcove_proto::wire::Envelope;
pub use migrations::SCHEMA_VERSION;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::{
    AckedMail, DeviceSecret, Enqueued, MailboxQuota, NewDevice, PushTarget, Queued, Result, Role,
    Storage, StorageError, SyncStep, Synced,
};

/// How long a request waits for a pooled connection, or for a new one to
/// be made, before it is told the storage is busy.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection URL (`postgres://user:password@host/db`) or
/// key=value string. Shown only without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn parse(&self) -> Result<tokio_postgres::Config> {
        tokio_postgres::Config::from_str(&self.0).map_err(|_| {
            StorageError::Unavailable(
                "the PostgreSQL URL does not parse (expected postgres://user@host:port/database)"
                    .into(),
            )
        })
    }
}

/// User, hosts, ports and database; never the password.
impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(c) = tokio_postgres::Config::from_str(&self.0) else {
            return f.write_str("PostgreSQL (unparsable URL)");
        };
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
        write!(
            f,
            "PostgreSQL {}@{}:{}/{}",
            c.get_user().unwrap_or(""),
            hosts.join(","),
            ports.join(","),
            c.get_dbname().unwrap_or("")
        )?;
        if c.get_password().is_some() {
            f.write_str(" (password redacted)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The driver's failures, by kind: a lost or refused connection and the
/// database's "try again" states (serialization failure, deadlock, too
/// many connections, shutting down) are worth retrying; anything else is
/// named by its SQLSTATE code, never by its message (which can quote the
/// row that failed).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StorageError {
    if let Some(code) = e.code() {
        let retry = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ];
        if retry.contains(code) {
            return StorageError::Busy;
        }
        return StorageError::Backend(format!("postgres: SQLSTATE {}", code.code()));
    }
    if e.is_closed() {
        return StorageError::Unavailable("the connection to PostgreSQL was lost".into());
    }
    // A connection-level error (refused, reset, timed out, TLS asked for):
    // the driver's text names the failure, never the password.
    StorageError::Unavailable(format!("PostgreSQL: {e}"))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        deadpool_postgres::PoolError::Timeout(_) => StorageError::Busy,
        _ => StorageError::Unavailable("PostgreSQL connection pool closed".into()),
    }
}

/// A u64 time or count as PostgreSQL's BIGINT (times are milliseconds:
/// far below `i64::MAX`).
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn id32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StorageError::Backend("postgres: stored id out of range".into()))
}

pub struct PostgresStorage {
    pool: Pool,
    url: PostgresUrl,
}

impl PostgresStorage {
    /// Connects (a pool of at most `max_connections`) and migrates. A
    /// database that cannot be reached is `Unavailable` with the reason
    /// and never the password; a newer schema is `SchemaTooNew`.
    pub async fn connect(url: &PostgresUrl, max_connections: usize) -> Result<Self> {
        let config = url.parse()?;
        let mut client = tokio::time::timeout(POOL_WAIT, config.connect(NoTls))
            .await
            .map_err(|_| {
                StorageError::Unavailable(format!("{url}: no answer within {POOL_WAIT:?}"))
            })?
            .map(|(client, connection)| {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            })
            .map_err(|e| match pg_error(e) {
                StorageError::Unavailable(why) => {
                    StorageError::Unavailable(format!("{url}: {why}"))
                }
                other => other,
            })?;
        migrations::migrate(&mut client).await?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|_| StorageError::Backend("postgres: pool setup".into()))?;
        Ok(Self {
            pool,
            url: url.clone(),
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Where this storage connects (for the shared wake's listener).
    pub(crate) fn url(&self) -> &PostgresUrl {
        &self.url
    }
}

#[async_trait::async_trait]
impl Storage for PostgresStorage {
    async fn create_invite(
        &self,
        token_hash: &[u8],
        role: Role,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<()> {
        accounts::create_invite(&self.client().await?, token_hash, role, now, expires_at).await
    }

    async fn mint_invite(
        &self,
        token_hash: &[u8],
        minted_by: &str,
        now: u64,
        expires_at: u64,
        max_open: u32,
    ) -> Result<()> {
        let mut c = self.client().await?;
        accounts::mint_invite(&mut c, token_hash, minted_by, now, expires_at, max_open).await
    }

    async fn open_invites(&self, minted_by: &str, now: u64) -> Result<u32> {
        accounts::open_invites(&self.client().await?, minted_by, now).await
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
        let mut c = self.client().await?;
        accounts::register(
            &mut c,
            invite_hash,
            account_id,
            device,
            keys,
            delivery_key_hash,
            now,
        )
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
        let mut c = self.client().await?;
        accounts::add_device(&mut c, account_id, device, keys, now, max_devices).await
    }

    async fn revoke_device(&self, account_id: &str, device_id: u32, now: u64) -> Result<()> {
        let mut c = self.client().await?;
        accounts::revoke_device(&mut c, account_id, device_id, now).await
    }

    async fn account_role(&self, account_id: &str) -> Result<Option<Role>> {
        accounts::account_role(&self.client().await?, account_id).await
    }

    async fn set_account_role(&self, account_id: &str, role: Role) -> Result<()> {
        accounts::set_account_role(&self.client().await?, account_id, role).await
    }

    async fn identity_key(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        accounts::identity_key(&self.client().await?, account_id).await
    }

    async fn set_delivery_key(&self, account_id: &str, hash: &[u8]) -> Result<()> {
        accounts::set_delivery_key(&self.client().await?, account_id, hash).await
    }

    async fn delivery_key_hash(&self, account_id: &str) -> Result<Option<Vec<u8>>> {
        accounts::delivery_key_hash(&self.client().await?, account_id).await
    }

    async fn device_secret(
        &self,
        account_id: &str,
        device_id: u32,
    ) -> Result<Option<DeviceSecret>> {
        accounts::device_secret(&self.client().await?, account_id, device_id).await
    }

    async fn upload_prekeys(
        &self,
        account_id: &str,
        device_id: u32,
        keys: &PreKeyUpload,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_error)?;
        keys::store_keys(&tx, account_id, device_id, keys).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn prekey_count(&self, account_id: &str, device_id: u32) -> Result<PreKeyCount> {
        keys::prekey_count(&self.client().await?, account_id, device_id).await
    }

    async fn take_bundles(&self, account_id: &str) -> Result<PreKeyBundles> {
        let mut c = self.client().await?;
        keys::take_bundles(&mut c, account_id).await
    }

    async fn devices(&self, account_id: &str) -> Result<Vec<(u32, u32)>> {
        devices::devices(&self.client().await?, account_id).await
    }

    async fn enqueue(
        &self,
        account_id: &str,
        envelopes: &[Envelope],
        quota: &MailboxQuota,
    ) -> Result<Enqueued> {
        let mut c = self.client().await?;
        mail::enqueue(&mut c, account_id, envelopes, quota).await
    }

    async fn mailbox_usage(&self, account_id: &str, device_id: u32) -> Result<Queued> {
        mail::usage(&self.client().await?, account_id, device_id).await
    }

    async fn fetch(
        &self,
        account_id: &str,
        device_id: u32,
        limit: u32,
        not_before: u64,
    ) -> Result<(Vec<Envelope>, bool)> {
        mail::fetch(
            &self.client().await?,
            account_id,
            device_id,
            limit,
            not_before,
        )
        .await
    }

    async fn ack(&self, account_id: &str, device_id: u32, guids: &[Vec<u8>]) -> Result<()> {
        mail::ack(&self.client().await?, account_id, device_id, guids).await
    }

    async fn delete_acked(&self, batch: &[AckedMail]) -> Result<usize> {
        let mut c = self.client().await?;
        mail::delete_acked(&mut c, batch).await
    }

    async fn sync(&self, account_id: &str, device_id: u32, step: &SyncStep) -> Result<Synced> {
        let mut c = self.client().await?;
        mail::sync(&mut c, account_id, device_id, step).await
    }

    async fn purge_expired(&self, not_before: u64) -> Result<usize> {
        mail::purge_expired(&self.client().await?, not_before).await
    }

    async fn acquire_reader(
        &self,
        account_id: &str,
        device_id: u32,
        reader: &str,
        now: u64,
        until: u64,
    ) -> Result<bool> {
        mail::acquire_reader(
            &self.client().await?,
            account_id,
            device_id,
            reader,
            now,
            until,
        )
        .await
    }

    async fn release_reader(&self, account_id: &str, device_id: u32, reader: &str) -> Result<()> {
        mail::release_reader(&self.client().await?, account_id, device_id, reader).await
    }

    async fn reader_active(&self, account_id: &str, device_id: u32, now: u64) -> Result<bool> {
        mail::reader_active(&self.client().await?, account_id, device_id, now).await
    }

    async fn set_push(
        &self,
        account_id: &str,
        device_id: u32,
        target: Option<&PushTarget>,
    ) -> Result<()> {
        mail::set_push(&self.client().await?, account_id, device_id, target).await
    }

    async fn push_target(&self, account_id: &str, device_id: u32) -> Result<Option<PushTarget>> {
        mail::push_target(&self.client().await?, account_id, device_id).await
    }

    async fn drop_push(&self, account_id: &str, device_id: u32, endpoint: &str) -> Result<()> {
        mail::drop_push(&self.client().await?, account_id, device_id, endpoint).await
    }
}
