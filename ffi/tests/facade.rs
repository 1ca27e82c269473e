//! The FFI facade from Rust: the same calls the Kotlin and Swift shells
//! make, against a real relay on loopback and real SQLCipher files.

use alcove_ffi::{generate_database_key, AlcoveClient, AlcoveError, NotificationPrivacy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_text_sync_lock_unlock_and_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let relay = alcove_relay::start(
        alcove_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), db.clone()),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let url = format!("http://{}", relay.local_addr());
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (ka, kb) = (generate_database_key(), generate_database_key());
    assert_eq!(ka.len(), 32);
    assert_ne!(ka, kb);
    let a = AlcoveClient::enroll(
        path("a.db"),
        ka.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
    )
    .await
    .unwrap();
    let b = AlcoveClient::enroll(
        path("b.db"),
        kb.clone(),
        url.clone(),
        alcove_relay::create_invite(&db, None).unwrap(),
    )
    .await
    .unwrap();
    let reused = AlcoveClient::enroll(
        path("c.db"),
        generate_database_key(),
        url.clone(),
        "bogus".into(),
    )
    .await;
    assert!(matches!(reused, Err(AlcoveError::InvalidInvite)));

    b.pin_identity(a.account_id().unwrap(), a.identity_key().unwrap())
        .unwrap();
    a.send_text(b.account_id().unwrap(), "hello from a".into())
        .await
        .unwrap();
    b.set_notification_privacy(NotificationPrivacy::Hidden)
        .unwrap();
    let r = b.sync(5000).await.unwrap();
    assert_eq!(r.received, 1);
    assert_eq!(r.notifications[0].body, "New secure message");
    let msgs = b.messages(a.account_id().unwrap(), None, 10).unwrap();
    assert_eq!(msgs[0].body, "hello from a");
    assert_eq!(
        a.safety_number(b.account_id().unwrap()).unwrap().display,
        b.safety_number(a.account_id().unwrap()).unwrap().display
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
        AlcoveClient::open(path("b.db"), ka, url.clone()),
        Err(AlcoveError::WrongKey)
    ));
    relay.shutdown().await;
}
