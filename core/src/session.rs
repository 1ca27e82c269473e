//! Sessions: PQXDH from a prekey bundle, the devices we hold sessions
//! with, and forgetting the ones the relay says are gone.

use std::time::SystemTime;

use alcove_proto::relay::DeviceBundle;
use libsignal_protocol::{kem, process_prekey_bundle, IdentityKey, PreKeyBundle, PublicKey};
use rusqlite::Connection;

use crate::account::{address, Account};
use crate::drive::drive;
use crate::error::{Error, Result};
use crate::store::{self, signal_keys::Stores};

impl Account {
    /// Starts a PQXDH session with one device of `remote_account` from its
    /// prekey bundle (as the relay hands it out). Checks the bundle's
    /// signatures; a changed identity key is recorded as pending and
    /// reported as `IdentityChanged`.
    pub fn process_bundle(&mut self, remote_account: &str, bundle: &DeviceBundle) -> Result<()> {
        let addr = address(remote_account, bundle.device_id)?;
        let b = to_libsignal_bundle(bundle)?;
        let tx = self.ratchet_tx()?;
        let mut stores = Stores::new(&tx, self.identity, self.registration_id);
        let now = SystemTime::now();
        let result = drive(process_prekey_bundle(
            &addr,
            &mut stores.sessions,
            &mut stores.identities,
            &b,
            now,
            &mut rand::rng(),
        ));
        if let Err(Error::IdentityChanged { .. }) = &result {
            // Keep the new key as pending so the user can compare and accept.
            drive(libsignal_protocol::IdentityKeyStore::save_identity(
                &mut stores.identities,
                &addr,
                &IdentityKey::decode(&bundle.identity_key)
                    .map_err(|_| bad_bundle("identity key"))?,
            ))?;
            tx.commit()?;
            return result;
        }
        result.map_err(|e| match e {
            Error::Decrypt(m) => Error::InvalidBundle(m),
            other => other,
        })?;
        stores.sessions.flush()?;
        tx.commit()?;
        tracing::debug!(device = bundle.device_id, "session established");
        Ok(())
    }

    /// Device ids of `remote_account` we hold sessions with.
    pub fn session_devices(&self, remote_account: &str) -> Result<Vec<u32>> {
        session_devices(&self.conn, remote_account)
    }

    /// Forgets sessions with devices the relay says are gone or stale.
    pub fn drop_sessions(&mut self, remote_account: &str, devices: &[u32]) -> Result<()> {
        let tx = self.ratchet_tx()?;
        for d in devices {
            store::signal_keys::delete_session(&tx, remote_account, *d)?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(crate) fn session_devices(conn: &Connection, remote_account: &str) -> Result<Vec<u32>> {
    store::signal_keys::session_devices(conn, remote_account)
}

fn bad_bundle(what: &str) -> Error {
    Error::InvalidBundle(what.into())
}

fn to_libsignal_bundle(b: &DeviceBundle) -> Result<PreKeyBundle> {
    let signed = b
        .signed_prekey
        .as_ref()
        .ok_or_else(|| bad_bundle("signed prekey missing"))?;
    let kyber = b
        .kyber_prekey
        .as_ref()
        .ok_or_else(|| bad_bundle("kyber prekey missing"))?;
    let one_time = b
        .one_time_prekey
        .as_ref()
        .map(|p| {
            PublicKey::deserialize(&p.public_key)
                .map(|k| (p.id.into(), k))
                .map_err(|_| bad_bundle("one-time prekey"))
        })
        .transpose()?;
    PreKeyBundle::new(
        b.registration_id,
        crate::account::device_id(b.device_id)?,
        one_time,
        signed.id.into(),
        PublicKey::deserialize(&signed.public_key).map_err(|_| bad_bundle("signed prekey"))?,
        signed.signature.clone(),
        kyber.id.into(),
        kem::PublicKey::deserialize(&kyber.public_key).map_err(|_| bad_bundle("kyber prekey"))?,
        kyber.signature.clone(),
        IdentityKey::decode(&b.identity_key).map_err(|_| bad_bundle("identity key"))?,
    )
    .map_err(|e| Error::InvalidBundle(e.to_string()))
}
