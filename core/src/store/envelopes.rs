//! The `processed_envelopes` table: the GUIDs already received, so a
//! re-delivered envelope is dropped, not applied twice.

use rusqlite::{params, Connection};

use crate::error::Result;

/// Records `guid`; false when it was already there (a replay).
pub(crate) fn record(conn: &Connection, guid: &[u8], now: u64) -> Result<bool> {
    let fresh = conn
        .prepare_cached(
            "INSERT INTO processed_envelopes (guid, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![guid, now as i64])?;
    Ok(fresh == 1)
}
