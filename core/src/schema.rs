//! Versioned schema migrations (`PRAGMA user_version`). Each step runs in
//! its own transaction; a database is upgradable from every earlier version.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: the account, libsignal's stores, conversations and messages.
    "CREATE TABLE local_account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        account_id TEXT NOT NULL,
        device_id INTEGER NOT NULL,
        registration_id INTEGER NOT NULL,
        identity_key_pair BLOB NOT NULL,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE identities (
        account_id TEXT PRIMARY KEY,
        identity_key BLOB NOT NULL,
        pending_key BLOB,
        verified INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
     );
     CREATE TABLE prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL);
     CREATE TABLE signed_prekeys (
        id INTEGER PRIMARY KEY, record BLOB NOT NULL, created_at INTEGER NOT NULL
     );
     CREATE TABLE kyber_prekeys (
        id INTEGER PRIMARY KEY, record BLOB NOT NULL,
        last_resort INTEGER NOT NULL, created_at INTEGER NOT NULL
     );
     CREATE TABLE kyber_base_keys_seen (
        kyber_id INTEGER NOT NULL, signed_id INTEGER NOT NULL, base_key BLOB NOT NULL,
        PRIMARY KEY (kyber_id, signed_id, base_key)
     );
     CREATE TABLE sessions (address TEXT PRIMARY KEY, record BLOB NOT NULL);
     CREATE TABLE sender_keys (
        address TEXT NOT NULL, distribution_id BLOB NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (address, distribution_id)
     );
     CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        remote_account TEXT NOT NULL UNIQUE,
        display_name TEXT,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        message_id BLOB NOT NULL,
        outgoing INTEGER NOT NULL,
        sender_device INTEGER NOT NULL,
        body TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        status INTEGER NOT NULL,
        UNIQUE (conversation_id, message_id)
     );
     CREATE TABLE processed_envelopes (guid BLOB PRIMARY KEY, processed_at INTEGER NOT NULL);",
    // v2: prekey upkeep bookkeeping (what the relay has, when we last rotated)
    // and an index for paging a conversation.
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     ALTER TABLE prekeys ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE kyber_prekeys ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX messages_by_conversation ON messages (conversation_id, id);",
    // v3: relay sync: the outbox, the cross-process lease, settings
    // (relay credentials, notification privacy) and per-conversation
    // notification labels (pseudonyms chosen by the therapist).
    "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        recipient TEXT NOT NULL,
        guid BLOB NOT NULL,
        content BLOB NOT NULL,
        message_row INTEGER,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL, generation INTEGER NOT NULL
     );
     CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     ALTER TABLE conversations ADD COLUMN notification_label TEXT;",
    // v4: sealed sender: the delivery key each contact shared with us (in
    // encrypted content), so we can hand the relay mail for them without
    // naming ourselves.
    "CREATE TABLE delivery_keys (
        remote_account TEXT PRIMARY KEY,
        key BLOB NOT NULL,
        updated_at INTEGER NOT NULL
     );",
    // v5: conversations by their own id, with members. A two-member
    // conversation keeps its peer in `direct_peer` (unique: one direct
    // conversation per peer, found by one index lookup); a group leaves it
    // NULL and lists everyone in `conversation_members`. Messages name
    // their sender; outbox items name their conversation beside the
    // recipient (a group message becomes one item per member). The
    // rebuild runs with foreign keys off and is checked before commit.
    "ALTER TABLE messages ADD COLUMN sender_account TEXT;
     UPDATE messages SET sender_account =
        (SELECT remote_account FROM conversations c WHERE c.id = messages.conversation_id)
        WHERE outgoing = 0;
     INSERT INTO conversations (remote_account, created_at)
        SELECT recipient, min(created_at) FROM outbox GROUP BY recipient
        ON CONFLICT (remote_account) DO NOTHING;
     ALTER TABLE outbox ADD COLUMN conversation_id INTEGER REFERENCES conversations(id);
     UPDATE outbox SET conversation_id =
        (SELECT id FROM conversations c WHERE c.remote_account = outbox.recipient);
     CREATE TABLE conversations_v5 (
        id INTEGER PRIMARY KEY,
        direct_peer TEXT UNIQUE,
        display_name TEXT,
        notification_label TEXT,
        created_at INTEGER NOT NULL
     );
     INSERT INTO conversations_v5 (id, direct_peer, display_name, notification_label, created_at)
        SELECT id, remote_account, display_name, notification_label, created_at FROM conversations;
     DROP TABLE conversations;
     ALTER TABLE conversations_v5 RENAME TO conversations;
     CREATE TABLE conversation_members (
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        account_id TEXT NOT NULL,
        PRIMARY KEY (conversation_id, account_id)
     ) WITHOUT ROWID;
     CREATE INDEX members_by_account ON conversation_members (account_id, conversation_id);
     INSERT INTO conversation_members (conversation_id, account_id)
        SELECT id, direct_peer FROM conversations;",
    // v6: the practice. Each therapist's published profile (ours too, under
    // our own account id), the clients' consents to its texting policy
    // (kept on both sides), and local notices in a conversation (kind 1:
    // written by this device, never sent, e.g. the out-of-hours notice).
    "CREATE TABLE practice_profiles (
        account_id TEXT PRIMARY KEY,
        revision INTEGER NOT NULL,
        profile BLOB NOT NULL,
        updated_at INTEGER NOT NULL
     );
     CREATE TABLE consents (
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        account_id TEXT NOT NULL,
        policy_version INTEGER NOT NULL,
        policy_sha256 BLOB NOT NULL,
        accepted_at INTEGER NOT NULL,
        device_id INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, account_id, policy_version)
     );
     ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;",
    // v7: appointment reminders. The bots a therapist introduced (with the
    // identity key they were introduced under); on a client, each
    // appointment a trusted bot told us of and the reminder messages that
    // carry its buttons; on a bot, the inbox of replies and texts its
    // engine has yet to handle (durable: a crash between the sync and the
    // engine loses none).
    "CREATE TABLE trusted_bots (
        account_id TEXT PRIMARY KEY,
        identity_key BLOB NOT NULL,
        introduced_by TEXT NOT NULL,
        introduced_at INTEGER NOT NULL
     );
     CREATE TABLE appointments (
        bot_account TEXT NOT NULL,
        appointment_ref TEXT NOT NULL,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        starts_at INTEGER NOT NULL,
        time_zone TEXT NOT NULL,
        state INTEGER NOT NULL,
        reply INTEGER,
        acknowledged INTEGER,
        accepted INTEGER,
        PRIMARY KEY (bot_account, appointment_ref)
     );
     CREATE TABLE reminder_messages (
        message_row INTEGER PRIMARY KEY REFERENCES messages(id),
        bot_account TEXT NOT NULL,
        appointment_ref TEXT NOT NULL,
        choices INTEGER NOT NULL
     );
     CREATE TABLE bot_inbox (
        id INTEGER PRIMARY KEY,
        from_account TEXT NOT NULL,
        appointment_ref TEXT,
        choice INTEGER,
        body TEXT,
        received_at INTEGER NOT NULL
     );",
    // v8: the audit log. Append-only (triggers refuse UPDATE and DELETE),
    // each row hash-chained to the one before; the head is signed with
    // the account's identity key from time to time. Opaque ids only.
    "CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject INTEGER,
        detail INTEGER,
        prev BLOB NOT NULL,
        hash BLOB NOT NULL
     );
     CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TABLE audit_signatures (
        seq INTEGER PRIMARY KEY,
        hash BLOB NOT NULL,
        signature BLOB NOT NULL,
        at INTEGER NOT NULL
     );",
    // v9: retention. Each conversation's disappearing-messages timer
    // (agreed by both sides), whether it is archived (purged), and, on a
    // therapist's device told to keep until exported, the newest message
    // row an export covered.
    "ALTER TABLE conversations ADD COLUMN retention_seconds INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE conversations ADD COLUMN exported_through INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX messages_by_age ON messages (conversation_id, received_at);",
    // v10: the prekey counts and the last-resort lookups read an index,
    // not every row: `last_resort` sits after a 3 KB Kyber record, so a
    // table scan walked each row's overflow pages.
    "CREATE INDEX kyber_prekeys_by_kind ON kyber_prekeys (last_resort, created_at);",
    // v11: received GUIDs keyed by the relay's timestamp first, in one
    // B-tree (no rowid table beside the index). GUIDs are random, so keyed
    // by GUID alone every received envelope dirtied its own index page;
    // the relay's timestamps grow, so a page of envelopes now lands on the
    // last few. A redelivered envelope keeps its timestamp. Rows from
    // before keep their processing time as the timestamp: a redelivery of
    // one of those passes this check and is refused by libsignal instead
    // (its message key is spent).
    "CREATE TABLE processed_envelopes_v11 (
        server_timestamp INTEGER NOT NULL,
        guid BLOB NOT NULL,
        processed_at INTEGER NOT NULL,
        PRIMARY KEY (server_timestamp, guid)
     ) WITHOUT ROWID;
     INSERT INTO processed_envelopes_v11 (server_timestamp, guid, processed_at)
        SELECT processed_at, guid, processed_at FROM processed_envelopes;
     DROP TABLE processed_envelopes;
     ALTER TABLE processed_envelopes_v11 RENAME TO processed_envelopes;",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the schema to `target` (tests use targets below current to build
/// old databases).
pub fn migrate(conn: &Connection, target: u32) -> Result<()> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found >= target.min(CURRENT_VERSION) {
        return Ok(());
    }
    // A step may rebuild a table others refer to (SQLite's documented
    // way: foreign keys off outside the transaction, checked before
    // commit), so the check is ours for the length of the migration.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let result = (found..target.min(CURRENT_VERSION)).try_for_each(|v| step(conn, v));
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    result
}

fn step(conn: &Connection, v: u32) -> Result<()> {
    let sql = MIGRATIONS
        .get(v as usize)
        .ok_or_else(|| Error::Internal("migration index".into()))?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(sql)?;
    let dangling: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if dangling != 0 {
        // Rolled back on drop: the database stays at version `v`.
        return Err(Error::Corrupt);
    }
    tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
    tx.commit()?;
    tracing::info!(from = v, to = v + 1, "migrated schema");
    Ok(())
}
