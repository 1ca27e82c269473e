//! The `settings` table: small per-account values by key.

use rusqlite::{params, Connection, OptionalExtension};

use crate::account::Account;
use crate::error::Result;

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM settings WHERE key = ?1", [key])?;
    Ok(())
}

impl Account {
    pub(crate) fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        get(&self.conn, key)
    }

    pub(crate) fn set_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        set(&self.conn, key, value)
    }
}
