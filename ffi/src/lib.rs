//! alcove-ffi: the UniFFI surface over alcove-core. A thin, typed facade:
//! it converts types and catches panics; all logic lives in the core.
//! Kotlin and Swift bindings are generated from this library (library mode).
// The one exception is Android's JNI entry point (an exported symbol).
#![cfg_attr(not(target_os = "android"), forbid(unsafe_code))]
#![cfg_attr(target_os = "android", deny(unsafe_code))]

#[cfg(target_os = "android")]
#[allow(unsafe_code)]
mod android;
mod client;
mod errors;
mod events;
mod reminders;
mod safeguards;
mod types;
mod wipe;

pub use client::AlcoveClient;
pub use errors::AlcoveError;
pub use events::{AlcoveEvent, AlcoveListener, ListenerHandle};
pub use types::{
    Availability, AwayPeriod, Consent, Conversation, ConversationId, Message, MessageKind,
    MessageStatus, Notification, NotificationPrivacy, OfficeHours, PracticeProfile, PushKind,
    SafetyNumber, SyncReport, TextingPolicy,
};

uniffi::setup_scaffolding!();

/// A fresh random 32-byte database key, for shells that have none yet
/// (store it in the Keystore / Keychain at once).
#[uniffi::export]
pub fn generate_database_key() -> Vec<u8> {
    alcove_core::random_bytes(32)
}

/// What a card says, checked (version, checksum, fields, expiry), for the
/// app to show before enrolling. Opaque ids only.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InviteCardInfo {
    pub relay_url: String,
    pub therapist_account: String,
    pub expires_at: Option<u64>,
}

/// Checks an invite card's text without enrolling: `InvalidCard` with a
/// fixed reason for a mistyped, truncated, foreign or expired card.
#[uniffi::export]
pub fn check_invite_card(card: String) -> Result<InviteCardInfo, AlcoveError> {
    client::guard(|| {
        let c = alcove_core::InviteCard::parse_current(&card)?;
        Ok(InviteCardInfo {
            relay_url: c.relay_url,
            therapist_account: c.therapist_account,
            expires_at: c.expires_at,
        })
    })
}

/// An invite card as a QR code (an SVG document) for the app to show.
#[uniffi::export]
pub fn invite_card_qr_svg(card: String) -> Result<String, AlcoveError> {
    client::guard(|| Ok(alcove_core::InviteCard::parse(&card)?.qr_svg()?))
}

/// What a notification shows when content is hidden: the default, and
/// what the iOS Notification Service Extension shows before (or instead
/// of) a sync. Decided in the core, so every shell shows the same.
#[uniffi::export]
pub fn hidden_notification() -> Notification {
    alcove_core::Notification::hidden(0).into()
}
