//! Two real accounts, each on its own SQLCipher file, talking through
//! libsignal sessions: delivery out of order, drops, duplicates, restarts.

mod support;

use std::collections::{HashMap, HashSet};

use alcove_core::proto::wire::Envelope;
use alcove_core::{Error, IdentityStatus, MessageStatus, Received};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use support::*;

/// One side's view of what is in flight towards it.
struct InFlight {
    /// (envelope, plaintext) not yet delivered.
    pending: Vec<(Envelope, String)>,
    /// Delivered envelopes, kept to replay as duplicates.
    delivered: Vec<Envelope>,
}

impl InFlight {
    fn new() -> Self {
        Self {
            pending: Vec::new(),
            delivered: Vec::new(),
        }
    }
}

struct Conversation {
    alice: Peer,
    bob: Peer,
    to_alice: InFlight,
    to_bob: InFlight,
    expected_alice: HashMap<String, usize>,
    expected_bob: HashMap<String, usize>,
    got_alice: HashMap<String, usize>,
    got_bob: HashMap<String, usize>,
    counter: usize,
}

impl Conversation {
    fn start(dir: &std::path::Path) -> Self {
        let alice = Peer::create(dir, "alice");
        let mut bob = Peer::create(dir, "bob");
        let mut c = Conversation {
            alice,
            bob: {
                let _ = &mut bob;
                bob
            },
            to_alice: InFlight::new(),
            to_bob: InFlight::new(),
            expected_alice: HashMap::new(),
            expected_bob: HashMap::new(),
            got_alice: HashMap::new(),
            got_bob: HashMap::new(),
            counter: 0,
        };
        let bundle = c.bob.bundle();
        let bob_id = c.bob.id();
        c.alice.account.process_bundle(&bob_id, &bundle).unwrap();
        c
    }

    fn alice_sends(&mut self) {
        self.counter += 1;
        let text = format!("from alice #{} {}", self.counter, uuid_like());
        let out = self
            .alice
            .account
            .encrypt_text(&self.bob.id(), &text)
            .unwrap();
        self.to_bob
            .pending
            .push((single_envelope(&self.alice.account, &out), text));
    }

    /// Bob can only answer once he has a session (Alice's first message).
    fn bob_sends(&mut self) -> bool {
        if self
            .bob
            .account
            .session_devices(&self.alice.id())
            .unwrap()
            .is_empty()
        {
            return false;
        }
        self.counter += 1;
        let text = format!("from bob #{} {}", self.counter, uuid_like());
        let out = self
            .bob
            .account
            .encrypt_text(&self.alice.id(), &text)
            .unwrap();
        self.to_alice
            .pending
            .push((single_envelope(&self.bob.account, &out), text));
        true
    }

    /// Delivers everything pending to one side, shuffled, dropping some and
    /// replaying some already-delivered envelopes as duplicates.
    fn deliver(&mut self, to_bob: bool, rng: &mut impl Rng, drop_pct: u32, dup_pct: u32) {
        let (flight, peer, expected, got) = if to_bob {
            (
                &mut self.to_bob,
                &mut self.bob,
                &mut self.expected_bob,
                &mut self.got_bob,
            )
        } else {
            (
                &mut self.to_alice,
                &mut self.alice,
                &mut self.expected_alice,
                &mut self.got_alice,
            )
        };
        let mut batch: Vec<(Envelope, Option<String>)> = Vec::new();
        for (env, text) in flight.pending.drain(..) {
            if rng.random_range(0..100) < drop_pct {
                continue;
            }
            *expected.entry(text.clone()).or_default() += 1;
            batch.push((env, Some(text)));
        }
        for env in &flight.delivered {
            if rng.random_range(0..100) < dup_pct {
                batch.push((env.clone(), None));
            }
        }
        batch.shuffle(rng);
        // Pages of up to 7 envelopes, each one transaction.
        for page in batch.chunks(7) {
            let envs: Vec<Envelope> = page.iter().map(|(e, _)| e.clone()).collect();
            let outcomes = peer.account.receive(&envs).unwrap();
            assert_eq!(outcomes.len(), page.len());
            for ((env, text), outcome) in page.iter().zip(outcomes) {
                assert_eq!(outcome.guid, env.guid);
                match (text, outcome.result) {
                    (Some(text), Ok(Received::Text(m))) => {
                        assert_eq!(&m.body, text, "decrypted text matches what was sent");
                        assert!(!m.outgoing);
                        assert_eq!(m.status, MessageStatus::Received);
                        *got.entry(m.body).or_default() += 1;
                        flight.delivered.push(env.clone());
                    }
                    (None, Err(Error::DuplicateEnvelope)) => {}
                    (t, r) => panic!("unexpected outcome {r:?} (fresh: {})", t.is_some()),
                }
            }
        }
    }

    fn check(&self) {
        assert_eq!(
            self.got_bob, self.expected_bob,
            "bob got every delivered message exactly once"
        );
        assert_eq!(
            self.got_alice, self.expected_alice,
            "alice got every delivered message exactly once"
        );
        for (peer, expected) in [
            (&self.alice, &self.expected_alice),
            (&self.bob, &self.expected_bob),
        ] {
            let other = if std::ptr::eq(peer, &self.alice) {
                self.bob.id()
            } else {
                self.alice.id()
            };
            let mut stored = Vec::new();
            let mut before = None;
            let with_other = peer.account.find_conversation_with(&other).unwrap();
            while let Some(with_other) = with_other {
                let page = peer.account.messages(with_other, before, 300).unwrap();
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                stored.extend(page);
            }
            let incoming: HashSet<&str> = stored
                .iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body.as_str())
                .collect();
            assert_eq!(incoming.len(), expected.len(), "stored once each");
            for text in expected.keys() {
                assert!(incoming.contains(text.as_str()));
            }
        }
    }
}

fn run_conversation(
    seed: u64,
    rounds: usize,
    max_per_round: usize,
    drop_pct: u32,
    dup_pct: u32,
    reopen_at: Option<usize>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut c = Conversation::start(dir.path());
    for round in 0..rounds {
        for _ in 0..rng.random_range(0..=max_per_round) {
            c.alice_sends();
        }
        for _ in 0..rng.random_range(0..=max_per_round) {
            c.bob_sends();
        }
        // Each side's in-flight messages are delivered within a round or
        // two, shuffled: libsignal keeps 2,000 skipped keys per chain and 5
        // old chains, which bounds how late a message may arrive.
        if rng.random_bool(0.7) {
            c.deliver(true, &mut rng, drop_pct, dup_pct);
        }
        if rng.random_bool(0.7) {
            c.deliver(false, &mut rng, drop_pct, dup_pct);
        }
        if reopen_at == Some(round) {
            c.alice = c.alice.reopen();
            c.bob = c.bob.reopen();
        }
    }
    c.deliver(true, &mut rng, 0, dup_pct);
    c.deliver(false, &mut rng, 0, dup_pct);
    c.check();
}

/// 1,000+ messages each way, out of order, with drops, duplicates, and both
/// databases closed and reopened mid-conversation.
#[test]
fn thousand_messages_both_ways_with_loss_reordering_duplicates_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xA1C0FE);
    let mut c = Conversation::start(dir.path());
    // Alice opens; then both talk until each has sent 1,000.
    c.alice_sends();
    c.deliver(true, &mut rng, 0, 0);
    let (mut a, mut b) = (1, 0);
    let mut round = 0;
    while a < 1000 || b < 1000 {
        round += 1;
        for _ in 0..rng.random_range(1..=40) {
            if a < 1000 {
                c.alice_sends();
                a += 1;
            }
        }
        for _ in 0..rng.random_range(1..=40) {
            if b < 1000 && c.bob_sends() {
                b += 1;
            }
        }
        c.deliver(true, &mut rng, 5, 5);
        c.deliver(false, &mut rng, 5, 5);
        if round == 20 {
            c.alice = c.alice.reopen();
            c.bob = c.bob.reopen();
        }
    }
    c.check();
    let total: usize = c.got_alice.values().sum::<usize>() + c.got_bob.values().sum::<usize>();
    assert!(
        total > 1800,
        "most of 2,000 messages delivered (5% dropped): {total}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    /// In the spirit of libsignal's `interaction` fuzz target: random send /
    /// deliver / drop / duplicate / restart schedules.
    #[test]
    fn random_schedules_deliver_each_message_exactly_once(
        seed in any::<u64>(),
        rounds in 1usize..12,
        max_per_round in 0usize..8,
        drop_pct in 0u32..40,
        dup_pct in 0u32..40,
        reopen_at in proptest::option::of(0usize..12),
    ) {
        run_conversation(seed, rounds, max_per_round, drop_pct, dup_pct, reopen_at);
    }
}

#[test]
fn same_envelope_twice_is_stored_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Conversation::start(dir.path());
    let out = c
        .alice
        .account
        .encrypt_text(&c.bob.id(), "once only")
        .unwrap();
    let env = single_envelope(&c.alice.account, &out);
    let first = c.bob.account.receive(std::slice::from_ref(&env)).unwrap();
    assert!(matches!(first[0].result, Ok(Received::Text(_))));
    // Same envelope again, and again within one page.
    let again = c.bob.account.receive(&[env.clone(), env.clone()]).unwrap();
    assert!(again
        .iter()
        .all(|o| o.result == Err(Error::DuplicateEnvelope)));
    assert!(again.iter().all(|o| o.ackable()));
    // The same ciphertext under a new envelope id: the ratchet refuses it.
    let mut replay = env.clone();
    replay.guid = vec![9; 16];
    let r = c.bob.account.receive(&[replay]).unwrap();
    assert!(
        matches!(r[0].result, Err(Error::DuplicateMessage)),
        "{:?}",
        r[0].result
    );
    let with_alice = c.bob.account.conversation_with(&c.alice.id()).unwrap();
    let stored = c.bob.account.messages(with_alice, None, 10).unwrap();
    assert_eq!(stored.len(), 1);
}

#[test]
fn receipts_move_outgoing_status_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Conversation::start(dir.path());
    let out = c
        .alice
        .account
        .encrypt_text(&c.bob.id(), "did you get this")
        .unwrap();
    let local = out.local_id.unwrap();
    c.alice.account.mark_sent(local).unwrap();
    let got = c
        .bob
        .account
        .receive(&[single_envelope(&c.alice.account, &out)])
        .unwrap();
    let Ok(Received::Text(m)) = &got[0].result else {
        panic!()
    };
    let receipt = c
        .bob
        .account
        .encrypt_receipt(&c.alice.id(), true, vec![m.message_id.clone()])
        .unwrap();
    assert!(receipt.local_id.is_none());
    let r = c
        .alice
        .account
        .receive(&[single_envelope(&c.bob.account, &receipt)])
        .unwrap();
    assert_eq!(
        r[0].result,
        Ok(Received::Receipt {
            kind: MessageStatus::Read,
            updated: 1,
            conversation: c.alice.account.find_conversation_with(&c.bob.id()).unwrap(),
            sender: c.bob.id(),
        })
    );
    assert_eq!(
        c.alice.account.message(local).unwrap().unwrap().status,
        MessageStatus::Read
    );
}

#[test]
fn identity_change_blocks_sending_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Conversation::start(dir.path());
    c.alice_sends();
    c.deliver(true, &mut rand::rng(), 0, 0);
    let bob_id = c.bob.id();
    assert_eq!(
        c.alice.account.identity_status(&bob_id).unwrap(),
        IdentityStatus::Unverified
    );
    let old_number = c.alice.account.safety_number(&bob_id).unwrap();

    // Bob reinstalls: same account id, new identity key.
    let new_dir = tempfile::tempdir().unwrap();
    let path = new_dir.path().join("bob2.db");
    let key = alcove_core::DbKey::random();
    let mut bob2 = alcove_core::Account::create(&path, &key, &bob_id, 1).unwrap();
    let upload = bob2.initial_prekeys().unwrap();
    let mut bob2 = Peer {
        account: bob2,
        key,
        path,
        upload,
        bundles_served: 0,
    };

    let err = c
        .alice
        .account
        .process_bundle(&bob_id, &bob2.bundle())
        .unwrap_err();
    assert_eq!(
        err,
        Error::IdentityChanged {
            account_id: bob_id.clone()
        }
    );
    assert_eq!(
        c.alice.account.identity_status(&bob_id).unwrap(),
        IdentityStatus::ChangePending
    );
    // Sending on the old session is refused too.
    let err = c
        .alice
        .account
        .encrypt_text(&bob_id, "are you there")
        .unwrap_err();
    assert!(matches!(err, Error::IdentityChanged { .. }));
    // The safety number shown is the new key's.
    let new_number = c.alice.account.safety_number(&bob_id).unwrap();
    assert_ne!(old_number.display, new_number.display);

    c.alice.account.accept_identity_change(&bob_id).unwrap();
    c.alice
        .account
        .process_bundle(&bob_id, &bob2.bundle())
        .unwrap();
    let out = c
        .alice
        .account
        .encrypt_text(&bob_id, "welcome back")
        .unwrap();
    let got = bob2
        .account
        .receive(&[single_envelope(&c.alice.account, &out)])
        .unwrap();
    assert!(matches!(&got[0].result, Ok(Received::Text(m)) if m.body == "welcome back"));
}

#[test]
fn identity_change_seen_on_receive_is_recorded_and_blocks_replies() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Conversation::start(dir.path());
    c.alice_sends();
    c.deliver(true, &mut rand::rng(), 0, 0);
    assert!(c.bob_sends());
    c.deliver(false, &mut rand::rng(), 0, 0);
    // Alice reinstalls and writes to Bob from a new identity.
    let alice_id = c.alice.id();
    let new_dir = tempfile::tempdir().unwrap();
    let path = new_dir.path().join("alice2.db");
    let mut alice2 =
        alcove_core::Account::create(&path, &alcove_core::DbKey::random(), &alice_id, 1).unwrap();
    alice2.initial_prekeys().unwrap();
    alice2.process_bundle(&c.bob.id(), &c.bob.bundle()).unwrap();
    let out = alice2.encrypt_text(&c.bob.id(), "new phone").unwrap();
    let got = c
        .bob
        .account
        .receive(&[single_envelope(&alice2, &out)])
        .unwrap();
    assert!(matches!(&got[0].result, Ok(Received::Text(m)) if m.body == "new phone"));
    assert_eq!(
        c.bob.account.identity_status(&alice_id).unwrap(),
        IdentityStatus::ChangePending
    );
    assert!(matches!(
        c.bob.account.encrypt_text(&alice_id, "hi"),
        Err(Error::IdentityChanged { .. })
    ));
    c.bob.account.accept_identity_change(&alice_id).unwrap();
    let out = c.bob.account.encrypt_text(&alice_id, "hi").unwrap();
    let got = alice2
        .receive(&[single_envelope(&c.bob.account, &out)])
        .unwrap();
    assert!(matches!(&got[0].result, Ok(Received::Text(m)) if m.body == "hi"));
}

#[test]
fn safety_numbers_match_and_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Conversation::start(dir.path());
    c.alice_sends();
    c.deliver(true, &mut rand::rng(), 0, 0);
    let a = c.alice.account.safety_number(&c.bob.id()).unwrap();
    let b = c.bob.account.safety_number(&c.alice.id()).unwrap();
    assert_eq!(a.display, b.display);
    assert_eq!(a.display.len(), 60);
    c.alice
        .account
        .verify_scanned_safety_number(&c.bob.id(), &b.scannable)
        .unwrap();
    assert_eq!(
        c.alice.account.identity_status(&c.bob.id()).unwrap(),
        IdentityStatus::Verified
    );
    let mut wrong = b.scannable.clone();
    let carol = Peer::create(dir.path(), "carol");
    let _ = &mut wrong;
    let mismatch = c
        .bob
        .account
        .verify_scanned_safety_number(&c.alice.id(), &carol_number(&carol, &c.alice));
    assert_eq!(mismatch, Err(Error::SafetyNumberMismatch));
}

fn carol_number(carol: &Peer, alice: &Peer) -> Vec<u8> {
    let mut carol_acct = alcove_core::Account::open(&carol.path, &carol.key).unwrap();
    carol_acct
        .pin_identity(&alice.id(), &alice.account.identity_key())
        .unwrap();
    carol_acct.safety_number(&alice.id()).unwrap().scannable
}
