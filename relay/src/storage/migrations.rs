//! The SQLite schema, one migration per version (`PRAGMA user_version`).
//! Each runs in its own transaction; a database from a newer relay is
//! refused rather than guessed at.

use rusqlite::Connection;

use super::{Result, StorageError};

/// Brings the database at `conn` to the latest version.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StorageError::SchemaTooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
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
    // for the byte quota and the unsolicited share of a mailbox.
    "ALTER TABLE mailbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE mailbox ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
     UPDATE mailbox SET size = length(envelope);",
];
