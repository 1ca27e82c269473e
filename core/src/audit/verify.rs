//! Checking the audit log: entries numbered from 1 without gaps, each
//! naming the previous entry's hash and hashing to what it says, every
//! signature made by this account's identity key over an entry that is
//! still there with the hash it signed. An edit, a deletion or a
//! reordering breaks one of these; deleting entries after the last
//! signature is caught only up to that signature (hence signing at every
//! lock).

use libsignal_protocol::IdentityKeyPair;
use rusqlite::Connection;

use super::{entry_hash, signed_message, GENESIS};
use crate::error::Result;
use crate::store;

/// Where and how the log breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditProblem {
    /// An entry number is missing (deleted).
    Missing,
    /// The entry does not follow the one before (reordered or replaced).
    Unchained,
    /// The entry's fields do not hash to its hash (edited).
    Altered,
    /// A signature is not ours, or the entry it signed changed.
    BadSignature,
    /// A signature covers entries that are gone (the log was cut short).
    Truncated,
}

/// The result of `verify_audit_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    pub entries: u64,
    /// The newest entry a valid signature covers.
    pub signed_through: Option<i64>,
    /// `None` when intact; else the first entry number where it breaks.
    pub broken_at: Option<(i64, AuditProblem)>,
}

impl AuditCheck {
    pub fn intact(&self) -> bool {
        self.broken_at.is_none()
    }
}

pub(super) fn verify(conn: &Connection, identity: &IdentityKeyPair) -> Result<AuditCheck> {
    let mut hashes: Vec<Vec<u8>> = Vec::new();
    let mut prev = GENESIS.to_vec();
    let mut broken = None;
    let mut after = 0;
    'pages: loop {
        let page = store::audit::rows(conn, after, 1000)?;
        if page.is_empty() {
            break;
        }
        for row in page {
            after = row.seq;
            let expected = hashes.len() as i64 + 1;
            let problem = if row.seq != expected {
                Some(AuditProblem::Missing)
            } else if row.prev != prev {
                Some(AuditProblem::Unchained)
            } else if entry_hash(
                &row.prev,
                row.seq,
                row.at,
                &row.kind,
                row.subject,
                row.detail,
            ) != row.hash
            {
                Some(AuditProblem::Altered)
            } else {
                None
            };
            if let Some(p) = problem {
                broken = Some((expected.min(row.seq), p));
                break 'pages;
            }
            prev = row.hash.clone();
            hashes.push(row.hash);
        }
    }
    let entries = store::audit::head(conn)?.map_or(0, |(seq, _)| seq.max(0) as u64);
    let mut signed_through = None;
    for store::audit::HeadSignature {
        seq,
        hash,
        signature: sig,
    } in store::audit::signatures(conn)?
    {
        let ours = identity
            .public_key()
            .verify_signature(&signed_message(seq, &hash), &sig);
        let problem = if !ours {
            Some((seq, AuditProblem::BadSignature))
        } else {
            match hashes.get((seq - 1).max(0) as usize) {
                Some(h) if seq >= 1 && *h == hash => None,
                Some(_) => Some((seq, AuditProblem::BadSignature)),
                None if broken.is_none() => {
                    Some((hashes.len() as i64 + 1, AuditProblem::Truncated))
                }
                None => None,
            }
        };
        match problem {
            None => signed_through = Some(seq),
            Some(p) => {
                if broken.is_none_or(|(at, _)| p.0 < at) {
                    broken = Some(p);
                }
                break;
            }
        }
    }
    Ok(AuditCheck {
        entries,
        signed_through,
        broken_at: broken,
    })
}
