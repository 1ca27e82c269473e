//! A new account: created on this device and registered with the relay
//! by a one-time invite. On failure nothing is left on disk.

use std::path::Path;

use alcove_proto::relay::RegisterRequest;
use rand::RngCore;

use super::{random_hex, Client};
use crate::account::Account;
use crate::db::{DbKey, StorageLayout};
use crate::error::{Error, Result};
use crate::relay_client::{Credentials, RelayClient};

fn remove_db_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal", ".keycheck"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

impl Client {
    /// Creates a new account in a new database at `path` and registers it
    /// with the relay using a one-time invite. On failure nothing is left
    /// behind.
    pub async fn enroll(path: &Path, key: &DbKey, relay_url: &str, invite: &str) -> Result<Client> {
        Self::enroll_with(path, key, relay_url, invite, StorageLayout::Standard).await
    }

    /// Like [`Client::enroll`], creating the database in `layout`
    /// (`SharedContainer` for an iOS app-group file shared with the NSE).
    pub async fn enroll_with(
        path: &Path,
        key: &DbKey,
        relay_url: &str,
        invite: &str,
        layout: StorageLayout,
    ) -> Result<Client> {
        let relay = RelayClient::new(relay_url)?;
        if path.exists() {
            return Err(Error::AccountExists);
        }
        let account_id = random_hex(16);
        let result = async {
            let mut account = Account::create_in(path, key, &account_id, 1, layout)?;
            let prekeys = account.initial_prekeys()?;
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            let delivery_key = crate::random_bytes(crate::DELIVERY_KEY_LEN);
            let req = RegisterRequest {
                invite_token: invite.to_owned(),
                account_id: account_id.clone(),
                registration_id: account.registration_id(),
                identity_key: account.identity_key(),
                auth_secret: secret.clone(),
                prekeys: Some(prekeys),
                delivery_key: delivery_key.clone(),
            };
            let resp = relay.register(&req).await?;
            if resp.device_id != account.device_id() || resp.account_id != account_id {
                return Err(Error::Internal(
                    "relay assigned an unexpected device".into(),
                ));
            }
            // Sealed sender: pin the relay's trust root now, over the
            // channel that carried the one-time invite; it never changes
            // silently afterwards. A relay without one gets plain sends.
            if !resp.trust_root.is_empty() {
                account.pin_trust_root(&resp.trust_root)?;
                account.set_delivery_key(&delivery_key)?;
            }
            let creds = Credentials {
                account_id: account_id.clone(),
                device_id: resp.device_id,
                secret: zeroize::Zeroizing::new(secret),
            };
            account.save_credentials(&creds)?;
            tracing::info!(device = resp.device_id, "enrolled");
            Ok(account)
        }
        .await;
        match result {
            Ok(account) => Self::from_parts(path.to_path_buf(), account, relay),
            Err(e) => {
                remove_db_files(path);
                Err(e)
            }
        }
    }
}
