//! The practice's content kinds from a peer who breaks the rules (real
//! accounts, real SQLCipher files, real libsignal sessions): each bad
//! content is refused as `Malformed`, its envelope may be dropped (acked),
//! and nothing is stored or reported; a stale or replayed profile changes
//! nothing.

mod support;

use alcove_core::practice::{PracticeProfile, TextingPolicy};
use alcove_core::proto::content::{content::Body, ConsentGiven, Introduction};
use alcove_core::testing::encrypt_content;
use alcove_core::Error;
use support::{single_envelope, Peer};

fn profile(revision: u64, tz: &str) -> PracticeProfile {
    PracticeProfile {
        revision,
        display_name: "Dr. Rivera".into(),
        practice_name: "Harbor Counseling".into(),
        time_zone: tz.into(),
        hours: vec![],
        away: vec![],
        response_time_hours: 24,
        crisis_resources: "Call or text 988".into(),
        policy: Some(TextingPolicy {
            version: 1,
            text: "Not for emergencies.".into(),
        }),
        notification_label: "HC".into(),
        retention_days: 0,
    }
}

/// Sends `body` from `from` to `to` and returns what `to` made of it.
fn deliver(from: &mut Peer, to: &mut Peer, body: Body) -> alcove_core::EnvelopeOutcome {
    let out = encrypt_content(&mut from.account, &to.id(), body).unwrap();
    let mut got = to
        .account
        .receive(&[single_envelope(&from.account, &out)])
        .unwrap();
    got.remove(0)
}

#[test]
fn bad_introductions_consents_and_profiles_are_dropped_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut therapist = Peer::create(dir.path(), "therapist");
    let mut client = Peer::create(dir.path(), "client");
    let mut stranger = Peer::create(dir.path(), "stranger");
    therapist
        .account
        .publish_practice_profile(profile(0, "America/New_York"))
        .unwrap();
    for p in [&mut client, &mut stranger] {
        let b = therapist.bundle();
        p.account.process_bundle(&therapist.id(), &b).unwrap();
    }

    // A name with a control character, an empty one, an oversized one.
    for name in ["J.\u{7}", "   ", &"x".repeat(65)] {
        let o = deliver(
            &mut client,
            &mut therapist,
            Body::Introduction(Introduction {
                display_name: name.to_owned(),
            }),
        );
        assert!(
            matches!(o.result, Err(Error::Malformed(_))),
            "{:?}",
            o.result
        );
        assert!(o.ackable() && o.events.is_empty());
    }
    assert!(therapist.account.conversations().unwrap().is_empty());

    // A consent from someone the therapist has no conversation with.
    let policy_hash = sha_of("Not for emergencies.");
    let o = deliver(
        &mut stranger,
        &mut therapist,
        Body::Consent(ConsentGiven {
            policy_version: 1,
            policy_sha256: policy_hash.clone(),
            accepted_at: 1,
            device_id: 1,
        }),
    );
    assert!(matches!(o.result, Err(Error::Malformed(_))));

    // The client introduces itself properly, then consents to a policy the
    // therapist never published (another hash, another version).
    let o = deliver(
        &mut client,
        &mut therapist,
        Body::Introduction(Introduction {
            display_name: "J.".into(),
        }),
    );
    assert!(o.result.is_ok());
    let conv = therapist
        .account
        .find_conversation_with(&client.id())
        .unwrap()
        .unwrap();
    for (version, hash) in [(1, vec![0u8; 32]), (2, policy_hash.clone())] {
        let o = deliver(
            &mut client,
            &mut therapist,
            Body::Consent(ConsentGiven {
                policy_version: version,
                policy_sha256: hash,
                accepted_at: 1,
                device_id: 1,
            }),
        );
        assert!(matches!(o.result, Err(Error::Malformed(_))));
        assert!(o.events.is_empty());
    }
    assert!(therapist.account.consents(conv).unwrap().is_empty());

    // Profiles the other way: an invalid one is refused; a newer revision
    // is kept; a stale one (or a replay) changes nothing.
    let b = client.bundle();
    therapist.account.process_bundle(&client.id(), &b).unwrap();
    let to_therapist = client.account.conversation_with(&therapist.id()).unwrap();
    let o = deliver(
        &mut therapist,
        &mut client,
        Body::PracticeProfile(profile(9, "Mars/Olympus_Mons")),
    );
    assert!(matches!(o.result, Err(Error::Malformed(_))));
    assert_eq!(client.account.practice_profile(to_therapist).unwrap(), None);
    let o = deliver(
        &mut therapist,
        &mut client,
        Body::PracticeProfile(profile(5, "Europe/London")),
    );
    assert_eq!(o.events.len(), 1);
    let o = deliver(
        &mut therapist,
        &mut client,
        Body::PracticeProfile(profile(4, "Asia/Tokyo")),
    );
    assert!(o.result.is_ok() && o.events.is_empty(), "stale: no event");
    let kept = client
        .account
        .practice_profile(to_therapist)
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.revision, kept.time_zone.as_str()),
        (5, "Europe/London")
    );
}

fn sha_of(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}
