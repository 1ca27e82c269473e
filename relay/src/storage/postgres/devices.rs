//! An account's devices and their registration ids (read by the accounts
//! and the prekey queries alike).

use deadpool_postgres::GenericClient;

use super::{id32, pg_error};
use crate::storage::Result;

pub(super) async fn devices(c: &impl GenericClient, account_id: &str) -> Result<Vec<(u32, u32)>> {
    let stmt = c
        .prepare_cached(
            "SELECT device_id, registration_id FROM devices WHERE account_id = $1
             ORDER BY device_id",
        )
        .await
        .map_err(pg_error)?;
    c.query(&stmt, &[&account_id])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| Ok((r.get::<_, i32>(0) as u32, id32(r.get(1))?)))
        .collect()
}
