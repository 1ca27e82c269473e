//! Mailboxes, reader leases and push targets.
//!
//! Delivered and expired mail is deleted. PostgreSQL has no
//! `secure_delete`: a deleted row stays in its page as a dead tuple until
//! VACUUM reclaims the space (the `mailbox` table is vacuumed eagerly),
//! and in the write-ahead log and any base backup or replica until those
//! are recycled. relay/CONFIG.md says what that means for an operator.

use std::collections::{BTreeSet, HashSet};

use alcove_proto::wire::Envelope;
use deadpool_postgres::{GenericClient, Object};
use prost::Message;

use super::{big, pg_error, unsigned};
use crate::storage::{
    AckedMail, Cut, Enqueued, MailboxQuota, PageCut, PushTarget, Queued, Result, StorageError,
    StoredEnvelope, SyncPage, SyncStep, Synced,
};

/// The mailbox of (account `$1`, device `$2`).
const MAILBOX: &str = "(SELECT mailbox_id FROM devices WHERE account_id = $1 AND device_id = $2)";

pub(super) async fn enqueue(
    c: &mut Object,
    account_id: &str,
    envelopes: &[Envelope],
    quota: &MailboxQuota,
) -> Result<Enqueued> {
    let tx = c.transaction().await.map_err(pg_error)?;
    // The recipients' device rows locked in id order: sends to one
    // mailbox, from any relay process, check its quota one at a time
    // (the order keeps two multi-device sends from deadlocking).
    let wanted: Vec<i32> = envelopes
        .iter()
        .map(|e| e.destination_device as i32)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = tx
        .query(
            "SELECT device_id, mailbox_id FROM devices WHERE account_id = $1
               AND device_id = ANY($2) ORDER BY device_id FOR NO KEY UPDATE",
            &[&account_id, &wanted],
        )
        .await
        .map_err(pg_error)?;
    let boxes: std::collections::HashMap<i32, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let dup_stmt = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM mailbox WHERE mailbox_id = $1 AND guid = $2)")
        .await
        .map_err(pg_error)?;
    let usage_stmt = tx
        .prepare_cached(
            "SELECT envelopes, bytes, signed_envelopes, signed_bytes FROM mailbox_usage
             WHERE mailbox_id = $1",
        )
        .await
        .map_err(pg_error)?;
    let insert_stmt = tx
        .prepare_cached(
            "INSERT INTO mailbox (mailbox_id, guid, envelope, server_timestamp, size, signed)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(pg_error)?;
    let mut out = Enqueued::default();
    for env in envelopes {
        let mailbox = *boxes
            .get(&(env.destination_device as i32))
            .ok_or(StorageError::NotFound)?;
        let dup: bool = tx
            .query_one(&dup_stmt, &[&mailbox, &env.guid])
            .await
            .map_err(pg_error)?
            .get(0);
        if dup {
            continue;
        }
        let queued = tx
            .query_opt(&usage_stmt, &[&mailbox])
            .await
            .map_err(pg_error)?
            .map(|r| queued(&r))
            .unwrap_or_default();
        let bytes = env.encode_to_vec();
        let signed = !env.source_account.is_empty();
        if !quota.admits(queued, bytes.len() as u64, signed) {
            return Err(StorageError::MailboxFull);
        }
        tx.execute(
            &insert_stmt,
            &[
                &mailbox,
                &env.guid,
                &bytes,
                &big(env.server_timestamp),
                &(bytes.len() as i64),
                &signed,
            ],
        )
        .await
        .map_err(pg_error)?;
        out.fresh.push(env.destination_device);
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(out)
}

fn queued(r: &tokio_postgres::Row) -> Queued {
    Queued {
        count: unsigned(r.get(0)),
        bytes: unsigned(r.get(1)),
        signed_count: unsigned(r.get(2)),
        signed_bytes: unsigned(r.get(3)),
    }
}

/// One row of `mailbox_usage`, kept by triggers (no row: empty).
pub(super) async fn usage(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
) -> Result<Queued> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT envelopes, bytes, signed_envelopes, signed_bytes FROM mailbox_usage
             WHERE mailbox_id = {MAILBOX}"
        ))
        .await
        .map_err(pg_error)?;
    Ok(c.query_opt(&stmt, &[&account_id, &(device_id as i32)])
        .await
        .map_err(pg_error)?
        .map(|r| queued(&r))
        .unwrap_or_default())
}

pub(super) async fn fetch(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    limit: u32,
    not_before: u64,
) -> Result<(Vec<Envelope>, bool)> {
    let device = device_id as i32;
    let expire = c
        .prepare_cached(&format!(
            "DELETE FROM mailbox WHERE mailbox_id = {MAILBOX} AND server_timestamp < $3"
        ))
        .await
        .map_err(pg_error)?;
    c.execute(&expire, &[&account_id, &device, &big(not_before)])
        .await
        .map_err(pg_error)?;
    let page = c
        .prepare_cached(&format!(
            "SELECT envelope FROM mailbox WHERE mailbox_id = {MAILBOX} ORDER BY seq LIMIT $3"
        ))
        .await
        .map_err(pg_error)?;
    let rows = c
        .query(&page, &[&account_id, &device, &(i64::from(limit) + 1)])
        .await
        .map_err(pg_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let bytes: &[u8] = r.get(0);
        out.push(
            Envelope::decode(bytes)
                .map_err(|_| StorageError::Backend("stored envelope does not decode".into()))?,
        );
    }
    let more = out.len() > limit as usize;
    out.truncate(limit as usize);
    Ok((out, more))
}

pub(super) async fn ack(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    guids: &[Vec<u8>],
) -> Result<()> {
    if guids.is_empty() {
        return Ok(());
    }
    let stmt = c
        .prepare_cached(&format!(
            "DELETE FROM mailbox WHERE mailbox_id = {MAILBOX} AND guid = ANY($3)"
        ))
        .await
        .map_err(pg_error)?;
    c.execute(&stmt, &[&account_id, &(device_id as i32), &guids])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Acknowledged envelopes of several mailboxes in one transaction, each
/// GUID only from its own mailbox.
pub(super) async fn delete_acked(c: &mut Object, batch: &[AckedMail]) -> Result<usize> {
    let tx = c.transaction().await.map_err(pg_error)?;
    let stmt = tx
        .prepare_cached(&format!(
            "DELETE FROM mailbox WHERE mailbox_id = {MAILBOX} AND guid = ANY($3)"
        ))
        .await
        .map_err(pg_error)?;
    let mut deleted = 0;
    for acked in batch.iter().filter(|a| !a.guids.is_empty()) {
        deleted += tx
            .execute(
                &stmt,
                &[&acked.account_id, &(acked.device_id as i32), &acked.guids],
            )
            .await
            .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(deleted as usize)
}

/// One [`SyncStep`] in one transaction. The lease is taken first: its
/// row lock decides between readers racing for the mailbox (from any
/// relay process), and a refused step rolls back having done nothing.
pub(super) async fn sync(
    c: &mut Object,
    account_id: &str,
    device_id: u32,
    step: &SyncStep,
) -> Result<Synced> {
    let tx = c.transaction().await.map_err(pg_error)?;
    let mailbox: i64 = tx
        .query_opt(
            "SELECT mailbox_id FROM devices WHERE account_id = $1 AND device_id = $2",
            &[&account_id, &(device_id as i32)],
        )
        .await
        .map_err(pg_error)?
        .ok_or(StorageError::NotFound)?
        .get(0);
    let lease = tx
        .prepare_cached(
            "INSERT INTO readers (mailbox_id, reader, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (mailbox_id) DO UPDATE
                SET reader = EXCLUDED.reader, expires_at = EXCLUDED.expires_at
                WHERE readers.reader = EXCLUDED.reader OR readers.expires_at <= $4",
        )
        .await
        .map_err(pg_error)?;
    let leased = tx
        .execute(
            &lease,
            &[
                &mailbox,
                &step.reader,
                &big(step.lease_until),
                &big(step.now),
            ],
        )
        .await
        .map_err(pg_error)?;
    if leased != 1 {
        tx.rollback().await.map_err(pg_error)?;
        return Ok(Synced::Busy);
    }
    if !step.ack.is_empty() {
        let ack = tx
            .prepare_cached("DELETE FROM mailbox WHERE mailbox_id = $1 AND guid = ANY($2)")
            .await
            .map_err(pg_error)?;
        tx.execute(&ack, &[&mailbox, &step.ack])
            .await
            .map_err(pg_error)?;
    }
    let expire = tx
        .prepare_cached("DELETE FROM mailbox WHERE mailbox_id = $1 AND server_timestamp < $2")
        .await
        .map_err(pg_error)?;
    tx.execute(&expire, &[&mailbox, &big(step.not_before)])
        .await
        .map_err(pg_error)?;
    // Sizes first (the envelopes themselves are stored out of line), so
    // only the envelopes within the page's budget are read.
    let hidden: HashSet<&[u8]> = step.hidden.iter().map(Vec::as_slice).collect();
    let sizes = tx
        .prepare_cached(
            "SELECT seq, size, guid FROM mailbox WHERE mailbox_id = $1 AND seq > $2
             ORDER BY seq LIMIT $3",
        )
        .await
        .map_err(pg_error)?;
    let mut cut = PageCut::new(step);
    let rows_wanted = cut.rows_wanted(hidden.len());
    let rows = tx
        .query(&sizes, &[&mailbox, &big(step.after), &rows_wanted])
        .await
        .map_err(pg_error)?;
    let mut page = SyncPage {
        cursor: step.after,
        ..SyncPage::default()
    };
    // The page is the rows after `start` up to the cursor.
    let (mut start, mut taken) = (step.after, 0usize);
    for r in &rows {
        if hidden.contains(r.get::<_, &[u8]>(2)) {
            continue;
        }
        match cut.next(unsigned(r.get(1))) {
            Cut::Stop => {
                page.more = true;
                break;
            }
            Cut::Skip => start = unsigned(r.get(0)),
            Cut::Take => taken += 1,
        }
        page.cursor = unsigned(r.get(0));
    }
    page.follows = start;
    if taken > 0 {
        let read = tx
            .prepare_cached(
                "SELECT envelope, guid FROM mailbox WHERE mailbox_id = $1 AND seq > $2 AND seq <= $3
                 AND NOT (guid = ANY($4)) ORDER BY seq",
            )
            .await
            .map_err(pg_error)?;
        let rows = tx
            .query(
                &read,
                &[&mailbox, &big(start), &big(page.cursor), &step.hidden],
            )
            .await
            .map_err(pg_error)?;
        page.envelopes.reserve(rows.len());
        for r in &rows {
            page.envelopes.push(StoredEnvelope {
                encoded: r.get(0),
                guid: r.get(1),
            });
        }
    }
    if step.prekeys && !page.more {
        page.prekeys = Some(super::keys::prekey_count(&tx, account_id, device_id).await?);
    }
    if step.release {
        tx.execute(
            "DELETE FROM readers WHERE mailbox_id = $1 AND reader = $2",
            &[&mailbox, &step.reader],
        )
        .await
        .map_err(pg_error)?;
        page.left = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM mailbox WHERE mailbox_id = $1
                 AND NOT (guid = ANY($2)))",
                &[&mailbox, &step.hidden],
            )
            .await
            .map_err(pg_error)?
            .get(0);
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(Synced::Page(page))
}

pub(super) async fn purge_expired(c: &impl GenericClient, not_before: u64) -> Result<usize> {
    let n = c
        .execute(
            "DELETE FROM mailbox WHERE server_timestamp < $1",
            &[&big(not_before)],
        )
        .await
        .map_err(pg_error)?;
    Ok(n as usize)
}

/// One row per mailbox: inserting it, or taking it over when it is ours
/// or expired, is one atomic statement (the row's lock decides between
/// two processes), so at most one reader holds a mailbox anywhere.
pub(super) async fn acquire_reader(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    reader: &str,
    now: u64,
    until: u64,
) -> Result<bool> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO readers (mailbox_id, reader, expires_at)
             SELECT mailbox_id, $3, $4 FROM devices WHERE account_id = $1 AND device_id = $2
             ON CONFLICT (mailbox_id) DO UPDATE
                SET reader = EXCLUDED.reader, expires_at = EXCLUDED.expires_at
                WHERE readers.reader = EXCLUDED.reader OR readers.expires_at <= $5",
        )
        .await
        .map_err(pg_error)?;
    let n = c
        .execute(
            &stmt,
            &[
                &account_id,
                &(device_id as i32),
                &reader,
                &big(until),
                &big(now),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(n == 1)
}

pub(super) async fn release_reader(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    reader: &str,
) -> Result<()> {
    c.execute(
        &format!("DELETE FROM readers WHERE mailbox_id = {MAILBOX} AND reader = $3"),
        &[&account_id, &(device_id as i32), &reader],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub(super) async fn reader_active(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    now: u64,
) -> Result<bool> {
    Ok(c.query_one(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM readers WHERE mailbox_id = {MAILBOX}
                 AND expires_at > $3)"
        ),
        &[&account_id, &(device_id as i32), &big(now)],
    )
    .await
    .map_err(pg_error)?
    .get(0))
}

pub(super) async fn set_push(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    target: Option<&PushTarget>,
) -> Result<()> {
    c.execute(
        "UPDATE devices SET push_kind = $3, push_endpoint = $4
         WHERE account_id = $1 AND device_id = $2",
        &[
            &account_id,
            &(device_id as i32),
            &target.map(|t| t.kind),
            &target.map(|t| t.endpoint.as_str()),
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

pub(super) async fn push_target(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
) -> Result<Option<PushTarget>> {
    let row = c
        .query_opt(
            "SELECT push_kind, push_endpoint FROM devices WHERE account_id = $1 AND device_id = $2",
            &[&account_id, &(device_id as i32)],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.and_then(
        |r| match (r.get::<_, Option<i32>>(0), r.get::<_, Option<String>>(1)) {
            (Some(kind), Some(endpoint)) => Some(PushTarget { kind, endpoint }),
            _ => None,
        },
    ))
}

pub(super) async fn drop_push(
    c: &impl GenericClient,
    account_id: &str,
    device_id: u32,
    endpoint: &str,
) -> Result<()> {
    c.execute(
        "UPDATE devices SET push_kind = NULL, push_endpoint = NULL
         WHERE account_id = $1 AND device_id = $2 AND push_endpoint = $3",
        &[&account_id, &(device_id as i32), &endpoint],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}
