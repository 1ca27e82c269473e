//! The device's audit log: security-relevant events (unlock, lock,
//! identity accepted, consent, policy published, bot introduced, retention
//! changes and deletions, purges, exports, backups, revocation), each
//! written in the same transaction as the change it records, hash-chained
//! to the one before (any edit, deletion or reordering breaks the chain),
//! and its head signed with the account's identity key every
//! [`SIGN_EVERY`] entries and at every lock. It holds opaque local ids and
//! numbers, never content, names or account ids. `verify` says whether it
//! is intact and where it breaks.

mod verify;

use libsignal_protocol::IdentityKeyPair;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::conversations::ConversationId;
use crate::error::Result;
use crate::store::{self, audit::AuditRow};

pub use crate::store::audit::AuditRow as AuditEntry;
pub use verify::{AuditCheck, AuditProblem};

/// The head is signed after this many entries (and at every lock).
pub const SIGN_EVERY: i64 = 64;

/// What happened. Subjects are local conversation ids (opaque numbers on
/// this device); details are numbers (a policy version, a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// The app unlocked the database.
    Unlocked,
    /// The app (or the inactivity timer) locked it.
    Locked {
        automatic: bool,
    },
    /// A peer's new identity key was accepted.
    IdentityAccepted {
        conversation: Option<ConversationId>,
    },
    /// A texting policy was accepted (by us on a client; by the client, as
    /// received, on the therapist's device).
    ConsentGiven {
        conversation: ConversationId,
        policy_version: u32,
    },
    /// We published a practice profile (its texting policy's version).
    PolicyPublished {
        policy_version: u32,
    },
    /// We introduced a reminder bot to our clients.
    BotIntroduced,
    /// A conversation's disappearing-messages timer changed (seconds; 0
    /// is off).
    RetentionChanged {
        conversation: ConversationId,
        seconds: u64,
    },
    /// Messages deleted by retention.
    RetentionDeleted {
        conversation: ConversationId,
        count: u64,
    },
    /// A conversation archived and purged in one step.
    ConversationPurged {
        conversation: ConversationId,
    },
    Exported {
        conversation: ConversationId,
    },
    BackupMade,
    BackupRestored,
    DeviceRevoked,
}

impl AuditEvent {
    fn parts(self) -> (&'static str, Option<i64>, Option<i64>) {
        let c = |c: ConversationId| Some(c.get());
        match self {
            Self::Unlocked => ("unlocked", None, None),
            Self::Locked { automatic } => ("locked", None, Some(i64::from(automatic))),
            Self::IdentityAccepted { conversation } => {
                ("identity_accepted", conversation.map(|c| c.get()), None)
            }
            Self::ConsentGiven {
                conversation,
                policy_version,
            } => (
                "consent_given",
                c(conversation),
                Some(policy_version.into()),
            ),
            Self::PolicyPublished { policy_version } => {
                ("policy_published", None, Some(policy_version.into()))
            }
            Self::BotIntroduced => ("bot_introduced", None, None),
            Self::RetentionChanged {
                conversation,
                seconds,
            } => ("retention_changed", c(conversation), Some(seconds as i64)),
            Self::RetentionDeleted {
                conversation,
                count,
            } => ("retention_deleted", c(conversation), Some(count as i64)),
            Self::ConversationPurged { conversation } => {
                ("conversation_purged", c(conversation), None)
            }
            Self::Exported { conversation } => ("exported", c(conversation), None),
            Self::BackupMade => ("backup_made", None, None),
            Self::BackupRestored => ("backup_restored", None, None),
            Self::DeviceRevoked => ("device_revoked", None, None),
        }
    }
}

const GENESIS: [u8; 32] = [0; 32];

/// The hash of an entry: over the previous hash and every field, each
/// length-prefixed or fixed-width, so no two entries encode alike.
pub(crate) fn entry_hash(
    prev: &[u8],
    seq: i64,
    at: u64,
    kind: &str,
    subject: Option<i64>,
    detail: Option<i64>,
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"alcove-audit-v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    h.update((kind.len() as u32).to_be_bytes());
    h.update(kind.as_bytes());
    for v in [subject, detail] {
        match v {
            Some(v) => {
                h.update([1]);
                h.update(v.to_be_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().to_vec()
}

/// What a signature covers: the entry count and the head hash.
pub(crate) fn signed_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut m = b"alcove-audit-head-v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Appends `event` inside `tx` (the caller's transaction: the change and
/// its record commit together), signing the head every `SIGN_EVERY` when
/// given the identity (the inbound dispatcher does not hold it; the next
/// lock signs).
pub(crate) fn append(
    tx: &Connection,
    identity: Option<&IdentityKeyPair>,
    event: AuditEvent,
    now: u64,
) -> Result<()> {
    let (kind, subject, detail) = event.parts();
    let (seq, prev) = match store::audit::head(tx)? {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_vec()),
    };
    let hash = entry_hash(&prev, seq, now, kind, subject, detail);
    store::audit::insert(
        tx,
        &AuditRow {
            seq,
            at: now,
            kind: kind.to_owned(),
            subject,
            detail,
            prev,
            hash: hash.clone(),
        },
    )?;
    if let Some(identity) = identity.filter(|_| seq % SIGN_EVERY == 0) {
        sign(tx, identity, seq, &hash, now)?;
    }
    Ok(())
}

fn sign(
    tx: &Connection,
    identity: &IdentityKeyPair,
    seq: i64,
    hash: &[u8],
    now: u64,
) -> Result<()> {
    let sig = identity
        .private_key()
        .calculate_signature(&signed_message(seq, hash), &mut rand::rng())
        .map_err(|_| crate::error::Error::Internal("audit signature".into()))?;
    store::audit::add_signature(tx, seq, hash, &sig, now)
}

impl Account {
    /// Records `event` in its own transaction (for events whose change is
    /// not a database write: an unlock, a lock, an export).
    pub fn audit(&self, event: AuditEvent) -> Result<()> {
        let tx = self.write_tx()?;
        append(&tx, Some(&self.identity), event, self.now())?;
        tx.commit()?;
        Ok(())
    }

    /// Signs the log's head now, if it is not signed yet (at lock).
    pub fn sign_audit_head(&self) -> Result<()> {
        let tx = self.write_tx()?;
        if let Some((seq, hash)) = store::audit::head(&tx)? {
            if store::audit::last_signed(&tx)? != Some(seq) {
                sign(&tx, &self.identity, seq, &hash, self.now())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Entries after `after` (0: from the start), oldest first, at most
    /// `limit`: for export with the transcript.
    pub fn audit_entries(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        store::audit::rows(&self.conn, after, limit)
    }

    /// Checks the whole log: the chain, the numbering, every signature.
    pub fn verify_audit_log(&self) -> Result<AuditCheck> {
        verify::verify(&self.conn, &self.identity)
    }
}
