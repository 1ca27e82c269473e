//! Our own prekeys' rows beyond what libsignal's stores read
//! (`signal_keys`): id counters, rotation ages, counts and pruning.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// Ids live in 1..=0xFFFFFF (as Signal's) and wrap.
pub(crate) const MAX_ID: u32 = 0xFF_FFFF;

pub(crate) fn wrap(id: u32, i: u32) -> u32 {
    (id - 1 + i) % MAX_ID + 1
}

/// Reserves `n` ids from `counter`; returns the first.
pub(crate) fn next_id(conn: &Connection, counter: &str, n: u32) -> Result<u32> {
    let cur: u32 = conn
        .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
        .query_row([counter], |r| r.get(0))
        .optional()?
        .unwrap_or(1);
    conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?
        .execute(params![counter, wrap(cur, n)])?;
    Ok(cur)
}

/// Which key a rotation age is about.
#[derive(Clone, Copy)]
pub(crate) enum Rotating {
    SignedPrekey,
    KyberLastResort,
}

/// When the newest key of that kind was made, if any.
pub(crate) fn newest(conn: &Connection, kind: Rotating) -> Result<Option<u64>> {
    let sql = match kind {
        Rotating::SignedPrekey => "SELECT max(created_at) FROM signed_prekeys",
        Rotating::KyberLastResort => {
            "SELECT max(created_at) FROM kyber_prekeys WHERE last_resort = 1"
        }
    };
    let t: Option<i64> = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(t.map(|t| t as u64))
}

pub(crate) fn insert_signed(conn: &Connection, id: u32, record: &[u8], now: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, record, now as i64])?;
    Ok(())
}

pub(crate) fn insert_kyber(
    conn: &Connection,
    id: u32,
    record: &[u8],
    last_resort: bool,
    now: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO kyber_prekeys (id, record, last_resort, created_at, uploaded)
         VALUES (?1, ?2, ?3, ?4, 1)",
    )?
    .execute(params![id, record, last_resort, now as i64])?;
    Ok(())
}

pub(crate) fn insert_one_time(conn: &Connection, id: u32, record: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO prekeys (id, record, uploaded) VALUES (?1, ?2, 1)",
    )?
    .execute(params![id, record])?;
    Ok(())
}

/// Drops superseded signed and last-resort keys made before `cutoff`,
/// always keeping the newest of each.
pub(crate) fn prune_superseded(conn: &Connection, cutoff: u64) -> Result<()> {
    let cutoff = cutoff as i64;
    conn.execute(
        "DELETE FROM signed_prekeys WHERE created_at < ?1
           AND id != (SELECT id FROM signed_prekeys ORDER BY created_at DESC, id DESC LIMIT 1)",
        [cutoff],
    )?;
    conn.execute(
        "DELETE FROM kyber_prekeys WHERE last_resort = 1 AND created_at < ?1
           AND id != (SELECT id FROM kyber_prekeys WHERE last_resort = 1 ORDER BY created_at DESC, id DESC LIMIT 1)",
        [cutoff],
    )?;
    Ok(())
}

/// Unused one-time keys held locally (EC, Kyber).
pub(crate) fn one_time_counts(conn: &Connection) -> Result<(u32, u32)> {
    let ec = conn.query_row("SELECT count(*) FROM prekeys", [], |r| r.get(0))?;
    let kyber = conn.query_row(
        "SELECT count(*) FROM kyber_prekeys WHERE last_resort = 0",
        [],
        |r| r.get(0),
    )?;
    Ok((ec, kyber))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The counts read the index: the plan names it as covering, so no
    /// row (and none of its Kyber record's overflow pages) is read.
    #[test]
    fn kyber_counts_read_the_index_not_the_rows() {
        let conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&conn, crate::schema::CURRENT_VERSION).unwrap();
        for (sql, needle) in [
            (
                "SELECT count(*) FROM kyber_prekeys WHERE last_resort = 0",
                "COVERING INDEX kyber_prekeys_by_kind",
            ),
            (
                "SELECT max(created_at) FROM kyber_prekeys WHERE last_resort = 1",
                "kyber_prekeys_by_kind",
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert!(plan.iter().any(|p| p.contains(needle)), "{sql}: {plan:?}");
        }
    }
}
