//! Encrypted backup and restore over a real relay and real SQLCipher
//! files: a backup restored on a fresh database brings back the identity
//! and the history; new sessions work both ways and the peer sees no
//! identity change; a wrong, mistyped or truncated code, a truncated or
//! changed file, another account's backup are typed errors that write
//! nothing; the file holds no plaintext and no key material in clear.

use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey, Error, SyncEvent};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_on_a_new_phone_keeps_identity_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Relay::start(d).await;
    let t = Client::enroll(&d.join("t.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    let c = Client::enroll(&d.join("c.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    c.send_text(to_t, "MARKER-one: the first week")
        .await
        .unwrap();
    t.sync(soon()).await.unwrap();
    let to_c = t.conversation_with(c.account_id()).unwrap();
    t.send_text(to_c, "MARKER-two: thank you").await.unwrap();
    c.sync(soon()).await.unwrap();
    let c_id = c.account_id().to_owned();
    let identity = c.with_account(|a| Ok(a.identity_key())).unwrap();

    let file = d.join("c.backup");
    let code = c.backup(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    for needle in [
        b"MARKER-one".as_slice(),
        c_id.as_bytes(),
        &identity[1..],
        b"SQLite format 3",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "readable in the backup"
        );
    }
    // The old phone is lost.
    drop(c);

    let target = d.join("new.db");
    let key = DbKey::random();
    let restore = |code: &str, file: &std::path::Path, expected: Option<&str>| {
        Client::restore(file, code, &target, &key, &r.url(), expected)
    };
    // A mistyped or truncated code, a code of another backup.
    let s = code.as_str();
    assert!(matches!(
        restore(&s[..s.len() - 3], &file, None),
        Err(Error::InvalidRecoveryCode)
    ));
    let other = Client::enroll(&d.join("o.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    let other_file = d.join("o.backup");
    let other_code = other.backup(&other_file).unwrap();
    assert!(matches!(
        restore(other_code.as_str(), &file, None),
        Err(Error::BackupWrongCode)
    ));
    // Another account's backup, when this one is expected.
    assert!(matches!(
        restore(other_code.as_str(), &other_file, Some(&c_id)),
        Err(Error::BackupWrongAccount)
    ));
    // A truncated file, a changed byte.
    let cut = d.join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    assert!(matches!(restore(s, &cut, None), Err(Error::BackupCorrupt)));
    let flipped = d.join("flipped.backup");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&flipped, &b).unwrap();
    assert!(matches!(
        restore(s, &flipped, None),
        Err(Error::BackupCorrupt)
    ));
    // None of that wrote anything.
    assert!(!target.exists());
    assert!(std::fs::read_dir(d).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("new.db")));

    // The real restore.
    let n = restore(s, &file, Some(&c_id)).unwrap();
    assert_eq!(n.account_id(), c_id);
    assert_eq!(n.with_account(|a| Ok(a.identity_key())).unwrap(), identity);
    let to_t = n.conversation_with(t.account_id()).unwrap();
    let bodies: Vec<String> = n
        .with_account(|a| a.messages(to_t, None, 10))
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        bodies,
        ["MARKER-two: thank you", "MARKER-one: the first week"]
    );
    let kinds: Vec<String> = n
        .with_account(|a| a.audit_entries(0, 100))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    // Restored, then unlocked by the new phone's first open.
    assert_eq!(kinds[kinds.len() - 2..], ["backup_restored", "unlocked"]);
    assert!(n.with_account(|a| a.verify_audit_log()).unwrap().intact());

    // New sessions, both ways, with no identity change for the therapist.
    n.send_text(to_t, "back on a new phone").await.unwrap();
    let report = t.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    assert!(!report
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::IdentityChanged { .. })));
    t.send_text(to_c, "welcome back").await.unwrap();
    let report = n.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    let last = n.with_account(|a| a.messages(to_t, None, 1)).unwrap();
    assert_eq!(last[0].body, "welcome back");

    // Restoring again over an existing database is refused.
    assert!(matches!(restore(s, &file, None), Err(Error::AccountExists)));
}
