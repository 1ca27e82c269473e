//! The practice's duties for the shells: automatic logoff, the audit
//! log's check, retention (timers, the practice's policy, purge). Decided
//! in the core (`client/auto_lock.rs`, `audit/`, `retention.rs`).

use std::time::Duration;

use alcove_core as core;

use crate::client::{guard, AlcoveClient};
use crate::errors::Result;
use crate::types::ConversationId;

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

/// How long a conversation's messages stay on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Retention {
    /// The conversation's disappearing-messages timer (0: off).
    pub timer_seconds: u64,
    /// The practice's policy in days (0: none).
    pub policy_days: u32,
    /// What applies (0: kept).
    pub effective_seconds: u64,
}

#[uniffi::export]
impl AlcoveClient {
    /// Sets the conversation's disappearing-messages timer (0: off), here
    /// and on the other side's devices.
    pub fn set_retention(&self, conversation_id: ConversationId, seconds: u64) -> Result<()> {
        guard(|| {
            Ok(self.inner.with_account(|a| {
                a.set_retention(core::ConversationId::new(conversation_id), seconds)
            })?)
        })
    }

    pub fn retention(&self, conversation_id: ConversationId) -> Result<Retention> {
        guard(|| {
            let r = self
                .inner
                .with_account(|a| a.retention(core::ConversationId::new(conversation_id)))?;
            Ok(Retention {
                timer_seconds: r.timer_seconds,
                policy_days: r.policy_days,
                effective_seconds: r.effective_seconds,
            })
        })
    }

    /// Ending a therapy relationship: archives the conversation and
    /// deletes its messages in one step. Returns how many went.
    pub fn purge_conversation(&self, conversation_id: ConversationId) -> Result<u64> {
        guard(|| {
            Ok(self.inner.with_account(|a| {
                a.purge_conversation(core::ConversationId::new(conversation_id))
            })?)
        })
    }

    /// On a therapist's device: keep messages until an export covers them.
    pub fn set_keep_until_exported(&self, on: bool) -> Result<()> {
        guard(|| Ok(self.inner.with_account(|a| a.set_keep_until_exported(on))?))
    }

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

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ExportReport {
    pub dir: String,
    pub messages: u32,
    pub files: Vec<String>,
}

#[uniffi::export]
impl AlcoveClient {
    /// Exports a conversation (messages sent in `[from_ms, to_ms)`, or all)
    /// for the clinical record into the new directory `dir`: HTML, a FHIR
    /// R4 Bundle, the audit log and a signed manifest. Needs the key again
    /// (a fresh unlock).
    pub fn export_conversation(
        &self,
        conversation_id: ConversationId,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        dir: String,
        key: Vec<u8>,
    ) -> Result<ExportReport> {
        guard(|| {
            let key = crate::client::key(key)?;
            let range = match (from_ms, to_ms) {
                (None, None) => None,
                (f, t) => Some((f.unwrap_or(0), t.unwrap_or(u64::MAX))),
            };
            let r = self.inner.export_conversation(
                core::ConversationId::new(conversation_id),
                range,
                std::path::Path::new(&dir),
                &key,
            )?;
            Ok(ExportReport {
                dir: r.dir.display().to_string(),
                messages: r.messages,
                files: r.files,
            })
        })
    }
}

/// Checks an export directory's signed manifest: `None` when valid, else
/// what failed ("bad_signature", "mismatch:<file>", "unlisted:<file>").
#[uniffi::export]
pub fn verify_export(dir: String) -> Result<Option<String>> {
    guard(|| {
        use core::export::ExportCheck as C;
        Ok(
            match core::export::verify_dir(std::path::Path::new(&dir))? {
                C::Valid { .. } => None,
                C::BadSignature => Some("bad_signature".into()),
                C::FileMismatch { name } => Some(format!("mismatch:{name}")),
                C::Unlisted { name } => Some(format!("unlisted:{name}")),
            },
        )
    })
}

#[uniffi::export]
impl AlcoveClient {
    /// Writes an encrypted backup of the account to `path` (a new file)
    /// and returns the recovery code: show it once; it is never stored.
    pub fn backup(&self, path: String) -> Result<String> {
        guard(|| {
            Ok(self
                .inner
                .backup(std::path::Path::new(&path))?
                .as_str()
                .to_owned())
        })
    }

    /// Restores a backup on this phone into a new database at `db_path`
    /// under `key`, and opens it. `expected_account`: refuse another
    /// account's backup. Wrong or mistyped code, damaged file: `Backup`,
    /// nothing written.
    #[uniffi::constructor(default(expected_account = None))]
    pub fn restore_from_backup(
        backup_path: String,
        recovery_code: String,
        db_path: String,
        key: Vec<u8>,
        relay_url: String,
        expected_account: Option<String>,
    ) -> Result<std::sync::Arc<Self>> {
        guard(|| {
            let k = crate::client::key(key)?;
            Ok(Self::wrap(core::Client::restore(
                std::path::Path::new(&backup_path),
                &recovery_code,
                std::path::Path::new(&db_path),
                &k,
                &relay_url,
                expected_account.as_deref(),
            )?))
        })
    }
}
