//! The networked client, one job per file: `enrollment` (a new account by
//! invite), `lock` (closing the database and dropping the key, and
//! unlocking for the length of a push), `push_token` (where the relay
//! sends wakes, retried until it lands), `outbox_flush` (sending queued
//! items in order), `sealed_route` (sealed sender and delivery keys),
//! `mailbox_sync` (the push-wake `sync(deadline)`), `prekey_upkeep` and
//! `notifications` (rendering at the practice's privacy level).
//!
//! Database work is short and synchronous; it runs under a mutex that is
//! never held across an `.await`, and the account is reached only through
//! `with_account`, so no caller can hold it across one either.

mod auto_lock;
pub(crate) mod enrollment;
mod lock;
mod mailbox_sync;
mod notifications;
mod outbox_flush;
mod prekey_upkeep;
mod push_token;
mod reminder_reply;
mod sealed_route;
mod wipe;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use alcove_proto::relay::PushRegistration;
use rand::RngCore;

use crate::account::Account;
use crate::conversations::ConversationId;
use crate::db::DbKey;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::events::{push_event, SyncEvent};
use crate::relay_client::{Credentials, RelayClient};

pub use mailbox_sync::{SyncReport, PAGE_SIZE};
pub use notifications::{Notification, HIDDEN_BODY, HIDDEN_TITLE, MAX_NOTIFICATIONS};
pub use outbox_flush::SendReport;

use lock::lock_state;

/// Lease length: short, so a suspended process never blocks another for
/// long; renewed by every ratchet transaction.
pub const LEASE_TTL_MS: u64 = 5_000;

/// What only an unlocked client holds: the open database and the relay
/// secret read from it. Dropped whole by `lock`.
struct Unlocked {
    account: Account,
    creds: Credentials,
}

pub struct Client {
    /// Shared (weakly) with the auto-lock watchdog.
    state: Arc<Mutex<Option<Unlocked>>>,
    db_path: PathBuf,
    relay: RelayClient,
    account_id: String,
    /// Identifies this process to the database lease.
    lease_holder: String,
    /// Identifies this database to the relay's one-reader rule.
    reader: String,
    page_size: u32,
    /// Sends that went sealed (no sender named to the relay).
    sealed_sends: AtomicU64,
    /// A push registration the relay has not confirmed yet: retried by
    /// every sync until it lands.
    pending_push: Mutex<Option<PushRegistration>>,
    /// Events of calls that report no `SyncReport` (a send held by an
    /// identity change), kept for `take_events`.
    unheard: Mutex<Vec<SyncEvent>>,
    /// Unlocks that last only as long as a push is handled.
    temporary: Arc<Mutex<lock::Temporary>>,
    /// The inactivity timer (`set_auto_lock`).
    auto_lock: Arc<auto_lock::AutoLock>,
    /// Set once the relay revoked this device and its files were wiped.
    revoked: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Poisoning only follows a panic inside a closure we run; the state it
/// guards is a database handle whose transactions rolled back, so it is
/// safe to go on with.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    /// Opens an enrolled account.
    pub fn open(path: &std::path::Path, key: &DbKey, relay_url: &str) -> Result<Client> {
        let account = Account::open(path, key)?;
        account.audit(crate::audit::AuditEvent::Unlocked)?;
        let relay = RelayClient::with_pin(relay_url, account.relay_tls_pin()?)?;
        Self::from_parts(path.to_path_buf(), account, relay)
    }

    fn from_parts(db_path: PathBuf, account: Account, relay: RelayClient) -> Result<Client> {
        let creds = account.credentials()?;
        // The database lease is per process; the relay's mailbox reader id is
        // per account database, so whichever process holds the lease (say,
        // after another was killed mid-sync) can take the mailbox over at
        // once, while a copy of the account elsewhere cannot.
        let reader = match account.setting("relay_reader")? {
            Some(r) => String::from_utf8(r).map_err(|_| Error::Corrupt)?,
            None => {
                let r = random_hex(12);
                account.set_setting("relay_reader", r.as_bytes())?;
                r
            }
        };
        let client = Client {
            state: Arc::new(Mutex::new(None)),
            db_path,
            relay,
            account_id: creds.account_id.clone(),
            lease_holder: random_hex(12),
            reader,
            page_size: PAGE_SIZE,
            sealed_sends: Default::default(),
            pending_push: Mutex::new(None),
            unheard: Mutex::new(Vec::new()),
            temporary: Arc::default(),
            auto_lock: Arc::default(),
            revoked: Default::default(),
        };
        client.install(account, creds);
        Ok(client)
    }

    fn install(&self, mut account: Account, creds: Credentials) {
        account.use_lease(&self.lease_holder, LEASE_TTL_MS);
        *lock_ignoring_poison(&self.state) = Some(Unlocked { account, creds });
    }

    /// Page size for sync (1..=500; the relay may send fewer, it bounds a
    /// page's bytes too); smaller pages bound memory tighter.
    pub fn set_page_size(&mut self, n: u32) {
        self.page_size = n.clamp(1, PAGE_SIZE);
    }

    /// Runs `f` on the open account (conversations, messages, settings).
    /// `ClientLocked` while locked. `f` is synchronous: the account can
    /// never be held across an `.await`. Counts as the app's activity for
    /// auto-lock.
    pub fn with_account<R>(&self, f: impl FnOnce(&mut Account) -> Result<R>) -> Result<R> {
        self.check_auto_lock();
        let result = self.account(f);
        if result.is_ok() {
            self.touch();
        }
        result
    }

    /// `with_account` for the core's own work (sync, flush): not activity.
    fn account<R>(&self, f: impl FnOnce(&mut Account) -> Result<R>) -> Result<R> {
        let mut state = lock_ignoring_poison(&self.state);
        let unlocked = state.as_mut().ok_or_else(|| self.closed_error())?;
        f(&mut unlocked.account)
    }

    /// The direct conversation with `remote_account` (started when new):
    /// what `send_text` and `messages` take.
    pub fn conversation_with(&self, remote_account: &str) -> Result<ConversationId> {
        self.with_account(|a| a.conversation_with(remote_account))
    }

    /// The relay credentials, while unlocked.
    fn creds(&self) -> Result<Credentials> {
        lock_ignoring_poison(&self.state)
            .as_ref()
            .map(|u| u.creds.clone())
            .ok_or_else(|| self.closed_error())
    }

    /// The relay client with each call bounded by what `deadline` leaves;
    /// a timed-out `Network` error when nothing is left.
    fn relay_within(&self, deadline: Deadline) -> Result<RelayClient> {
        Ok(self.relay.within(deadline.call_timeout()?))
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Events of calls that returned no report (say, a send held back by
    /// an identity change), oldest first; taking them empties the list.
    pub fn take_events(&self) -> Vec<SyncEvent> {
        std::mem::take(&mut *lock_ignoring_poison(&self.unheard))
    }

    fn tell(&self, event: SyncEvent) {
        push_event(&mut lock_ignoring_poison(&self.unheard), event);
    }
}
