//! The inbound path: a page of envelopes received in one transaction.
//! Each envelope is opened (`open`), then its content goes through the
//! one dispatcher (`dispatch`). An envelope that fails leaves no trace;
//! the others still commit (see `Isolation` for how, cheaply).

mod certificates;
mod dispatch;
mod open;
mod page;

use alcove_proto::wire::Envelope;

use crate::account::Account;
use crate::content;
use crate::conversations::{ConversationId, Message, MessageStatus};
use crate::drive::guard;
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::stages::{Lap, SyncStages};
use crate::store::signal_keys::Stores;

use page::PageState;

pub(crate) use dispatch::{Dispatched, Notice};

/// Largest envelope ciphertext the core will try to parse.
pub const MAX_CIPHERTEXT_LEN: usize = 96 * 1024;

/// What one envelope turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A text message, now stored.
    Text(Message),
    /// A receipt; `updated` of our messages in `conversation` changed
    /// status. `sender` is from the envelope, or for sealed sender from the
    /// verified certificate; `conversation` is `None` when we share none
    /// with them.
    Receipt {
        kind: MessageStatus,
        updated: usize,
        conversation: Option<ConversationId>,
        sender: String,
    },
    /// A client introduced themselves (enrolled with our card).
    Introduction { conversation: ConversationId },
    /// Practice bookkeeping (a profile, a consent): its events say what.
    Control,
}

/// The result for one envelope of a page.
#[derive(Debug)]
pub struct EnvelopeOutcome {
    pub guid: Vec<u8>,
    pub result: Result<Received>,
    /// What listeners hear of this envelope (a stored text, a receipt, an
    /// identity change it revealed), as the dispatcher decided. Empty when
    /// it failed.
    pub events: Vec<SyncEvent>,
    pub(crate) notice: Option<Notice>,
}

impl EnvelopeOutcome {
    /// Whether the relay may drop this envelope: it was stored, was a
    /// duplicate, or can never be processed. Only storage failures (disk
    /// full, I/O) keep it queued for a retry.
    pub fn ackable(&self) -> bool {
        !matches!(
            self.result,
            Err(Error::StorageFull) | Err(Error::Storage(_)) | Err(Error::Corrupt)
        )
    }
}

/// How a page's envelopes are kept apart.
///
/// A savepoint per envelope makes SQLite copy every database page an
/// envelope touches into its sub-journal first (four or five 4 KiB copies
/// and allocations per text), which cost as much as the inserts
/// themselves. Nearly every envelope succeeds, and most that fail do so
/// before writing anything (a redelivered GUID, a malformed envelope). So
/// a page is first received `Batched`, with no savepoints: the first
/// envelope that fails after it wrote something (the connection's change
/// count moved) rolls the whole page back, and it is received again
/// `Isolated`, each envelope in its own savepoint as before. Either way a
/// failed envelope leaves nothing behind. A sender who makes one envelope
/// per page fail that way costs that page twice its work, no more.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Isolation {
    Batched,
    Isolated,
}

impl Account {
    /// Receives a page of envelopes in one transaction. Ack to the relay
    /// only after this returns `Ok`, and only envelopes whose outcome is
    /// `ackable`.
    pub fn receive(&mut self, envelopes: &[Envelope]) -> Result<Vec<EnvelopeOutcome>> {
        Ok(self.receive_timed(envelopes)?.0)
    }

    /// As [`Account::receive`], with where the time went.
    pub fn receive_timed(
        &mut self,
        envelopes: &[Envelope],
    ) -> Result<(Vec<EnvelopeOutcome>, SyncStages)> {
        let mut page = PageState::default();
        if let Some(outcomes) = self.receive_page(envelopes, &mut page, Isolation::Batched)? {
            return Ok((outcomes, page.stages));
        }
        tracing::debug!("page received again, envelope by envelope");
        // What the memo remembers was rolled back with the page.
        page.memo.forget();
        page.stages.retried_pages += 1;
        match self.receive_page(envelopes, &mut page, Isolation::Isolated)? {
            Some(outcomes) => Ok((outcomes, page.stages)),
            None => Err(Error::Internal("isolated receive gave up".into())),
        }
    }

    /// One attempt at a page. `None` (only when `Batched`): an envelope
    /// failed after writing, the transaction was rolled back, receive the
    /// page `Isolated`.
    fn receive_page(
        &mut self,
        envelopes: &[Envelope],
        page: &mut PageState,
        isolation: Isolation,
    ) -> Result<Option<Vec<EnvelopeOutcome>>> {
        let received_at = self.now();
        let local = open::Local {
            account_id: &self.account_id,
            device_id: crate::account::device_id(self.device_id)?,
            trust_root: self.trust_root_key()?,
        };
        let tx = self.ratchet_tx()?;
        let mut stores = Stores::new(&tx, self.identity, self.registration_id);
        let mut outcomes = Vec::with_capacity(envelopes.len());
        let isolated = isolation == Isolation::Isolated;
        for env in envelopes {
            let mut lap = Lap::start();
            let changes_before = tx.total_changes();
            if isolated {
                // Prepared once per connection: a savepoint per envelope
                // is a statement step, not a parse.
                tx.prepare_cached("SAVEPOINT envelope")?.execute([])?;
            }
            page.stages.inserts += lap.lap();
            let result = guard(|| {
                let (from, plaintext) =
                    open::open(&tx, &mut stores, &local, page, env, received_at)?;
                let mut lap = Lap::start();
                let content = content::decode(&plaintext)?;
                page.stages.parse += lap.lap();
                let d = dispatch::dispatch(
                    &tx,
                    &mut page.memo,
                    local.account_id,
                    from,
                    content,
                    received_at,
                );
                page.stages.inserts += lap.lap();
                d
            });
            let changed = stores.identities.take_changed();
            let mut lap = Lap::start();
            let outcome = match result {
                Ok(d) => {
                    if isolated {
                        tx.prepare_cached("RELEASE envelope")?.execute([])?;
                    }
                    stores.sessions.commit_staged();
                    if !matches!(d.received, Received::Text(_) | Received::Receipt { .. }) {
                        // Introductions and practice bookkeeping may pin
                        // identities behind the identity store's back.
                        stores.identities.forget_page();
                    }
                    let mut events: Vec<SyncEvent> = changed
                        .into_iter()
                        .map(|remote_account| SyncEvent::IdentityChanged { remote_account })
                        .collect();
                    events.extend(d.events);
                    EnvelopeOutcome {
                        guid: env.guid.clone(),
                        result: Ok(d.received),
                        events,
                        notice: d.notice,
                    }
                }
                Err(e) => {
                    if matches!(e, Error::StorageFull | Error::Storage(_) | Error::Corrupt) {
                        // The page cannot be stored: give up on it whole
                        // (dropping the transaction rolls it back).
                        return Err(e);
                    }
                    if !isolated && tx.total_changes() != changes_before {
                        // Its writes are mixed with the page's: start over.
                        return Ok(None);
                    }
                    if isolated {
                        tx.prepare_cached("ROLLBACK TO envelope")?.execute([])?;
                        tx.prepare_cached("RELEASE envelope")?.execute([])?;
                        page.memo.forget();
                    }
                    stores.sessions.drop_staged();
                    stores.identities.forget_page();
                    tracing::debug!(error = %e, "envelope not processed");
                    EnvelopeOutcome {
                        guid: env.guid.clone(),
                        result: Err(e),
                        events: Vec::new(),
                        notice: None,
                    }
                }
            };
            page.stages.inserts += lap.lap();
            outcomes.push(outcome);
        }
        let mut lap = Lap::start();
        stores.sessions.flush()?;
        tx.commit()?;
        page.stages.commit += lap.lap();
        Ok(Some(outcomes))
    }
}
