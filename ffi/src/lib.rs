//! alcove-ffi: the UniFFI surface over alcove-core. A thin, typed facade:
//! it converts types and catches panics; all logic lives in the core.
//! Kotlin and Swift bindings are generated from this library (library mode).
#![forbid(unsafe_code)]

mod client;
mod errors;
mod events;
mod types;

pub use client::AlcoveClient;
pub use errors::AlcoveError;
pub use events::{AlcoveEvent, AlcoveListener, ListenerHandle};
pub use types::{
    Conversation, ConversationId, Message, MessageStatus, Notification, NotificationPrivacy,
    PushKind, SafetyNumber, SyncReport,
};

uniffi::setup_scaffolding!();

/// A fresh random 32-byte database key, for shells that have none yet
/// (store it in the Keystore / Keychain at once).
#[uniffi::export]
pub fn generate_database_key() -> Vec<u8> {
    alcove_core::random_bytes(32)
}

/// What a notification shows when content is hidden: the default, and
/// what the iOS Notification Service Extension shows before (or instead
/// of) a sync. Decided in the core, so every shell shows the same.
#[uniffi::export]
pub fn hidden_notification() -> Notification {
    alcove_core::Notification::hidden(0).into()
}
