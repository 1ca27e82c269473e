//! The practice profile: the therapist sets and publishes it; a client's
//! core keeps the newest revision from each therapist it talks to.

use alcove_proto::content::{content::Body, PracticeProfile};
use rusqlite::Connection;

use crate::account::Account;
use crate::conversations::ConversationId;
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::store;

impl Account {
    /// Sets this therapist's profile and queues it, end to end, for every
    /// member of every conversation (clients who join later get it when
    /// their introduction arrives). The revision is raised past the stored
    /// one. Returns the revision published.
    pub fn publish_practice_profile(&mut self, mut profile: PracticeProfile) -> Result<u64> {
        super::hours::validate(&profile)?;
        let now = self.now();
        let tx = self.conn.unchecked_transaction()?;
        let current = store::practice::profile(&tx, &self.account_id)?.map_or(0, |p| p.revision);
        profile.revision = profile.revision.max(current + 1);
        store::practice::save_if_newer(&tx, &self.account_id, &profile, now)?;
        crate::audit::append(
            &tx,
            Some(&self.identity),
            crate::audit::AuditEvent::PolicyPublished {
                policy_version: profile.policy.as_ref().map_or(0, |p| p.version),
            },
            now,
        )?;
        let (_, sent_at, plaintext) =
            crate::outgoing::new_content_in(&tx, Body::PracticeProfile(profile.clone()), now)?;
        for c in store::conversations::list(&tx)? {
            for member in &c.members {
                store::outbox::push(&tx, c.id, member, &plaintext, None, sent_at)?;
            }
        }
        tx.commit()?;
        Ok(profile.revision)
    }

    /// Our own published profile (a therapist's), if any.
    pub fn own_practice_profile(&self) -> Result<Option<PracticeProfile>> {
        store::practice::profile(&self.conn, &self.account_id)
    }

    /// The profile the other member of a direct conversation published (a
    /// client's view of its therapist), if any.
    pub fn practice_profile(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<PracticeProfile>> {
        let members = store::conversations::members(&self.conn, conversation)?;
        match members.as_slice() {
            [peer] => store::practice::profile(&self.conn, peer),
            _ => Ok(None),
        }
    }
}

/// A therapist's profile arrived: kept when newer, its label shown for
/// the conversation at the Pseudonym notification level unless the user
/// chose one.
pub(crate) fn on_profile(
    tx: &Connection,
    from: &str,
    profile: PracticeProfile,
    now: u64,
) -> Result<Vec<SyncEvent>> {
    super::hours::validate(&profile).map_err(|_| Error::Malformed("practice profile"))?;
    let conversation = store::conversations::direct(tx, from, now)?;
    if !store::practice::save_if_newer(tx, from, &profile, now)? {
        // A replay or a stale copy: nothing changes.
        return Ok(Vec::new());
    }
    if conversation.notification_label.is_none() && !profile.notification_label.is_empty() {
        store::conversations::set_notification_label(
            tx,
            conversation.id,
            &profile.notification_label,
        )?;
    }
    Ok(vec![SyncEvent::PracticeProfileUpdated {
        conversation: conversation.id,
    }])
}

/// Queues our profile, if we published one, for a client who just joined.
pub(crate) fn send_to_new_member(
    tx: &Connection,
    own_account: &str,
    conversation: ConversationId,
    member: &str,
    now: u64,
) -> Result<()> {
    let Some(profile) = store::practice::profile(tx, own_account)? else {
        return Ok(());
    };
    let (_, sent_at, plaintext) =
        crate::outgoing::new_content_in(tx, Body::PracticeProfile(profile), now)?;
    store::outbox::push(tx, conversation, member, &plaintext, None, sent_at)
}

impl Account {
    /// Whether the therapist of `conversation` is available now, decided
    /// offline from their published profile; `None` without a profile.
    pub fn availability(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<super::hours::Availability>> {
        self.practice_profile(conversation)?
            .map(|p| super::hours::availability(&p, self.now()))
            .transpose()
    }
}
