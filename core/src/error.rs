//! The one error type of alcove-core's public surface.
//!
//! Variants carry opaque ids only (account ids, device ids), never content
//! or names, so an error can be logged or shown without leaking anything.

use libsignal_protocol::SignalProtocolError;

/// Everything that can go wrong in alcove-core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key given does not open this database. The file was not touched.
    #[error("wrong database key")]
    WrongKey,
    /// The database file failed SQLCipher's page authentication or SQLite's
    /// integrity checks: it was corrupted or tampered with.
    #[error("database file is corrupt or was tampered with")]
    Corrupt,
    /// The storage device is full; nothing was committed.
    #[error("storage is full")]
    StorageFull,
    /// The database was written by a newer Alcove than this one.
    #[error("database schema version {found} is newer than supported version {supported}")]
    SchemaTooNew { found: u32, supported: u32 },
    /// A database error that is neither a wrong key, corruption nor a full disk.
    #[error("storage error: {0}")]
    Storage(String),
    /// The account has not been created in this database yet.
    #[error("no account in this database")]
    NoAccount,
    /// `create` was called on a database that already holds an account.
    #[error("this database already holds an account")]
    AccountExists,
    /// Input that does not parse: bad protobuf, truncated or garbage bytes.
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// Content of a format version newer than this build understands.
    #[error("content version {found} is not supported (newest known: {supported})")]
    UnsupportedContentVersion { found: u32, supported: u32 },
    /// Content that parsed but carries no body this build knows.
    #[error("content has no body this version understands")]
    UnknownContent,
    /// This envelope was already processed; it was not stored again.
    #[error("envelope already processed")]
    DuplicateEnvelope,
    /// The ratchet says this message was already decrypted (a replay under a
    /// new envelope id). Nothing was stored.
    #[error("message already decrypted (replay)")]
    DuplicateMessage,
    /// The remote identity key changed and the change has not been accepted.
    /// Sending is refused until `accept_identity_change`.
    #[error("identity key of account {account_id} changed; verify and accept before sending")]
    IdentityChanged { account_id: String },
    /// No session with that device; fetch a prekey bundle first.
    #[error("no session with {account_id}.{device_id}")]
    NoSession { account_id: String, device_id: u32 },
    /// The envelope could not be decrypted (bad MAC, wrong keys, garbage).
    /// No state was changed.
    #[error("decryption failed: {0}")]
    Decrypt(String),
    /// A prekey bundle that fails signature checks or is otherwise invalid.
    #[error("invalid prekey bundle: {0}")]
    InvalidBundle(String),
    /// Our signed prekey or Kyber last-resort key is badly overdue for
    /// rotation; refuse to send until prekeys are refreshed.
    #[error("prekey rotation is overdue; refresh prekeys before sending")]
    PrekeyRotationOverdue,
    /// A sealed-sender envelope whose sender certificate does not verify
    /// against the trust root we pinned at enrolment (tampered, signed by
    /// another relay, or no trust root pinned). Nothing was stored.
    #[error("sender certificate does not verify against the pinned trust root")]
    InvalidSenderCertificate,
    /// A sealed-sender envelope whose (otherwise valid) sender certificate
    /// had expired when it was received. Nothing was stored.
    #[error("sender certificate has expired")]
    SenderCertificateExpired,
    /// A sealed-sender envelope that claims to come from this very device.
    #[error("sealed-sender message from this device")]
    SealedSenderSelfSend,
    /// A safety number that does not match ours.
    #[error("safety number does not match")]
    SafetyNumberMismatch,
    /// A recovery code that cannot be one: mistyped, truncated, or its
    /// check does not match. Nothing was written.
    #[error("invalid recovery code")]
    InvalidRecoveryCode,
    /// The recovery code does not open this backup. Nothing was written.
    #[error("the recovery code does not open this backup")]
    BackupWrongCode,
    /// The backup file is not a backup, is truncated or was changed.
    #[error("the backup file is damaged or incomplete")]
    BackupCorrupt,
    /// The backup holds another account than the one expected.
    #[error("the backup belongs to another account")]
    BackupWrongAccount,
    /// The relay could not be reached or the connection broke. Nothing was
    /// lost: unsent messages stay in the outbox, unacked mail at the relay.
    #[error("network: {0}")]
    Network(String),
    /// The relay's TLS certificate is not trusted: the platform's trust
    /// store refused it (`unknown_issuer`: no CA this device trusts issued
    /// it; `expired`, `not_yet_valid`, `wrong_host`, `revoked`,
    /// `untrusted`), or it is not the one the invite card pins
    /// (`pin_mismatch`). Retrying will not help: the practice must fix its
    /// certificate or send a card with its pin. Nothing was sent; nothing
    /// was lost (unsent messages stay in the outbox).
    #[error("the relay's TLS certificate is not trusted: {reason}")]
    UntrustedCertificate { reason: &'static str },
    /// The relay refused our device credentials (unknown or wrong). Not a
    /// revocation: nothing is wiped on it.
    #[error("the relay refused this device's credentials")]
    Unauthorized,
    /// The relay says this device was revoked (its own authenticated
    /// answer, 403 `device_revoked`). The client has wiped the account's
    /// files and is unusable; the shell deletes its key.
    #[error("this device was removed from its account")]
    DeviceRevoked,
    /// The invite token is unknown or already used.
    #[error("invite is invalid or already used")]
    InvalidInvite,
    /// Another reader (another process) is draining this mailbox now.
    #[error("mailbox is being read by another process")]
    MailboxBusy,
    /// Another process holds the sync lock on this database.
    #[error("another process is syncing this account")]
    Locked,
    /// An invite card that cannot be used: not a card, another version, a
    /// checksum that does not match (mistyped or truncated), malformed
    /// fields, or expired. `reason` is a fixed code.
    #[error("invalid invite card: {reason}")]
    InvalidCard { reason: &'static str },
    /// The relay served a bundle (or trust root) for the card's therapist
    /// that does not match the card: enrolment stopped, nothing kept.
    #[error("the relay's keys for this card's therapist do not match the card")]
    CardMismatch,
    /// The therapist's texting policy (`policy_version`) must be accepted
    /// before texting; the text is kept and goes after the consent.
    #[error("the practice's texting policy (version {policy_version}) must be accepted first")]
    ConsentRequired { policy_version: u32 },
    /// The client is locked (its database closed, its key dropped):
    /// unlock with the key first.
    #[error("the client is locked; unlock with the key first")]
    ClientLocked,
    /// Any other refusal from the relay.
    #[error("relay refused the request: HTTP {status} {code}")]
    Relay { status: u16, code: String },
    /// Invalid argument from the caller (bad device id, empty text, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A bug or an invariant broken inside a dependency (including a caught
    /// panic). No state was committed.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt,
            Some(ErrorCode::DiskFull) => Error::StorageFull,
            _ => Error::Storage(e.to_string()),
        }
    }
}

impl From<SignalProtocolError> for Error {
    fn from(e: SignalProtocolError) -> Self {
        match e {
            SignalProtocolError::UntrustedIdentity(addr) => Error::IdentityChanged {
                account_id: addr.name().to_owned(),
            },
            SignalProtocolError::SessionNotFound(addr) => Error::NoSession {
                account_id: addr.name().to_owned(),
                device_id: u32::from(addr.device_id()),
            },
            SignalProtocolError::DuplicatedMessage(_, _) => Error::DuplicateMessage,
            SignalProtocolError::SealedSenderSelfSend => Error::SealedSenderSelfSend,
            SignalProtocolError::InvalidProtobufEncoding
            | SignalProtocolError::CiphertextMessageTooShort(_)
            | SignalProtocolError::UnrecognizedCiphertextVersion(_)
            | SignalProtocolError::UnrecognizedMessageVersion(_)
            | SignalProtocolError::LegacyCiphertextVersion(_)
            | SignalProtocolError::InvalidMessage(_, _)
            | SignalProtocolError::InvalidMacKeyLength(_)
            // Parse failures of keys inside hostile input (e.g. an empty
            // ephemeral key in a sealed-sender message): not our bug.
            | SignalProtocolError::NoKeyTypeIdentifier
            | SignalProtocolError::WrongKEMKeyType(_, _)
            | SignalProtocolError::BadKeyType(_)
            | SignalProtocolError::BadKeyLength(_, _)
            | SignalProtocolError::BadKEMKeyType(_)
            | SignalProtocolError::BadKEMKeyLength(_, _)
            | SignalProtocolError::BadKEMCiphertextLength(_, _)
            | SignalProtocolError::InvalidPreKeyId
            | SignalProtocolError::InvalidSignedPreKeyId
            | SignalProtocolError::InvalidKyberPreKeyId
            | SignalProtocolError::SignatureValidationFailed
            | SignalProtocolError::InvalidSealedSenderMessage(_)
            | SignalProtocolError::UnknownSealedSenderVersion(_) => Error::Decrypt(e.to_string()),
            SignalProtocolError::ApplicationCallbackError(_, source) => {
                let source: &(dyn std::error::Error + 'static) = &*source;
                match source.downcast_ref::<Error>() {
                    Some(ours) => ours.clone(),
                    None => Error::Internal(source.to_string()),
                }
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<prost::DecodeError> for Error {
    fn from(_: prost::DecodeError) -> Self {
        Error::Malformed("protobuf does not decode")
    }
}

impl From<libsignal_protocol::FingerprintError> for Error {
    fn from(e: libsignal_protocol::FingerprintError) -> Self {
        Error::Internal(format!("fingerprint: {e}"))
    }
}
