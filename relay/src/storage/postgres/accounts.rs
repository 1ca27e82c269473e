//! Invites, accounts and devices: only hashes of invite tokens and salted
//! hashes of device secrets are stored, as in the SQLite backend.

use deadpool_postgres::{GenericClient, Object};

use super::{big, keys, pg_error};
use alcove_proto::relay::PreKeyUpload;

use crate::storage::{DeviceSecret, NewDevice, Result, Role, StorageError};

pub(super) async fn create_invite(
    c: &impl GenericClient,
    token_hash: &[u8],
    role: Role,
    now: u64,
    expires_at: Option<u64>,
) -> Result<()> {
    c.execute(
        "INSERT INTO invites (token_hash, created_at, expires_at, role) VALUES ($1, $2, $3, $4)",
        &[&token_hash, &big(now), &expires_at.map(big), &role.as_str()],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Unused invites minted by an account that have not expired at `$2`
/// (read through the partial index `invites_by_minter`).
const OPEN_INVITES: &str = "SELECT count(*) FROM invites
     WHERE minted_by = $1 AND NOT used AND expires_at > $2";

pub(super) async fn open_invites(c: &impl GenericClient, minted_by: &str, now: u64) -> Result<u32> {
    let n: i64 = c
        .query_one(OPEN_INVITES, &[&minted_by, &big(now)])
        .await
        .map_err(pg_error)?
        .get(0);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(super) async fn mint_invite(
    c: &mut Object,
    token_hash: &[u8],
    minted_by: &str,
    now: u64,
    expires_at: u64,
    max_open: u32,
) -> Result<()> {
    let tx = c.transaction().await.map_err(pg_error)?;
    // One minter at a time (across processes): the count and the insert
    // are one step, so concurrent mints cannot both pass the quota.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('mint:' || $1, 0))",
        &[&minted_by],
    )
    .await
    .map_err(pg_error)?;
    if open_invites(&tx, minted_by, now).await? >= max_open {
        return Err(StorageError::InviteQuota);
    }
    tx.execute(
        "INSERT INTO invites (token_hash, created_at, expires_at, role, minted_by)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &token_hash,
            &big(now),
            &big(expires_at),
            &Role::Client.as_str(),
            &minted_by,
        ],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}

fn role(stored: &str) -> Result<Role> {
    Role::parse(stored).ok_or_else(|| StorageError::Backend("postgres: unknown stored role".into()))
}

pub(super) async fn account_role(c: &impl GenericClient, account_id: &str) -> Result<Option<Role>> {
    c.query_opt(
        "SELECT role FROM accounts WHERE account_id = $1",
        &[&account_id],
    )
    .await
    .map_err(pg_error)?
    .map(|r| role(r.get(0)))
    .transpose()
}

async fn insert_device(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    d: &NewDevice,
    now: u64,
) -> Result<()> {
    c.execute(
        "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &account_id,
            &(device_id as i32),
            &i64::from(d.registration_id),
            &d.salt,
            &d.secret_hash,
            &big(now),
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub(super) async fn register(
    c: &mut Object,
    invite_hash: &[u8],
    account_id: &str,
    device: &NewDevice,
    keys: &PreKeyUpload,
    delivery_key_hash: Option<&[u8]>,
    now: u64,
) -> Result<u32> {
    let tx = c.transaction().await.map_err(pg_error)?;
    // The invite's role, and the invite used up (forgetting who minted
    // it) in the same step; the row lock makes a concurrent use of the
    // same invite wait and then find it used.
    let row = tx
        .query_opt(
            "UPDATE invites SET used = true, minted_by = NULL
             WHERE token_hash = $1 AND NOT used AND (expires_at IS NULL OR expires_at > $2)
             RETURNING role",
            &[&invite_hash, &big(now)],
        )
        .await
        .map_err(pg_error)?;
    let Some(row) = row else {
        return Err(StorageError::InvalidInvite);
    };
    let role: String = row.get(0);
    let inserted = tx
        .execute(
            "INSERT INTO accounts (account_id, identity_key, created_at, delivery_key_hash, role)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING",
            &[
                &account_id,
                &device.identity_key,
                &big(now),
                &delivery_key_hash,
                &role,
            ],
        )
        .await
        .map_err(pg_error)?;
    if inserted == 0 {
        // Dropping the transaction rolls back: the invite stays unused.
        return Err(StorageError::AccountExists);
    }
    insert_device(&tx, account_id, 1, device, now).await?;
    keys::store_keys(&tx, account_id, 1, keys).await?;
    tx.commit().await.map_err(pg_error)?;
    Ok(1)
}

pub(super) async fn add_device(
    c: &mut Object,
    account_id: &str,
    device: &NewDevice,
    keys: &PreKeyUpload,
    now: u64,
    max_devices: u32,
) -> Result<u32> {
    let tx = c.transaction().await.map_err(pg_error)?;
    // The account row locked: concurrent additions count one at a time.
    let found = tx
        .query_opt(
            "SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE",
            &[&account_id],
        )
        .await
        .map_err(pg_error)?;
    if found.is_none() {
        return Err(StorageError::NotFound);
    }
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM devices WHERE account_id = $1),
                    (SELECT max(d) + 1 FROM (
                        SELECT device_id AS d FROM devices WHERE account_id = $1
                        UNION ALL SELECT device_id FROM revoked_devices WHERE account_id = $1) ids)",
            &[&account_id],
        )
        .await
        .map_err(pg_error)?;
    let count: i64 = row.get(0);
    let next: Option<i32> = row.get(1);
    if count >= i64::from(max_devices) {
        return Err(StorageError::TooManyDevices);
    }
    // An account always has a device or a tombstone; none: a broken row.
    let next = next.ok_or(StorageError::NotFound)?;
    if next > 127 {
        return Err(StorageError::TooManyDevices);
    }
    let next = next as u32;
    insert_device(&tx, account_id, next, device, now).await?;
    keys::store_keys(&tx, account_id, next, keys).await?;
    tx.commit().await.map_err(pg_error)?;
    Ok(next)
}

pub(super) async fn revoke_device(
    c: &mut Object,
    account_id: &str,
    device_id: u32,
    now: u64,
) -> Result<()> {
    let device = device_id as i32;
    let tx = c.transaction().await.map_err(pg_error)?;
    tx.execute(
        "INSERT INTO revoked_devices (account_id, device_id, salt, secret_hash, revoked_at)
         SELECT account_id, device_id, salt, secret_hash, $3 FROM devices
         WHERE account_id = $1 AND device_id = $2
         ON CONFLICT (account_id, device_id) DO UPDATE SET salt = EXCLUDED.salt,
            secret_hash = EXCLUDED.secret_hash, revoked_at = EXCLUDED.revoked_at",
        &[&account_id, &device, &big(now)],
    )
    .await
    .map_err(pg_error)?;
    for table in ["mailbox", "readers", "wakes"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE mailbox_id =
                    (SELECT mailbox_id FROM devices WHERE account_id = $1 AND device_id = $2)"
            ),
            &[&account_id, &device],
        )
        .await
        .map_err(pg_error)?;
    }
    for table in ["one_time_prekeys", "signed_prekeys", "devices"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account_id = $1 AND device_id = $2"),
            &[&account_id, &device],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

pub(super) async fn identity_key(
    c: &impl GenericClient,
    account_id: &str,
) -> Result<Option<Vec<u8>>> {
    Ok(c.query_opt(
        "SELECT identity_key FROM accounts WHERE account_id = $1",
        &[&account_id],
    )
    .await
    .map_err(pg_error)?
    .map(|r| r.get(0)))
}

pub(super) async fn set_account_role(
    c: &impl GenericClient,
    account_id: &str,
    role: Role,
) -> Result<()> {
    let n = c
        .execute(
            "UPDATE accounts SET role = $2 WHERE account_id = $1",
            &[&account_id, &role.as_str()],
        )
        .await
        .map_err(pg_error)?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

pub(super) async fn set_delivery_key(
    c: &impl GenericClient,
    account_id: &str,
    hash: &[u8],
) -> Result<()> {
    let n = c
        .execute(
            "UPDATE accounts SET delivery_key_hash = $2 WHERE account_id = $1",
            &[&account_id, &hash],
        )
        .await
        .map_err(pg_error)?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

pub(super) async fn delivery_key_hash(
    c: &impl GenericClient,
    account_id: &str,
) -> Result<Option<Vec<u8>>> {
    Ok(c.query_opt(
        "SELECT delivery_key_hash FROM accounts WHERE account_id = $1",
        &[&account_id],
    )
    .await
    .map_err(pg_error)?
    .and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
}

pub(super) async fn device_secret(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
) -> Result<Option<DeviceSecret>> {
    let stmt = c
        .prepare_cached(
            "SELECT salt, secret_hash, false FROM devices WHERE account_id = $1 AND device_id = $2
             UNION ALL
             SELECT salt, secret_hash, true FROM revoked_devices
             WHERE account_id = $1 AND device_id = $2 LIMIT 1",
        )
        .await
        .map_err(pg_error)?;
    Ok(c.query_opt(&stmt, &[&account_id, &(device_id as i32)])
        .await
        .map_err(pg_error)?
        .map(|r| DeviceSecret {
            salt: r.get(0),
            hash: r.get(1),
            revoked: r.get(2),
        }))
}
