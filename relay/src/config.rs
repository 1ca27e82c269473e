//! Relay configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::limits::Limits;
use crate::storage::StorageConfig;

pub use crate::clock::{system_clock, Clock};

/// How long acknowledged mail waits for the deleter by default.
pub const DEFAULT_ACK_DELETE_INTERVAL: Duration = Duration::from_millis(200);
/// The longest `ack_delete_interval` a configuration may set: acked
/// ciphertext stays in the database that long.
pub const MAX_ACK_DELETE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

#[derive(Clone)]
pub struct RelayConfig {
    pub bind: SocketAddr,
    /// Where the relay keeps its state (an SQLite file by default).
    pub storage: StorageConfig,
    /// Required unless `bind` is a loopback address.
    pub tls: Option<TlsConfig>,
    /// Envelopes older than this are never delivered and are purged
    /// (30 days, as Signal's server).
    pub message_ttl: Duration,
    /// Most envelopes one device's mailbox holds.
    pub max_queue: u32,
    /// Most bytes one device's mailbox holds. Signed (unsealed) mail, all
    /// a stranger can send, may fill only half of each cap.
    pub max_queue_bytes: u64,
    /// Most devices one account holds at once (phone, tablet, …); device
    /// ids stop at 127 whatever this says.
    pub max_devices: u32,
    /// Largest request body accepted.
    pub max_body: usize,
    /// How long a mailbox reader keeps its exclusive lease without renewing.
    pub reader_lease: Duration,
    /// Minimum spacing of wake-ups to one device (bursts coalesce).
    pub push_coalesce: Duration,
    /// SQLite: mail deleted on the request path (acks, expiry) leaves the
    /// WAL within this of its commit — a truncating checkpoint off the
    /// request path, at most once per interval (and at shutdown).
    pub wal_scrub_interval: Duration,
    /// SQLite: acknowledged mail is answered at once and deleted by a
    /// background deleter at most this long after the ack (acks of many
    /// requests share one transaction), and at shutdown; zero deletes it
    /// in the ack's own transaction. A PostgreSQL relay always does that:
    /// other relay processes read its mailboxes.
    pub ack_delete_interval: Duration,
    /// Sealed sender (certificates, delivery keys); `None` turns it off:
    /// clients then send with their credentials, as before.
    pub sealed_sender: Option<SealedSenderConfig>,
    /// Connection limits (`[limits]`).
    pub limits: Limits,
    /// Request rates per account and per address (`[rate_limits]`).
    pub rate_limits: crate::rate_limits::RateLimitConfig,
    /// Client invites minted by therapists' devices (`[invites]`).
    pub invites: InviteConfig,
    /// Whether a relay serving plain HTTP on loopback accepts push
    /// endpoints on loopback (tests, the demo). Turn off when a reverse
    /// proxy on the same host forwards to a loopback relay: otherwise a
    /// device could aim wake-ups at the host's own services.
    pub loopback_push_endpoints: bool,
    pub clock: Clock,
}

/// What a therapist's device may mint through `POST /v1/invites`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteConfig {
    /// Most invites one account holds that are neither used nor expired;
    /// another mint is refused (429 `invite_quota`) until one is.
    pub max_open_per_account: u32,
    /// Lifetime of a minted invite when the request names none.
    pub default_ttl: Duration,
    /// Longest lifetime a request may ask for.
    pub max_ttl: Duration,
}

impl Default for InviteConfig {
    fn default() -> Self {
        Self {
            max_open_per_account: 50,
            default_ttl: Duration::from_secs(7 * 24 * 3600),
            max_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Where the relay's sealed-sender keys live and how long the sender
/// certificates it issues stay valid. The keys are files, never rows of the
/// relay database: a copy of the database alone cannot mint certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSenderConfig {
    /// Directory holding `trust_root.pub`, `trust_root.key` (only needed to
    /// sign a new server certificate; may be moved offline afterwards),
    /// `server.key` and `server.cert`. `None`: `<db>.sealed-sender/` next
    /// to the SQLite database (a storage without a local file needs it
    /// set). Created with 0700/0600 permissions at first start
    /// when absent; a directory with only some of the files is refused.
    pub key_dir: Option<PathBuf>,
    /// Lifetime of an issued sender certificate (24 hours by default).
    /// Clients refresh theirs before it ends.
    pub cert_ttl: Duration,
}

impl Default for SealedSenderConfig {
    fn default() -> Self {
        Self {
            key_dir: None,
            cert_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl SealedSenderConfig {
    /// The key directory for a relay on `storage`; `None` when it is not
    /// set and the storage has no local file to keep it beside.
    pub fn key_dir_for(&self, storage: &StorageConfig) -> Option<PathBuf> {
        self.key_dir
            .clone()
            .or_else(|| storage.default_dir_for(".sealed-sender"))
    }
}

impl RelayConfig {
    /// Plain HTTP on a loopback address, loopback push endpoints not
    /// turned off: the test and demo mode, the only one in which push
    /// endpoints on loopback are allowed.
    pub fn loopback_test_mode(&self) -> bool {
        self.loopback_push_endpoints && self.tls.is_none() && self.bind.ip().is_loopback()
    }

    /// Defaults for a relay on `bind` over `storage` (a path means an
    /// SQLite file).
    pub fn new(bind: SocketAddr, storage: impl Into<StorageConfig>) -> Self {
        Self {
            bind,
            storage: storage.into(),
            tls: None,
            message_ttl: Duration::from_secs(30 * 24 * 3600),
            max_queue: 10_000,
            max_queue_bytes: 64 * 1024 * 1024,
            max_devices: 5,
            max_body: 256 * 1024,
            reader_lease: Duration::from_secs(30),
            push_coalesce: Duration::from_secs(1),
            wal_scrub_interval: Duration::from_secs(1),
            ack_delete_interval: DEFAULT_ACK_DELETE_INTERVAL,
            sealed_sender: Some(SealedSenderConfig::default()),
            limits: Limits::default(),
            rate_limits: Default::default(),
            invites: InviteConfig::default(),
            loopback_push_endpoints: true,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("bind", &self.bind)
            .field("storage", &self.storage)
            .field("tls", &self.tls)
            .field("message_ttl", &self.message_ttl)
            .field("max_queue", &self.max_queue)
            .field("sealed_sender", &self.sealed_sender)
            .field("limits", &self.limits)
            .field("invites", &self.invites)
            .finish_non_exhaustive()
    }
}
