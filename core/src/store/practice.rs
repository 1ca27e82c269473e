//! The `practice_profiles` and `consents` tables.

use alcove_proto::content::PracticeProfile;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::conversations::types::ConversationId;
use crate::error::{Error, Result};

/// `account`'s profile as last stored, if any.
pub(crate) fn profile(conn: &Connection, account: &str) -> Result<Option<PracticeProfile>> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT profile FROM practice_profiles WHERE account_id = ?1")?
        .query_row([account], |r| r.get(0))
        .optional()?;
    raw.map(|b| PracticeProfile::decode(b.as_slice()).map_err(|_| Error::Corrupt))
        .transpose()
}

/// Keeps `profile` for `account` when its revision is newer than the one
/// stored. False when it was not (a replay or a stale copy).
pub(crate) fn save_if_newer(
    conn: &Connection,
    account: &str,
    profile: &PracticeProfile,
    now: u64,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO practice_profiles (account_id, revision, profile, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id) DO UPDATE SET
               revision = excluded.revision, profile = excluded.profile,
               updated_at = excluded.updated_at
             WHERE excluded.revision > practice_profiles.revision",
        )?
        .execute(params![
            account,
            profile.revision as i64,
            profile.encode_to_vec(),
            now as i64
        ])?;
    Ok(n == 1)
}

/// One recorded acceptance of a texting policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub conversation: ConversationId,
    /// Who accepted (the client's account id).
    pub account: String,
    pub policy_version: u32,
    pub policy_sha256: Vec<u8>,
    pub accepted_at: u64,
    pub device_id: u32,
}

/// Records a consent; the same one again changes nothing.
pub(crate) fn record_consent(conn: &Connection, c: &Consent) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO consents (conversation_id, account_id, policy_version, policy_sha256, accepted_at, device_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        c.conversation.get(),
        c.account,
        c.policy_version,
        c.policy_sha256,
        c.accepted_at as i64,
        c.device_id
    ])?;
    Ok(())
}

/// Whether `account` accepted `policy_version` with this text's hash.
pub(crate) fn has_consent(
    conn: &Connection,
    conversation: ConversationId,
    account: &str,
    policy_version: u32,
    policy_sha256: &[u8],
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM consents WHERE conversation_id = ?1 AND account_id = ?2
               AND policy_version = ?3 AND policy_sha256 = ?4",
        )?
        .query_row(
            params![conversation.get(), account, policy_version, policy_sha256],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Every consent recorded in a conversation, oldest first.
pub(crate) fn consents(conn: &Connection, conversation: ConversationId) -> Result<Vec<Consent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_id, policy_version, policy_sha256, accepted_at, device_id
         FROM consents WHERE conversation_id = ?1 ORDER BY accepted_at, policy_version",
    )?;
    let rows = stmt.query_map([conversation.get()], |r| {
        Ok(Consent {
            conversation,
            account: r.get(0)?,
            policy_version: r.get(1)?,
            policy_sha256: r.get(2)?,
            accepted_at: r.get::<_, i64>(3)? as u64,
            device_id: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
