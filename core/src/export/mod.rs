//! Export for the clinical record. A conversation (or a date range of it)
//! becomes a directory: `transcript.html` (readable, printable, for the
//! chart), `bundle.fhir.json` (a FHIR R4 Bundle of `Communication`
//! resources that EHRs import), `audit.json` (this device's audit log,
//! opaque ids only) and `manifest.json` with the SHA-256 of every file,
//! signed (`manifest.sig`) by this device's identity key. `verify_dir`
//! checks a directory. Exporting is an audit event, needs a fresh unlock
//! (the key, checked again) and, on a therapist's device that keeps
//! messages until exported, lets retention delete what the export covers.

mod fhir;
mod html;
mod manifest;

use std::path::{Path, PathBuf};

use crate::account::Account;
use crate::client::Client;
use crate::conversations::{ConversationId, Message};
use crate::db::DbKey;
use crate::error::{Error, Result};

pub use manifest::{verify_dir, ExportCheck, MANIFEST, SIGNATURE};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub dir: PathBuf,
    pub messages: u32,
    pub files: Vec<String>,
}

/// Names shown in the exported documents.
#[derive(Debug, Clone)]
pub(crate) struct Parties {
    pub(crate) own: String,
    pub(crate) peer: String,
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    crate::private_file::write_new(path, data, "export directory")
}

fn io(e: std::io::Error) -> Error {
    crate::private_file::io_error(e, "export directory")
}

impl Account {
    /// Writes the export of `conversation` (messages sent or received in
    /// `[from_ms, to_ms)`, all when `None`) into `dir`, which must not
    /// exist yet. Use `Client::export_conversation`, which asks for the
    /// key again first.
    pub(crate) fn export_to(
        &mut self,
        conversation: ConversationId,
        range: Option<(u64, u64)>,
        dir: &Path,
    ) -> Result<ExportReport> {
        let members = self.members(conversation)?;
        let peer_id = match members.as_slice() {
            [p] => p.clone(),
            _ => {
                return Err(Error::InvalidArgument(
                    "export a direct conversation".into(),
                ))
            }
        };
        let mut messages: Vec<Message> = Vec::new();
        let mut before = None;
        loop {
            let page = self.messages(conversation, before, 500)?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            messages.extend(page);
        }
        messages.reverse();
        messages.retain(|m| range.is_none_or(|(from, to)| m.sent_at >= from && m.sent_at < to));
        let convo = self
            .conversations()?
            .into_iter()
            .find(|c| c.id == conversation);
        let parties = Parties {
            own: self
                .own_practice_profile()?
                .map(|p| p.display_name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "This device's user".into()),
            peer: convo
                .and_then(|c| c.display_name)
                .unwrap_or_else(|| "The other participant".into()),
        };
        let now = self.now();

        std::fs::create_dir(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let html = html::transcript(&parties, &messages, range, now);
        let bundle = fhir::bundle(&parties, &peer_id, self.account_id(), &messages, now)?;
        let audit = serde_json::to_vec_pretty(&audit_json(self)?)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("transcript.html", html.into_bytes()),
            ("bundle.fhir.json", bundle),
            ("audit.json", audit),
        ];
        for (name, data) in &files {
            write_private(&dir.join(name), data)?;
        }
        let (manifest, signature) = manifest::sign(self, &files, now)?;
        write_private(&dir.join(MANIFEST), &manifest)?;
        write_private(&dir.join(SIGNATURE), signature.as_bytes())?;
        if let Some(last) = messages.last() {
            self.mark_exported(conversation, last.id)?;
        } else {
            self.audit(crate::audit::AuditEvent::Exported { conversation })?;
        }
        tracing::info!(messages = messages.len(), "conversation exported");
        let mut names: Vec<String> = files.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.push(MANIFEST.into());
        names.push(SIGNATURE.into());
        Ok(ExportReport {
            dir: dir.to_path_buf(),
            messages: messages.len() as u32,
            files: names,
        })
    }
}

fn audit_json(a: &Account) -> Result<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = a.audit_entries(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page.into_iter().map(|e| {
            serde_json::json!({
                "seq": e.seq, "at": e.at, "kind": e.kind,
                "subject": e.subject, "detail": e.detail,
                "hash": hex::encode(&e.hash),
            })
        }));
    }
    Ok(serde_json::json!({ "entries": out, "check": {
        "intact": a.verify_audit_log()?.intact(),
    }}))
}

impl Client {
    /// Exports a conversation for the clinical record into `dir` (new).
    /// Needs a fresh unlock: `key` is checked against the database again,
    /// whatever the client's state (`WrongKey`: nothing written).
    pub fn export_conversation(
        &self,
        conversation: ConversationId,
        range: Option<(u64, u64)>,
        dir: &Path,
        key: &DbKey,
    ) -> Result<ExportReport> {
        self.check_key(key)?;
        if dir.exists() {
            return Err(Error::InvalidArgument("the export directory exists".into()));
        }
        let result = self.with_account(|a| a.export_to(conversation, range, dir));
        if result.is_err() {
            // Nothing half-written stays behind.
            let _ = std::fs::remove_dir_all(dir);
        }
        result
    }
}
