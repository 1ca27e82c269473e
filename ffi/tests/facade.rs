//! The FFI facade from Rust: the same calls the Kotlin and Swift shells
//! make, against a real relay on loopback and real SQLCipher files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alcove_ffi::{
    generate_database_key, AlcoveClient, AlcoveError, AlcoveEvent, AlcoveListener, MessageStatus,
    NotificationPrivacy, PushKind,
};
use alcove_testkit::relay::Relay;
use alcove_testkit::unified_push::PushEndpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_text_sync_lock_unlock_and_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path()).await;
    let (db, url) = (relay.db.clone(), relay.url());
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (ka, kb) = (generate_database_key(), generate_database_key());
    assert_eq!(ka.len(), 32);
    assert_ne!(ka, kb);
    let a = AlcoveClient::enroll(
        path("a.db"),
        ka.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
        false,
        None,
    )
    .await
    .unwrap();
    let b = AlcoveClient::enroll(
        path("b.db"),
        kb.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
        false,
        None,
    )
    .await
    .unwrap();
    let reused = AlcoveClient::enroll(
        path("c.db"),
        generate_database_key(),
        url.clone(),
        "bogus".into(),
        false,
        None,
    )
    .await;
    assert!(matches!(reused, Err(AlcoveError::InvalidInvite)));

    b.pin_identity(a.account_id(), a.identity_key().unwrap())
        .unwrap();
    a.send_text(
        a.conversation_with(b.account_id()).unwrap(),
        "hello from a".into(),
    )
    .await
    .unwrap();
    b.set_notification_privacy(NotificationPrivacy::Hidden)
        .unwrap();
    let r = b.sync(5000).await.unwrap();
    assert_eq!(r.received, 1);
    assert_eq!(r.notifications[0].body, "New secure message");
    let msgs = b
        .messages(b.conversation_with(a.account_id()).unwrap(), None, 10)
        .unwrap();
    assert_eq!(msgs[0].body, "hello from a");
    assert_eq!(msgs[0].status, MessageStatus::Received);
    let sent = a
        .messages(a.conversation_with(b.account_id()).unwrap(), None, 10)
        .unwrap();
    assert_eq!(sent[0].status, MessageStatus::Sent);
    assert_eq!(
        a.safety_number(b.account_id()).unwrap().display,
        b.safety_number(a.account_id()).unwrap().display
    );

    // Lock drops the database; calls fail typed; unlock with a wrong key
    // fails typed; the right key restores everything.
    b.lock().unwrap();
    assert!(b.is_locked());
    assert!(matches!(b.conversations(), Err(AlcoveError::ClientLocked)));
    assert!(matches!(b.unlock(ka.clone()), Err(AlcoveError::WrongKey)));
    assert!(matches!(
        b.unlock(vec![1, 2, 3]),
        Err(AlcoveError::InvalidInput { .. })
    ));
    b.unlock(kb.clone()).unwrap();
    assert_eq!(b.conversations().unwrap().len(), 1);
    assert!(matches!(
        AlcoveClient::open(path("b.db"), ka.clone(), url.clone()),
        Err(AlcoveError::WrongKey)
    ));

    // A push while auto-locked: unlocked for the sync only, then locked
    // again; a wrong key changes nothing and leaves it locked.
    a.send_text(
        a.conversation_with(b.account_id()).unwrap(),
        "while locked".into(),
    )
    .await
    .unwrap();
    b.lock().unwrap();
    assert!(matches!(
        b.sync_unlocking(ka.clone(), 5000).await,
        Err(AlcoveError::WrongKey)
    ));
    assert!(b.is_locked());
    let r = b.sync_unlocking(kb.clone(), 5000).await.unwrap();
    assert_eq!(r.received, 1);
    assert_eq!(
        r.notifications[0],
        alcove_ffi::Notification {
            message_row: r.notifications[0].message_row,
            ..alcove_ffi::hidden_notification()
        }
    );
    assert!(b.is_locked());
    b.unlock(kb).unwrap();
    let with_a = b.conversation_with(a.account_id()).unwrap();
    assert_eq!(b.messages(with_a, None, 1).unwrap()[0].body, "while locked");
    assert_eq!(b.conversations().unwrap()[0].members, [a.account_id()]);
    relay.stop().await;
}

/// Records every event it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<AlcoveEvent>>);

impl AlcoveListener for Recorder {
    fn on_event(&self, event: AlcoveEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn take(&self) -> Vec<AlcoveEvent> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// A listener that fails on every event (as a throwing Kotlin lambda would).
struct Panicker;

impl AlcoveListener for Panicker {
    fn on_event(&self, _: AlcoveEvent) {
        panic!("listener bug");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_push_registration_and_identity_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path()).await;
    let (db, url) = (relay.db.clone(), relay.url());
    let enroll = |name: &str| {
        AlcoveClient::enroll(
            dir.path().join(name).display().to_string(),
            generate_database_key(),
            url.clone(),
            alcove_relay::create_invite(&db, None).unwrap(),
            false,
            None,
        )
    };
    let a = enroll("a.db").await.unwrap();
    let b = enroll("b.db").await.unwrap();
    let (a_id, b_id) = (a.account_id(), b.account_id());

    // Push registration: a malformed endpoint is refused typed; a real one
    // receives the content-free wake-up when mail arrives.
    assert!(matches!(
        a.register_push(PushKind::UnifiedPush, "not a url".into())
            .await,
        Err(AlcoveError::Relay { status: 400, .. })
    ));
    let mut wakes = PushEndpoint::start().await;
    a.register_push(PushKind::UnifiedPush, wakes.url.clone())
        .await
        .unwrap();

    let rec = Arc::new(Recorder::default());
    let handle = a.set_listener(rec.clone());
    // A failing listener is contained: the sync succeeds and the other
    // listener still hears everything.
    let _bad = a.set_listener(Arc::new(Panicker));
    b.send_text(b.conversation_with(a_id.clone()).unwrap(), "wake up".into())
        .await
        .unwrap();
    let wake = wakes.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(wake, b"wake");
    assert!(rec.take().is_empty(), "no events before the sync");
    assert_eq!(a.sync(5000).await.unwrap().received, 1);
    let row = a
        .messages(a.conversation_with(b_id.clone()).unwrap(), None, 1)
        .unwrap()[0]
        .row;
    assert_eq!(
        rec.take(),
        [AlcoveEvent::MessageReceived {
            conversation_id: a.conversation_with(b_id.clone()).unwrap(),
            message_row: row
        }]
    );

    // Cancelled: no more events, even though mail keeps coming.
    handle.cancel();
    handle.cancel();
    b.send_text(b.conversation_with(a_id.clone()).unwrap(), "second".into())
        .await
        .unwrap();
    assert_eq!(a.sync(5000).await.unwrap().received, 1);
    assert!(rec.take().is_empty());
    // Dropping the handle unregisters too.
    let rec2 = Arc::new(Recorder::default());
    drop(a.set_listener(rec2.clone()));
    b.send_text(b.conversation_with(a_id.clone()).unwrap(), "third".into())
        .await
        .unwrap();
    assert_eq!(a.sync(5000).await.unwrap().received, 1);
    assert!(rec2.take().is_empty());

    // Identity change: C's card for A carried a wrong key (B's). Sending is
    // a typed error, the listener hears it, the text waits; after
    // acceptance it goes.
    let c = enroll("c.db").await.unwrap();
    let rec_c = Arc::new(Recorder::default());
    let _h = c.set_listener(rec_c.clone());
    c.pin_identity(a_id.clone(), b.identity_key().unwrap())
        .unwrap();
    assert_eq!(
        c.send_text(c.conversation_with(a_id.clone()).unwrap(), "hello a".into())
            .await
            .unwrap_err(),
        AlcoveError::IdentityChanged {
            account_id: a_id.clone()
        }
    );
    let changed = AlcoveEvent::IdentityChanged {
        remote_account: a_id.clone(),
    };
    assert_eq!(rec_c.take(), std::slice::from_ref(&changed));
    assert_eq!(c.sync(5000).await.unwrap().sent, 0);
    assert_eq!(rec_c.take(), [changed]);
    c.accept_identity_change(a_id.clone()).unwrap();
    assert_eq!(c.sync(5000).await.unwrap().sent, 1);
    assert_eq!(a.sync(5000).await.unwrap().received, 1);

    // Locked: typed error, nothing sent to the relay; the registration
    // is kept for the next sync.
    a.lock().unwrap();
    assert!(matches!(
        a.register_push(PushKind::Fcm, "token".into()).await,
        Err(AlcoveError::ClientLocked)
    ));
    assert!(a.push_registration_pending());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_container_enrolment_has_a_plain_header_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let (db, url) = (relay.db.clone(), relay.url());
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (ka, kb) = (generate_database_key(), generate_database_key());
    // The iOS app's database (app group) and a peer on the default layout.
    let a = AlcoveClient::enroll(
        path("a.db"),
        ka.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
        true,
        None,
    )
    .await
    .unwrap();
    let b = AlcoveClient::enroll(
        path("b.db"),
        kb.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
        false,
        None,
    )
    .await
    .unwrap();
    let (a_id, b_id) = (a.account_id(), b.account_id());
    b.send_text(
        b.conversation_with(a_id.clone()).unwrap(),
        "to the app group".into(),
    )
    .await
    .unwrap();
    assert_eq!(a.sync(5000).await.unwrap().received, 1);
    a.send_text(
        a.conversation_with(b_id.clone()).unwrap(),
        "and back".into(),
    )
    .await
    .unwrap();
    assert_eq!(b.sync(5000).await.unwrap().received, 1);

    // Locked (as the app is before suspension), the file starts with
    // SQLite's header; b's does not. Unlocking needs no layout option.
    a.lock().unwrap();
    b.lock().unwrap();
    let head = |n: &str| std::fs::read(dir.path().join(n)).unwrap()[..16].to_vec();
    assert_eq!(head("a.db"), b"SQLite format 3\0");
    assert_ne!(head("b.db"), b"SQLite format 3\0");
    assert!(matches!(a.unlock(kb.clone()), Err(AlcoveError::WrongKey)));
    a.unlock(ka.clone()).unwrap();
    b.unlock(kb).unwrap();
    let msgs = a
        .messages(a.conversation_with(b_id).unwrap(), None, 10)
        .unwrap();
    let mut bodies: Vec<_> = msgs.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, ["and back", "to the app group"]);
    b.send_text(b.conversation_with(a_id).unwrap(), "after unlock".into())
        .await
        .unwrap();
    assert_eq!(a.sync(5000).await.unwrap().received, 1);

    // A second process (the NSE) opens the same file without an option.
    a.lock().unwrap();
    drop(a);
    let nse = AlcoveClient::open(path("a.db"), ka, url).unwrap();
    assert_eq!(nse.conversations().unwrap().len(), 1);
}
