//! Random bytes and mutated real envelopes fed to the receive path: never a
//! panic, never a state change.

mod support;

use alcove_core::proto::wire::{envelope, Envelope};
use alcove_core::{Error, Received};
use proptest::prelude::*;
use support::*;

struct Fixture {
    _dir: tempfile::TempDir,
    alice: Peer,
    bob: Peer,
    /// A real PreKey message and a real Signal message, not yet delivered.
    prekey_env: Envelope,
    signal_env: Envelope,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Peer::create(dir.path(), "alice");
    let mut bob = Peer::create(dir.path(), "bob");
    let b = bob.bundle();
    alice.account.process_bundle(&bob.id(), &b).unwrap();
    let first = alice.account.send_text(&bob.id(), "first").unwrap();
    let first_env = single_envelope(&alice.account, &first);
    let prekey_env = first_env.clone();
    bob.account.receive(&[first_env]).unwrap();
    let reply = bob.account.send_text(&alice.id(), "reply").unwrap();
    alice
        .account
        .receive(&[single_envelope(&bob.account, &reply)])
        .unwrap();
    let next = alice.account.send_text(&bob.id(), "second").unwrap();
    let signal_env = single_envelope(&alice.account, &next);
    assert_eq!(signal_env.r#type, envelope::Type::SignalMessage as i32);
    let mut prekey_env = prekey_env;
    prekey_env.guid = vec![0x55; 16];
    Fixture {
        _dir: dir,
        alice,
        bob,
        prekey_env,
        signal_env,
    }
}

fn assert_rejected_without_change(bob: &mut Peer, env: Envelope) {
    let before = state_digest(&bob.account);
    let out = bob.account.receive(&[env]).unwrap();
    assert!(
        out[0].result.is_err(),
        "hostile input accepted: {:?}",
        out[0].result
    );
    assert!(out[0].ackable());
    assert_eq!(before, state_digest(&bob.account), "state changed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_or_change_state(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        kind in 0i32..5,
        guid in proptest::collection::vec(any::<u8>(), 16..=16),
    ) {
        let mut f = fixture();
        let env = Envelope {
            guid,
            r#type: kind,
            source_account: f.alice.id(),
            source_device: 1,
            destination_device: 1,
            ciphertext: bytes,
            server_timestamp: 0,
        };
        assert_rejected_without_change(&mut f.bob, env);
    }

    #[test]
    fn mutated_real_envelopes_never_panic_or_change_state(
        which in 0usize..2,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut f = fixture();
        let mut env = if which == 0 { f.prekey_env.clone() } else { f.signal_env.clone() };
        env.guid = vec![0x77; 16];
        for (idx, x) in flips {
            let i = idx.index(env.ciphertext.len());
            env.ciphertext[i] ^= x;
        }
        if let Some(t) = truncate {
            let n = t.index(env.ciphertext.len());
            env.ciphertext.truncate(n);
        }
        let before = state_digest(&f.bob.account);
        let out = f.bob.account.receive(&[env]).unwrap();
        match &out[0].result {
            Err(_) => prop_assert_eq!(before, state_digest(&f.bob.account)),
            // A flip in a field libsignal does not authenticate (e.g. the
            // registration id of a PreKey message) may still decrypt; then it
            // must be the real message, stored once.
            Ok(Received::Text(m)) => prop_assert!(m.body == "second" || m.body == "first"),
            Ok(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

#[test]
fn hostile_envelope_fields_are_typed_errors() {
    let mut f = fixture();
    let mut bad_guid = f.signal_env.clone();
    bad_guid.guid = vec![1, 2, 3];
    let mut bad_source = f.signal_env.clone();
    bad_source.source_account = "not an id!".into();
    let mut bad_device = f.signal_env.clone();
    bad_device.source_device = 0;
    let mut huge = f.signal_env.clone();
    huge.ciphertext = vec![0; alcove_core::MAX_CIPHERTEXT_LEN + 1];
    let mut unknown_type = f.signal_env.clone();
    unknown_type.r#type = 99;
    for env in [bad_guid, bad_source, bad_device, huge, unknown_type] {
        let before = state_digest(&f.bob.account);
        let out = f.bob.account.receive(&[env]).unwrap();
        assert!(
            matches!(out[0].result, Err(Error::Malformed(_))),
            "{:?}",
            out[0].result
        );
        assert_eq!(before, state_digest(&f.bob.account));
    }
    // A failed envelope in a page does not stop the good one after it.
    let mut garbage = f.signal_env.clone();
    garbage.guid = vec![3; 16];
    garbage.ciphertext[10] ^= 0xff;
    let out = f
        .bob
        .account
        .receive(&[garbage, f.signal_env.clone()])
        .unwrap();
    assert!(out[0].result.is_err());
    assert!(matches!(&out[1].result, Ok(Received::Text(m)) if m.body == "second"));
}

#[test]
fn a_message_from_a_stranger_without_session_is_refused_cleanly() {
    let mut f = fixture();
    let mut env = f.signal_env.clone();
    env.source_account = "acct-stranger".into();
    assert_rejected_without_change(&mut f.bob, env);
}
