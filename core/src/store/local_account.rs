//! The `local_account` row: who this database belongs to.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// The account row as stored.
pub(crate) struct LocalAccount {
    pub(crate) account_id: String,
    pub(crate) device_id: u32,
    pub(crate) registration_id: u32,
    pub(crate) identity_key_pair: Vec<u8>,
}

pub(crate) fn exists(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row("SELECT count(*) > 0 FROM local_account", [], |r| r.get(0))?)
}

pub(crate) fn insert(conn: &Connection, a: &LocalAccount, now: u64) -> Result<()> {
    conn.execute(
        "INSERT INTO local_account (id, account_id, device_id, registration_id, identity_key_pair, created_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        params![a.account_id, a.device_id, a.registration_id, a.identity_key_pair, now as i64],
    )?;
    Ok(())
}

pub(crate) fn get(conn: &Connection) -> Result<Option<LocalAccount>> {
    Ok(conn
        .query_row(
            "SELECT account_id, device_id, registration_id, identity_key_pair FROM local_account WHERE id = 1",
            [],
            |r| {
                Ok(LocalAccount {
                    account_id: r.get(0)?,
                    device_id: r.get(1)?,
                    registration_id: r.get(2)?,
                    identity_key_pair: r.get(3)?,
                })
            },
        )
        .optional()?)
}
