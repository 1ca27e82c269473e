//! `alcove relay migrate-to-postgres`: copies an SQLite relay database
//! into an empty PostgreSQL one — invites (hashes), accounts, devices
//! (salted secret hashes, push registrations, tombstones), prekeys and
//! queued mail, in queue order — in one PostgreSQL transaction, so a
//! failed copy leaves the target empty. Reader leases are not copied
//! (they last seconds); the SQLite file is brought to the latest schema
//! first and otherwise only read.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{pg_error, PostgresStorage, PostgresUrl};
use crate::storage::{SqliteStorage, StorageError};

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target already holds a relay's data: nothing was copied.
    #[error("the PostgreSQL database already holds relay data; migrate into an empty one")]
    TargetNotEmpty,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Storage(e.into())
    }
}

/// What was copied, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub invites: u64,
    pub accounts: u64,
    pub devices: u64,
    pub revoked_devices: u64,
    pub prekeys: u64,
    pub envelopes: u64,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} invites, {} accounts, {} devices, {} revoked devices, {} prekeys, {} queued envelopes",
            self.invites,
            self.accounts,
            self.devices,
            self.revoked_devices,
            self.prekeys,
            self.envelopes
        )
    }
}

/// A boxed SQL parameter read from SQLite.
type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// Copies the relay database at `sqlite` into the empty database at `to`
/// (created tables included).
pub async fn migrate_sqlite_to_postgres(
    sqlite: &Path,
    to: &PostgresUrl,
) -> Result<Copied, MigrateError> {
    if !sqlite.exists() {
        return Err(
            StorageError::Backend("the SQLite relay database does not exist".into()).into(),
        );
    }
    let path = sqlite.to_owned();
    // Brings the file to the latest schema (what starting the relay does).
    tokio::task::spawn_blocking(move || SqliteStorage::open(&path).map(drop))
        .await
        .map_err(|_| StorageError::Backend("sqlite open task failed".into()))??;
    let target = PostgresStorage::connect(to, 1).await?;
    let mut client = target.client().await?;
    let tx = client.transaction().await.map_err(pg_error)?;
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM invites) + (SELECT count(*) FROM accounts)
                  + (SELECT count(*) FROM revoked_devices)",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if held > 0 {
        return Err(MigrateError::TargetNotEmpty);
    }
    let src = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut copied = Copied::default();
    // Each table: read its rows from SQLite (converted to PostgreSQL's
    // types), insert them with one prepared statement.
    let tables: [(&str, &str, &str); 7] = [
        (
            "invites",
            "SELECT token_hash, created_at, expires_at, used, role, minted_by FROM invites",
            "INSERT INTO invites (token_hash, created_at, expires_at, used, role, minted_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ),
        (
            "accounts",
            "SELECT account_id, identity_key, created_at, delivery_key_hash, role FROM accounts",
            "INSERT INTO accounts (account_id, identity_key, created_at, delivery_key_hash, role)
             VALUES ($1, $2, $3, $4, $5)",
        ),
        (
            "devices",
            "SELECT account_id, device_id, registration_id, salt, secret_hash, push_kind,
                    push_endpoint, created_at, mailbox_id FROM devices",
            "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash,
                push_kind, push_endpoint, created_at, mailbox_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ),
        (
            "revoked_devices",
            "SELECT account_id, device_id, salt, secret_hash, revoked_at FROM revoked_devices",
            "INSERT INTO revoked_devices (account_id, device_id, salt, secret_hash, revoked_at)
             VALUES ($1, $2, $3, $4, $5)",
        ),
        (
            "signed_prekeys",
            "SELECT account_id, device_id, kind, key_id, public_key, signature FROM signed_prekeys",
            "INSERT INTO signed_prekeys (account_id, device_id, kind, key_id, public_key, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ),
        (
            "one_time_prekeys",
            "SELECT account_id, device_id, kind, key_id, public_key, signature FROM one_time_prekeys",
            "INSERT INTO one_time_prekeys (account_id, device_id, kind, key_id, public_key, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ),
        (
            "mailbox",
            "SELECT mailbox_id, guid, envelope, server_timestamp, size, signed FROM mailbox
             ORDER BY seq",
            "INSERT INTO mailbox (mailbox_id, guid, envelope, server_timestamp, size, signed)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ),
    ];
    for (table, select, insert) in tables {
        let rows = read_rows(&src, table, select)?;
        let stmt = tx.prepare(insert).await.map_err(pg_error)?;
        for row in &rows {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                row.iter().map(|p| p.as_ref() as _).collect();
            tx.execute(&stmt, &params).await.map_err(pg_error)?;
        }
        let n = rows.len() as u64;
        match table {
            "invites" => copied.invites = n,
            "accounts" => copied.accounts = n,
            "devices" => copied.devices = n,
            "revoked_devices" => copied.revoked_devices = n,
            "mailbox" => copied.envelopes = n,
            _ => copied.prekeys += n,
        }
    }
    // New devices continue after the copied mailbox numbers.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('devices', 'mailbox_id'),
                       coalesce((SELECT max(mailbox_id) FROM devices), 0) + 1, false)",
        &[],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(copied)
}

/// The rows of one SQLite table as PostgreSQL parameters: integers that
/// are flags become booleans, key kinds SMALLINT, device ids INTEGER,
/// everything else BIGINT, BYTEA or TEXT as stored.
fn read_rows(src: &Connection, table: &str, select: &str) -> Result<Vec<Vec<Param>>, MigrateError> {
    use rusqlite::types::ValueRef;
    let mut stmt = src.prepare(select)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row: Vec<Param> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = r.get_ref(i)?;
            let p: Param = match (name.as_str(), v) {
                ("used" | "signed", ValueRef::Integer(n)) => Box::new(n != 0),
                ("kind", ValueRef::Integer(n)) => Box::new(n as i16),
                ("device_id", ValueRef::Integer(n)) => Box::new(n as i32),
                ("push_kind", ValueRef::Integer(n)) => Box::new(Some(n as i32)),
                ("push_kind", ValueRef::Null) => Box::new(None::<i32>),
                (_, ValueRef::Integer(n)) => Box::new(Some(n)),
                (_, ValueRef::Text(t)) => Box::new(Some(String::from_utf8_lossy(t).into_owned())),
                (_, ValueRef::Blob(b)) => Box::new(Some(b.to_vec())),
                (
                    "expires_at" | "minted_by" | "delivery_key_hash" | "push_endpoint"
                    | "signature",
                    ValueRef::Null,
                ) => null_of(table, name),
                _ => {
                    return Err(StorageError::Backend(format!(
                        "sqlite: unexpected value in {table}.{name}"
                    ))
                    .into())
                }
            };
            row.push(p);
        }
        out.push(row);
    }
    Ok(out)
}

/// A NULL of the column's PostgreSQL type.
fn null_of(table: &str, column: &str) -> Param {
    match (table, column) {
        (_, "expires_at") => Box::new(None::<i64>),
        (_, "minted_by" | "push_endpoint") => Box::new(None::<String>),
        _ => Box::new(None::<Vec<u8>>),
    }
}
