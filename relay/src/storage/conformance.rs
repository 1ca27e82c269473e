//! The conformance suite every [`Storage`] backend runs: what the relay
//! relies on, stated once as behaviour (invites used once, credentials
//! stored as given hashes, roles taken from invites, minted invites
//! counted against their minter's quota, one-time prekeys handed out once with the Kyber
//! last-resort key after them, GUID deduplication, TTL expiry, bounded
//! queues and the usage they are checked against, ordered paging, acks,
//! the single-reader lease, sync steps (ack, lease and page by cursor in
//! one transaction, passing over acked GUIDs whose delete is deferred),
//! batched deletes of acknowledged mail scoped to their mailboxes, device revocation, push targets), including under
//! concurrent calls.
//!
//! A backend's test target runs all of it with one macro and a factory
//! for a fresh, empty backend (anything returned beside it, such as a
//! temporary directory, lives as long as the test):
//!
//! ```ignore
//! alcove_relay::storage_conformance!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let storage = SqliteStorage::open(&dir.path().join("relay.db")).unwrap();
//!     (Arc::new(storage) as Arc<dyn Storage>, dir)
//! });
//! ```
//!
//! Compiled for tests and with the `testing` feature only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use alcove_proto::relay::{PreKey, PreKeyUpload, SignedPreKey};
use alcove_proto::wire::{envelope, Envelope};

use prost::Message;

use super::{
    AckedMail, DeviceSecret, MailboxQuota, NewDevice, PushTarget, Queued, Role, Storage,
    StorageError, SyncPage, SyncStep, Synced,
};

/// One `#[tokio::test]` per case of the suite, each on a fresh backend
/// from `$factory` (a future of `(Arc<dyn Storage>, guard)`).
#[macro_export]
macro_rules! storage_conformance {
    // `optional:` a factory of `Option<(Arc<dyn Storage>, guard)>`: `None`
    // (a backend that is not configured here) ends each case at once.
    (optional: $factory:expr) => {
        $crate::storage_conformance!(@optional $factory;
            invites_are_used_once,
            roles_come_from_the_invite_only,
            minted_invites_count_against_the_quota_until_used_or_expired,
            concurrent_mints_never_pass_the_quota,
            credentials_are_the_hashes_given,
            devices_are_added_capped_and_revoked,
            one_time_prekeys_are_handed_out_once,
            concurrent_claims_never_share_a_key,
            envelopes_are_deduplicated_by_guid,
            expired_envelopes_are_never_delivered,
            queues_are_bounded,
            mailbox_usage_is_the_queue,
            pages_come_oldest_first,
            acks_delete_only_what_they_name,
            one_reader_holds_a_mailbox,
            sync_acks_and_reads_in_one_step,
            sync_pages_by_cursor_within_a_byte_budget,
            a_skip_passes_over_exactly_the_page_before,
            sync_leases_one_reader_and_releases_for_the_holder_only,
            hidden_mail_is_never_read_nor_counted_as_left,
            deleted_acks_stay_in_their_own_mailbox,
            push_targets_are_kept_and_dropped);
    };
    (@optional $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((storage, _guard)) = $factory(stringify!($case)).await else {
                    return;
                };
                $crate::storage::conformance::$case(storage).await;
            }
        )*
    };
    ($factory:expr) => {
        $crate::storage_conformance!(@cases $factory;
            invites_are_used_once,
            roles_come_from_the_invite_only,
            minted_invites_count_against_the_quota_until_used_or_expired,
            concurrent_mints_never_pass_the_quota,
            credentials_are_the_hashes_given,
            devices_are_added_capped_and_revoked,
            one_time_prekeys_are_handed_out_once,
            concurrent_claims_never_share_a_key,
            envelopes_are_deduplicated_by_guid,
            expired_envelopes_are_never_delivered,
            queues_are_bounded,
            mailbox_usage_is_the_queue,
            pages_come_oldest_first,
            acks_delete_only_what_they_name,
            one_reader_holds_a_mailbox,
            sync_acks_and_reads_in_one_step,
            sync_pages_by_cursor_within_a_byte_budget,
            a_skip_passes_over_exactly_the_page_before,
            sync_leases_one_reader_and_releases_for_the_holder_only,
            hidden_mail_is_never_read_nor_counted_as_left,
            deleted_acks_stay_in_their_own_mailbox,
            push_targets_are_kept_and_dropped);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (storage, _guard) = $factory.await;
                $crate::storage::conformance::$case(storage).await;
            }
        )*
    };
}

const NOW: u64 = 1_700_000_000_000;

fn device(registration_id: u32, tag: u8) -> NewDevice {
    NewDevice {
        registration_id,
        identity_key: vec![5; 33],
        salt: vec![tag; 16],
        secret_hash: vec![tag.wrapping_add(100); 32],
    }
}

fn signed(id: u32, tag: u8) -> SignedPreKey {
    SignedPreKey {
        id,
        public_key: vec![tag; 33],
        signature: vec![tag; 64],
    }
}

/// A signed prekey, a Kyber last-resort key (id 900) and `n` one-time
/// keys of each kind (ids `first..first + n`).
fn keys(first: u32, n: u32) -> PreKeyUpload {
    PreKeyUpload {
        signed_prekey: Some(signed(1, 1)),
        kyber_last_resort: Some(signed(900, 2)),
        one_time_prekeys: (first..first + n)
            .map(|id| PreKey {
                id,
                public_key: vec![3; 33],
            })
            .collect(),
        one_time_kyber_prekeys: (first..first + n).map(|id| signed(id, 4)).collect(),
    }
}

/// Registers `account` with device 1 (registration id 1) by a fresh invite.
async fn account(s: &dyn Storage, account: &str, upload: &PreKeyUpload) {
    let invite = format!("invite for {account}").into_bytes();
    s.create_invite(&invite, Role::Client, NOW, None)
        .await
        .unwrap();
    let id = s
        .register(&invite, account, &device(1, 1), upload, None, NOW)
        .await
        .unwrap();
    assert_eq!(id, 1, "the first device is device 1");
}

fn envelope(guid: u8, to: u32, at: u64, sealed: bool, size: usize) -> Envelope {
    Envelope {
        guid: vec![guid; 16],
        r#type: if sealed {
            envelope::Type::SealedSender as i32
        } else {
            envelope::Type::SignalMessage as i32
        },
        source_account: if sealed {
            String::new()
        } else {
            "sender".into()
        },
        source_device: u32::from(!sealed),
        destination_device: to,
        ciphertext: vec![guid; size],
        server_timestamp: at,
    }
}

const ROOMY: MailboxQuota = MailboxQuota {
    max_envelopes: 1000,
    max_bytes: 1 << 24,
};

async fn queued(s: &dyn Storage, account: &str, device: u32) -> Vec<Envelope> {
    s.fetch(account, device, 100, 0).await.unwrap().0
}

pub async fn invites_are_used_once(s: Arc<dyn Storage>) {
    let shared = Arc::clone(&s);
    let s = s.as_ref();
    let k = keys(1, 1);
    s.create_invite(b"one", Role::Client, NOW, Some(NOW + 1000))
        .await
        .unwrap();
    assert_eq!(
        s.register(b"one", "alice", &device(7, 1), &k, None, NOW)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        s.register(b"one", "bob", &device(7, 2), &k, None, NOW)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    assert!(matches!(
        s.register(b"never issued", "bob", &device(7, 2), &k, None, NOW)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    // Expired at its expiry instant.
    s.create_invite(b"old", Role::Client, NOW, Some(NOW + 10))
        .await
        .unwrap();
    assert!(matches!(
        s.register(b"old", "bob", &device(7, 2), &k, None, NOW + 10)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    // A taken account id refuses the registration and leaves the invite
    // unused, so its holder can pick another id.
    s.create_invite(b"two", Role::Client, NOW, None)
        .await
        .unwrap();
    assert!(matches!(
        s.register(b"two", "alice", &device(7, 2), &k, None, NOW)
            .await,
        Err(StorageError::AccountExists)
    ));
    s.register(b"two", "bob", &device(7, 2), &k, None, NOW)
        .await
        .unwrap();
    // The same invite raced from many tasks: exactly one account.
    s.create_invite(b"raced", Role::Client, NOW, None)
        .await
        .unwrap();
    let tries: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&shared);
            tokio::spawn(async move {
                s.register(
                    b"raced",
                    &format!("racer-{i}"),
                    &device(7, 3),
                    &keys(1, 1),
                    None,
                    NOW,
                )
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tries {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StorageError::InvalidInvite)));
}

pub async fn roles_come_from_the_invite_only(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    let k = keys(1, 1);
    for (i, role) in [Role::Client, Role::Therapist, Role::Bot]
        .into_iter()
        .enumerate()
    {
        let invite = format!("{role} invite").into_bytes();
        s.create_invite(&invite, role, NOW, None).await.unwrap();
        let account = format!("acct-{i}");
        s.register(&invite, &account, &device(7, 1), &k, None, NOW)
            .await
            .unwrap();
        assert_eq!(s.account_role(&account).await.unwrap(), Some(role));
    }
    assert_eq!(s.account_role("nobody").await.unwrap(), None);
    // The admin changes a role; an unknown account is NotFound.
    s.set_account_role("acct-0", Role::Therapist).await.unwrap();
    assert_eq!(
        s.account_role("acct-0").await.unwrap(),
        Some(Role::Therapist)
    );
    s.set_account_role("acct-0", Role::Client).await.unwrap();
    assert!(matches!(
        s.set_account_role("nobody", Role::Therapist).await,
        Err(StorageError::NotFound)
    ));
    // A minted invite registers a client, whoever minted it.
    s.mint_invite(b"minted", "acct-1", NOW, NOW + 1000, 5)
        .await
        .unwrap();
    s.register(b"minted", "enrolled", &device(7, 2), &k, None, NOW)
        .await
        .unwrap();
    assert_eq!(
        s.account_role("enrolled").await.unwrap(),
        Some(Role::Client)
    );
    // A refused registration (the id is taken) leaves the role as it was
    // and the invite's role unspent.
    s.create_invite(b"therapist again", Role::Therapist, NOW, None)
        .await
        .unwrap();
    assert!(matches!(
        s.register(b"therapist again", "enrolled", &device(7, 3), &k, None, NOW)
            .await,
        Err(StorageError::AccountExists)
    ));
    assert_eq!(
        s.account_role("enrolled").await.unwrap(),
        Some(Role::Client)
    );
    s.register(
        b"therapist again",
        "colleague",
        &device(7, 3),
        &k,
        None,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        s.account_role("colleague").await.unwrap(),
        Some(Role::Therapist)
    );
}

pub async fn minted_invites_count_against_the_quota_until_used_or_expired(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    let k = keys(1, 1);
    // Three open invites, two expiring later than the first.
    s.mint_invite(b"m1", "dr", NOW, NOW + 100, 3).await.unwrap();
    s.mint_invite(b"m2", "dr", NOW, NOW + 1000, 3)
        .await
        .unwrap();
    s.mint_invite(b"m3", "dr", NOW, NOW + 1000, 3)
        .await
        .unwrap();
    assert_eq!(s.open_invites("dr", NOW).await.unwrap(), 3);
    assert!(matches!(
        s.mint_invite(b"m4", "dr", NOW, NOW + 1000, 3).await,
        Err(StorageError::InviteQuota)
    ));
    // Nothing was stored by the refusal: the token opens nothing.
    assert!(matches!(
        s.register(b"m4", "ghost", &device(7, 1), &k, None, NOW)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    assert_eq!(s.open_invites("dr", NOW).await.unwrap(), 3);
    // Another minter has a quota of its own; the admin's invites count
    // against nobody's.
    s.mint_invite(b"other", "dr-two", NOW, NOW + 1000, 3)
        .await
        .unwrap();
    s.create_invite(b"admin", Role::Client, NOW, Some(NOW + 1000))
        .await
        .unwrap();
    assert_eq!(s.open_invites("dr", NOW).await.unwrap(), 3);
    assert_eq!(s.open_invites("dr-two", NOW).await.unwrap(), 1);
    // A used invite no longer counts: room for one more.
    s.register(b"m2", "client-a", &device(7, 1), &k, None, NOW)
        .await
        .unwrap();
    assert_eq!(s.open_invites("dr", NOW).await.unwrap(), 2);
    s.mint_invite(b"m5", "dr", NOW, NOW + 1000, 3)
        .await
        .unwrap();
    // A used invite stays used.
    assert!(matches!(
        s.register(b"m2", "client-b", &device(7, 2), &k, None, NOW)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    // An expired one no longer counts (from its expiry instant), and
    // registers nobody.
    assert_eq!(s.open_invites("dr", NOW + 99).await.unwrap(), 3);
    assert_eq!(s.open_invites("dr", NOW + 100).await.unwrap(), 2);
    s.mint_invite(b"m6", "dr", NOW + 100, NOW + 1000, 3)
        .await
        .unwrap();
    assert!(matches!(
        s.register(b"m1", "client-c", &device(7, 3), &k, None, NOW + 100)
            .await,
        Err(StorageError::InvalidInvite)
    ));
    assert_eq!(s.open_invites("dr", NOW + 100).await.unwrap(), 3);
    assert_eq!(s.open_invites("dr", NOW + 1000).await.unwrap(), 0);
    assert_eq!(s.open_invites("nobody", NOW).await.unwrap(), 0);
}

pub async fn concurrent_mints_never_pass_the_quota(s: Arc<dyn Storage>) {
    let tries: Vec<_> = (0..20u8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.mint_invite(&[i; 32], "dr", NOW, NOW + 1000, 5).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tries {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StorageError::InviteQuota)));
    assert_eq!(s.open_invites("dr", NOW).await.unwrap(), 5);
}

pub async fn credentials_are_the_hashes_given(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    s.create_invite(b"inv", Role::Client, NOW, None)
        .await
        .unwrap();
    s.register(
        b"inv",
        "alice",
        &device(7, 9),
        &keys(1, 1),
        Some(&[8; 32]),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        s.device_secret("alice", 1).await.unwrap(),
        Some(DeviceSecret {
            salt: vec![9; 16],
            hash: vec![109; 32],
            revoked: false,
        })
    );
    assert_eq!(s.device_secret("alice", 2).await.unwrap(), None);
    assert_eq!(s.device_secret("nobody", 1).await.unwrap(), None);
    assert_eq!(s.identity_key("alice").await.unwrap(), Some(vec![5; 33]));
    assert_eq!(s.identity_key("nobody").await.unwrap(), None);
    assert_eq!(
        s.delivery_key_hash("alice").await.unwrap(),
        Some(vec![8; 32])
    );
    s.set_delivery_key("alice", &[6; 32]).await.unwrap();
    assert_eq!(
        s.delivery_key_hash("alice").await.unwrap(),
        Some(vec![6; 32])
    );
    assert_eq!(s.delivery_key_hash("nobody").await.unwrap(), None);
    assert!(matches!(
        s.set_delivery_key("nobody", &[6; 32]).await,
        Err(StorageError::NotFound)
    ));
    // An account registered without a delivery key has none.
    account(s, "bob", &keys(1, 1)).await;
    assert_eq!(s.delivery_key_hash("bob").await.unwrap(), None);
}

pub async fn devices_are_added_capped_and_revoked(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 2)).await;
    assert_eq!(
        s.add_device("alice", &device(20, 2), &keys(1, 2), NOW, 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.add_device("alice", &device(30, 3), &keys(1, 2), NOW, 3)
            .await
            .unwrap(),
        3
    );
    assert!(matches!(
        s.add_device("alice", &device(40, 4), &keys(1, 2), NOW, 3)
            .await,
        Err(StorageError::TooManyDevices)
    ));
    assert!(matches!(
        s.add_device("nobody", &device(40, 4), &keys(1, 2), NOW, 3)
            .await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(
        s.devices("alice").await.unwrap(),
        vec![(1, 1), (2, 20), (3, 30)]
    );
    assert!(s.devices("nobody").await.unwrap().is_empty());

    let mail: Vec<Envelope> = (1..=3).map(|d| envelope(1, d, NOW, true, 10)).collect();
    s.enqueue("alice", &mail, &ROOMY).await.unwrap();
    s.set_push(
        "alice",
        2,
        Some(&PushTarget {
            kind: 1,
            endpoint: "https://push.example/2".into(),
        }),
    )
    .await
    .unwrap();
    assert!(s
        .acquire_reader("alice", 2, "r", NOW, NOW + 1000)
        .await
        .unwrap());

    s.revoke_device("alice", 2, NOW).await.unwrap();
    assert_eq!(s.devices("alice").await.unwrap(), vec![(1, 1), (3, 30)]);
    // Its secret stays as a tombstone, marked revoked, so the device can
    // be told what it is.
    assert_eq!(
        s.device_secret("alice", 2).await.unwrap(),
        Some(DeviceSecret {
            salt: vec![2; 16],
            hash: vec![102; 32],
            revoked: true,
        })
    );
    // Its mail, lease, push target and keys went with it.
    assert!(queued(s, "alice", 2).await.is_empty());
    assert!(!s.reader_active("alice", 2, NOW).await.unwrap());
    assert_eq!(s.push_target("alice", 2).await.unwrap(), None);
    let bundles = s.take_bundles("alice").await.unwrap();
    let ids: Vec<u32> = bundles.devices.iter().map(|b| b.device_id).collect();
    assert_eq!(ids, vec![1, 3]);
    // The other devices keep theirs.
    assert_eq!(queued(s, "alice", 1).await.len(), 1);
    assert_eq!(queued(s, "alice", 3).await.len(), 1);
    // Device ids are never reused, even for the highest revoked one.
    s.revoke_device("alice", 3, NOW).await.unwrap();
    assert_eq!(
        s.add_device("alice", &device(50, 5), &keys(1, 2), NOW, 3)
            .await
            .unwrap(),
        4
    );
}

pub async fn one_time_prekeys_are_handed_out_once(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(10, 2)).await;
    let count = s.prekey_count("alice", 1).await.unwrap();
    assert_eq!(
        (count.one_time_prekeys, count.one_time_kyber_prekeys),
        (2, 2)
    );
    let mut ec = Vec::new();
    let mut kyber = Vec::new();
    for _ in 0..3 {
        let b = s.take_bundles("alice").await.unwrap();
        assert_eq!(b.devices.len(), 1);
        let d = &b.devices[0];
        assert_eq!((d.device_id, d.registration_id), (1, 1));
        assert_eq!(d.identity_key, vec![5; 33]);
        assert_eq!(d.signed_prekey.as_ref().map(|k| k.id), Some(1));
        ec.push(d.one_time_prekey.as_ref().map(|k| k.id));
        kyber.push(d.kyber_prekey.as_ref().map(|k| k.id));
    }
    // Lowest id first, each once; then no EC one-time key and the Kyber
    // last-resort key (id 900), which is never consumed.
    assert_eq!(ec, vec![Some(10), Some(11), None]);
    assert_eq!(kyber, vec![Some(10), Some(11), Some(900)]);
    let again = s.take_bundles("alice").await.unwrap();
    assert_eq!(
        again.devices[0].kyber_prekey.as_ref().map(|k| k.id),
        Some(900)
    );
    let count = s.prekey_count("alice", 1).await.unwrap();
    assert_eq!(
        (count.one_time_prekeys, count.one_time_kyber_prekeys),
        (0, 0)
    );
    // A refill adds keys and replaces the signed ones.
    let mut refill = keys(20, 1);
    refill.signed_prekey = Some(signed(2, 7));
    refill.kyber_last_resort = Some(signed(901, 8));
    s.upload_prekeys("alice", 1, &refill).await.unwrap();
    let b = s.take_bundles("alice").await.unwrap();
    let d = &b.devices[0];
    assert_eq!(d.signed_prekey.as_ref().map(|k| k.id), Some(2));
    assert_eq!(d.one_time_prekey.as_ref().map(|k| k.id), Some(20));
    assert_eq!(d.kyber_prekey.as_ref().map(|k| k.id), Some(20));
    let d = &s.take_bundles("alice").await.unwrap().devices[0];
    assert_eq!(d.kyber_prekey.as_ref().map(|k| k.id), Some(901));
    assert!(matches!(
        s.take_bundles("nobody").await,
        Err(StorageError::NotFound)
    ));
    // A device that never uploaded a signed prekey gets no bundle.
    let mut bare = keys(1, 1);
    bare.signed_prekey = None;
    s.add_device("alice", &device(2, 2), &bare, NOW, 5)
        .await
        .unwrap();
    let ids: Vec<u32> = s
        .take_bundles("alice")
        .await
        .unwrap()
        .devices
        .iter()
        .map(|b| b.device_id)
        .collect();
    assert_eq!(ids, vec![1]);
}

pub async fn concurrent_claims_never_share_a_key(s: Arc<dyn Storage>) {
    account(s.as_ref(), "alice", &keys(1, 20)).await;
    let claims: Vec<_> = (0..60)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.take_bundles("alice").await })
        })
        .collect();
    let mut ec = Vec::new();
    let mut kyber = Vec::new();
    for c in claims {
        let b = c.await.unwrap().unwrap();
        let d = &b.devices[0];
        ec.extend(d.one_time_prekey.as_ref().map(|k| k.id));
        kyber.push(d.kyber_prekey.as_ref().map(|k| k.id).unwrap());
    }
    let unique: BTreeSet<u32> = ec.iter().copied().collect();
    assert_eq!(ec.len(), 20, "each of the 20 EC keys handed out");
    assert_eq!(unique.len(), 20, "no EC key handed out twice");
    let one_time: Vec<u32> = kyber.iter().copied().filter(|&id| id != 900).collect();
    let unique: BTreeSet<u32> = one_time.iter().copied().collect();
    assert_eq!((one_time.len(), unique.len()), (20, 20));
    assert_eq!(kyber.iter().filter(|&&id| id == 900).count(), 40);
}

pub async fn envelopes_are_deduplicated_by_guid(s: Arc<dyn Storage>) {
    let s2 = Arc::clone(&s);
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    s.add_device("alice", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    let both = [envelope(1, 1, NOW, true, 10), envelope(1, 2, NOW, true, 10)];
    assert_eq!(
        s.enqueue("alice", &both, &ROOMY).await.unwrap().fresh,
        vec![1, 2]
    );
    // A retried send: nothing new.
    assert!(s
        .enqueue("alice", &both, &ROOMY)
        .await
        .unwrap()
        .fresh
        .is_empty());
    // The same GUID twice in one call: queued once.
    let twice = [envelope(2, 1, NOW, true, 10), envelope(2, 1, NOW, true, 10)];
    assert_eq!(
        s.enqueue("alice", &twice, &ROOMY).await.unwrap().fresh,
        vec![1]
    );
    // Raced from many tasks: queued once.
    let races: Vec<_> = (0..30)
        .map(|_| {
            let s = Arc::clone(&s2);
            tokio::spawn(async move {
                s.enqueue("alice", &[envelope(3, 1, NOW, true, 10)], &ROOMY)
                    .await
                    .unwrap()
                    .fresh
                    .len()
            })
        })
        .collect();
    let mut fresh = 0;
    for r in races {
        fresh += r.await.unwrap();
    }
    assert_eq!(fresh, 1);
    let guids: Vec<u8> = queued(s, "alice", 1)
        .await
        .iter()
        .map(|e| e.guid[0])
        .collect();
    assert_eq!(guids, vec![1, 2, 3]);
    assert_eq!(queued(s, "alice", 2).await.len(), 1);
    // Once acked, the GUID may be used again.
    s.ack("alice", 1, &[vec![1; 16]]).await.unwrap();
    assert_eq!(
        s.enqueue("alice", &[envelope(1, 1, NOW, true, 10)], &ROOMY)
            .await
            .unwrap()
            .fresh,
        vec![1]
    );
}

pub async fn expired_envelopes_are_never_delivered(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    account(s, "bob", &keys(1, 1)).await;
    s.enqueue("alice", &[envelope(1, 1, NOW - 50, true, 10)], &ROOMY)
        .await
        .unwrap();
    s.enqueue("alice", &[envelope(2, 1, NOW, true, 10)], &ROOMY)
        .await
        .unwrap();
    s.enqueue("bob", &[envelope(3, 1, NOW - 50, true, 10)], &ROOMY)
        .await
        .unwrap();
    let (page, more) = s.fetch("alice", 1, 10, NOW - 10).await.unwrap();
    assert_eq!(page.iter().map(|e| e.guid[0]).collect::<Vec<_>>(), vec![2]);
    assert!(!more);
    // Deleted, not just hidden.
    assert_eq!(queued(s, "alice", 1).await.len(), 1);
    assert_eq!(s.purge_expired(NOW - 10).await.unwrap(), 1, "bob's old one");
    assert!(queued(s, "bob", 1).await.is_empty());
    assert_eq!(s.purge_expired(NOW - 10).await.unwrap(), 0);
    assert_eq!(queued(s, "alice", 1).await[0].server_timestamp, NOW);
}

pub async fn queues_are_bounded(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    let quota = MailboxQuota {
        max_envelopes: 4,
        max_bytes: 1 << 20,
    };
    // Signed mail fills half the count.
    for g in 1..=2 {
        s.enqueue("alice", &[envelope(g, 1, NOW, false, 10)], &quota)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.enqueue("alice", &[envelope(3, 1, NOW, false, 10)], &quota)
            .await,
        Err(StorageError::MailboxFull)
    ));
    // Sealed mail the rest, and no more.
    for g in 4..=5 {
        s.enqueue("alice", &[envelope(g, 1, NOW, true, 10)], &quota)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.enqueue("alice", &[envelope(6, 1, NOW, true, 10)], &quota)
            .await,
        Err(StorageError::MailboxFull)
    ));
    assert_eq!(queued(s, "alice", 1).await.len(), 4);

    // Bytes, and all or nothing: a send with one envelope too many for
    // its device queues none.
    account(s, "bob", &keys(1, 1)).await;
    s.add_device("bob", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    let quota = MailboxQuota {
        max_envelopes: 100,
        max_bytes: 2_000,
    };
    s.enqueue("bob", &[envelope(1, 2, NOW, true, 1_500)], &quota)
        .await
        .unwrap();
    let send = [
        envelope(2, 1, NOW, true, 800),
        envelope(2, 2, NOW, true, 800),
    ];
    assert!(matches!(
        s.enqueue("bob", &send, &quota).await,
        Err(StorageError::MailboxFull)
    ));
    assert!(queued(s, "bob", 1).await.is_empty());
    assert_eq!(queued(s, "bob", 2).await.len(), 1);
    // Signed mail gets half the bytes.
    assert!(matches!(
        s.enqueue("bob", &[envelope(3, 1, NOW, false, 1_100)], &quota)
            .await,
        Err(StorageError::MailboxFull)
    ));
    s.enqueue("bob", &[envelope(3, 1, NOW, true, 1_100)], &quota)
        .await
        .unwrap();
}

/// The queue as `fetch` returns it, counted as the quota counts it.
async fn counted(s: &dyn Storage, account: &str, device: u32) -> Queued {
    let mut q = Queued::default();
    for e in s.fetch(account, device, 1000, 0).await.unwrap().0 {
        let size = e.encoded_len() as u64;
        let signed = !e.source_account.is_empty();
        q.count += 1;
        q.bytes += size;
        q.signed_count += u64::from(signed);
        q.signed_bytes += if signed { size } else { 0 };
    }
    q
}

async fn assert_usage_is_queue(s: &dyn Storage, account: &str, devices: &[u32], when: &str) {
    for &d in devices {
        assert_eq!(
            s.mailbox_usage(account, d).await.unwrap(),
            counted(s, account, d).await,
            "usage of device {d} after {when}"
        );
    }
}

pub async fn mailbox_usage_is_the_queue(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    s.add_device("alice", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    assert_eq!(
        s.mailbox_usage("alice", 1).await.unwrap(),
        Queued::default()
    );
    assert_eq!(
        s.mailbox_usage("nobody", 1).await.unwrap(),
        Queued::default()
    );
    // Inserts of both kinds and many sizes, each replayed (stored and
    // counted once), some older than the others.
    let mut sent = Vec::new();
    for i in 0..40u8 {
        let at = if i % 4 == 0 { NOW - 100 } else { NOW };
        let e = envelope(
            i,
            1 + u32::from(i % 2),
            at,
            i % 3 != 0,
            100 + usize::from(i) * 10,
        );
        s.enqueue("alice", std::slice::from_ref(&e), &ROOMY)
            .await
            .unwrap();
        s.enqueue("alice", std::slice::from_ref(&e), &ROOMY)
            .await
            .unwrap();
        sent.push(e);
    }
    assert_usage_is_queue(s, "alice", &[1, 2], "inserts and replays").await;
    let expected = counted(s, "alice", 1).await;
    assert_eq!(expected.count, 20);
    assert!(expected.signed_count > 0 && expected.signed_count < expected.count);
    // A send refused as a whole changes nothing.
    let tight = MailboxQuota {
        max_envelopes: 21,
        max_bytes: 1 << 24,
    };
    let refused = [
        envelope(100, 1, NOW, true, 10),
        envelope(101, 1, NOW, true, 10),
    ];
    assert!(matches!(
        s.enqueue("alice", &refused, &tight).await,
        Err(StorageError::MailboxFull)
    ));
    assert_usage_is_queue(s, "alice", &[1, 2], "a refused send").await;
    assert_eq!(s.mailbox_usage("alice", 1).await.unwrap(), expected);
    // Acks, including unknown and repeated GUIDs.
    let acked: Vec<Vec<u8>> = sent
        .iter()
        .filter(|e| e.destination_device == 1)
        .take(6)
        .map(|e| e.guid.clone())
        .collect();
    s.ack("alice", 1, &acked).await.unwrap();
    s.ack("alice", 1, &acked).await.unwrap();
    s.ack("alice", 1, &[vec![200; 16]]).await.unwrap();
    assert_usage_is_queue(s, "alice", &[1, 2], "acks").await;
    // Expiry, by the sweeper and by a fetch.
    assert!(s.purge_expired(NOW - 50).await.unwrap() > 0);
    assert_usage_is_queue(s, "alice", &[1, 2], "the sweeper's purge").await;
    s.enqueue("alice", &[envelope(150, 2, NOW - 100, false, 70)], &ROOMY)
        .await
        .unwrap();
    s.fetch("alice", 2, 1, NOW - 50).await.unwrap();
    assert_usage_is_queue(s, "alice", &[1, 2], "expiry on fetch").await;
    // Everything delivered: nothing counted.
    for d in [1, 2] {
        let guids: Vec<Vec<u8>> = s
            .fetch("alice", d, 1000, 0)
            .await
            .unwrap()
            .0
            .iter()
            .map(|e| e.guid.clone())
            .collect();
        s.ack("alice", d, &guids).await.unwrap();
        assert_eq!(
            s.mailbox_usage("alice", d).await.unwrap(),
            Queued::default()
        );
    }
    // Revocation takes a mailbox's usage with its mail: the revoked device
    // counts nothing, the others keep theirs, and a device added after it
    // starts empty.
    for g in 1..=6 {
        s.enqueue(
            "alice",
            &[
                envelope(g, 1, NOW, g % 2 == 0, 500),
                envelope(g, 2, NOW, g % 2 == 0, 500),
            ],
            &ROOMY,
        )
        .await
        .unwrap();
    }
    s.revoke_device("alice", 2, NOW).await.unwrap();
    assert_eq!(
        s.mailbox_usage("alice", 2).await.unwrap(),
        Queued::default()
    );
    assert_usage_is_queue(s, "alice", &[1], "revocation").await;
    assert_eq!(s.mailbox_usage("alice", 1).await.unwrap().count, 6);
    let added = s
        .add_device("alice", &device(3, 3), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    assert_eq!(
        s.mailbox_usage("alice", added).await.unwrap(),
        Queued::default()
    );
    assert_usage_is_queue(s, "alice", &[1, added], "a device added").await;
}

pub async fn pages_come_oldest_first(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    for g in 1..=7 {
        s.enqueue("alice", &[envelope(g, 1, NOW, g % 2 == 0, 10)], &ROOMY)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    loop {
        let (page, more) = s.fetch("alice", 1, 3, 0).await.unwrap();
        assert!(page.len() <= 3);
        let guids: Vec<Vec<u8>> = page.iter().map(|e| e.guid.clone()).collect();
        seen.extend(page.iter().map(|e| e.guid[0]));
        s.ack("alice", 1, &guids).await.unwrap();
        if !more {
            break;
        }
        assert!(seen.len() < 7, "more said after the last page");
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 7]);
    // Stored as given.
    s.enqueue("alice", &[envelope(9, 1, NOW, false, 33)], &ROOMY)
        .await
        .unwrap();
    assert_eq!(
        queued(s, "alice", 1).await,
        vec![envelope(9, 1, NOW, false, 33)]
    );
    // Exactly a page: no more.
    let (page, more) = s.fetch("alice", 1, 1, 0).await.unwrap();
    assert_eq!((page.len(), more), (1, false));
    assert_eq!(s.fetch("nobody", 1, 10, 0).await.unwrap().0, vec![]);
}

pub async fn acks_delete_only_what_they_name(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    s.add_device("alice", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    for g in 1..=3 {
        s.enqueue(
            "alice",
            &[envelope(g, 1, NOW, true, 10), envelope(g, 2, NOW, true, 10)],
            &ROOMY,
        )
        .await
        .unwrap();
    }
    s.ack("alice", 1, &[vec![2; 16], vec![77; 16], vec![]])
        .await
        .unwrap();
    let left: Vec<u8> = queued(s, "alice", 1)
        .await
        .iter()
        .map(|e| e.guid[0])
        .collect();
    assert_eq!(left, vec![1, 3]);
    assert_eq!(
        queued(s, "alice", 2).await.len(),
        3,
        "other device untouched"
    );
    // Acking again, or for an unknown account, changes nothing.
    s.ack("alice", 1, &[vec![2; 16]]).await.unwrap();
    s.ack("nobody", 1, &[vec![1; 16]]).await.unwrap();
    assert_eq!(queued(s, "alice", 1).await.len(), 2);
}

pub async fn one_reader_holds_a_mailbox(s: Arc<dyn Storage>) {
    let s2 = Arc::clone(&s);
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    s.add_device("alice", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    assert!(!s.reader_active("alice", 1, NOW).await.unwrap());
    assert!(s
        .acquire_reader("alice", 1, "app", NOW, NOW + 100)
        .await
        .unwrap());
    assert!(s.reader_active("alice", 1, NOW).await.unwrap());
    assert!(!s
        .acquire_reader("alice", 1, "extension", NOW + 50, NOW + 150)
        .await
        .unwrap());
    // The holder renews; another device's mailbox is its own.
    assert!(s
        .acquire_reader("alice", 1, "app", NOW + 60, NOW + 200)
        .await
        .unwrap());
    assert!(s
        .acquire_reader("alice", 2, "extension", NOW, NOW + 100)
        .await
        .unwrap());
    assert!(!s
        .acquire_reader("alice", 1, "extension", NOW + 150, NOW + 250)
        .await
        .unwrap());
    // Releasing someone else's lease does nothing.
    s.release_reader("alice", 1, "extension").await.unwrap();
    assert!(s.reader_active("alice", 1, NOW + 150).await.unwrap());
    // An expired lease is taken over.
    assert!(!s.reader_active("alice", 1, NOW + 200).await.unwrap());
    assert!(s
        .acquire_reader("alice", 1, "extension", NOW + 200, NOW + 300)
        .await
        .unwrap());
    s.release_reader("alice", 1, "extension").await.unwrap();
    assert!(!s.reader_active("alice", 1, NOW + 200).await.unwrap());
    // Raced: one reader wins.
    let races: Vec<_> = (0..30)
        .map(|i| {
            let s = Arc::clone(&s2);
            tokio::spawn(async move {
                s.acquire_reader("alice", 1, &format!("reader-{i}"), NOW + 400, NOW + 500)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for r in races {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn push_targets_are_kept_and_dropped(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    let target = |e: &str| PushTarget {
        kind: 1,
        endpoint: e.into(),
    };
    assert_eq!(s.push_target("alice", 1).await.unwrap(), None);
    s.set_push("alice", 1, Some(&target("https://push.example/a")))
        .await
        .unwrap();
    assert_eq!(
        s.push_target("alice", 1).await.unwrap(),
        Some(target("https://push.example/a"))
    );
    // A drop for an endpoint that was replaced meanwhile keeps the new one.
    s.set_push("alice", 1, Some(&target("https://push.example/b")))
        .await
        .unwrap();
    s.drop_push("alice", 1, "https://push.example/a")
        .await
        .unwrap();
    assert_eq!(
        s.push_target("alice", 1).await.unwrap(),
        Some(target("https://push.example/b"))
    );
    s.drop_push("alice", 1, "https://push.example/b")
        .await
        .unwrap();
    assert_eq!(s.push_target("alice", 1).await.unwrap(), None);
    s.set_push("alice", 1, Some(&target("https://push.example/c")))
        .await
        .unwrap();
    s.set_push("alice", 1, None).await.unwrap();
    assert_eq!(s.push_target("alice", 1).await.unwrap(), None);
    assert_eq!(s.push_target("nobody", 1).await.unwrap(), None);
}

/// A sync step by `reader` at `NOW` (lease until `NOW + 100`), no byte
/// budget to speak of, prekeys asked for.
fn step(reader: &str, ack: &[u8], after: u64, limit: u32) -> SyncStep {
    SyncStep {
        reader: reader.into(),
        now: NOW,
        lease_until: NOW + 100,
        not_before: 0,
        ack: ack.iter().map(|g| vec![*g; 16]).collect(),
        hidden: Vec::new(),
        after,
        limit,
        max_bytes: 1 << 30,
        skip: 0,
        release: false,
        prekeys: true,
    }
}

/// Queues envelopes tagged `tags` for alice's device 1, one send each,
/// with `len` bytes of ciphertext.
async fn queue_for_alice(s: &dyn Storage, tags: std::ops::RangeInclusive<u8>, len: usize) {
    for g in tags {
        s.enqueue("alice", &[envelope(g, 1, NOW, true, len)], &ROOMY)
            .await
            .unwrap();
    }
}

async fn page(s: &dyn Storage, account: &str, device: u32, step: &SyncStep) -> SyncPage {
    match s.sync(account, device, step).await.unwrap() {
        Synced::Page(p) => p,
        Synced::Busy => panic!("busy"),
    }
}

fn tags(p: &SyncPage) -> Vec<u8> {
    p.envelopes.iter().map(|e| e.guid[0]).collect()
}

pub async fn sync_acks_and_reads_in_one_step(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 4)).await;
    account(s, "bob", &keys(1, 1)).await;
    s.add_device("alice", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    for g in 1..=5 {
        s.enqueue(
            "alice",
            &[envelope(g, 1, NOW, true, 10), envelope(g, 2, NOW, true, 10)],
            &ROOMY,
        )
        .await
        .unwrap();
        s.enqueue("bob", &[envelope(g, 1, NOW, true, 10)], &ROOMY)
            .await
            .unwrap();
    }
    let p1 = page(s, "alice", 1, &step("app", &[], 0, 2)).await;
    assert_eq!((tags(&p1), p1.more), (vec![1, 2], true));
    assert_eq!(p1.prekeys, None, "prekeys on the last page only");
    // The ack of page 1 and page 2 in one step.
    let p2 = page(s, "alice", 1, &step("app", &[1, 2], p1.cursor, 2)).await;
    assert_eq!((tags(&p2), p2.more), (vec![3, 4], true));
    let left = |a: &'static str, d: u32| async move {
        queued(s, a, d)
            .await
            .iter()
            .map(|e| e.guid[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(left("alice", 1).await, vec![3, 4, 5]);
    // The other device and the other account hold the same GUIDs: untouched.
    assert_eq!(left("alice", 2).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(left("bob", 1).await, vec![1, 2, 3, 4, 5]);
    // A replayed ack (and a GUID of no mailbox) deletes nothing more; the
    // page is read as before.
    let again = page(s, "alice", 1, &step("app", &[1, 2, 77], p1.cursor, 2)).await;
    assert_eq!((tags(&again), again.cursor), (tags(&p2), p2.cursor));
    assert_eq!(left("alice", 1).await, vec![3, 4, 5]);
    // The last page carries the device's prekey count, as counted.
    let p3 = page(s, "alice", 1, &step("app", &[3, 4], p2.cursor, 2)).await;
    assert_eq!((tags(&p3), p3.more), (vec![5], false));
    assert_eq!(
        p3.prekeys,
        Some(s.prekey_count("alice", 1).await.unwrap()),
        "prekeys on the page with more false"
    );
    assert_eq!(p3.prekeys.as_ref().unwrap().one_time_prekeys, 4);
    // Past the end: no envelopes, the cursor stays, prekeys again.
    let end = page(s, "alice", 1, &step("app", &[5], p3.cursor, 2)).await;
    assert!(end.envelopes.is_empty() && !end.more);
    assert_eq!(end.cursor, p3.cursor);
    assert!(end.prekeys.is_some());
    assert!(left("alice", 1).await.is_empty());
    assert_eq!(
        s.mailbox_usage("alice", 1).await.unwrap(),
        Queued::default()
    );
    // Expired mail is deleted by the step, never returned.
    s.enqueue("alice", &[envelope(8, 1, NOW - 50, true, 10)], &ROOMY)
        .await
        .unwrap();
    s.enqueue("alice", &[envelope(9, 1, NOW, true, 10)], &ROOMY)
        .await
        .unwrap();
    let mut fresh_only = step("app", &[], 0, 10);
    fresh_only.not_before = NOW - 10;
    assert_eq!(tags(&page(s, "alice", 1, &fresh_only).await), vec![9]);
    assert_eq!(left("alice", 1).await, vec![9]);
    // A device that does not exist.
    assert!(matches!(
        s.sync("alice", 9, &step("app", &[], 0, 10)).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        s.sync("nobody", 1, &step("app", &[], 0, 10)).await,
        Err(StorageError::NotFound)
    ));
}

pub async fn sync_pages_by_cursor_within_a_byte_budget(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    queue_for_alice(s, 1..=7, 10).await;
    // Prefetch: page 2 read by the cursor of page 1 before page 1 is
    // acknowledged; page 1's ack rides on the next step.
    let p1 = page(s, "alice", 1, &step("app", &[], 0, 3)).await;
    let p2 = page(s, "alice", 1, &step("app", &[], p1.cursor, 3)).await;
    assert_eq!((tags(&p1), tags(&p2)), (vec![1, 2, 3], vec![4, 5, 6]));
    assert!(p2.cursor > p1.cursor);
    assert_eq!(queued(s, "alice", 1).await.len(), 7, "nothing acked yet");
    let p3 = page(s, "alice", 1, &step("app", &[1, 2, 3], p2.cursor, 3)).await;
    assert_eq!((tags(&p3), p3.more), (vec![7], false));
    assert_eq!(queued(s, "alice", 1).await.len(), 4);
    // Mail queued while the reader holds its pages comes after its cursor.
    s.enqueue("alice", &[envelope(20, 1, NOW, true, 10)], &ROOMY)
        .await
        .unwrap();
    let p4 = page(s, "alice", 1, &step("app", &[4, 5, 6], p3.cursor, 3)).await;
    assert_eq!((tags(&p4), p4.more), (vec![20], false));
    // Limit 0 reads nothing and still says whether mail waits.
    let zero = page(s, "alice", 1, &step("app", &[], 0, 0)).await;
    assert!(zero.envelopes.is_empty() && zero.more && zero.prekeys.is_none());
    assert_eq!(zero.cursor, 0);
    let zero = page(s, "alice", 1, &step("app", &[7, 20], p4.cursor, 0)).await;
    assert!(zero.envelopes.is_empty() && !zero.more && zero.prekeys.is_some());
    // The byte budget: envelopes of one size, a budget of two and a half.
    queue_for_alice(s, 30..=34, 1000).await;
    let size = envelope(30, 1, NOW, true, 1000).encoded_len() as u64;
    let mut budget = step("app", &[], 0, 500);
    budget.max_bytes = size * 5 / 2;
    let mut seen = Vec::new();
    loop {
        let p = page(s, "alice", 1, &budget).await;
        assert!(
            p.envelopes.len() <= 2,
            "{} over the byte budget",
            p.envelopes.len()
        );
        seen.extend(tags(&p));
        budget.after = p.cursor;
        if !p.more {
            break;
        }
    }
    assert_eq!(seen, vec![30, 31, 32, 33, 34]);
    // One envelope larger than the budget still comes, alone.
    budget.after = 0;
    budget.max_bytes = 10;
    let p = page(s, "alice", 1, &budget).await;
    assert_eq!((tags(&p), p.more), (vec![30], true));
}

/// Two pages asked for at once: the second passes over what the first
/// gets (hidden mail and the byte budget included) and says which `seq`
/// it follows, which is the first page's cursor.
pub async fn a_skip_passes_over_exactly_the_page_before(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    queue_for_alice(s, 1..=9, 10).await;
    let with = |limit, skip, hidden: &[u8]| {
        let mut st = step("app", &[], 0, limit);
        st.skip = skip;
        st.hidden = hidden.iter().map(|g| vec![*g; 16]).collect();
        st
    };
    let p1 = page(s, "alice", 1, &with(3, 0, &[2])).await;
    let p2 = page(s, "alice", 1, &with(4, 3, &[2])).await;
    assert_eq!((tags(&p1), p1.follows), (vec![1, 3, 4], 0));
    assert_eq!((tags(&p2), p2.more), (vec![5, 6, 7, 8], true));
    assert_eq!(p2.follows, p1.cursor);
    // Passing over everything: an empty page after the last, no more.
    let all = page(s, "alice", 1, &with(5, 20, &[])).await;
    assert!(all.envelopes.is_empty() && !all.more && all.prekeys.is_some());
    assert_eq!(all.follows, all.cursor);
    // The page passed over keeps the byte budget: two of 1,000 bytes fit
    // a budget of two and a half, so a skip of 3 passes over two.
    queue_for_alice(s, 30..=34, 1000).await;
    let size = envelope(30, 1, NOW, true, 1000).encoded_len() as u64;
    let mut big = with(3, 0, &[]);
    big.after = all.cursor;
    big.max_bytes = size * 5 / 2;
    let first = page(s, "alice", 1, &big).await;
    big.skip = 3;
    let second = page(s, "alice", 1, &big).await;
    assert_eq!((tags(&first), tags(&second)), (vec![30, 31], vec![32, 33]));
    assert_eq!(second.follows, first.cursor);
    // Nothing is deleted by reading.
    assert_eq!(queued(s, "alice", 1).await.len(), 14);
}

pub async fn sync_leases_one_reader_and_releases_for_the_holder_only(s: Arc<dyn Storage>) {
    let shared = Arc::clone(&s);
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    queue_for_alice(s, 1..=3, 10).await;
    let p = page(s, "alice", 1, &step("app", &[], 0, 10)).await;
    assert_eq!(tags(&p), vec![1, 2, 3]);
    assert!(s.reader_active("alice", 1, NOW).await.unwrap());
    // Another reader is refused while the lease is live, and its acks
    // and release do nothing.
    let mut stranger = step("extension", &[1, 2, 3], 0, 10);
    stranger.release = true;
    assert_eq!(s.sync("alice", 1, &stranger).await.unwrap(), Synced::Busy);
    assert_eq!(
        queued(s, "alice", 1).await.len(),
        3,
        "busy: nothing deleted"
    );
    assert!(s.reader_active("alice", 1, NOW + 50).await.unwrap());
    // The holder acks one and releases: the lease is gone, mail is left.
    let mut release = step("app", &[1], p.cursor, 0);
    release.release = true;
    let done = page(s, "alice", 1, &release).await;
    assert!(done.left && !done.more);
    assert!(!s.reader_active("alice", 1, NOW).await.unwrap());
    // So the other reader may take it at once; released with nothing left.
    let mut all = step("extension", &[2, 3], 0, 10);
    all.release = true;
    let done = page(s, "alice", 1, &all).await;
    assert!(done.envelopes.is_empty() && !done.left);
    assert!(!s.reader_active("alice", 1, NOW).await.unwrap());
    // An expired lease is taken over by the next step.
    page(s, "alice", 1, &step("app", &[], 0, 1)).await;
    let mut later = step("extension", &[], 0, 1);
    later.now = NOW + 100;
    later.lease_until = NOW + 200;
    page(s, "alice", 1, &later).await;
    // Raced: one reader's step wins, the others did nothing.
    queue_for_alice(s, 40..=49, 10).await;
    let races: Vec<_> = (0..30)
        .map(|i| {
            let s = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut st = step(&format!("reader-{i}"), &[40, 41], 0, 100);
                st.now = NOW + 300;
                st.lease_until = NOW + 400;
                s.sync("alice", 1, &st).await.unwrap()
            })
        })
        .collect();
    let mut pages = Vec::new();
    for r in races {
        if let Synced::Page(p) = r.await.unwrap() {
            pages.push(p);
        }
    }
    assert_eq!(pages.len(), 1, "exactly one reader wins");
    assert_eq!(tags(&pages[0]), (42..=49).collect::<Vec<u8>>());
    assert_eq!(queued(s, "alice", 1).await.len(), 8);
}

/// A step passes over `hidden` GUIDs (acked, their delete deferred) as
/// if they were deleted: not on a page, not `more`, not `left`.
pub async fn hidden_mail_is_never_read_nor_counted_as_left(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    account(s, "alice", &keys(1, 1)).await;
    queue_for_alice(s, 1..=6, 10).await;
    let hide = |mut st: SyncStep, h: &[u8]| {
        st.hidden = h.iter().map(|g| vec![*g; 16]).collect();
        st
    };
    // 1, 2 and 4 hidden (and a GUID of no envelope): pages of two.
    let p1 = page(s, "alice", 1, &hide(step("app", &[], 0, 2), &[1, 2, 4, 99])).await;
    assert_eq!((tags(&p1), p1.more), (vec![3, 5], true));
    let p2 = page(
        s,
        "alice",
        1,
        &hide(step("app", &[], p1.cursor, 2), &[1, 2, 4, 99]),
    )
    .await;
    assert_eq!((tags(&p2), p2.more), (vec![6], false));
    // Only hidden mail after the cursor: nothing more, prekeys given.
    let p = page(s, "alice", 1, &hide(step("app", &[], 3, 0), &[4, 5, 6])).await;
    assert!(p.envelopes.is_empty() && !p.more && p.prekeys.is_some());
    let p = page(s, "alice", 1, &hide(step("app", &[], 3, 0), &[4, 5])).await;
    assert!(p.more, "6 is not hidden");
    // Released with only hidden mail left: nothing left.
    let mut last = hide(step("app", &[], 0, 0), &[1, 2, 3, 4, 5, 6]);
    last.release = true;
    assert!(!page(s, "alice", 1, &last).await.left);
    let mut last = hide(step("app", &[], 0, 0), &[1, 2, 3, 4, 5]);
    last.release = true;
    assert!(page(s, "alice", 1, &last).await.left);
    // Hidden is not deleted: the mailbox still holds all six.
    assert_eq!(queued(s, "alice", 1).await.len(), 6);
    // An ack and a hidden GUID in one step: the ack is deleted.
    let both = hide(step("app", &[1], 0, 10), &[2]);
    assert_eq!(tags(&page(s, "alice", 1, &both).await), vec![3, 4, 5, 6]);
    assert_eq!(queued(s, "alice", 1).await.len(), 5);
}

/// `delete_acked` deletes each GUID from its own mailbox only, many
/// mailboxes in one call; strangers' GUIDs, unknown devices, replays and
/// malformed GUIDs delete nothing.
pub async fn deleted_acks_stay_in_their_own_mailbox(s: Arc<dyn Storage>) {
    let s = s.as_ref();
    const ACCOUNTS: usize = 20;
    const EACH: u8 = 100;
    let name = |i: usize| format!("acct{i:02}");
    for i in 0..ACCOUNTS {
        account(s, &name(i), &keys(1, 1)).await;
        for g in 1..=EACH {
            s.enqueue(&name(i), &[envelope(g, 1, NOW, true, 10)], &ROOMY)
                .await
                .unwrap();
        }
    }
    s.add_device("acct00", &device(2, 2), &keys(1, 1), NOW, 5)
        .await
        .unwrap();
    s.enqueue("acct00", &[envelope(1, 2, NOW, true, 10)], &ROOMY)
        .await
        .unwrap();
    let guids = |r: std::ops::RangeInclusive<u8>| r.map(|g| vec![g; 16]).collect::<Vec<_>>();
    // Thousands at once: the even accounts ack all their mail, the odd
    // ones nothing; a stranger (acct99, no such account) names acct01's
    // GUIDs, acct02 names GUIDs of no mailbox and malformed ones, and
    // acct00 device 9 does not exist.
    let mut batch: Vec<AckedMail> = (0..ACCOUNTS)
        .step_by(2)
        .map(|i| AckedMail {
            account_id: name(i),
            device_id: 1,
            guids: guids(1..=EACH),
        })
        .collect();
    batch.push(AckedMail {
        account_id: "acct99".into(),
        device_id: 1,
        guids: guids(1..=EACH),
    });
    batch.push(AckedMail {
        account_id: "acct00".into(),
        device_id: 9,
        guids: guids(1..=EACH),
    });
    batch.push(AckedMail {
        account_id: "acct02".into(),
        device_id: 1,
        guids: vec![vec![200; 16], vec![1; 3], vec![], vec![1; 17]],
    });
    let named: usize = batch.iter().map(|b| b.guids.len()).sum();
    assert!(named > 1000, "{named} GUIDs in one call");
    let deleted = s.delete_acked(&batch).await.unwrap();
    assert_eq!(deleted, ACCOUNTS / 2 * EACH as usize);
    for i in 0..ACCOUNTS {
        let left = queued(s, &name(i), 1).await.len();
        let want = if i % 2 == 0 { 0 } else { EACH as usize };
        assert_eq!(left, want, "{}", name(i));
        assert_eq!(
            s.mailbox_usage(&name(i), 1).await.unwrap(),
            counted(s, &name(i), 1).await
        );
    }
    assert_eq!(
        queued(s, "acct00", 2).await.len(),
        1,
        "other device untouched"
    );
    // The same batch replayed deletes nothing; an empty one neither.
    assert_eq!(s.delete_acked(&batch).await.unwrap(), 0);
    assert_eq!(s.delete_acked(&[]).await.unwrap(), 0);
    // Concurrent batches over one mailbox delete each envelope once.
    let halves = [guids(1..=60), guids(40..=EACH)];
    let mut total = 0;
    for r in futures_join(s, &halves).await {
        total += r;
    }
    assert_eq!(total, EACH as usize);
    assert!(queued(s, "acct01", 1).await.is_empty());
}

async fn futures_join(s: &dyn Storage, halves: &[Vec<Vec<u8>>; 2]) -> [usize; 2] {
    let batch = |g: &Vec<Vec<u8>>| {
        vec![AckedMail {
            account_id: "acct01".into(),
            device_id: 1,
            guids: g.clone(),
        }]
    };
    let (b0, b1) = (batch(&halves[0]), batch(&halves[1]));
    let (a, b) = tokio::join!(s.delete_acked(&b0), s.delete_acked(&b1));
    [a.unwrap(), b.unwrap()]
}
