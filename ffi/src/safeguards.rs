//! The practice's technical safeguards for the shells: automatic logoff
//! and the audit log's check. Decided in the core (`client/auto_lock.rs`,
//! `audit/`).

use std::time::Duration;

use alcove_core as core;

use crate::client::{guard, AlcoveClient};
use crate::errors::Result;

/// What `verify_audit_log` found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditCheck {
    pub entries: u64,
    pub intact: bool,
    /// The newest entry a valid signature covers.
    pub signed_through: Option<i64>,
    /// The first entry where the log breaks, and how ("missing",
    /// "unchained", "altered", "bad_signature", "truncated").
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

fn problem_code(p: core::audit::AuditProblem) -> &'static str {
    use core::audit::AuditProblem as P;
    match p {
        P::Missing => "missing",
        P::Unchained => "unchained",
        P::Altered => "altered",
        P::BadSignature => "bad_signature",
        P::Truncated => "truncated",
    }
}

#[uniffi::export]
impl AlcoveClient {
    /// Locks the client after `timeout_ms` without the app's activity
    /// (`None`: never). Syncs, a push's above all, are not activity.
    pub fn set_auto_lock(&self, timeout_ms: Option<u64>) {
        self.inner
            .set_auto_lock(timeout_ms.map(Duration::from_millis));
    }

    /// Checks this device's audit log: the hash chain, the numbering and
    /// every signature.
    pub fn verify_audit_log(&self) -> Result<AuditCheck> {
        guard(|| {
            let c = self.inner.with_account(|a| a.verify_audit_log())?;
            Ok(AuditCheck {
                entries: c.entries,
                intact: c.intact(),
                signed_through: c.signed_through,
                broken_at: c.broken_at.map(|(seq, _)| seq),
                problem: c.broken_at.map(|(_, p)| problem_code(p).to_owned()),
            })
        })
    }
}
