//! alcove-core: Signal-protocol sessions (PQXDH, Double Ratchet with SPQR)
//! over one encrypted SQLCipher database per account.
//!
//! Everything about a client — messages, names, who talks to whom — lives
//! only in that database, opened with a raw 256-bit key the shell keeps in
//! the Android Keystore or iOS Keychain. libsignal does all cryptography.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod account;
pub mod audit;
pub mod backup;
mod client;
mod content;
mod conversations;
mod credentials;
mod db;
mod deadline;
mod drive;
mod error;
mod events;
pub mod export;
mod identity;
mod inbound;
mod invite_card;
mod lease;
pub mod logging;
mod notification_settings;
mod outbox;
mod outgoing;
pub mod practice;
mod prekeys;
mod private_file;
mod relay_client;
pub mod reminders;
pub mod retention;
mod schema;
mod sealed;
mod session;
mod stages;
mod store;
mod time;
pub mod tls;
mod tls_pin;
pub mod wipe;

pub use account::{validate_account_id, Account};
pub use client::{
    Client, Notification, SendReport, SyncReport, HIDDEN_BODY, HIDDEN_TITLE, LEASE_TTL_MS,
    MAX_NOTIFICATIONS, PAGE_SIZE,
};
pub use content::MAX_CONTENT_LEN;
pub use conversations::{Conversation, ConversationId, Message, MessageKind, MessageStatus};
pub use db::{Cipher, DbKey, StorageLayout};
pub use deadline::{Deadline, MIN_CALL_TIME};
pub use error::{Error, Result};
pub use events::{SyncEvent, MAX_EVENTS};
pub use identity::{IdentityStatus, SafetyNumber};
pub use inbound::{EnvelopeOutcome, Received, MAX_CIPHERTEXT_LEN};
pub use invite_card::{InviteCard, MAX_CARD_LEN};
pub use lease::RATCHET_LEASE;
pub use notification_settings::NotificationPrivacy;
pub use outbox::OutboxItem;
pub use outgoing::Outgoing;
pub use prekeys::{MAX_PER_UPLOAD, OVERDUE_AFTER_MS, REFILL_BELOW, ROTATE_AFTER_MS};
pub use relay_client::{Credentials, RelayClient, SendOutcome};
pub use sealed::{CERT_REFRESH_MARGIN_MS, DELIVERY_KEY_LEN};
pub use stages::SyncStages;

pub use alcove_proto as proto;

/// `n` bytes from the operating system's CSPRNG (via `rand`).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

#[doc(hidden)]
/// For migration tests: the schema version this build writes, and a way to
/// build a database at an older version.
pub mod testing {
    pub use crate::schema::CURRENT_VERSION;

    /// Encrypts any content body for `remote_account`, skipping the
    /// checks the compose functions make: for hostile-input tests that
    /// play a peer sending what a well-behaved client never would.
    pub fn encrypt_content(
        account: &mut crate::Account,
        remote_account: &str,
        body: alcove_proto::content::content::Body,
    ) -> crate::Result<crate::Outgoing> {
        account.encrypt_raw(remote_account, body)
    }

    pub fn create_at_version(
        path: &std::path::Path,
        key: &crate::DbKey,
        version: u32,
    ) -> crate::Result<rusqlite::Connection> {
        create_at_version_with(path, key, version, crate::StorageLayout::Standard)
    }

    pub fn create_at_version_with(
        path: &std::path::Path,
        key: &crate::DbKey,
        version: u32,
        layout: crate::StorageLayout,
    ) -> crate::Result<rusqlite::Connection> {
        crate::db::open_at(path, key, crate::Cipher::SqlCipher, layout, version)
    }
}
