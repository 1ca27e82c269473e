//! The `audit_log` and `audit_signatures` tables.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// One row of the audit log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: u64,
    pub kind: String,
    /// An opaque local id (a conversation id), when the event has one.
    pub subject: Option<i64>,
    /// A number the event carries (a policy version, a count).
    pub detail: Option<i64>,
    pub prev: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The newest row's sequence number and hash.
pub(crate) fn head(conn: &Connection) -> Result<Option<(i64, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub(crate) fn insert(conn: &Connection, row: &AuditRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, kind, subject, detail, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.seq,
        row.at as i64,
        row.kind,
        row.subject,
        row.detail,
        row.prev,
        row.hash
    ])?;
    Ok(())
}

/// Rows in `seq` order from `after` (exclusive), at most `limit`.
pub(crate) fn rows(conn: &Connection, after: i64, limit: u32) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, kind, subject, detail, prev, hash FROM audit_log
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |r| {
        Ok(AuditRow {
            seq: r.get(0)?,
            at: r.get::<_, i64>(1)? as u64,
            kind: r.get(2)?,
            subject: r.get(3)?,
            detail: r.get(4)?,
            prev: r.get(5)?,
            hash: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn add_signature(
    conn: &Connection,
    seq: i64,
    hash: &[u8],
    signature: &[u8],
    at: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_signatures (seq, hash, signature, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (seq) DO NOTHING",
    )?
    .execute(params![seq, hash, signature, at as i64])?;
    Ok(())
}

/// A signature of the log's head at `seq`.
pub(crate) struct HeadSignature {
    pub(crate) seq: i64,
    pub(crate) hash: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Every signature, oldest first.
pub(crate) fn signatures(conn: &Connection) -> Result<Vec<HeadSignature>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, hash, signature FROM audit_signatures ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(HeadSignature {
            seq: r.get(0)?,
            hash: r.get(1)?,
            signature: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn last_signed(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT max(seq) FROM audit_signatures", [], |r| r.get(0))?)
}
