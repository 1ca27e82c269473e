//! Relay storage behind one backend-neutral trait: devices (public keys and
//! salted secret hashes only), prekeys, invite hashes and mailboxes of
//! ciphertext. SQLite ([`SqliteStorage`]) is the embedded default; a
//! PostgreSQL backend implements the same [`Storage`] trait, is chosen by a
//! [`StorageConfig`] variant, and must pass the same conformance suite
//! ([`conformance`]).
//!
//! The trait is async: a network database driver awaits, and the embedded
//! SQLite backend runs its blocking work on tokio's blocking pool, so the
//! API layer never blocks a runtime thread whichever backend it talks to.

mod migrations;
pub mod postgres;
mod sqlite;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alcove_proto::relay::{PreKeyBundles, PreKeyCount, PreKeyUpload};
use alcove_proto::wire::Envelope;

pub use postgres::{PostgresStorage, PostgresUrl};
pub use sqlite::SqliteStorage;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What a backend reports, whichever database it runs on. Domain outcomes
/// the API maps to HTTP statuses, plus `Busy` (try again) and `Backend`
/// (anything else). Messages never carry user data: no account ids, keys
/// or ciphertext, only what kind of failure it was.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The invite is unknown, already used or expired.
    #[error("invalid invite")]
    InvalidInvite,
    /// Registration with an account id that is taken.
    #[error("account exists")]
    AccountExists,
    /// No such account (or device).
    #[error("not found")]
    NotFound,
    /// The account holds its maximum of devices, or device ids ran out.
    #[error("too many devices")]
    TooManyDevices,
    /// The recipient's mailbox is at its quota.
    #[error("mailbox full")]
    MailboxFull,
    /// The minting account already holds its maximum of unused,
    /// unexpired invites.
    #[error("invite quota reached")]
    InviteQuota,
    /// The database is locked or overloaded right now; the same call may
    /// succeed later.
    #[error("storage busy")]
    Busy,
    /// The database server cannot be reached (refused, down, lost
    /// connection, a URL that does not parse); the same call may succeed
    /// once it is back. The reason never carries a password.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database was written by a newer relay.
    #[error("database schema version {0} is newer than this relay")]
    SchemaTooNew(u32),
    /// Any other failure of the backend, described without user data.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Where the relay keeps its state: one embedded SQLite file (the
/// default), or a PostgreSQL database shared by several relay processes
/// (config file `[storage] postgres = "..."`). Another backend is another
/// variant here; the API layer does not change.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageConfig {
    /// An SQLite database file, created (0600) if absent.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database (created by its administrator; the relay
    /// creates its tables), through a pool of at most `max_connections`.
    Postgres {
        url: PostgresUrl,
        max_connections: usize,
    },
}

/// The default pool size of a PostgreSQL-backed relay process.
pub const DEFAULT_POSTGRES_CONNECTIONS: usize = 16;

/// An opened backend, as the server needs it: PostgreSQL's extras (the
/// shared wake, shared rate limits) need the concrete type.
pub(crate) enum Opened {
    Local(Arc<dyn Storage>),
    Postgres(Arc<PostgresStorage>),
}

impl StorageConfig {
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        StorageConfig::Sqlite { path: path.into() }
    }

    /// A PostgreSQL database at `url`, with the default pool size.
    pub fn postgres(url: impl Into<String>) -> Self {
        StorageConfig::Postgres {
            url: PostgresUrl::new(url),
            max_connections: DEFAULT_POSTGRES_CONNECTIONS,
        }
    }

    /// The SQLite file, for tools that read it directly (tests, backups).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StorageConfig::Sqlite { path } => Some(path),
            StorageConfig::Postgres { .. } => None,
        }
    }

    /// Where the relay keeps files of its own (the sealed-sender keys)
    /// when not told: beside the SQLite file. `None` for a backend with no
    /// local file; its configuration must then name the directory.
    pub fn default_dir_for(&self, suffix: &str) -> Option<PathBuf> {
        match self {
            StorageConfig::Sqlite { path } => {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                Some(PathBuf::from(p))
            }
            StorageConfig::Postgres { .. } => None,
        }
    }

    /// Opens (and migrates) the backend.
    pub async fn open(&self) -> Result<Arc<dyn Storage>> {
        Ok(match self.open_backend().await? {
            Opened::Local(s) => s,
            Opened::Postgres(pg) => pg,
        })
    }

    pub(crate) async fn open_backend(&self) -> Result<Opened> {
        match self {
            StorageConfig::Sqlite { path } => {
                let path = path.clone();
                let storage = tokio::task::spawn_blocking(move || SqliteStorage::open(&path))
                    .await
                    .map_err(|_| StorageError::Backend("storage open task failed".into()))??;
                Ok(Opened::Local(Arc::new(storage)))
            }
            StorageConfig::Postgres {
                url,
                max_connections,
            } => Ok(Opened::Postgres(Arc::new(
                PostgresStorage::connect(url, *max_connections).await?,
            ))),
        }
    }
}

/// Paths, and database URLs without their password.
impl fmt::Display for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Sqlite { path } => write!(f, "SQLite {}", path.display()),
            StorageConfig::Postgres { url, .. } => fmt::Display::fmt(url, f),
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<PathBuf> for StorageConfig {
    fn from(path: PathBuf) -> Self {
        StorageConfig::sqlite(path)
    }
}

impl From<&PathBuf> for StorageConfig {
    fn from(path: &PathBuf) -> Self {
        StorageConfig::sqlite(path.clone())
    }
}

impl From<&Path> for StorageConfig {
    fn from(path: &Path) -> Self {
        StorageConfig::sqlite(path)
    }
}

impl From<&StorageConfig> for StorageConfig {
    fn from(c: &StorageConfig) -> Self {
        c.clone()
    }
}

/// What an account may do, fixed at registration by the invite it used
/// (never by the registration request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Texts its therapist; today's default.
    Client,
    /// May mint client invites (`POST /v1/invites`).
    Therapist,
    /// The practice's reminder bot.
    Bot,
}

impl Role {
    /// The name stored and printed (`client`, `therapist`, `bot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Therapist => "therapist",
            Role::Bot => "bot",
        }
    }

    /// The stored name back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "client" => Some(Role::Client),
            "therapist" => Some(Role::Therapist),
            "bot" => Some(Role::Bot),
            _ => None,
        }
    }

    /// The wire enum of `RegisterResponse.role`.
    pub fn to_proto(self) -> alcove_proto::relay::Role {
        match self {
            Role::Client => alcove_proto::relay::Role::Client,
            Role::Therapist => alcove_proto::relay::Role::Therapist,
            Role::Bot => alcove_proto::relay::Role::Bot,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| format!("unknown role {s:?} (client, therapist or bot)"))
    }
}

/// A device as registered: public identity, registration id and the salted
/// hash of its auth secret (never the secret).
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub registration_id: u32,
    pub identity_key: Vec<u8>,
    pub salt: Vec<u8>,
    pub secret_hash: Vec<u8>,
}

/// A device's salted secret hash as stored; `revoked` for the tombstone
/// of a revoked device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSecret {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// `alcove_proto::relay::push_registration::Kind` as i32.
    pub kind: i32,
    pub endpoint: String,
}

/// Where each envelope of a send went.
#[derive(Debug, Default)]
pub struct Enqueued {
    /// Devices that received a new envelope (not a duplicate).
    pub fresh: Vec<u32>,
}

/// How much one device's mailbox holds. Signed (unsealed) mail — all a
/// stranger can send, since sealed mail needs the recipient's delivery key
/// — may fill only half of it, by count and by bytes, so a flood from
/// strangers leaves room for the recipient's contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxQuota {
    pub max_envelopes: u32,
    pub max_bytes: u64,
}

/// What one mailbox holds now, as a backend counts it for the quota: an
/// envelope's size is the length of its encoding (as `fetch` returns it),
/// and it is signed when it names its sender (`source_account` set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    pub count: u64,
    pub bytes: u64,
    pub signed_count: u64,
    pub signed_bytes: u64,
}

impl MailboxQuota {
    /// Whether one more envelope of `size` bytes fits beside `queued`.
    /// Every backend decides with this one rule.
    pub fn admits(&self, queued: Queued, size: u64, signed: bool) -> bool {
        let total_ok = queued.count < u64::from(self.max_envelopes)
            && queued.bytes.saturating_add(size) <= self.max_bytes;
        let share_ok = !signed
            || (queued.signed_count < u64::from(self.max_envelopes / 2)
                && queued.signed_bytes.saturating_add(size) <= self.max_bytes / 2);
        total_ok && share_ok
    }
}

/// One round trip of a mailbox drain (`POST /v1/messages/sync`; `GET
/// /v1/messages` and `POST /v1/messages/ack` are special cases of it),
/// which a backend does in one transaction: take or renew `reader`'s
/// lease (nothing else happens when another reader's lease is live),
/// delete `ack` from this device's mailbox and the mail queued before
/// `not_before`, read the page after `after` (passing over `hidden`),
/// and let the lease go when `release` is set.
#[derive(Clone, Debug, Default)]
pub struct SyncStep {
    pub reader: String,
    /// The relay's clock now, and the end of the taken or renewed lease.
    pub now: u64,
    pub lease_until: u64,
    /// Envelopes queued before this are deleted, never returned.
    pub not_before: u64,
    /// GUIDs to delete from this device's mailbox (others are ignored).
    pub ack: Vec<Vec<u8>>,
    /// GUIDs acknowledged earlier whose delete is still to come
    /// ([`Storage::delete_acked`], run later off the request path): the
    /// step treats them as gone. It never returns them, and they count
    /// neither for `more` nor for `left`.
    pub hidden: Vec<Vec<u8>>,
    /// The page starts after this `seq` (0: at the oldest envelope).
    pub after: u64,
    /// Most envelopes on the page; 0 reads none (`more` still says
    /// whether any are queued after `after`).
    pub limit: u32,
    /// Most bytes of envelopes (their encoded sizes) on the page, except
    /// that a page with `limit` > 0 holds at least one envelope.
    pub max_bytes: u64,
    /// First pass over the page a step with `limit: skip` would return
    /// (same `after`, `hidden` and `max_bytes`); see [`PageCut`].
    pub skip: u32,
    /// Ends the lease after the rest is done.
    pub release: bool,
    /// Counts the device's one-time prekeys on the page with `more` false.
    pub prekeys: bool,
}

/// Acknowledged GUIDs of one device's mailbox, for
/// [`Storage::delete_acked`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckedMail {
    pub account_id: String,
    pub device_id: u32,
    pub guids: Vec<Vec<u8>>,
}

/// What a [`SyncStep`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Synced {
    /// Another reader holds a live lease: nothing was deleted or read.
    Busy,
    Page(SyncPage),
}

/// A queued envelope as stored: its GUID and its protobuf encoding, the
/// bytes the relay wrote when it queued it. A page is answered with these
/// bytes as they are (`api/page.rs`): 500 first messages are a megabyte,
/// and decoding them only to encode them again was half the relay's work
/// on a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEnvelope {
    pub guid: Vec<u8>,
    pub encoded: Vec<u8>,
}

impl StoredEnvelope {
    /// The envelope itself, for the callers that need its fields.
    pub fn decode(&self) -> Result<Envelope> {
        use prost::Message;
        Envelope::decode(&self.encoded[..])
            .map_err(|_| StorageError::Backend("stored envelope does not decode".into()))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPage {
    /// Oldest first.
    pub envelopes: Vec<StoredEnvelope>,
    /// Whether envelopes are queued after the last one returned.
    pub more: bool,
    /// The `seq` of the last envelope returned, or the step's `after`.
    pub cursor: u64,
    /// With `prekeys` asked for and `more` false.
    pub prekeys: Option<PreKeyCount>,
    /// With `release`: whether the mailbox still holds mail (the device
    /// gets no wake-up while it holds the lease, so it gets one now).
    pub left: bool,
    /// The `seq` the page follows: the last one passed over for the
    /// step's `skip`, or `after`.
    pub follows: u64,
}

/// Where a sync page starts and ends, decided row by row over the
/// mailbox's visible rows (hidden GUIDs left out) in `seq` order, so both
/// backends cut pages alike. With `skip`, the rows a page of `skip` would
/// hold come first and are passed over: the same rows a step without
/// `skip` returns, as long as nothing but appends happened in between
/// (an expiry in between passes over one more, which stays queued and is
/// delivered by a later drain).
#[derive(Debug)]
pub(crate) struct PageCut {
    skip: u32,
    limit: u32,
    max_bytes: u64,
    skipping: bool,
    skipped: u32,
    taken: u32,
    bytes: u64,
}

/// What [`PageCut::next`] makes of a row.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// In the page passed over.
    Skip,
    /// On the page.
    Take,
    /// Past the page's end: `more` is true, stop reading.
    Stop,
}

impl PageCut {
    pub(crate) fn new(step: &SyncStep) -> PageCut {
        PageCut {
            skip: step.skip,
            limit: step.limit,
            max_bytes: step.max_bytes,
            skipping: step.skip > 0,
            skipped: 0,
            taken: 0,
            bytes: 0,
        }
    }

    /// Rows worth reading: the page passed over, the page, and one more
    /// for `more`, beside the hidden ones.
    pub(crate) fn rows_wanted(&self, hidden: usize) -> i64 {
        i64::from(self.skip) + i64::from(self.limit) + 1 + hidden as i64
    }

    pub(crate) fn next(&mut self, size: u64) -> Cut {
        if self.skipping {
            let fits = self.skipped < self.skip
                && (self.skipped == 0 || self.bytes.saturating_add(size) <= self.max_bytes);
            if fits {
                self.skipped += 1;
                self.bytes = self.bytes.saturating_add(size);
                return Cut::Skip;
            }
            self.skipping = false;
            self.bytes = 0;
        }
        if self.taken == self.limit
            || (self.taken > 0 && self.bytes.saturating_add(size) > self.max_bytes)
        {
            return Cut::Stop;
        }
        self.taken += 1;
        self.bytes = self.bytes.saturating_add(size);
        Cut::Take
    }
}

/// The relay's state. Every method is one atomic step: a backend runs it
/// in one transaction (or an equivalent), so concurrent relay tasks — and,
/// with a shared database, concurrent relay processes — never see half of
/// one. Times are milliseconds since the Unix epoch, passed in by the
/// caller (the relay's clock), never read by the backend.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores the hash of a one-time invite token (never the token) for
    /// an account of `role` (the admin's invites).
    async fn create_invite(
        &self,
        token_hash: &[u8],
        role: Role,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<()>;
    /// Stores the hash of a one-time client invite minted by `minted_by`,
    /// all or nothing: `InviteQuota` (nothing stored) when that account
    /// already holds `max_open` invites that are neither used nor expired
    /// at `now`. Concurrent mints never pass the quota together.
    async fn mint_invite(
        &self,
        token_hash: &[u8],
        minted_by: &str,
        now: u64,
        expires_at: u64,
        max_open: u32,
    ) -> Result<()>;
    /// How many invites minted by `minted_by` are neither used nor
    /// expired at `now` (what `mint_invite` counts against its quota).
    async fn open_invites(&self, minted_by: &str, now: u64) -> Result<u32>;
    /// Creates the account (consuming the invite) with its first device,
    /// device 1; the account's role is the invite's. `InvalidInvite` for
    /// an unknown, used or expired invite; `AccountExists` leaves the
    /// invite unused. A used invite no longer names who minted it, so the
    /// database does not tie a therapist to the account it enrolled.
    /// `delivery_key_hash`: see `set_delivery_key`.
    async fn register(
        &self,
        invite_hash: &[u8],
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        delivery_key_hash: Option<&[u8]>,
        now: u64,
    ) -> Result<u32>;
    /// Adds the next device (ids are never reused, 127 at most);
    /// `TooManyDevices` when the account already has `max_devices`,
    /// `NotFound` for an unknown account.
    async fn add_device(
        &self,
        account_id: &str,
        device: &NewDevice,
        keys: &PreKeyUpload,
        now: u64,
        max_devices: u32,
    ) -> Result<u32>;
    /// Deletes a device, its keys, its reader lease and its queued mail
    /// (leaving no copy behind in the database's files), keeping only a
    /// tombstone with its hashed secret so the device can be told it was
    /// revoked. Device ids are never reused.
    async fn revoke_device(&self, account_id: &str, device_id: u32, now: u64) -> Result<()>;
    /// The account's role; `None` for an unknown account.
    async fn account_role(&self, account_id: &str) -> Result<Option<Role>>;
    /// Changes an account's role (the practice admin, on the relay's own
    /// database: an account registered before roles, or a therapist who
    /// left); `NotFound` for an unknown account.
    async fn set_account_role(&self, account_id: &str, role: Role) -> Result<()>;
    /// The account's registered identity key (what sender certificates bind).
    async fn identity_key(&self, account_id: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces the hash of the account's sealed-sender delivery key;
    /// `NotFound` for an unknown account.
    async fn set_delivery_key(&self, account_id: &str, hash: &[u8]) -> Result<()>;
    /// The stored delivery-key hash; `None` for an unknown account or one
    /// that never set a key.
    async fn delivery_key_hash(&self, account_id: &str) -> Result<Option<Vec<u8>>>;
    /// The hashed secret of a device, live or revoked: one lookup per
    /// authentication (a failed login costs one query), and a revoked
    /// device can be told what it is.
    async fn device_secret(&self, account_id: &str, device_id: u32)
        -> Result<Option<DeviceSecret>>;
    /// Stores the signed prekey and Kyber last-resort key (replacing the
    /// previous ones) and adds one-time keys (same id: replaced).
    async fn upload_prekeys(
        &self,
        account_id: &str,
        device_id: u32,
        keys: &PreKeyUpload,
    ) -> Result<()>;
    async fn prekey_count(&self, account_id: &str, device_id: u32) -> Result<PreKeyCount>;
    /// One bundle per device with a signed prekey, each one-time key
    /// handed out once (lowest id first); a device out of one-time Kyber
    /// keys gets its last-resort Kyber key, out of one-time EC keys none.
    /// `NotFound` for an unknown account.
    async fn take_bundles(&self, account_id: &str) -> Result<PreKeyBundles>;
    /// (device id, registration id) of every device of an account, by id;
    /// empty for an unknown account.
    async fn devices(&self, account_id: &str) -> Result<Vec<(u32, u32)>>;
    /// Queues each envelope in its `destination_device`'s mailbox, all or
    /// none: a GUID already queued there is skipped (not fresh), and one
    /// envelope over `quota` fails the whole call with `MailboxFull`.
    async fn enqueue(
        &self,
        account_id: &str,
        envelopes: &[Envelope],
        quota: &MailboxQuota,
    ) -> Result<Enqueued>;
    /// What the device's mailbox holds, as `enqueue` checks it against the
    /// quota on every send (a backend keeps it so that reading it does not
    /// grow with the queue). Always equal to the queue itself, after every
    /// insert, ack, expiry and revocation; empty for an unknown device.
    async fn mailbox_usage(&self, account_id: &str, device_id: u32) -> Result<Queued>;
    /// Oldest first, at most `limit`; returns (page, more). Envelopes
    /// queued before `not_before` are deleted, never returned.
    async fn fetch(
        &self,
        account_id: &str,
        device_id: u32,
        limit: u32,
        not_before: u64,
    ) -> Result<(Vec<Envelope>, bool)>;
    /// Deletes the named envelopes from this device's mailbox (unknown
    /// GUIDs are ignored), leaving no copy behind in the database's files.
    async fn ack(&self, account_id: &str, device_id: u32, guids: &[Vec<u8>]) -> Result<()>;
    /// Deletes the acknowledged envelopes of several mailboxes in one
    /// transaction, each GUID only from its own (account, device)
    /// mailbox, as [`Storage::ack`] does (unknown GUIDs and unknown
    /// devices are ignored), leaving no copy behind in the database's
    /// files; returns how many envelopes were deleted.
    async fn delete_acked(&self, batch: &[AckedMail]) -> Result<usize>;
    /// Deletes every envelope queued before `not_before`; returns how many.
    async fn purge_expired(&self, not_before: u64) -> Result<usize>;
    /// Takes or renews the device's single-reader lease until `until`;
    /// false while another reader holds an unexpired one.
    async fn acquire_reader(
        &self,
        account_id: &str,
        device_id: u32,
        reader: &str,
        now: u64,
        until: u64,
    ) -> Result<bool>;
    /// One step of a mailbox drain, in one transaction ([`SyncStep`]).
    /// `NotFound` for an unknown device.
    async fn sync(&self, account_id: &str, device_id: u32, step: &SyncStep) -> Result<Synced>;
    /// Resolves once mail was deleted whose bytes the backend scrubs from
    /// its files later rather than at once ([`Storage::scrub_deleted`]);
    /// never, for a backend that defers nothing.
    async fn deleted_mail(&self) {
        std::future::pending::<()>().await
    }
    /// Scrubs what earlier deletes left in the database's files where the
    /// backend defers it (SQLite: a truncating WAL checkpoint); nothing to
    /// do otherwise, and cheap when nothing was deleted since the last.
    async fn scrub_deleted(&self) -> Result<()> {
        Ok(())
    }
    /// Ends `reader`'s lease (another reader's lease stays).
    async fn release_reader(&self, account_id: &str, device_id: u32, reader: &str) -> Result<()>;
    /// Whether some reader holds an unexpired lease.
    async fn reader_active(&self, account_id: &str, device_id: u32, now: u64) -> Result<bool>;
    async fn set_push(
        &self,
        account_id: &str,
        device_id: u32,
        target: Option<&PushTarget>,
    ) -> Result<()>;
    async fn push_target(&self, account_id: &str, device_id: u32) -> Result<Option<PushTarget>>;
    /// Drops a push target the provider says is gone (only if unchanged).
    async fn drop_push(&self, account_id: &str, device_id: u32, endpoint: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(skip: u32, limit: u32, max_bytes: u64) -> PageCut {
        PageCut::new(&SyncStep {
            skip,
            limit,
            max_bytes,
            ..SyncStep::default()
        })
    }

    #[test]
    fn a_page_cut_passes_over_the_page_a_skip_names_then_cuts_its_own() {
        use Cut::*;
        let mut c = cut(2, 2, 100);
        let seen: Vec<Cut> = [10, 10, 10, 10, 10].map(|n| c.next(n)).into();
        assert_eq!(seen, [Skip, Skip, Take, Take, Stop]);
        // The byte budget ends the page passed over early, and the row
        // that did not fit it starts the page with a fresh budget.
        let mut c = cut(5, 5, 100);
        let seen: Vec<Cut> = [60, 60, 60, 60].map(|n| c.next(n)).into();
        assert_eq!(seen, [Skip, Take, Stop, Stop]);
        // One oversized row still makes a page (passed over or not).
        let mut c = cut(1, 1, 10);
        let seen: Vec<Cut> = [50, 50, 50].map(|n| c.next(n)).into();
        assert_eq!(seen, [Skip, Take, Stop]);
        // No skip, no limit: nothing is taken.
        assert_eq!(cut(0, 0, 100).next(1), Stop);
        assert_eq!(cut(3, 0, 100).rows_wanted(4), 8);
    }
}
