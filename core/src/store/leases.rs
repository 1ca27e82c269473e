//! The `leases` table: who may advance the ratchet, across processes.

use rusqlite::{params, Connection};

use crate::error::Result;

/// Takes or renews `name` for `holder` until `now + ttl_ms`; false when
/// another holder's lease is still live.
pub(crate) fn take(
    conn: &Connection,
    name: &str,
    holder: &str,
    now: u64,
    ttl_ms: u64,
) -> Result<bool> {
    let now = now as i64;
    let taken = conn
        .prepare_cached(
            "INSERT INTO leases (name, holder, expires_at, generation) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (name) DO UPDATE SET
               generation = leases.generation + (leases.holder != excluded.holder),
               holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < ?4",
        )?
        .execute(params![name, holder, now + ttl_ms as i64, now])?;
    Ok(taken == 1)
}

pub(crate) fn release(conn: &Connection, name: &str, holder: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
        .execute(params![name, holder])?;
    Ok(())
}
