//! Remote identities: pending key changes, acceptance, and safety numbers
//! (libsignal's displayable and scannable fingerprints).

use libsignal_protocol::{Fingerprint, IdentityKey};

use crate::account::{validate_account_id, Account};
use crate::error::{Error, Result};
use crate::store::identities;

/// Signal's fingerprint parameters (version 2, 5200 iterations).
const FINGERPRINT_VERSION: u32 = 2;
const FINGERPRINT_ITERATIONS: u32 = 5200;

/// What we know of a remote account's identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityStatus {
    /// Never seen.
    Unknown,
    /// Seen, not verified by comparing safety numbers.
    Unverified,
    /// Verified (safety number compared or scanned).
    Verified,
    /// The key changed; sending is blocked until the change is accepted.
    ChangePending,
}

/// A safety number to compare out of band or scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    /// 60 digits, in groups of five when shown.
    pub display: String,
    /// Bytes for a QR code; the other side scans and compares.
    pub scannable: Vec<u8>,
}

impl Account {
    pub fn identity_status(&self, remote_account: &str) -> Result<IdentityStatus> {
        Ok(match identities::status(&self.conn, remote_account)? {
            None => IdentityStatus::Unknown,
            Some((true, _)) => IdentityStatus::ChangePending,
            Some((false, true)) => IdentityStatus::Verified,
            Some((false, false)) => IdentityStatus::Unverified,
        })
    }

    pub(crate) fn identity_change_pending(&self, remote_account: &str) -> Result<bool> {
        Ok(self.identity_status(remote_account)? == IdentityStatus::ChangePending)
    }

    /// Trusts the new identity key of `remote_account` (after the user has
    /// compared the new safety number). Sending works again. The account is
    /// unverified until the new safety number is verified.
    pub fn accept_identity_change(&mut self, remote_account: &str) -> Result<()> {
        validate_account_id(remote_account)?;
        let tx = self.write_tx()?;
        if !identities::accept_pending(&tx, remote_account, self.now())? {
            return Err(Error::InvalidArgument("no pending identity change".into()));
        }
        let conversation = crate::store::conversations::with_member(&tx, remote_account)?;
        crate::audit::append(
            &tx,
            Some(&self.identity),
            crate::audit::AuditEvent::IdentityAccepted { conversation },
            self.now(),
        )?;
        tx.commit()?;
        tracing::info!(target: "alcove::identity", "identity change accepted");
        Ok(())
    }

    /// Trusts `identity_key` for `remote_account` as verified, before any
    /// session: how an invite's embedded fingerprint is pinned at enrolment.
    pub fn pin_identity(&mut self, remote_account: &str, identity_key: &[u8]) -> Result<()> {
        validate_account_id(remote_account)?;
        IdentityKey::decode(identity_key).map_err(|_| Error::Malformed("identity key"))?;
        identities::pin(&self.conn, remote_account, identity_key, self.now())
    }

    fn fingerprint(&self, remote_account: &str) -> Result<Fingerprint> {
        let keys = identities::keys(&self.conn, remote_account)?
            .ok_or_else(|| Error::InvalidArgument("unknown account".into()))?;
        // While a change is pending, show the *new* key's number: that is
        // the one the user must compare before accepting.
        let remote = IdentityKey::decode(keys.pending.as_deref().unwrap_or(&keys.trusted))
            .map_err(|_| Error::Corrupt)?;
        Ok(Fingerprint::new(
            FINGERPRINT_VERSION,
            FINGERPRINT_ITERATIONS,
            self.account_id.as_bytes(),
            self.identity.identity_key(),
            remote_account.as_bytes(),
            &remote,
        )?)
    }

    /// The safety number shared with `remote_account`.
    pub fn safety_number(&self, remote_account: &str) -> Result<SafetyNumber> {
        let fp = self.fingerprint(remote_account)?;
        Ok(SafetyNumber {
            display: fp.display_string()?,
            scannable: fp.scannable.serialize()?,
        })
    }

    /// Compares a scanned safety number with ours; marks the identity
    /// verified when it matches.
    pub fn verify_scanned_safety_number(
        &mut self,
        remote_account: &str,
        scanned: &[u8],
    ) -> Result<()> {
        let fp = self.fingerprint(remote_account)?;
        match fp.scannable.compare(scanned) {
            Ok(true) => {}
            Ok(false) => return Err(Error::SafetyNumberMismatch),
            Err(_) => return Err(Error::Malformed("scanned safety number")),
        }
        identities::set_verified(&self.conn, remote_account)
    }
}
