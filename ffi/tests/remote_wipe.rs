//! Remote wipe through the FFI: the shells see `AlcoveEvent::DeviceRevoked`
//! (before the call's error returns) and `AlcoveError::DeviceRevoked`,
//! typed, against a real relay on loopback and real SQLCipher files.

use std::sync::{Arc, Mutex};

use alcove_ffi::{generate_database_key, AlcoveClient, AlcoveError, AlcoveEvent, AlcoveListener};
use alcove_testkit::relay::Relay;

#[derive(Default)]
struct Recorder(Mutex<Vec<AlcoveEvent>>);

impl AlcoveListener for Recorder {
    fn on_event(&self, event: AlcoveEvent) {
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_revoked_crosses_the_ffi_typed_and_the_files_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path()).await;
    let (db, url) = (relay.db.clone(), relay.url());
    let path = |n: &str| dir.path().join(n).display().to_string();
    let enroll = |name: &str, key: Vec<u8>| {
        AlcoveClient::enroll(
            path(name),
            key,
            url.clone(),
            alcove_relay::create_invite(&db, None).unwrap(),
            false,
            None,
        )
    };
    let (ka, kb) = (generate_database_key(), generate_database_key());
    let a = enroll("a.db", ka.clone()).await.unwrap();
    let b = enroll("b.db", kb.clone()).await.unwrap();
    let c = enroll("c.db", generate_database_key()).await.unwrap();
    let heard = Arc::new(Recorder::default());
    let _handle = b.set_listener(heard.clone());
    let heard_c = Arc::new(Recorder::default());
    let _handle_c = c.set_listener(heard_c.clone());

    alcove_relay::revoke_device(&db, &b.account_id(), 1).unwrap();
    alcove_relay::revoke_device(&db, &c.account_id(), 1).unwrap();
    assert!(!b.is_revoked());
    assert_eq!(
        b.sync_unlocking(kb.clone(), 5_000).await.unwrap_err(),
        AlcoveError::DeviceRevoked
    );
    // The listener heard it by the time the error returned.
    assert_eq!(*heard.0.lock().unwrap(), vec![AlcoveEvent::DeviceRevoked]);
    assert!(b.is_revoked());
    assert!(!std::path::Path::new(&path("b.db")).exists());
    assert_eq!(b.sync(5_000).await.unwrap_err(), AlcoveError::DeviceRevoked);
    assert_eq!(b.conversations().unwrap_err(), AlcoveError::DeviceRevoked);
    assert!(matches!(
        AlcoveClient::open(path("b.db"), kb, url.clone()),
        Err(AlcoveError::NoAccount)
    ));
    assert_eq!(heard.0.lock().unwrap().len(), 1);

    // A call that reports no events of its own still tells the listener.
    assert_eq!(
        c.register_push(alcove_ffi::PushKind::Fcm, "f".repeat(64))
            .await
            .unwrap_err(),
        AlcoveError::DeviceRevoked
    );
    assert_eq!(*heard_c.0.lock().unwrap(), vec![AlcoveEvent::DeviceRevoked]);

    // The other account carries on.
    a.sync(5_000).await.unwrap();
    assert!(!a.is_revoked());
    relay.stop().await;
}
