//! A new account: created on this device and registered with the relay
//! by a one-time invite. On failure nothing is left on disk.

use std::path::Path;

use alcove_proto::relay::RegisterRequest;
use rand::RngCore;

use super::{random_hex, Client};
use crate::account::Account;
use crate::db::{DbKey, StorageLayout};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::invite_card::InviteCard;
use crate::relay_client::{Credentials, RelayClient};

pub(crate) fn remove_db_files(path: &Path) {
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
        Self::enroll_pinned(path, key, relay_url, invite, layout, None).await
    }

    /// Like [`Client::enroll_with`], for a relay under a private CA: its
    /// TLS certificate's SHA-256 is pinned now and for every later open.
    pub async fn enroll_pinned(
        path: &Path,
        key: &DbKey,
        relay_url: &str,
        invite: &str,
        layout: StorageLayout,
        tls_pin: Option<[u8; 32]>,
    ) -> Result<Client> {
        let relay = RelayClient::with_pin(relay_url, tls_pin)?;
        if crate::wipe::in_progress(path) {
            crate::wipe::wipe(path)?;
        }
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
            if let Some(pin) = &tls_pin {
                account.set_relay_tls_pin(pin)?;
            }
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

impl Client {
    /// Enrols a client from a therapist's invite card (its text, as
    /// scanned or pasted), with the name the client chose to be shown as
    /// (a pseudonym is fine). No trust on first use: the card's therapist
    /// identity is pinned, the relay's trust root and the therapist's
    /// served bundle must match the card (`CardMismatch` otherwise), and
    /// on any failure nothing is left on disk. The conversation with the
    /// therapist exists when this returns, and the client's introduction
    /// is queued (sent now if the relay can be reached).
    pub async fn enroll_by_card(
        path: &Path,
        key: &DbKey,
        card: &str,
        display_name: &str,
        layout: StorageLayout,
    ) -> Result<Client> {
        let card = InviteCard::parse_current(card)?;
        crate::conversations::types::display_name(display_name)
            .ok_or_else(|| Error::InvalidArgument("display name".into()))?;
        let client = Self::enroll_pinned(
            path,
            key,
            &card.relay_url,
            &card.token,
            layout,
            card.tls_certificate_sha256,
        )
        .await?;
        match client.adopt_card(&card, display_name).await {
            Ok(()) => Ok(client),
            Err(e) => {
                drop(client);
                remove_db_files(path);
                Err(e)
            }
        }
    }

    async fn adopt_card(&self, card: &InviteCard, display_name: &str) -> Result<()> {
        if !card.trust_root.is_empty() {
            let pinned = self.account(|a| a.trust_root())?;
            if pinned.as_deref() != Some(&card.trust_root[..]) {
                return Err(Error::CardMismatch);
            }
        }
        let therapist = &card.therapist_account;
        self.account(|a| a.pin_identity(therapist, &card.therapist_identity_key))?;
        let conversation = self.conversation_with(therapist)?;
        match self
            .fetch_sessions(therapist, None, Deadline::unbounded())
            .await
        {
            Ok(()) => {}
            // The relay served another identity for the card's therapist,
            // or has no such account: the card and the relay disagree.
            Err(Error::IdentityChanged { .. }) | Err(Error::Relay { status: 404, .. }) => {
                return Err(Error::CardMismatch)
            }
            Err(e) => return Err(e),
        }
        self.account(|a| a.compose_introduction(conversation, display_name))?;
        if let Err(e) = self.flush_outbox(None).await {
            // Queued: the next sync sends it.
            tracing::debug!(error = %e, "introduction waits in the outbox");
        }
        Ok(())
    }

    /// For a therapist: mints a one-time client invite at the relay
    /// (quota and expiry are the relay's: `Relay { 403, "not_permitted" }`
    /// for an account that is not a therapist, `{ 429, "invite_quota" }`
    /// when too many are open) and makes its card.
    pub async fn mint_invite_card(&self, expires_in_hours: u32) -> Result<InviteCard> {
        self.wiping_if_revoked(self.mint_invite_card_unguarded(expires_in_hours).await)
    }

    async fn mint_invite_card_unguarded(&self, expires_in_hours: u32) -> Result<InviteCard> {
        let creds = self.creds()?;
        let minted = self.relay.mint_invite(&creds, expires_in_hours).await?;
        self.invite_card(&minted.token, Some(minted.expires_at_ms))
    }

    /// The invite card for a one-time `token` (from the relay's invite
    /// endpoint or the practice admin), naming this account as the
    /// therapist: the relay URL, our identity key and the pinned trust
    /// root come from here, so the card cannot disagree with us.
    pub fn invite_card(&self, token: &str, expires_at: Option<u64>) -> Result<InviteCard> {
        let (identity_key, trust_root, tls_pin) = self.account(|a| {
            Ok((
                a.identity_key(),
                a.trust_root()?.unwrap_or_default(),
                a.relay_tls_pin()?,
            ))
        })?;
        let card = InviteCard {
            relay_url: self.relay.base_url().trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            therapist_account: self.account_id.clone(),
            therapist_identity_key: identity_key,
            trust_root,
            tls_certificate_sha256: tls_pin,
            expires_at,
        };
        // Whatever we make must parse: the same checks a client runs.
        InviteCard::parse(&card.encode())
    }
}
