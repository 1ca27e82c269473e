//! libsignal's store traits over the account's SQLCipher connection.
//!
//! Every call runs synchronous SQL and returns at once, so libsignal's
//! `?Send` futures complete on first poll (see `crate::drive`). Session
//! records are cached for the life of one `Stores` (one page of
//! envelopes, one transaction) and written back by `flush`, instead of
//! being re-serialised for every message.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use libsignal_protocol::{
    CiphertextMessageType, Direction, GenericSignedPreKey, IdentityChange, IdentityKey,
    IdentityKeyPair, IdentityKeyStore, KyberPreKeyId, KyberPreKeyRecord, KyberPreKeyStore,
    PreKeyId, PreKeyRecord, PreKeyStore, ProtocolAddress, PublicKey, SenderKeyRecord,
    SenderKeyStore, SessionRecord, SessionStore, SignalProtocolError, SignedPreKeyId,
    SignedPreKeyRecord, SignedPreKeyStore,
};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::error::Error;
use crate::store::identities;
use crate::time::now_ms;

type SResult<T> = std::result::Result<T, SignalProtocolError>;

/// Wraps one of our errors so it survives the trip through libsignal and is
/// unwrapped again by `From<SignalProtocolError> for Error`.
fn cb(e: impl Into<Error>) -> SignalProtocolError {
    SignalProtocolError::ApplicationCallbackError("alcove store", Box::new(e.into()))
}

pub(crate) fn address_key(addr: &ProtocolAddress) -> String {
    format!("{}.{}", addr.name(), u32::from(addr.device_id()))
}

/// libsignal wants each store as a separate `&mut`, so each trait gets a
/// small type; all share the one connection (and so one transaction).
pub(crate) struct Stores<'c> {
    pub(crate) sessions: Sessions<'c>,
    pub(crate) identities: Identities<'c>,
    pub(crate) prekeys: PreKeys<'c>,
    pub(crate) signed: SignedPreKeys<'c>,
    pub(crate) kyber: KyberPreKeys<'c>,
    /// Groups (couples and family therapy) build on this; tested below.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) sender_keys: SenderKeys<'c>,
}

impl<'c> Stores<'c> {
    pub(crate) fn new(
        conn: &'c Connection,
        identity: IdentityKeyPair,
        registration_id: u32,
    ) -> Self {
        Self {
            sessions: Sessions {
                conn,
                cache: HashMap::new(),
                dirty: HashSet::new(),
                staged: HashMap::new(),
                spent: Cell::new(Duration::ZERO),
            },
            identities: Identities {
                conn,
                identity,
                registration_id,
                changed: Vec::new(),
                known: RefCell::new(HashMap::new()),
                spent: Cell::new(Duration::ZERO),
            },
            prekeys: PreKeys { conn },
            signed: SignedPreKeys { conn },
            kyber: KyberPreKeys { conn },
            sender_keys: SenderKeys { conn },
        }
    }
}

pub(crate) struct Identities<'c> {
    conn: &'c Connection,
    identity: IdentityKeyPair,
    registration_id: u32,
    /// Accounts whose key changed (newly pending) since the last
    /// `take_changed`: the inbound path reports them with the envelope
    /// that showed the change, without a second look at the table.
    changed: Vec<String>,
    /// Keys read or written during this page, so libsignal's two or three
    /// identity lookups per message cost one query per sender per page.
    /// Cleared when an envelope is rolled back (`forget_page`).
    known: RefCell<HashMap<String, Option<identities::Keys>>>,
    /// Time spent in these callbacks (the sync's stage table).
    spent: Cell<Duration>,
}

impl Identities<'_> {
    pub(crate) fn take_changed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changed)
    }

    /// An envelope was rolled back: what it wrote is gone, so is the cache.
    pub(crate) fn forget_page(&mut self) {
        self.known.get_mut().clear();
    }

    fn keys(&self, account: &str) -> SResult<Option<identities::Keys>> {
        if let Some(k) = self.known.borrow().get(account) {
            return Ok(k.clone());
        }
        let k = identities::keys(self.conn, account).map_err(cb)?;
        self.known
            .borrow_mut()
            .insert(account.to_owned(), k.clone());
        Ok(k)
    }
}

/// Runs a store callback, adding its time to `spent`.
fn timed<T>(spent: &Cell<Duration>, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    spent.set(spent.get() + t.elapsed());
    r
}

impl Stores<'_> {
    /// Time spent in libsignal's callbacks into the identity and session
    /// stores since the last call.
    pub(crate) fn take_callback_time(&self) -> Duration {
        self.identities.spent.take() + self.sessions.spent.take()
    }
}
pub(crate) struct PreKeys<'c> {
    conn: &'c Connection,
}
pub(crate) struct SignedPreKeys<'c> {
    conn: &'c Connection,
}
pub(crate) struct KyberPreKeys<'c> {
    conn: &'c Connection,
}
pub(crate) struct SenderKeys<'c> {
    conn: &'c Connection,
}

/// Session records, cached for one page. Writes by libsignal are *staged*
/// per envelope: `commit_staged` after the envelope's savepoint is
/// released, `drop_staged` after it is rolled back, so a failed envelope
/// leaves no trace even in the cache. `flush` writes the page's changes.
pub(crate) struct Sessions<'c> {
    conn: &'c Connection,
    cache: HashMap<String, SessionRecord>,
    dirty: HashSet<String>,
    staged: HashMap<String, SessionRecord>,
    spent: Cell<Duration>,
}

impl Sessions<'_> {
    pub(crate) fn commit_staged(&mut self) {
        for (key, rec) in self.staged.drain() {
            self.dirty.insert(key.clone());
            self.cache.insert(key, rec);
        }
    }

    pub(crate) fn drop_staged(&mut self) {
        self.staged.clear();
    }

    /// Writes changed session records. Call before commit.
    pub(crate) fn flush(&mut self) -> crate::Result<()> {
        self.commit_staged();
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO sessions (address, record) VALUES (?1, ?2)")?;
        for key in self.dirty.drain() {
            if let Some(rec) = self.cache.get(&key) {
                stmt.execute(params![key, rec.serialize()?])?;
            }
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl IdentityKeyStore for Identities<'_> {
    async fn get_identity_key_pair(&self) -> SResult<IdentityKeyPair> {
        Ok(self.identity)
    }

    async fn get_local_registration_id(&self) -> SResult<u32> {
        Ok(self.registration_id)
    }

    /// A new key for a known account is kept as *pending*: the trusted key
    /// stays until the user accepts the change.
    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> SResult<IdentityChange> {
        let start = Instant::now();
        let new = identity.serialize();
        let name = address.name();
        let r = match self.keys(name)? {
            None => {
                identities::insert(self.conn, name, &new, now_ms()).map_err(cb)?;
                self.known.get_mut().insert(
                    name.to_owned(),
                    Some(identities::Keys {
                        trusted: new.to_vec(),
                        pending: None,
                    }),
                );
                IdentityChange::NewOrUnchanged
            }
            Some(k) if k.trusted[..] == new[..] => IdentityChange::NewOrUnchanged,
            Some(k) => {
                if k.pending.as_deref() != Some(&new[..]) {
                    identities::set_pending(self.conn, name, &new, now_ms()).map_err(cb)?;
                    self.known.get_mut().insert(
                        name.to_owned(),
                        Some(identities::Keys {
                            trusted: k.trusted.clone(),
                            pending: Some(new.to_vec()),
                        }),
                    );
                    self.changed.push(name.to_owned());
                    tracing::warn!(target: "alcove::identity", "remote identity key changed; sending blocked until accepted");
                }
                IdentityChange::ReplacedExisting
            }
        };
        self.spent.set(self.spent.get() + start.elapsed());
        Ok(r)
    }

    async fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        direction: Direction,
    ) -> SResult<bool> {
        if direction == Direction::Receiving {
            // As Signal: receiving is never blocked; a changed key is recorded
            // as pending by `save_identity` and blocks sending instead.
            return Ok(true);
        }
        timed(&self.spent, || {
            Ok(match self.keys(address.name())? {
                None => true,
                Some(k) => k.pending.is_none() && k.trusted[..] == identity.serialize()[..],
            })
        })
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SResult<Option<IdentityKey>> {
        timed(&self.spent, || {
            self.keys(address.name())?
                .map(|k| IdentityKey::decode(&k.trusted))
                .transpose()
        })
    }
}

#[async_trait(?Send)]
impl PreKeyStore for PreKeys<'_> {
    async fn get_pre_key(&self, id: PreKeyId) -> SResult<PreKeyRecord> {
        let rec: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT record FROM prekeys WHERE id = ?1")
            .and_then(|mut s| s.query_row([u32::from(id)], |r| r.get(0)).optional())
            .map_err(cb)?;
        match rec {
            Some(b) => PreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidPreKeyId),
        }
    }

    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> SResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO prekeys (id, record) VALUES (?1, ?2)",
                params![u32::from(id), record.serialize()?],
            )
            .map_err(cb)?;
        Ok(())
    }

    async fn remove_pre_key(&mut self, id: PreKeyId) -> SResult<()> {
        self.conn
            .execute("DELETE FROM prekeys WHERE id = ?1", [u32::from(id)])
            .map_err(cb)?;
        Ok(())
    }
}

#[async_trait(?Send)]
impl SignedPreKeyStore for SignedPreKeys<'_> {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SResult<SignedPreKeyRecord> {
        let rec: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT record FROM signed_prekeys WHERE id = ?1")
            .and_then(|mut s| s.query_row([u32::from(id)], |r| r.get(0)).optional())
            .map_err(cb)?;
        match rec {
            Some(b) => SignedPreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidSignedPreKeyId),
        }
    }

    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> SResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?1, ?2, ?3)",
                params![u32::from(id), record.serialize()?, now_ms()],
            )
            .map_err(cb)?;
        Ok(())
    }
}

#[async_trait(?Send)]
impl KyberPreKeyStore for KyberPreKeys<'_> {
    async fn get_kyber_pre_key(&self, id: KyberPreKeyId) -> SResult<KyberPreKeyRecord> {
        let rec: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT record FROM kyber_prekeys WHERE id = ?1")
            .and_then(|mut s| s.query_row([u32::from(id)], |r| r.get(0)).optional())
            .map_err(cb)?;
        match rec {
            Some(b) => KyberPreKeyRecord::deserialize(&b),
            None => Err(SignalProtocolError::InvalidKyberPreKeyId),
        }
    }

    async fn save_kyber_pre_key(
        &mut self,
        id: KyberPreKeyId,
        record: &KyberPreKeyRecord,
    ) -> SResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO kyber_prekeys (id, record, last_resort, created_at) VALUES (?1, ?2, 0, ?3)",
                params![u32::from(id), record.serialize()?, now_ms()],
            )
            .map_err(cb)?;
        Ok(())
    }

    /// One-time Kyber keys are deleted on use; the last-resort key stays,
    /// and a base key seen twice with it is a replay and refused.
    async fn mark_kyber_pre_key_used(
        &mut self,
        id: KyberPreKeyId,
        signed_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> SResult<()> {
        let last_resort: Option<bool> = self
            .conn
            .query_row(
                "SELECT last_resort FROM kyber_prekeys WHERE id = ?1",
                [u32::from(id)],
                |r| r.get(0),
            )
            .optional()
            .map_err(cb)?;
        match last_resort {
            Some(false) => {
                self.conn
                    .execute("DELETE FROM kyber_prekeys WHERE id = ?1", [u32::from(id)])
                    .map_err(cb)?;
            }
            _ => {
                let inserted = self
                    .conn
                    .execute(
                        "INSERT OR IGNORE INTO kyber_base_keys_seen (kyber_id, signed_id, base_key) VALUES (?1, ?2, ?3)",
                        params![u32::from(id), u32::from(signed_id), &base_key.serialize()[..]],
                    )
                    .map_err(cb)?;
                if inserted == 0 {
                    return Err(SignalProtocolError::InvalidMessage(
                        CiphertextMessageType::PreKey,
                        "reused base key",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl SessionStore for Sessions<'_> {
    async fn load_session(&self, address: &ProtocolAddress) -> SResult<Option<SessionRecord>> {
        timed(&self.spent, || {
            let key = address_key(address);
            if let Some(rec) = self.staged.get(&key).or_else(|| self.cache.get(&key)) {
                return Ok(Some(rec.clone()));
            }
            let rec: Option<Vec<u8>> = self
                .conn
                .prepare_cached("SELECT record FROM sessions WHERE address = ?1")
                .and_then(|mut s| s.query_row([&key], |r| r.get(0)).optional())
                .map_err(cb)?;
            rec.map(|b| SessionRecord::deserialize(&b)).transpose()
        })
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> SResult<()> {
        let start = Instant::now();
        self.staged.insert(address_key(address), record.clone());
        self.spent.set(self.spent.get() + start.elapsed());
        Ok(())
    }
}

#[async_trait(?Send)]
impl SenderKeyStore for SenderKeys<'_> {
    async fn store_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
        record: &SenderKeyRecord,
    ) -> SResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO sender_keys (address, distribution_id, record) VALUES (?1, ?2, ?3)",
                params![address_key(sender), &distribution_id.as_bytes()[..], record.serialize()?],
            )
            .map_err(cb)?;
        Ok(())
    }

    async fn load_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
    ) -> SResult<Option<SenderKeyRecord>> {
        let rec: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT record FROM sender_keys WHERE address = ?1 AND distribution_id = ?2",
                params![address_key(sender), &distribution_id.as_bytes()[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(cb)?;
        rec.map(|b| SenderKeyRecord::deserialize(&b)).transpose()
    }
}

/// Forgets the session with one device of `remote_account`.
pub(crate) fn delete_session(
    conn: &Connection,
    remote_account: &str,
    device: u32,
) -> crate::Result<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE address = ?1")?
        .execute([format!("{remote_account}.{device}")])?;
    Ok(())
}

/// The device ids of `remote_account` we hold sessions with, in order.
pub(crate) fn session_devices(conn: &Connection, remote_account: &str) -> crate::Result<Vec<u32>> {
    let prefix = format!("{remote_account}.");
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM sessions WHERE substr(address, 1, length(?1)) = ?1 ORDER BY address",
    )?;
    let rows = stmt.query_map([&prefix], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let a = row?;
        if let Some(d) = a.strip_prefix(&prefix).and_then(|d| d.parse().ok()) {
            out.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, Cipher, DbKey};
    use crate::drive::drive;
    use libsignal_protocol::{
        create_sender_key_distribution_message, group_decrypt, group_encrypt,
        process_sender_key_distribution_message, DeviceId, SenderKeyDistributionMessage,
    };

    /// Sender keys (libsignal's group cipher) round-trip through the
    /// SQLCipher-backed `SenderKeyStore`, across a reopen of the database.
    #[test]
    fn sender_keys_persist_in_the_encrypted_store() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let (ka, kb) = (DbKey::random(), DbKey::random());
        let ident = IdentityKeyPair::generate(&mut rand::rng());
        let sender = ProtocolAddress::new("acct-a".into(), DeviceId::new(1).unwrap());
        let group = Uuid::from_bytes([7; 16]);
        let skdm_bytes = {
            let conn = db::open(&pa, &ka, Cipher::SqlCipher).unwrap();
            let mut s = Stores::new(&conn, ident, 1);
            let skdm = drive(create_sender_key_distribution_message(
                &sender,
                group,
                &mut s.sender_keys,
                &mut rand::rng(),
            ))
            .unwrap();
            skdm.serialized().to_vec()
        };
        {
            let conn = db::open(&pb, &kb, Cipher::SqlCipher).unwrap();
            let mut s = Stores::new(&conn, ident, 2);
            let skdm = SenderKeyDistributionMessage::try_from(&skdm_bytes[..]).unwrap();
            drive(process_sender_key_distribution_message(
                &sender,
                &skdm,
                &mut s.sender_keys,
            ))
            .unwrap();
        }
        let ct = {
            let conn = db::open(&pa, &ka, Cipher::SqlCipher).unwrap();
            let mut s = Stores::new(&conn, ident, 1);
            drive(group_encrypt(
                &mut s.sender_keys,
                &sender,
                group,
                b"family session at 5",
                &mut rand::rng(),
            ))
            .unwrap()
        };
        let conn = db::open(&pb, &kb, Cipher::SqlCipher).unwrap();
        let mut s = Stores::new(&conn, ident, 2);
        let pt = drive(group_decrypt(ct.serialized(), &mut s.sender_keys, &sender)).unwrap();
        assert_eq!(pt, b"family session at 5");
    }
}
