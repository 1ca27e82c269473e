//! Prekey generation, upload batches and rotation, following Signal's client
//! policy: at most 100 one-time keys per upload, refill when the relay holds
//! fewer than 10, rotate the signed prekey and the Kyber last-resort key
//! every 2 days, keep superseded ones for 30 days so in-flight first
//! messages still decrypt, and refuse to send when rotation is badly overdue.

use alcove_proto::relay::{PreKey, PreKeyCount, PreKeyUpload, SignedPreKey};
use libsignal_protocol::{
    kem, GenericSignedPreKey, KeyPair, KyberPreKeyId, KyberPreKeyRecord, PreKeyRecord,
    SignedPreKeyRecord, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::account::Account;
use crate::error::{Error, Result};

pub const MAX_PER_UPLOAD: u32 = 100;
pub const REFILL_BELOW: u32 = 10;
pub const ROTATE_AFTER_MS: u64 = 2 * 24 * 3600 * 1000;
/// Superseded signed / last-resort keys are kept this long.
pub const KEEP_OLD_MS: u64 = 30 * 24 * 3600 * 1000;
/// Past this age without rotation, sending is refused.
pub const OVERDUE_AFTER_MS: u64 = 14 * 24 * 3600 * 1000;

/// Ids live in 1..=0xFFFFFF (as Signal's) and wrap.
const MAX_ID: u32 = 0xFF_FFFF;

fn next_id(conn: &Connection, counter: &str, n: u32) -> Result<u32> {
    let cur: u32 = conn
        .query_row("SELECT value FROM kv WHERE key = ?1", [counter], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(1);
    let next = (cur - 1 + n) % MAX_ID + 1;
    conn.execute(
        "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
        params![counter, next],
    )?;
    Ok(cur)
}

fn wrap(id: u32, i: u32) -> u32 {
    (id - 1 + i) % MAX_ID + 1
}

impl Account {
    /// Everything a new device uploads: signed prekey, Kyber last-resort key
    /// and a full batch of one-time EC and Kyber keys.
    pub fn initial_prekeys(&mut self) -> Result<PreKeyUpload> {
        let now = self.now();
        let tx = self.conn.transaction()?;
        let upload = PreKeyUpload {
            signed_prekey: Some(new_signed_prekey(&tx, &self.identity, now)?),
            kyber_last_resort: Some(new_kyber(&tx, &self.identity, now, true)?),
            one_time_prekeys: new_one_time(&tx, MAX_PER_UPLOAD)?,
            one_time_kyber_prekeys: (0..MAX_PER_UPLOAD)
                .map(|_| new_kyber(&tx, &self.identity, now, false))
                .collect::<Result<_>>()?,
        };
        tx.commit()?;
        Ok(upload)
    }

    /// What to upload now, given how many one-time keys the relay still
    /// holds for us; `None` when nothing is due.
    pub fn prekey_upkeep(&mut self, on_relay: &PreKeyCount) -> Result<Option<PreKeyUpload>> {
        let now = self.now();
        let tx = self.conn.transaction()?;
        let mut upload = PreKeyUpload::default();
        let mut due = false;
        if rotation_due(&tx, "signed_prekeys", now, ROTATE_AFTER_MS)? {
            upload.signed_prekey = Some(new_signed_prekey(&tx, &self.identity, now)?);
            due = true;
        }
        if rotation_due(&tx, "kyber_prekeys", now, ROTATE_AFTER_MS)? {
            upload.kyber_last_resort = Some(new_kyber(&tx, &self.identity, now, true)?);
            due = true;
        }
        if on_relay.one_time_prekeys < REFILL_BELOW {
            upload.one_time_prekeys =
                new_one_time(&tx, MAX_PER_UPLOAD - on_relay.one_time_prekeys)?;
            due = true;
        }
        if on_relay.one_time_kyber_prekeys < REFILL_BELOW {
            upload.one_time_kyber_prekeys = (on_relay.one_time_kyber_prekeys..MAX_PER_UPLOAD)
                .map(|_| new_kyber(&tx, &self.identity, now, false))
                .collect::<Result<_>>()?;
            due = true;
        }
        // Drop superseded signed / last-resort keys past their grace period.
        let cutoff = now.saturating_sub(KEEP_OLD_MS) as i64;
        tx.execute(
            "DELETE FROM signed_prekeys WHERE created_at < ?1
               AND id != (SELECT id FROM signed_prekeys ORDER BY created_at DESC, id DESC LIMIT 1)",
            [cutoff],
        )?;
        tx.execute(
            "DELETE FROM kyber_prekeys WHERE last_resort = 1 AND created_at < ?1
               AND id != (SELECT id FROM kyber_prekeys WHERE last_resort = 1 ORDER BY created_at DESC, id DESC LIMIT 1)",
            [cutoff],
        )?;
        tx.commit()?;
        Ok(due.then_some(upload))
    }

    /// True when the signed prekey or Kyber last-resort key is so old that
    /// sending should stop until upkeep runs.
    pub fn prekey_rotation_overdue(&self) -> Result<bool> {
        let now = self.now();
        Ok(
            rotation_due(&self.conn, "signed_prekeys", now, OVERDUE_AFTER_MS)?
                || rotation_due(&self.conn, "kyber_prekeys", now, OVERDUE_AFTER_MS)?,
        )
    }

    /// Local one-time key counts (EC, Kyber) still unused.
    pub fn local_one_time_prekeys(&self) -> Result<(u32, u32)> {
        let ec = self
            .conn
            .query_row("SELECT count(*) FROM prekeys", [], |r| r.get(0))?;
        let kyber = self.conn.query_row(
            "SELECT count(*) FROM kyber_prekeys WHERE last_resort = 0",
            [],
            |r| r.get(0),
        )?;
        Ok((ec, kyber))
    }
}

fn rotation_due(conn: &Connection, table: &str, now: u64, age: u64) -> Result<bool> {
    let filter = if table == "kyber_prekeys" {
        " WHERE last_resort = 1"
    } else {
        ""
    };
    let newest: Option<i64> = conn.query_row(
        &format!("SELECT max(created_at) FROM {table}{filter}"),
        [],
        |r| r.get(0),
    )?;
    Ok(match newest {
        None => true,
        Some(t) => now.saturating_sub(t as u64) >= age,
    })
}

fn new_signed_prekey(
    conn: &Connection,
    identity: &libsignal_protocol::IdentityKeyPair,
    now: u64,
) -> Result<SignedPreKey> {
    let mut rng = rand::rng();
    let id = next_id(conn, "next_signed_prekey_id", 1)?;
    let pair = KeyPair::generate(&mut rng);
    let public = pair.public_key.serialize();
    let signature = identity
        .private_key()
        .calculate_signature(&public, &mut rng)
        .map_err(|e| Error::Internal(format!("signing prekey: {e}")))?;
    let record = SignedPreKeyRecord::new(
        id.into(),
        Timestamp::from_epoch_millis(now),
        &pair,
        &signature,
    );
    conn.execute(
        "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?1, ?2, ?3)",
        params![id, record.serialize()?, now as i64],
    )?;
    Ok(SignedPreKey {
        id,
        public_key: public.to_vec(),
        signature: signature.to_vec(),
    })
}

fn new_kyber(
    conn: &Connection,
    identity: &libsignal_protocol::IdentityKeyPair,
    now: u64,
    last_resort: bool,
) -> Result<SignedPreKey> {
    let id = next_id(conn, "next_kyber_prekey_id", 1)?;
    let record = KyberPreKeyRecord::generate(
        kem::KeyType::Kyber1024,
        KyberPreKeyId::from(id),
        identity.private_key(),
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO kyber_prekeys (id, record, last_resort, created_at, uploaded)
         VALUES (?1, ?2, ?3, ?4, 1)",
        params![id, record.serialize()?, last_resort, now as i64],
    )?;
    Ok(SignedPreKey {
        id,
        public_key: record.public_key()?.serialize().to_vec(),
        signature: record.signature()?,
    })
}

fn new_one_time(conn: &Connection, n: u32) -> Result<Vec<PreKey>> {
    let first = next_id(conn, "next_prekey_id", n)?;
    let mut rng = rand::rng();
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO prekeys (id, record, uploaded) VALUES (?1, ?2, 1)",
    )?;
    (0..n)
        .map(|i| {
            let id = wrap(first, i);
            let pair = KeyPair::generate(&mut rng);
            let record = PreKeyRecord::new(id.into(), &pair);
            stmt.execute(params![id, record.serialize()?])?;
            Ok(PreKey {
                id,
                public_key: pair.public_key.serialize().to_vec(),
            })
        })
        .collect()
}
