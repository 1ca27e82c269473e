//! The `processed_envelopes` table: the GUIDs already received, so a
//! re-delivered envelope is dropped, not applied twice.

use rusqlite::{params, Connection};

use crate::error::Result;

/// Records the envelope `guid` the relay stamped `server_timestamp`; false
/// when it was already there (a redelivery). Not a security check (a
/// replayed ciphertext is refused by libsignal, its key spent): it spares
/// the decrypt and keeps a redelivered envelope from failing loudly.
pub(crate) fn record(
    conn: &Connection,
    server_timestamp: u64,
    guid: &[u8],
    now: u64,
) -> Result<bool> {
    let fresh = conn
        .prepare_cached(
            "INSERT INTO processed_envelopes (server_timestamp, guid, processed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            i64::try_from(server_timestamp).unwrap_or(i64::MAX),
            guid,
            now as i64
        ])?;
    Ok(fresh == 1)
}
