//! The export's manifest: every file's SHA-256, the exporting device's
//! identity key, the time; signed with that key (XEdDSA, libsignal) over
//! the manifest's exact bytes. `verify_dir` checks the signature and every
//! file, and says which failed.

use std::path::Path;

use libsignal_protocol::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::error::{Error, Result};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    created_at: u64,
    /// The exporting device's identity key (hex): compare its safety
    /// number to trust the signature.
    identity_key: String,
    files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    name: String,
    sha256: String,
}

pub(super) fn sign(
    account: &Account,
    files: &[(&str, Vec<u8>)],
    now: u64,
) -> Result<(Vec<u8>, String)> {
    let manifest = Manifest {
        format: "alcove-export-1".into(),
        created_at: now,
        identity_key: hex::encode(account.identity_key()),
        files: files
            .iter()
            .map(|(name, data)| FileEntry {
                name: (*name).to_owned(),
                sha256: hex::encode(Sha256::digest(data)),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let sig = account
        .identity
        .private_key()
        .calculate_signature(&bytes, &mut rand::rng())
        .map_err(|_| Error::Internal("manifest signature".into()))?;
    Ok((bytes, hex::encode(sig)))
}

/// What `verify_dir` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportCheck {
    /// Signature and every file match; signed by this identity key (hex).
    Valid { identity_key: String, files: u32 },
    /// The manifest or its signature is missing, unreadable or not valid.
    BadSignature,
    /// This file is missing or does not match its SHA-256.
    FileMismatch { name: String },
    /// A file in the directory is not in the manifest.
    Unlisted { name: String },
}

/// Checks an export directory: the manifest's signature under the
/// identity key it names, and every file's SHA-256.
pub fn verify_dir(dir: &Path) -> Result<ExportCheck> {
    let (Ok(bytes), Ok(sig)) = (
        std::fs::read(dir.join(MANIFEST)),
        std::fs::read_to_string(dir.join(SIGNATURE)),
    ) else {
        return Ok(ExportCheck::BadSignature);
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else {
        return Ok(ExportCheck::BadSignature);
    };
    let key = hex::decode(&manifest.identity_key)
        .ok()
        .and_then(|k| PublicKey::deserialize(&k).ok());
    let sig = hex::decode(sig.trim()).ok();
    match (key, sig) {
        (Some(k), Some(s)) if k.verify_signature(&bytes, &s) => {}
        _ => return Ok(ExportCheck::BadSignature),
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.contains('\\') || f.name.starts_with('.') {
            return Ok(ExportCheck::FileMismatch {
                name: f.name.clone(),
            });
        }
        let ok = std::fs::read(dir.join(&f.name))
            .map(|d| hex::encode(Sha256::digest(d)) == f.sha256)
            .unwrap_or(false);
        if !ok {
            return Ok(ExportCheck::FileMismatch {
                name: f.name.clone(),
            });
        }
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::InvalidArgument(format!("export directory: {}", e.kind())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != MANIFEST && name != SIGNATURE && !manifest.files.iter().any(|f| f.name == name) {
            return Ok(ExportCheck::Unlisted { name });
        }
    }
    Ok(ExportCheck::Valid {
        identity_key: manifest.identity_key,
        files: manifest.files.len() as u32,
    })
}
