//! Lock, unlock for the length of a push, and the pending push token, all
//! decided in the core: against a real relay on loopback and real
//! SQLCipher files.

use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey, Error, SyncEvent, HIDDEN_BODY, HIDDEN_TITLE};
use alcove_testkit::relay::Relay;
use alcove_testkit::unified_push::PushEndpoint;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

async fn enroll(r: &Relay, dir: &std::path::Path, name: &str, key: &DbKey) -> Client {
    Client::enroll(&dir.join(name), key, &r.url(), &r.invite())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_drops_the_database_and_unlock_needs_the_right_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (ka, kb) = (DbKey::random(), DbKey::random());
    let a = enroll(&r, dir.path(), "a.db", &ka).await;
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let with_b = a.conversation_with(b.account_id()).unwrap();
    assert!(a.send_text(with_b, "before lock").await.unwrap().sent);

    a.lock().unwrap();
    a.lock().unwrap(); // idempotent
    assert!(a.is_locked());
    assert_eq!(a.with_account(|x| x.outbox_len()), Err(Error::ClientLocked));
    assert_eq!(
        a.send_text(with_b, "while locked").await,
        Err(Error::ClientLocked)
    );
    assert_eq!(a.sync(soon()).await.unwrap_err(), Error::ClientLocked);
    // A wrong key, or another account's key, leaves it locked.
    assert_eq!(a.unlock(&kb), Err(Error::WrongKey));
    assert!(a.is_locked());
    a.unlock(&ka).unwrap();
    assert!(!a.is_locked());
    let msgs = a.with_account(|x| x.messages(with_b, None, 10)).unwrap();
    assert_eq!(msgs.len(), 1);
    // Unlocking an unlocked client only checks the key.
    assert_eq!(a.unlock(&kb), Err(Error::WrongKey));
    assert!(!a.is_locked());
    assert!(a.send_text(with_b, "after unlock").await.unwrap().sent);
    assert_eq!(b.sync(soon()).await.unwrap().received, 2);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_unlocks_for_its_sync_only_and_overlapping_pushes_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (ka, kb) = (DbKey::random(), DbKey::random());
    let a = enroll(&r, dir.path(), "a.db", &ka).await;
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let to_b = a.conversation_with(b.account_id()).unwrap();
    for i in 0..3 {
        a.send_text(to_b, &format!("m{i}")).await.unwrap();
    }
    b.lock().unwrap();
    // A wrong key: a typed error, still locked, nothing taken.
    assert_eq!(
        b.sync_unlocking(&ka, soon()).await.unwrap_err(),
        Error::WrongKey
    );
    assert!(b.is_locked());
    let report = b.sync_unlocking(&kb, soon()).await.unwrap();
    assert_eq!(report.received, 3);
    // Hidden by default, whatever the content.
    assert!(report
        .notifications
        .iter()
        .all(|n| n.title == HIDDEN_TITLE && n.body == HIDDEN_BODY));
    assert!(b.is_locked(), "locked again after the push");

    // Two pushes at once: both sync (the lease serialises them), and the
    // client is locked only when the last one is done.
    a.send_text(to_b, "m3").await.unwrap();
    let (x, y) = tokio::join!(b.sync_unlocking(&kb, soon()), b.sync_unlocking(&kb, soon()));
    assert_eq!(x.unwrap().received + y.unwrap().received, 1);
    assert!(b.is_locked());

    // The app's own unlock outlasts a push: an unlocked client stays
    // unlocked after one.
    b.unlock(&kb).unwrap();
    a.send_text(to_b, "m4").await.unwrap();
    assert_eq!(b.sync_unlocking(&kb, soon()).await.unwrap().received, 1);
    assert!(!b.is_locked());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_token_the_relay_missed_is_retried_by_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (ka, kb) = (DbKey::random(), DbKey::random());
    let a = enroll(&r, dir.path(), "a.db", &ka).await;
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let mut wakes = PushEndpoint::start().await;

    // The relay is down when the platform hands us a token: kept.
    r.stop().await;
    assert!(matches!(
        b.register_push(wakes.registration()).await,
        Err(Error::Network(_))
    ));
    assert!(b.push_registration_pending());
    // Locked, it stays pending too (the relay secret is gone with the key).
    b.lock().unwrap();
    assert_eq!(
        b.register_push(wakes.registration()).await,
        Err(Error::ClientLocked)
    );
    assert!(b.push_registration_pending());

    // Back up: the next sync registers it before draining.
    r.restart().await;
    b.sync_unlocking(&kb, soon()).await.unwrap();
    assert!(!b.push_registration_pending());
    let to_b = a.conversation_with(b.account_id()).unwrap();
    a.send_text(to_b, "wake").await.unwrap();
    assert_eq!(
        wakes.next(Duration::from_secs(10)).await.as_deref(),
        Some(&b"wake"[..]),
        "the relay now wakes the device"
    );

    // A token for a locked client registers with the key, for that call.
    let mut other = PushEndpoint::start().await;
    b.register_push_unlocking(&kb, other.registration())
        .await
        .unwrap();
    assert!(b.is_locked());
    a.send_text(to_b, "again").await.unwrap();
    assert!(other.next(Duration::from_secs(10)).await.is_some());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_held_by_an_identity_change_keeps_the_event_for_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db", &DbKey::random()).await;
    let b = enroll(&r, dir.path(), "b.db", &DbKey::random()).await;
    let m = enroll(&r, dir.path(), "m.db", &DbKey::random()).await;
    let wrong = m.with_account(|x| Ok(x.identity_key())).unwrap();
    a.with_account(|x| x.pin_identity(b.account_id(), &wrong))
        .unwrap();
    assert!(a.take_events().is_empty());
    let to_b = a.conversation_with(b.account_id()).unwrap();
    assert!(matches!(
        a.send_text(to_b, "held").await,
        Err(Error::IdentityChanged { .. })
    ));
    let changed = SyncEvent::IdentityChanged {
        remote_account: b.account_id().to_owned(),
    };
    assert_eq!(a.take_events(), [changed]);
    assert!(a.take_events().is_empty(), "taken once");
    r.stop().await;
}
