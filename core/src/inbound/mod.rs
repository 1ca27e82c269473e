//! The inbound path: a page of envelopes received in one transaction.
//! Each envelope is opened (`open`), then its content goes through the
//! one dispatcher (`dispatch`), inside its own savepoint: one that fails
//! leaves no trace, the others still commit.

mod certificates;
mod dispatch;
mod open;

use alcove_proto::wire::Envelope;

use crate::account::Account;
use crate::content;
use crate::conversations::{ConversationId, Message, MessageStatus};
use crate::drive::guard;
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::stages::{Lap, SyncStages};
use crate::store::signal_keys::Stores;

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
        let received_at = self.now();
        let local = open::Local {
            account_id: &self.account_id,
            device_id: crate::account::device_id(self.device_id)?,
            trust_root: self.trust_root_key()?,
        };
        let mut page = open::PageState::default();
        let tx = self.ratchet_tx()?;
        let mut stores = Stores::new(&tx, self.identity, self.registration_id);
        let mut outcomes = Vec::with_capacity(envelopes.len());
        for env in envelopes {
            let mut lap = Lap::start();
            // Prepared once per connection: a savepoint per envelope is a
            // statement step, not a parse.
            tx.prepare_cached("SAVEPOINT envelope")?.execute([])?;
            page.stages.inserts += lap.lap();
            let result = guard(|| {
                let (from, plaintext) =
                    open::open(&tx, &mut stores, &local, &mut page, env, received_at)?;
                let mut lap = Lap::start();
                let content = content::decode(&plaintext)?;
                page.stages.parse += lap.lap();
                let d = dispatch::dispatch(&tx, local.account_id, from, content, received_at);
                page.stages.inserts += lap.lap();
                d
            });
            let changed = stores.identities.take_changed();
            let mut lap = Lap::start();
            let outcome = match result {
                Ok(d) => {
                    tx.prepare_cached("RELEASE envelope")?.execute([])?;
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
                    tx.prepare_cached("ROLLBACK TO envelope")?.execute([])?;
                    tx.prepare_cached("RELEASE envelope")?.execute([])?;
                    stores.sessions.drop_staged();
                    stores.identities.forget_page();
                    if matches!(e, Error::StorageFull | Error::Storage(_) | Error::Corrupt) {
                        // The page cannot be stored: give up on it whole.
                        return Err(e);
                    }
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
        Ok((outcomes, page.stages))
    }
}
