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
use rusqlite::Connection;

use crate::account::Account;
use crate::error::{Error, Result};
use crate::store::{self, prekeys::Rotating};

pub const MAX_PER_UPLOAD: u32 = 100;
pub const REFILL_BELOW: u32 = 10;
pub const ROTATE_AFTER_MS: u64 = 2 * 24 * 3600 * 1000;
/// Superseded signed / last-resort keys are kept this long.
pub const KEEP_OLD_MS: u64 = 30 * 24 * 3600 * 1000;
/// Past this age without rotation, sending is refused.
pub const OVERDUE_AFTER_MS: u64 = 14 * 24 * 3600 * 1000;

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
        if rotation_due(&tx, Rotating::SignedPrekey, now, ROTATE_AFTER_MS)? {
            upload.signed_prekey = Some(new_signed_prekey(&tx, &self.identity, now)?);
            due = true;
        }
        if rotation_due(&tx, Rotating::KyberLastResort, now, ROTATE_AFTER_MS)? {
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
        store::prekeys::prune_superseded(&tx, now.saturating_sub(KEEP_OLD_MS))?;
        tx.commit()?;
        Ok(due.then_some(upload))
    }

    /// True when the signed prekey or Kyber last-resort key is so old that
    /// sending should stop until upkeep runs.
    pub fn prekey_rotation_overdue(&self) -> Result<bool> {
        let now = self.now();
        Ok(
            rotation_due(&self.conn, Rotating::SignedPrekey, now, OVERDUE_AFTER_MS)?
                || rotation_due(&self.conn, Rotating::KyberLastResort, now, OVERDUE_AFTER_MS)?,
        )
    }

    /// Local one-time key counts (EC, Kyber) still unused.
    pub fn local_one_time_prekeys(&self) -> Result<(u32, u32)> {
        store::prekeys::one_time_counts(&self.conn)
    }
}

fn rotation_due(conn: &Connection, kind: Rotating, now: u64, age: u64) -> Result<bool> {
    Ok(match store::prekeys::newest(conn, kind)? {
        None => true,
        Some(t) => now.saturating_sub(t) >= age,
    })
}

fn new_signed_prekey(
    conn: &Connection,
    identity: &libsignal_protocol::IdentityKeyPair,
    now: u64,
) -> Result<SignedPreKey> {
    let mut rng = rand::rng();
    let id = store::prekeys::next_id(conn, "next_signed_prekey_id", 1)?;
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
    store::prekeys::insert_signed(conn, id, &record.serialize()?, now)?;
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
    let id = store::prekeys::next_id(conn, "next_kyber_prekey_id", 1)?;
    let record = KyberPreKeyRecord::generate(
        kem::KeyType::Kyber1024,
        KyberPreKeyId::from(id),
        identity.private_key(),
    )?;
    store::prekeys::insert_kyber(conn, id, &record.serialize()?, last_resort, now)?;
    Ok(SignedPreKey {
        id,
        public_key: record.public_key()?.serialize().to_vec(),
        signature: record.signature()?,
    })
}

fn new_one_time(conn: &Connection, n: u32) -> Result<Vec<PreKey>> {
    let first = store::prekeys::next_id(conn, "next_prekey_id", n)?;
    let mut rng = rand::rng();
    (0..n)
        .map(|i| {
            let id = store::prekeys::wrap(first, i);
            let pair = KeyPair::generate(&mut rng);
            let record = PreKeyRecord::new(id.into(), &pair);
            store::prekeys::insert_one_time(conn, id, &record.serialize()?)?;
            Ok(PreKey {
                id,
                public_key: pair.public_key.serialize().to_vec(),
            })
        })
        .collect()
}
