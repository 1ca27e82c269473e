//! Test support: plays the relay's part (hands out bundles, wraps
//! ciphertexts in envelopes) so two real accounts can talk in-process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alcove_core::proto::relay::{DeviceBundle, OutgoingMessage, PreKeyUpload};
use alcove_core::proto::wire::Envelope;
use alcove_core::{Account, DbKey, Outgoing};
use rand::RngCore;

pub struct Peer {
    pub account: Account,
    pub key: DbKey,
    pub path: PathBuf,
    pub upload: PreKeyUpload,
    pub bundles_served: usize,
}

impl Peer {
    pub fn create(dir: &Path, name: &str) -> Peer {
        let path = dir.join(format!("{name}.db"));
        let key = DbKey::random();
        let account_id = format!("acct-{}", uuid_like());
        let mut account = Account::create(&path, &key, &account_id, 1).unwrap();
        let upload = account.initial_prekeys().unwrap();
        Peer {
            account,
            key,
            path,
            upload,
            bundles_served: 0,
        }
    }

    pub fn id(&self) -> String {
        self.account.account_id().to_owned()
    }

    /// What the relay would hand out: the next one-time keys, or the Kyber
    /// last-resort key (and no EC one-time key) once they run out.
    pub fn bundle(&mut self) -> DeviceBundle {
        let n = self.bundles_served;
        self.bundles_served += 1;
        DeviceBundle {
            device_id: self.account.device_id(),
            registration_id: self.account.registration_id(),
            identity_key: self.account.identity_key(),
            signed_prekey: self.upload.signed_prekey.clone(),
            kyber_prekey: self
                .upload
                .one_time_kyber_prekeys
                .get(n)
                .cloned()
                .or_else(|| self.upload.kyber_last_resort.clone()),
            one_time_prekey: self.upload.one_time_prekeys.get(n).cloned(),
        }
    }

    /// Closes the database and opens it again from disk.
    pub fn reopen(self) -> Peer {
        let Peer {
            account,
            key,
            path,
            upload,
            bundles_served,
        } = self;
        account.close().unwrap();
        let account = Account::open(&path, &key).unwrap();
        Peer {
            account,
            key,
            path,
            upload,
            bundles_served,
        }
    }
}

pub fn uuid_like() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn envelope_for(from: &Account, msg: &OutgoingMessage) -> Envelope {
    let mut guid = vec![0u8; 16];
    rand::rng().fill_bytes(&mut guid);
    Envelope {
        guid,
        r#type: msg.r#type,
        source_account: from.account_id().to_owned(),
        source_device: from.device_id(),
        destination_device: msg.destination_device,
        ciphertext: msg.ciphertext.clone(),
        server_timestamp: 1,
    }
}

pub fn single_envelope(from: &Account, out: &Outgoing) -> Envelope {
    assert_eq!(out.messages.len(), 1);
    envelope_for(from, &out.messages[0])
}

/// Every file of the database (main, WAL, SHM), concatenated.
/// What the relay stores for a sealed send: no source at all.
pub fn sealed_envelope(out: &Outgoing) -> Envelope {
    assert_eq!(out.messages.len(), 1);
    let m = &out.messages[0];
    assert_eq!(
        m.r#type,
        alcove_core::proto::wire::envelope::Type::SealedSender as i32
    );
    Envelope {
        guid: alcove_core::random_bytes(16),
        r#type: m.r#type,
        source_account: String::new(),
        source_device: 0,
        destination_device: m.destination_device,
        ciphertext: m.ciphertext.clone(),
        server_timestamp: 1,
    }
}

pub fn db_bytes(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every row `sql` returns, each column's value written out, for
/// comparing database states.
pub fn rows(account: &Account, sql: &str) -> Vec<Vec<u8>> {
    let conn = account.connection();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            let mut row = Vec::new();
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                row.extend(format!("{v:?}|").into_bytes());
            }
            Ok(row)
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A digest of all crypto and message state, to prove "no state change".
pub fn state_digest(account: &Account) -> Vec<Vec<u8>> {
    [
        "sessions",
        "identities",
        "prekeys",
        "signed_prekeys",
        "kyber_prekeys",
        "kyber_base_keys_seen",
        "messages",
        "conversations",
        "processed_envelopes",
    ]
    .iter()
    .flat_map(|table| rows(account, &format!("SELECT * FROM {table} ORDER BY 1")))
    .collect()
}

/// The database at `path` (with its WAL) copied to `dest` and opened: a
/// twin, to receive the same envelopes another way.
pub fn open_copy(path: &Path, key: &DbKey, dest: &Path) -> Account {
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = dest.as_os_str().to_owned();
        to.push(suffix);
        if Path::new(&from).exists() {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    Account::open(dest, key).unwrap()
}
