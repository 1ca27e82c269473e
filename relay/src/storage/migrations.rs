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
    // v7: roles. An invite carries the role of the account it registers
    // (every earlier invite and account: client, the least it may do), and
    // a client invite minted by a therapist's device names that account
    // until it is used, for the quota of open invites per therapist.
    "ALTER TABLE invites ADD COLUMN role TEXT NOT NULL DEFAULT 'client'
        CHECK (role IN ('client', 'therapist', 'bot'));
     ALTER TABLE invites ADD COLUMN minted_by TEXT;
     CREATE INDEX invites_by_minter ON invites (minted_by, expires_at)
        WHERE minted_by IS NOT NULL AND used = 0;
     ALTER TABLE accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'client'
        CHECK (role IN ('client', 'therapist', 'bot'));",
    // v8: reader leases leave the file for a TEMP table of the relay's one
    // connection (`SqliteStorage::open`). Renewed on every /sync, the row
    // made each page fetch a write: a WAL frame and an fsync per call, for
    // a lease that lasts seconds and means nothing once the process is
    // gone (pending acks already live only in its memory).
    "DROP TABLE readers;",
];

/// A database left at every earlier version, holding an account, a
/// device and queued mail in that version's shape, is brought to the
/// latest: its mail is delivered, counted by the kept usage, and the
/// device still authenticates.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use alcove_proto::wire::Envelope;
    use prost::Message;
    use rusqlite::params;

    use super::*;
    use crate::storage::{
        DeviceSecret, MailboxQuota, NewDevice, Queued, Role, SqliteStorage, Storage,
    };

    const LATEST: u32 = MIGRATIONS.len() as u32;

    fn envelope(guid: u8, signed: bool) -> Envelope {
        Envelope {
            guid: vec![guid; 16],
            r#type: 1,
            source_account: if signed {
                "sender".into()
            } else {
                String::new()
            },
            source_device: u32::from(signed),
            destination_device: 1,
            ciphertext: vec![guid; 40 + usize::from(guid)],
            server_timestamp: 1_000,
        }
    }

    /// A database at `version`, made by the migrations up to it, with
    /// data written as a relay of that version wrote it.
    fn database_at(path: &std::path::Path, version: u32, old: &Envelope) {
        let mut conn = Connection::open(path).unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(version as usize) {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .unwrap();
            tx.commit().unwrap();
        }
        conn.execute(
            "INSERT INTO accounts (account_id, identity_key, created_at) VALUES ('acct', ?1, 0)",
            [vec![5u8; 33]],
        )
        .unwrap();
        let bytes = old.encode_to_vec();
        if version < 3 {
            conn.execute(
                "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash,
                    created_at) VALUES ('acct', 1, 7, ?1, ?2, 0)",
                params![vec![1u8; 16], vec![2u8; 32]],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO mailbox (account_id, device_id, guid, envelope, server_timestamp)
                 VALUES ('acct', 1, ?1, ?2, 1000)",
                params![old.guid, bytes],
            )
            .unwrap();
        } else {
            conn.execute(
                "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash,
                    created_at, mailbox_id) VALUES ('acct', 1, 7, ?1, ?2, 0, 1)",
                params![vec![1u8; 16], vec![2u8; 32]],
            )
            .unwrap();
            if version >= 6 {
                // From v6 a relay records each envelope's size (this one
                // is sealed: not signed), and the triggers count it.
                conn.execute(
                    "INSERT INTO mailbox (mailbox_id, guid, envelope, server_timestamp, size)
                     VALUES (1, ?1, ?2, 1000, ?3)",
                    params![old.guid, bytes, bytes.len() as i64],
                )
                .unwrap();
            } else {
                conn.execute(
                    "INSERT INTO mailbox (mailbox_id, guid, envelope, server_timestamp)
                     VALUES (1, ?1, ?2, 1000)",
                    params![old.guid, bytes],
                )
                .unwrap();
            }
        }
        // An unused invite, issued before roles.
        conn.execute(
            "INSERT INTO invites (token_hash, created_at, expires_at) VALUES (?1, 0, NULL)",
            [b"old invite".to_vec()],
        )
        .unwrap();
        if version >= 5 {
            conn.execute(
                "INSERT INTO revoked_devices VALUES ('acct', 2, ?1, ?2, 0)",
                params![vec![3u8; 16], vec![4u8; 32]],
            )
            .unwrap();
        }
    }

    #[tokio::test]
    async fn every_earlier_version_is_brought_to_the_latest() {
        for version in 1..LATEST {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("relay.db");
            let old = envelope(1, false);
            database_at(&path, version, &old);

            let storage = SqliteStorage::open(&path).unwrap();
            let at = |what: &str| format!("from v{version}: {what}");
            let (page, _) = storage.fetch("acct", 1, 10, 0).await.unwrap();
            assert_eq!(page, vec![old.clone()], "{}", at("queued mail kept"));
            // Mail queued before v6 counts by its stored size (as sealed:
            // which it was is inside the envelope, not in a column).
            let size = old.encoded_len() as u64;
            assert_eq!(
                storage.mailbox_usage("acct", 1).await.unwrap(),
                Queued {
                    count: 1,
                    bytes: size,
                    signed_count: 0,
                    signed_bytes: 0,
                },
                "{}",
                at("usage of the old mail")
            );
            let new = envelope(2, true);
            let quota = MailboxQuota {
                max_envelopes: 10,
                max_bytes: 1 << 20,
            };
            storage
                .enqueue("acct", std::slice::from_ref(&new), &quota)
                .await
                .unwrap();
            let new_size = new.encoded_len() as u64;
            assert_eq!(
                storage.mailbox_usage("acct", 1).await.unwrap(),
                Queued {
                    count: 2,
                    bytes: size + new_size,
                    signed_count: 1,
                    signed_bytes: new_size,
                },
                "{}",
                at("usage after a send")
            );
            storage
                .ack("acct", 1, &[old.guid.clone(), new.guid.clone()])
                .await
                .unwrap();
            assert_eq!(
                storage.mailbox_usage("acct", 1).await.unwrap(),
                Queued::default(),
                "{}",
                at("usage after the acks")
            );
            assert_eq!(
                storage.device_secret("acct", 1).await.unwrap(),
                Some(DeviceSecret {
                    salt: vec![1; 16],
                    hash: vec![2; 32],
                    revoked: false,
                }),
                "{}",
                at("credentials kept")
            );
            let tombstone = storage.device_secret("acct", 2).await.unwrap();
            assert_eq!(
                tombstone.map(|t| t.revoked),
                (version >= 5).then_some(true),
                "{}",
                at("tombstones kept")
            );
            // Accounts and invites from before roles are clients (the
            // least an account may do); minting works on the new columns.
            assert_eq!(
                storage.account_role("acct").await.unwrap(),
                Some(Role::Client),
                "{}",
                at("role of an old account")
            );
            let device = NewDevice {
                registration_id: 9,
                identity_key: vec![5; 33],
                salt: vec![6; 16],
                secret_hash: vec![7; 32],
            };
            storage
                .register(
                    b"old invite",
                    "enrolled",
                    &device,
                    &Default::default(),
                    None,
                    5,
                )
                .await
                .unwrap();
            assert_eq!(
                storage.account_role("enrolled").await.unwrap(),
                Some(Role::Client),
                "{}",
                at("role from an old invite")
            );
            storage
                .mint_invite(b"minted", "enrolled", 5, 100, 1)
                .await
                .unwrap();
            assert_eq!(
                storage.open_invites("enrolled", 5).await.unwrap(),
                1,
                "{}",
                at("minted invites counted")
            );
            drop(storage);
            // Opening the latest again changes nothing.
            let version_now: u32 = Connection::open(&path)
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version_now, LATEST, "{}", at("version"));
            SqliteStorage::open(&path).unwrap();
        }
    }

    #[test]
    fn a_database_from_a_newer_relay_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {}", LATEST + 1))
            .unwrap();
        assert!(matches!(
            SqliteStorage::open(&path),
            Err(StorageError::SchemaTooNew(v)) if v == LATEST + 1
        ));
    }
}
