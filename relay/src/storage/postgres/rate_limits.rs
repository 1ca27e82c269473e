//! Rate-limit counters shared by every relay process on one database:
//! fixed windows, one row per limited key, counted with one upsert. The
//! key is a SHA-256 of the limit's name and the account ids or address
//! it counts, so the table does not list who sends to whom; rows whose
//! window has ended are swept.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{big, pg_error, PostgresStorage};
use crate::storage::Result;

/// The stored key of `parts` under limit `name`.
pub(crate) fn key(name: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    for p in parts {
        h.update([0]);
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().to_vec()
}

fn window_start(now: u64, window: Duration) -> (u64, u64) {
    let w = (window.as_millis() as u64).max(1);
    let start = now - now % w;
    (start, start + w)
}

/// Counts one request against `count` per `window`; `Some(wait)` when it
/// is over the limit (the wait ends with the window).
pub(crate) async fn hit(
    storage: &PostgresStorage,
    key: &[u8],
    count: u32,
    window: Duration,
    now: u64,
) -> Result<Option<Duration>> {
    let (start, end) = window_start(now, window);
    let c = storage.client().await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO rate_limits (limit_key, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT (limit_key) DO UPDATE SET
                count = CASE WHEN rate_limits.window_start = EXCLUDED.window_start
                             THEN rate_limits.count + 1 ELSE 1 END,
                window_start = EXCLUDED.window_start
             RETURNING count",
        )
        .await
        .map_err(pg_error)?;
    let n: i64 = c
        .query_one(&stmt, &[&key, &big(start)])
        .await
        .map_err(pg_error)?
        .get(0);
    Ok((n > i64::from(count)).then(|| Duration::from_millis(end.saturating_sub(now))))
}

/// Whether the key is already over `count` in this window, without
/// counting (the failed-login block).
pub(crate) async fn over(
    storage: &PostgresStorage,
    key: &[u8],
    count: u32,
    window: Duration,
    now: u64,
) -> Result<Option<Duration>> {
    let (start, end) = window_start(now, window);
    let c = storage.client().await?;
    let row = c
        .query_opt(
            "SELECT count FROM rate_limits WHERE limit_key = $1 AND window_start = $2",
            &[&key, &big(start)],
        )
        .await
        .map_err(pg_error)?;
    let n: i64 = row.map_or(0, |r| r.get(0));
    Ok((n >= i64::from(count)).then(|| Duration::from_millis(end.saturating_sub(now))))
}

/// Deletes counters whose window started before `before`.
pub(crate) async fn sweep(storage: &PostgresStorage, before: u64) -> Result<u64> {
    storage
        .client()
        .await?
        .execute(
            "DELETE FROM rate_limits WHERE window_start < $1",
            &[&big(before)],
        )
        .await
        .map_err(pg_error)
}
