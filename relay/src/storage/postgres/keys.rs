//! Prekeys. A one-time key is claimed by deleting it in one statement
//! whose row is chosen `FOR UPDATE SKIP LOCKED`: concurrent fetches, from
//! any number of relay processes, each get a different key or none.

use std::collections::BTreeMap;

use alcove_proto::relay::{
    DeviceBundle, PreKey, PreKeyBundles, PreKeyCount, PreKeyUpload, SignedPreKey,
};
use deadpool_postgres::{GenericClient, Object};

use super::{id32, pg_error};
use crate::storage::{Result, StorageError};

/// A one-time key to store: public key, signature (Kyber only).
type OneTimeKey<'a> = (&'a [u8], Option<&'a [u8]>);

const EC: i16 = 0;
const KYBER: i16 = 1;

/// Stores the signed prekey and Kyber last-resort key (replacing the
/// previous ones) and adds one-time keys (same id: replaced; the last of
/// an upload that names an id twice wins, as in SQLite).
pub(super) async fn store_keys(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    k: &PreKeyUpload,
) -> Result<()> {
    let device = device_id as i32;
    for (kind, s) in [(EC, &k.signed_prekey), (KYBER, &k.kyber_last_resort)] {
        if let Some(s) = s {
            c.execute(
                "INSERT INTO signed_prekeys (account_id, device_id, kind, key_id, public_key, signature)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (account_id, device_id, kind) DO UPDATE SET key_id = EXCLUDED.key_id,
                    public_key = EXCLUDED.public_key, signature = EXCLUDED.signature",
                &[&account_id, &device, &kind, &i64::from(s.id), &s.public_key, &s.signature],
            )
            .await
            .map_err(pg_error)?;
        }
    }
    let mut rows: BTreeMap<(i16, i64), OneTimeKey> = BTreeMap::new();
    for p in &k.one_time_prekeys {
        rows.insert((EC, i64::from(p.id)), (&p.public_key, None));
    }
    for p in &k.one_time_kyber_prekeys {
        rows.insert(
            (KYBER, i64::from(p.id)),
            (&p.public_key, Some(&p.signature)),
        );
    }
    if rows.is_empty() {
        return Ok(());
    }
    let kinds: Vec<i16> = rows.keys().map(|k| k.0).collect();
    let ids: Vec<i64> = rows.keys().map(|k| k.1).collect();
    let publics: Vec<&[u8]> = rows.values().map(|v| v.0).collect();
    let signatures: Vec<Option<&[u8]>> = rows.values().map(|v| v.1).collect();
    c.execute(
        "INSERT INTO one_time_prekeys (account_id, device_id, kind, key_id, public_key, signature)
         SELECT $1, $2, * FROM unnest($3::smallint[], $4::bigint[], $5::bytea[], $6::bytea[])
         ON CONFLICT (account_id, device_id, kind, key_id) DO UPDATE SET
            public_key = EXCLUDED.public_key, signature = EXCLUDED.signature",
        &[&account_id, &device, &kinds, &ids, &publics, &signatures],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub(super) async fn prekey_count(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
) -> Result<PreKeyCount> {
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE kind = 1)
             FROM one_time_prekeys WHERE account_id = $1 AND device_id = $2",
            &[&account_id, &(device_id as i32)],
        )
        .await
        .map_err(pg_error)?;
    let n = |i: usize| u32::try_from(row.get::<_, i64>(i)).unwrap_or(u32::MAX);
    Ok(PreKeyCount {
        one_time_prekeys: n(0),
        one_time_kyber_prekeys: n(1),
    })
}

/// The lowest one-time key of a kind not being claimed by another
/// transaction right now, deleted and returned.
const TAKE: &str = "DELETE FROM one_time_prekeys WHERE (account_id, device_id, kind, key_id) =
        (SELECT account_id, device_id, kind, key_id FROM one_time_prekeys
         WHERE account_id = $1 AND device_id = $2 AND kind = $3
         ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING key_id, public_key, signature";

pub(super) async fn take_bundles(c: &mut Object, account_id: &str) -> Result<PreKeyBundles> {
    let tx = c.transaction().await.map_err(pg_error)?;
    let identity_key: Vec<u8> = tx
        .query_opt(
            "SELECT identity_key FROM accounts WHERE account_id = $1",
            &[&account_id],
        )
        .await
        .map_err(pg_error)?
        .ok_or(StorageError::NotFound)?
        .get(0);
    let devices = super::devices::devices(&tx, account_id).await?;
    let signed_stmt = tx
        .prepare_cached(
            "SELECT key_id, public_key, signature FROM signed_prekeys
             WHERE account_id = $1 AND device_id = $2 AND kind = $3",
        )
        .await
        .map_err(pg_error)?;
    let take_stmt = tx.prepare_cached(TAKE).await.map_err(pg_error)?;
    let mut out = PreKeyBundles::default();
    for (device_id, registration_id) in devices {
        let device = device_id as i32;
        let signed = |kind: i16| {
            let (tx, stmt) = (&tx, &signed_stmt);
            async move {
                tx.query_opt(stmt, &[&account_id, &device, &kind])
                    .await
                    .map_err(pg_error)?
                    .map(|r| {
                        Ok::<_, StorageError>(SignedPreKey {
                            id: id32(r.get(0))?,
                            public_key: r.get(1),
                            signature: r.get(2),
                        })
                    })
                    .transpose()
            }
        };
        let take = |kind: i16| {
            let (tx, stmt) = (&tx, &take_stmt);
            async move {
                tx.query_opt(stmt, &[&account_id, &device, &kind])
                    .await
                    .map_err(pg_error)?
                    .map(|r| {
                        Ok::<_, StorageError>((
                            id32(r.get(0))?,
                            r.get::<_, Vec<u8>>(1),
                            r.get::<_, Option<Vec<u8>>>(2),
                        ))
                    })
                    .transpose()
            }
        };
        let Some(signed_prekey) = signed(EC).await? else {
            continue;
        };
        let kyber_prekey = match take(KYBER).await? {
            Some((id, public_key, signature)) => Some(SignedPreKey {
                id,
                public_key,
                signature: signature.unwrap_or_default(),
            }),
            None => signed(KYBER).await?,
        };
        if kyber_prekey.is_none() {
            continue;
        }
        let one_time_prekey = take(EC)
            .await?
            .map(|(id, public_key, _)| PreKey { id, public_key });
        out.devices.push(DeviceBundle {
            device_id,
            registration_id,
            identity_key: identity_key.clone(),
            signed_prekey: Some(signed_prekey),
            kyber_prekey,
            one_time_prekey,
        });
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(out)
}
