//! The one error type the shells see, and how every core error maps to
//! it. Payloads are opaque ids and fixed reason codes only.

use alcove_core as core;

/// Every error the shells can see; a sealed exception hierarchy in Kotlin,
/// an `Error` enum in Swift. Carries opaque ids only.
#[derive(Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum AlcoveError {
    #[error("wrong database key")]
    WrongKey,
    #[error("database is corrupt or was tampered with")]
    Corrupt,
    #[error("storage is full")]
    StorageFull,
    #[error("no account in this database")]
    NoAccount,
    #[error("the client is locked; unlock with the key first")]
    ClientLocked,
    /// Not a usable invite card: `reason` is a fixed code (`not_a_card`,
    /// `checksum_mismatch` for a mistyped or truncated card, `expired`, ...).
    #[error("invalid invite card: {reason}")]
    InvalidCard { reason: String },
    /// The relay's keys for the card's therapist do not match the card.
    #[error("the relay's keys for this therapist do not match the invite card")]
    CardMismatch,
    /// The practice's texting policy must be accepted first
    /// (`accept_policy`); the text is kept and goes after the consent.
    #[error("the texting policy (version {policy_version}) must be accepted first")]
    ConsentRequired { policy_version: u32 },
    #[error("network: {reason}")]
    Network { reason: String },
    /// The relay's TLS certificate is not trusted; `reason` is a fixed
    /// code: `unknown_issuer` (no CA this phone trusts issued it),
    /// `expired`, `not_yet_valid`, `wrong_host`, `revoked`, `untrusted`,
    /// or `pin_mismatch` (not the certificate the invite card pins).
    /// Retrying will not help; nothing was lost.
    #[error("the relay's TLS certificate is not trusted: {reason}")]
    UntrustedCertificate { reason: String },
    #[error("the relay refused this device's credentials")]
    Unauthorized,
    /// The practice (or another of the user's devices) removed this
    /// device: the account's files are deleted. Delete the key from the
    /// Keystore / Keychain and say "This device was removed by your
    /// practice".
    #[error("this device was removed from its account")]
    DeviceRevoked,
    #[error("invite is invalid or already used")]
    InvalidInvite,
    #[error("identity of {account_id} changed; verify and accept before sending")]
    IdentityChanged { account_id: String },
    #[error("no session with {account_id}")]
    NoSession { account_id: String },
    #[error("another process is syncing this account")]
    Busy,
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// A backup could not be restored: `invalid_recovery_code` (mistyped
    /// or truncated), `backup_wrong_code`, `backup_corrupt` (damaged or
    /// incomplete file), `backup_wrong_account`. Nothing was written.
    #[error("backup: {reason}")]
    Backup { reason: String },
    #[error("relay refused: HTTP {status}")]
    Relay { status: u16, code: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// A fixed reason for each core error that keeps a free-text payload. The
/// payloads of `Storage`, `Network`, `Decrypt`, ... are a dependency's
/// `to_string()` (SQL values, URLs with account ids, addresses), so they
/// never cross the FFI; this match has no wildcard, so a new core variant
/// must be given its `&'static str` here before the crate builds.
fn reason(e: &core::Error) -> &'static str {
    use core::Error as E;
    match e {
        E::WrongKey => "wrong_key",
        E::Corrupt => "corrupt",
        E::StorageFull => "storage_full",
        E::SchemaTooNew { .. } => "schema_too_new",
        E::Storage(_) => "storage",
        E::NoAccount => "no_account",
        E::AccountExists => "account_exists",
        E::Malformed(m) => m,
        E::UnsupportedContentVersion { .. } => "unsupported_content_version",
        E::UnknownContent => "unknown_content",
        E::DuplicateEnvelope => "duplicate_envelope",
        E::DuplicateMessage => "duplicate_message",
        E::IdentityChanged { .. } => "identity_changed",
        E::NoSession { .. } => "no_session",
        E::Decrypt(_) => "decrypt",
        E::InvalidBundle(_) => "invalid_bundle",
        E::PrekeyRotationOverdue => "prekey_rotation_overdue",
        E::InvalidSenderCertificate => "invalid_sender_certificate",
        E::SenderCertificateExpired => "sender_certificate_expired",
        E::SealedSenderSelfSend => "sealed_sender_self_send",
        E::SafetyNumberMismatch => "safety_number_mismatch",
        E::Network(_) => "network",
        E::UntrustedCertificate { reason } => reason,
        E::Unauthorized => "unauthorized",
        E::DeviceRevoked => "device_revoked",
        E::InvalidInvite => "invalid_invite",
        E::MailboxBusy => "mailbox_busy",
        E::Locked => "locked",
        E::ClientLocked => "client_locked",
        E::Relay { .. } => "relay",
        E::InvalidArgument(_) => "invalid_argument",
        E::Internal(_) => "internal",
        E::InvalidCard { reason } => reason,
        E::CardMismatch => "card_mismatch",
        E::ConsentRequired { .. } => "consent_required",
        E::InvalidRecoveryCode => "invalid_recovery_code",
        E::BackupWrongCode => "backup_wrong_code",
        E::BackupCorrupt => "backup_corrupt",
        E::BackupWrongAccount => "backup_wrong_account",
    }
}

impl From<core::Error> for AlcoveError {
    fn from(e: core::Error) -> Self {
        use core::Error as E;
        let reason = reason(&e).to_owned();
        match e {
            E::WrongKey => Self::WrongKey,
            E::Corrupt => Self::Corrupt,
            E::StorageFull => Self::StorageFull,
            E::NoAccount => Self::NoAccount,
            E::Network(_) => Self::Network { reason },
            E::UntrustedCertificate { .. } => Self::UntrustedCertificate { reason },
            E::Unauthorized => Self::Unauthorized,
            E::DeviceRevoked => Self::DeviceRevoked,
            E::InvalidInvite => Self::InvalidInvite,
            E::IdentityChanged { account_id } => Self::IdentityChanged { account_id },
            E::NoSession { account_id, .. } => Self::NoSession { account_id },
            E::Locked | E::MailboxBusy => Self::Busy,
            E::ClientLocked => Self::ClientLocked,
            E::InvalidCard { .. } => Self::InvalidCard { reason },
            E::CardMismatch => Self::CardMismatch,
            E::ConsentRequired { policy_version } => Self::ConsentRequired { policy_version },
            E::InvalidRecoveryCode
            | E::BackupWrongCode
            | E::BackupCorrupt
            | E::BackupWrongAccount => Self::Backup { reason },
            E::Relay { status, code } => Self::Relay { status, code },
            // Per-envelope sealed-sender refusals are counted as failed by
            // sync, never returned by a call; mapped for completeness.
            E::Malformed(_)
            | E::InvalidArgument(_)
            | E::InvalidSenderCertificate
            | E::SenderCertificateExpired
            | E::SealedSenderSelfSend => Self::InvalidInput { reason },
            _ => Self::Internal { reason },
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, AlcoveError>;

pub(crate) fn panic_error() -> AlcoveError {
    AlcoveError::Internal {
        reason: "panic inside alcove".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every core variant that carries a dependency's text, built with
    /// payloads that look like personal data: none of it may reach the
    /// FFI error's Display or fields.
    #[test]
    fn core_error_payloads_never_cross_the_ffi() {
        let secret = "https://relay.example/v1/acct-7f3a9c/devices?phone=+15551234567";
        let errors = [
            alcove_core::Error::Storage(format!("UNIQUE failed: contacts.name = '{secret}'")),
            alcove_core::Error::Network(format!("error sending request for url ({secret})")),
            alcove_core::Error::Decrypt(format!("invalid message from {secret}.1")),
            alcove_core::Error::InvalidBundle(format!("bad key for {secret}")),
            alcove_core::Error::InvalidArgument(format!("not an account: {secret}")),
            alcove_core::Error::Internal(format!("panic at {secret}")),
            alcove_core::Error::SchemaTooNew {
                found: 9,
                supported: 1,
            },
            alcove_core::Error::InvalidSenderCertificate,
        ];
        for e in errors {
            let ffi = AlcoveError::from(e.clone());
            let shown = format!("{ffi} {ffi:?}");
            for needle in [
                "acct-7f3a9c",
                "5551234567",
                "relay.example",
                "contacts.name",
            ] {
                assert!(!shown.contains(needle), "{e:?} leaked {needle}: {shown}");
            }
            assert!(!shown.is_empty());
        }
    }
}
