//! Enrolment by invite card, end to end over a real relay on loopback and
//! real SQLCipher files: the happy path (the therapist sees the client
//! join, under the name the client chose) and every way a card can be
//! wrong, each leaving nothing on disk.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey, Error, StorageLayout, SyncEvent};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

async fn therapist(r: &Relay, dir: &Path) -> Client {
    Client::enroll(
        &dir.join("therapist.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap()
}

async fn by_card(dir: &Path, name: &str, card: &str, shown_as: &str) -> Result<Client, Error> {
    Client::enroll_by_card(
        &dir.join(name),
        &DbKey::random(),
        card,
        shown_as,
        StorageLayout::Standard,
    )
    .await
}

/// Nothing of a refused enrolment is left in `dir` but the relay's files.
fn only_relay_files(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("relay") && !n.starts_with("therapist"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_enrols_by_card_and_the_therapist_sees_them_join() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let t = therapist(&r, dir.path()).await;
    let card = t.invite_card(&r.invite(), None).unwrap();
    let text = card.encode();
    assert!(!text.contains(&r.db.display().to_string()));

    let c = by_card(dir.path(), "client.db", &text, "J.").await.unwrap();
    // The conversation with the therapist exists at once, with the
    // therapist's identity pinned as verified (no trust on first use).
    let with_t = c
        .with_account(|a| a.find_conversation_with(t.account_id()))
        .unwrap()
        .unwrap();
    assert_eq!(
        c.with_account(|a| a.members(with_t)).unwrap(),
        [t.account_id()]
    );
    assert_eq!(
        c.with_account(|a| a.identity_status(t.account_id()))
            .unwrap(),
        alcove_core::IdentityStatus::Verified
    );

    // The therapist's next sync: the client joined, under the chosen name.
    let report = t.sync(soon()).await.unwrap();
    let joined: Vec<_> = report
        .events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::ClientJoined { conversation } => Some(*conversation),
            _ => None,
        })
        .collect();
    assert_eq!(joined.len(), 1);
    let convs = t.with_account(|a| a.conversations()).unwrap();
    let conv = convs.iter().find(|x| x.id == joined[0]).unwrap();
    assert_eq!(conv.display_name.as_deref(), Some("J."));
    assert_eq!(conv.members, [c.account_id()]);
    assert_eq!(report.received, 0, "an introduction is not a text");

    // And they text.
    assert!(c.send_text(with_t, "hello").await.unwrap().sent);
    assert_eq!(t.sync(soon()).await.unwrap().received, 1);
    // The same card again: the token was used.
    assert_eq!(
        by_card(dir.path(), "again.db", &text, "K.")
            .await
            .unwrap_err(),
        Error::InvalidInvite
    );
    only_relay_files_but(
        dir.path(),
        &[
            "client.db",
            "client.db-wal",
            "client.db-shm",
            "client.db.keycheck",
        ],
    );
    r.stop().await;
}

fn only_relay_files_but(dir: &Path, allowed: &[&str]) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("relay") && !n.starts_with("therapist"))
        .filter(|n| !allowed.contains(&n.as_str()))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cards_are_typed_errors_and_leave_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let t = therapist(&r, dir.path()).await;
    let mallory = Client::enroll(
        &dir.path().join("therapist-m.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap();
    let good = t.invite_card(&r.invite(), None).unwrap();
    let reason = |e: Error| match e {
        Error::InvalidCard { reason } => reason,
        other => panic!("{other:?}"),
    };

    // Truncated or mistyped: refused before any network call.
    let text = good.encode();
    let cut = &text[..text.len() - 3];
    assert_eq!(
        reason(by_card(dir.path(), "a.db", cut, "J.").await.unwrap_err()),
        "checksum_mismatch"
    );
    assert_eq!(
        reason(
            by_card(dir.path(), "a.db", "alcove:1:", "J.")
                .await
                .unwrap_err()
        ),
        "checksum_missing"
    );
    assert_eq!(
        reason(
            by_card(dir.path(), "a.db", "hello", "J.")
                .await
                .unwrap_err()
        ),
        "not_a_card"
    );

    // Expired.
    let expired = t.invite_card(&r.invite(), Some(1)).unwrap();
    assert_eq!(
        reason(
            by_card(dir.path(), "a.db", &expired.encode(), "J.")
                .await
                .unwrap_err()
        ),
        "expired"
    );

    // Tampered and re-checksummed: the identity in the card is Mallory's,
    // the relay serves the therapist's. Refused, nothing kept.
    // (Each bad card below carries its own token: registration comes
    // first and uses the token, so a forged card burns its invite.)
    let mut forged = t.invite_card(&r.invite(), None).unwrap();
    forged.therapist_identity_key = mallory.with_account(|a| Ok(a.identity_key())).unwrap();
    assert_eq!(
        by_card(dir.path(), "a.db", &forged.encode(), "J.")
            .await
            .unwrap_err(),
        Error::CardMismatch
    );
    // A card naming another relay trust root.
    let mut rooted = t.invite_card(&r.invite(), None).unwrap();
    rooted.trust_root = mallory.with_account(|a| Ok(a.identity_key())).unwrap();
    assert_eq!(
        by_card(dir.path(), "a.db", &rooted.encode(), "J.")
            .await
            .unwrap_err(),
        Error::CardMismatch
    );
    // A therapist the relay does not know.
    let mut ghost = t.invite_card(&r.invite(), None).unwrap();
    ghost.therapist_account = "0000dead-beef-4000-8000-000000000000".into();
    assert_eq!(
        by_card(dir.path(), "a.db", &ghost.encode(), "J.")
            .await
            .unwrap_err(),
        Error::CardMismatch
    );
    // A relay that is not there.
    let mut gone = t.invite_card(&r.invite(), None).unwrap();
    gone.relay_url = "http://127.0.0.1:9".into();
    assert!(matches!(
        by_card(dir.path(), "a.db", &gone.encode(), "J.")
            .await
            .unwrap_err(),
        Error::Network(_)
    ));
    // A name that is not one.
    for bad_name in ["", "   ", "a\u{7}b", &"x".repeat(65)] {
        assert!(matches!(
            by_card(dir.path(), "a.db", &good.encode(), bad_name)
                .await
                .unwrap_err(),
            Error::InvalidArgument(_)
        ));
    }
    only_relay_files(dir.path());
    // The untouched card still works afterwards.
    by_card(dir.path(), "a.db", &good.encode(), "J.")
        .await
        .unwrap();
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_therapist_mints_cards_and_a_client_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let invite =
        alcove_relay::create_role_invite(&r.db, alcove_relay::Role::Therapist, None).unwrap();
    let t = Client::enroll(
        &dir.path().join("therapist.db"),
        &DbKey::random(),
        &r.url(),
        &invite,
    )
    .await
    .unwrap();
    let before = alcove_core::InviteCard::parse(&t.invite_card("x", None).unwrap().encode())
        .unwrap()
        .expires_at;
    assert_eq!(before, None);
    let card = t.mint_invite_card(48).await.unwrap();
    // The relay's expiry travels on the card: about 48 hours from now.
    let expires = card.expires_at.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(expires > now + 47 * 3_600_000 && expires <= now + 49 * 3_600_000);
    let c = by_card(dir.path(), "client.db", &card.encode(), "J.")
        .await
        .unwrap();
    // A client's device may not mint: typed, from the relay.
    assert!(matches!(
        c.mint_invite_card(0).await,
        Err(Error::Relay { status: 403, ref code }) if code == "not_permitted"
    ));
    // Out-of-range expiry: typed.
    assert!(matches!(
        t.mint_invite_card(24 * 365).await,
        Err(Error::Relay { status: 400, .. })
    ));
    r.stop().await;
}
