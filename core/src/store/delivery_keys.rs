//! The `delivery_keys` table: the sealed-sender delivery key each contact
//! shared with us inside encrypted content.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

pub(crate) fn get(conn: &Connection, remote_account: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT key FROM delivery_keys WHERE remote_account = ?1")?
        .query_row([remote_account], |r| r.get(0))
        .optional()?)
}

/// Keeps `key` for `remote_account`; an unchanged key writes nothing.
pub(crate) fn save(conn: &Connection, remote_account: &str, key: &[u8], now: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO delivery_keys (remote_account, key, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (remote_account) DO UPDATE SET key = excluded.key, updated_at = excluded.updated_at
         WHERE delivery_keys.key != excluded.key",
    )?
    .execute(params![remote_account, key, now as i64])?;
    Ok(())
}

pub(crate) fn forget(conn: &Connection, remote_account: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM delivery_keys WHERE remote_account = ?1")?
        .execute([remote_account])?;
    Ok(())
}
