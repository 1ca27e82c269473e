//! Informed consent before texting: a client accepts the therapist's
//! current texting policy (its version and the SHA-256 of its text) before
//! the first message, and again when a new version is published. The
//! acceptance travels end to end and is kept on both sides.

use alcove_proto::content::{content::Body, ConsentGiven, TextingPolicy};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::conversations::ConversationId;
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::store::{self, practice::Consent};

/// The SHA-256 of a policy's text: what a consent is given to.
pub(crate) fn policy_hash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

impl Account {
    /// The texting policy we must accept before texting in `conversation`:
    /// the other member's published policy, when we have not accepted its
    /// current version (and text). `None`: nothing to accept.
    pub fn consent_required(&self, conversation: ConversationId) -> Result<Option<TextingPolicy>> {
        consent_required(
            &self.conn,
            &self.account_id,
            conversation,
            self.practice_profile(conversation)?,
        )
    }

    /// Accepts the current texting policy of `conversation` (its version
    /// must be `policy_version`, the one the user read). Recorded here and
    /// sent to the therapist before any text held back for it.
    pub fn accept_policy(
        &mut self,
        conversation: ConversationId,
        policy_version: u32,
    ) -> Result<()> {
        let Some(policy) = self.consent_required(conversation)? else {
            return Err(Error::InvalidArgument("no policy waits for consent".into()));
        };
        if policy.version != policy_version {
            return Err(Error::InvalidArgument(
                "that is not the current policy version".into(),
            ));
        }
        let now = self.now();
        let consent = Consent {
            conversation,
            account: self.account_id.clone(),
            policy_version,
            policy_sha256: policy_hash(&policy.text),
            accepted_at: now,
            device_id: self.device_id,
        };
        let tx = self.conn.unchecked_transaction()?;
        store::practice::record_consent(&tx, &consent)?;
        crate::audit::append(
            &tx,
            Some(&self.identity),
            crate::audit::AuditEvent::ConsentGiven {
                conversation,
                policy_version,
            },
            now,
        )?;
        let (_, sent_at, plaintext) = crate::outgoing::new_content_in(
            &tx,
            Body::Consent(ConsentGiven {
                policy_version,
                policy_sha256: consent.policy_sha256.clone(),
                accepted_at: now,
                device_id: self.device_id,
            }),
            now,
        )?;
        let first = store::outbox::next_id(&tx)?;
        for member in store::conversations::members(&tx, conversation)? {
            store::outbox::push(&tx, conversation, &member, &plaintext, None, sent_at)?;
        }
        // Texts written before consent were held: they go after it.
        store::outbox::move_behind(&tx, conversation, first)?;
        tx.commit()?;
        tracing::info!("texting policy accepted");
        Ok(())
    }

    /// Every consent recorded in a conversation (a therapist sees who
    /// accepted which version, and when).
    pub fn consents(&self, conversation: ConversationId) -> Result<Vec<Consent>> {
        store::practice::consents(&self.conn, conversation)
    }
}

pub(crate) fn consent_required(
    conn: &Connection,
    own_account: &str,
    conversation: ConversationId,
    profile: Option<alcove_proto::content::PracticeProfile>,
) -> Result<Option<TextingPolicy>> {
    let Some(policy) = profile.and_then(|p| p.policy).filter(|p| p.version > 0) else {
        return Ok(None);
    };
    let accepted = store::practice::has_consent(
        conn,
        conversation,
        own_account,
        policy.version,
        &policy_hash(&policy.text),
    )?;
    Ok((!accepted).then_some(policy))
}

/// A client's consent arrived: kept, and reported. Only for the policy we
/// published (version and text hash), from a member of a conversation.
pub(crate) fn on_consent(
    tx: &Connection,
    own_account: &str,
    from: &str,
    from_device: u32,
    c: ConsentGiven,
) -> Result<Vec<SyncEvent>> {
    let conversation = store::conversations::with_member(tx, from)?
        .ok_or(Error::Malformed("consent from a stranger"))?;
    let ours = store::practice::profile(tx, own_account)?
        .and_then(|p| p.policy)
        .ok_or(Error::Malformed("consent without a policy"))?;
    if c.policy_version != ours.version || c.policy_sha256 != policy_hash(&ours.text) {
        return Err(Error::Malformed("consent to another policy"));
    }
    store::practice::record_consent(
        tx,
        &Consent {
            conversation,
            account: from.to_owned(),
            policy_version: c.policy_version,
            policy_sha256: c.policy_sha256,
            accepted_at: c.accepted_at,
            device_id: from_device,
        },
    )?;
    crate::audit::append(
        tx,
        None,
        crate::audit::AuditEvent::ConsentGiven {
            conversation,
            policy_version: c.policy_version,
        },
        crate::time::now_ms(),
    )?;
    Ok(vec![SyncEvent::ConsentGiven {
        conversation,
        policy_version: c.policy_version,
    }])
}
