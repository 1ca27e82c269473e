//! Prekey policy: batch sizes, refill, rotation, overdue refusal, and
//! one-time key consumption on the receiving side.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use alcove_core::proto::relay::PreKeyCount;
use alcove_core::{Error, Received, MAX_PER_UPLOAD, OVERDUE_AFTER_MS, ROTATE_AFTER_MS};
use support::*;

static NOW: AtomicU64 = AtomicU64::new(0);
fn fake_now() -> u64 {
    NOW.load(Ordering::SeqCst)
}

#[test]
fn initial_upload_is_one_full_batch() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::create(dir.path(), "p");
    assert_eq!(peer.upload.one_time_prekeys.len() as u32, MAX_PER_UPLOAD);
    assert_eq!(
        peer.upload.one_time_kyber_prekeys.len() as u32,
        MAX_PER_UPLOAD
    );
    assert!(peer.upload.signed_prekey.is_some() && peer.upload.kyber_last_resort.is_some());
    let ids: std::collections::HashSet<u32> =
        peer.upload.one_time_prekeys.iter().map(|k| k.id).collect();
    assert_eq!(ids.len(), 100, "distinct ids");
    assert_eq!(peer.account.local_one_time_prekeys().unwrap(), (100, 100));
}

#[test]
fn upkeep_refills_below_ten_and_rotates_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Peer::create(dir.path(), "p");
    NOW.store(alcove_core_now(), Ordering::SeqCst);
    peer.account.set_clock(fake_now);
    let plenty = PreKeyCount {
        one_time_prekeys: 50,
        one_time_kyber_prekeys: 50,
    };
    assert!(
        peer.account.prekey_upkeep(&plenty).unwrap().is_none(),
        "nothing due"
    );

    let low = PreKeyCount {
        one_time_prekeys: 3,
        one_time_kyber_prekeys: 9,
    };
    let up = peer.account.prekey_upkeep(&low).unwrap().unwrap();
    assert_eq!(up.one_time_prekeys.len(), 97);
    assert_eq!(up.one_time_kyber_prekeys.len(), 91);
    assert!(up.signed_prekey.is_none());

    NOW.fetch_add(ROTATE_AFTER_MS + 1, Ordering::SeqCst);
    let up = peer.account.prekey_upkeep(&plenty).unwrap().unwrap();
    let signed = up.signed_prekey.unwrap();
    assert_ne!(signed.id, peer.upload.signed_prekey.as_ref().unwrap().id);
    assert!(up.kyber_last_resort.is_some());
    assert!(up.one_time_prekeys.is_empty());
}

#[test]
fn sending_is_refused_when_rotation_is_badly_overdue() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Peer::create(dir.path(), "alice");
    let mut bob = Peer::create(dir.path(), "bob");
    let b = bob.bundle();
    alice.account.process_bundle(&bob.id(), &b).unwrap();
    NOW.store(alcove_core_now() + OVERDUE_AFTER_MS + 1, Ordering::SeqCst);
    alice.account.set_clock(fake_now);
    assert_eq!(
        alice.account.encrypt_text(&bob.id(), "x").unwrap_err(),
        Error::PrekeyRotationOverdue
    );
    let full = PreKeyCount {
        one_time_prekeys: 100,
        one_time_kyber_prekeys: 100,
    };
    alice.account.prekey_upkeep(&full).unwrap().unwrap();
    alice.account.encrypt_text(&bob.id(), "x").unwrap();
}

#[test]
fn one_time_keys_are_consumed_and_last_resort_replay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bob = Peer::create(dir.path(), "bob");
    // Carol uses a bundle with one-time keys: Bob's count drops by one each.
    let mut carol = Peer::create(dir.path(), "carol");
    let b = bob.bundle();
    carol.account.process_bundle(&bob.id(), &b).unwrap();
    let out = carol.account.encrypt_text(&bob.id(), "hello").unwrap();
    let got = bob
        .account
        .receive(&[single_envelope(&carol.account, &out)])
        .unwrap();
    assert!(matches!(got[0].result, Ok(Received::Text(_))));
    assert_eq!(bob.account.local_one_time_prekeys().unwrap(), (99, 99));

    // Dave gets a bundle with no one-time keys left: Kyber last resort only.
    let mut dave = Peer::create(dir.path(), "dave");
    bob.bundles_served = 1000;
    let b = bob.bundle();
    assert!(b.one_time_prekey.is_none());
    assert_eq!(b.kyber_prekey, bob.upload.kyber_last_resort);
    dave.account.process_bundle(&bob.id(), &b).unwrap();
    let out = dave
        .account
        .encrypt_text(&bob.id(), "hi from dave")
        .unwrap();
    let env = single_envelope(&dave.account, &out);
    let got = bob.account.receive(std::slice::from_ref(&env)).unwrap();
    assert!(matches!(&got[0].result, Ok(Received::Text(m)) if m.body == "hi from dave"));
    assert_eq!(
        bob.account.local_one_time_prekeys().unwrap(),
        (99, 99),
        "last resort kept"
    );
}

fn alcove_core_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
