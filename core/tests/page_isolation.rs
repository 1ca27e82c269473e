//! A page is received without a savepoint per envelope; an envelope that
//! fails after writing sends the page round again, envelope by envelope.
//! These tests hold that to the old promise: a failed envelope leaves no
//! trace, the others are kept, and the result is what receiving the
//! envelopes one page each would have given.

mod support;

use alcove_core::proto::wire::Envelope;
use alcove_core::{Account, Error, Received};
use support::*;

struct Pair {
    dir: tempfile::TempDir,
    alice: Peer,
    bob: Peer,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Peer::create(dir.path(), "alice");
    let mut bob = Peer::create(dir.path(), "bob");
    let b = bob.bundle();
    alice.account.process_bundle(&bob.id(), &b).unwrap();
    Pair { dir, alice, bob }
}

fn texts(p: &mut Pair, bodies: &[&str]) -> Vec<Envelope> {
    bodies
        .iter()
        .map(|body| {
            let out = p.alice.account.encrypt_text(&p.bob.id(), body).unwrap();
            single_envelope(&p.alice.account, &out)
        })
        .collect()
}

/// Bob's twin: his database copied beside him, for receiving the same
/// envelopes another way.
fn twin(p: &Pair) -> Account {
    open_copy(&p.bob.path, &p.bob.key, &p.dir.path().join("twin.db"))
}

/// What must match between two ways of receiving: the prekey and identity
/// state byte for byte, the stored bodies in order, the GUIDs recorded.
/// (Session records differ by design: a ratchet step draws a fresh key.)
fn outcome_state(account: &Account) -> Vec<Vec<u8>> {
    [
        "SELECT address FROM sessions ORDER BY 1",
        "SELECT * FROM prekeys ORDER BY 1",
        "SELECT * FROM kyber_prekeys ORDER BY 1",
        "SELECT * FROM kyber_base_keys_seen ORDER BY 1",
        "SELECT account_id, identity_key, pending_key, verified FROM identities ORDER BY 1",
        "SELECT body, message_id FROM messages ORDER BY id",
        "SELECT guid FROM processed_envelopes ORDER BY guid",
    ]
    .iter()
    .flat_map(|sql| rows(account, sql))
    .collect()
}

/// Equal, or a short account of the first difference (the rows are long).
fn assert_same(a: &[Vec<u8>], b: &[Vec<u8>]) {
    assert_eq!(a.len(), b.len(), "row counts differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let short = |r: &[u8]| String::from_utf8_lossy(&r[..r.len().min(160)]).into_owned();
        assert!(x == y, "row {i} differs: {} vs {}", short(x), short(y));
    }
}

/// `from` texts `to` once; what `to` made of it.
fn text(from: &mut Peer, to: &mut Peer, body: &str) -> Result<String, Error> {
    let out = from.account.encrypt_text(&to.id(), body).unwrap();
    let got = to
        .account
        .receive(&[single_envelope(&from.account, &out)])
        .unwrap();
    bodies(&got).remove(0)
}

fn bodies(results: &[alcove_core::EnvelopeOutcome]) -> Vec<Result<String, Error>> {
    results
        .iter()
        .map(|o| match &o.result {
            Ok(Received::Text(m)) => Ok(m.body.clone()),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => Err(e.clone()),
        })
        .collect()
}

#[test]
fn a_failure_after_writing_rolls_back_that_envelope_only() {
    let mut p = pair();
    let sent = texts(&mut p, &["one", "two", "three"]);
    // The first text again under a new GUID: its GUID is recorded, then
    // the ratchet refuses it, so it fails after writing.
    let mut replay = sent[0].clone();
    replay.guid = vec![0x42; 16];
    let page = vec![
        sent[0].clone(),
        replay.clone(),
        sent[1].clone(),
        sent[2].clone(),
    ];
    let mut one_by_one = twin(&p);

    let (out, stages) = p.bob.account.receive_timed(&page).unwrap();
    assert_eq!(stages.retried_pages, 1, "the page went round again");
    assert_eq!(
        bodies(&out),
        vec![
            Ok("one".into()),
            Err(Error::DuplicateMessage),
            Ok("two".into()),
            Ok("three".into())
        ]
    );
    assert!(out.iter().all(|o| o.ackable()));

    // The same envelopes, a page each: the same state, byte for byte.
    for env in &page {
        one_by_one.receive(std::slice::from_ref(env)).unwrap();
    }
    assert_same(&outcome_state(&p.bob.account), &outcome_state(&one_by_one));

    // And the session the batched page kept works both ways.
    assert_eq!(text(&mut p.bob, &mut p.alice, "reply"), Ok("reply".into()));
    assert_eq!(text(&mut p.alice, &mut p.bob, "four"), Ok("four".into()));

    // The refused envelope left nothing: its GUID is not recorded, so it
    // is refused by the ratchet again, not skipped as a redelivery.
    let again = p.bob.account.receive(&[replay]).unwrap();
    assert_eq!(again[0].result, Err(Error::DuplicateMessage));
    // The kept ones are: a redelivery of each is a duplicate envelope.
    let redelivered = p.bob.account.receive(&sent).unwrap();
    assert!(redelivered
        .iter()
        .all(|o| o.result == Err(Error::DuplicateEnvelope)));
}

#[test]
fn failures_that_write_nothing_keep_the_page_batched() {
    let mut p = pair();
    let sent = texts(&mut p, &["one", "two"]);
    let mut unknown_type = sent[1].clone();
    unknown_type.guid = vec![0x17; 16];
    unknown_type.r#type = 99;
    let mut empty = sent[1].clone();
    empty.guid = vec![0x18; 16];
    empty.ciphertext.clear();
    let mut short_guid = sent[1].clone();
    short_guid.guid = vec![1, 2, 3];
    // A redelivery inside the page, and envelopes refused before any
    // write: none of them sends the page round again.
    let page = vec![
        sent[0].clone(),
        sent[0].clone(),
        unknown_type,
        empty,
        short_guid,
        sent[1].clone(),
    ];
    let (out, stages) = p.bob.account.receive_timed(&page).unwrap();
    assert_eq!(stages.retried_pages, 0);
    let got = bodies(&out);
    assert_eq!(got[0], Ok("one".into()));
    assert_eq!(got[1], Err(Error::DuplicateEnvelope));
    for r in &got[2..5] {
        assert!(matches!(r, Err(Error::Malformed(_))), "{r:?}");
    }
    assert_eq!(got[5], Ok("two".into()));
    let recorded: i64 = p
        .bob
        .account
        .connection()
        .query_row("SELECT count(*) FROM processed_envelopes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, 2, "only the two stored envelopes are recorded");
}

#[test]
fn a_page_of_failures_that_write_is_retried_once_and_keeps_every_good_envelope() {
    let mut p = pair();
    let sent = texts(&mut p, &["a", "b", "c", "d", "e", "f"]);
    p.bob.account.receive(&sent[..1]).unwrap();
    // Every other envelope a replay of "a" under a fresh GUID: the page
    // goes round again once, not once per failure.
    let mut page = Vec::new();
    for (i, env) in sent[1..].iter().enumerate() {
        let mut replay = sent[0].clone();
        replay.guid = vec![0x60 + i as u8; 16];
        page.push(replay);
        page.push(env.clone());
    }
    let before_failures = outcome_state(&p.bob.account);
    let (out, stages) = p.bob.account.receive_timed(&page).unwrap();
    assert_eq!(stages.retried_pages, 1);
    let got = bodies(&out);
    for (i, r) in got.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(r, &Err(Error::DuplicateMessage));
        } else {
            assert!(r.is_ok(), "{r:?}");
        }
    }
    assert_ne!(before_failures, outcome_state(&p.bob.account));
    let conv = p.bob.account.conversation_with(&p.alice.id()).unwrap();
    let stored = p.bob.account.messages(conv, None, 100).unwrap();
    let mut stored: Vec<_> = stored.into_iter().map(|m| m.body).collect();
    stored.sort();
    assert_eq!(stored, ["a", "b", "c", "d", "e", "f"]);
}
