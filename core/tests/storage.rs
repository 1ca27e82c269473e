//! The encrypted store: wrong key, tampering, leaks, migrations.

mod support;

use alcove_core::{Account, DbKey, Error, Received};
use support::*;

fn talk(dir: &std::path::Path, texts: &[&str]) -> (Peer, Peer) {
    let mut alice = Peer::create(dir, "alice");
    let mut bob = Peer::create(dir, "bob");
    alice
        .account
        .set_display_name(&bob.id(), "Dr. Imogen Featherstonehaugh")
        .unwrap();
    bob.account
        .set_display_name(&alice.id(), "Bartholomew Quimby-Rourke")
        .unwrap();
    let bundle = bob.bundle();
    alice.account.process_bundle(&bob.id(), &bundle).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let (from, to) = if i % 2 == 0 {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let out = from.account.send_text(&to.id(), text).unwrap();
        let got = to
            .account
            .receive(&[single_envelope(&from.account, &out)])
            .unwrap();
        assert!(matches!(&got[0].result, Ok(Received::Text(m)) if m.body == *text));
    }
    (alice, bob)
}

const SECRETS: &[&str] = &[
    "I have been feeling unsafe at home since March",
    "Let's talk about the panic attacks on Thursday",
    "My sister found the medication bottle",
    "Please call the crisis line if it gets worse tonight",
];

#[test]
fn database_files_hold_no_plaintext_and_no_names() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = talk(dir.path(), SECRETS);
    // Scan while open (WAL and SHM present) and after close.
    for phase in 0..2 {
        for peer in [&alice, &bob] {
            let bytes = db_bytes(&peer.path);
            assert!(bytes.len() > 4096);
            for needle in SECRETS.iter().copied().chain([
                "Imogen",
                "Featherstonehaugh",
                "Bartholomew",
                "Quimby",
            ]) {
                assert!(
                    !contains(&bytes, needle.as_bytes()),
                    "phase {phase}: found {needle:?}"
                );
            }
            assert!(
                !contains(&bytes, b"SQLite format 3"),
                "the header is encrypted too"
            );
        }
        if phase == 0 {
            for p in [&alice, &bob] {
                p.account.checkpoint().unwrap();
            }
        }
    }
    // Plain SQLite (no key) cannot read it.
    let plain = rusqlite::Connection::open(&alice.path).unwrap();
    let err = plain
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    );
}

#[test]
fn wrong_key_is_a_typed_error_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = talk(dir.path(), &SECRETS[..2]);
    let path = alice.path.clone();
    alice.account.close().unwrap();
    drop(bob);
    let before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    let err = Account::open(&path, &DbKey::random()).unwrap_err();
    assert_eq!(err, Error::WrongKey);
    let after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    assert_eq!(before, after, "no file created, changed or removed");
    // The right key still opens it, conversation intact.
    let acct = Account::open(&path, &alice.key).unwrap();
    assert_eq!(acct.conversations().unwrap().len(), 1);
}

#[test]
fn wrong_key_without_keycheck_file_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, _bob) = talk(dir.path(), &SECRETS[..1]);
    let path = alice.path.clone();
    alice.account.close().unwrap();
    let mut kc = path.as_os_str().to_owned();
    kc.push(".keycheck");
    std::fs::remove_file(&kc).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Account::open(&path, &DbKey::random()).unwrap_err();
    assert!(matches!(err, Error::Corrupt | Error::WrongKey), "{err:?}");
    assert_eq!(before, std::fs::read(&path).unwrap());
}

#[test]
fn flipped_byte_is_detected_by_page_hmac() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, _bob) = talk(dir.path(), SECRETS);
    let path = alice.path.clone();
    let key = alice.key.clone();
    alice.account.close().unwrap();
    let original = std::fs::read(&path).unwrap();
    let pages = original.len() / 4096;
    assert!(pages >= 3);
    // A byte in page 1 (past the salt) and one in a later page.
    for offset in [100, 4096 * (pages - 1) + 500] {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let result = Account::open(&path, &key).and_then(|a| {
            a.verify_integrity()?;
            Ok(a)
        });
        assert_eq!(result.unwrap_err(), Error::Corrupt, "flip at {offset}");
    }
    std::fs::write(&path, &original).unwrap();
    Account::open(&path, &key)
        .unwrap()
        .verify_integrity()
        .unwrap();
}

#[test]
fn migrates_from_every_earlier_schema_version() {
    for from in 1..alcove_core::testing::CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let key = DbKey::random();
        {
            // Build a database as an older Alcove left it: an account row
            // and a conversation.
            let conn = alcove_core::testing::create_at_version(&path, &key, from).unwrap();
            let ikp = libsignal_protocol::IdentityKeyPair::generate(&mut rand::rng());
            conn.execute(
                "INSERT INTO local_account VALUES (1, 'acct-old', 1, 42, ?1, 0)",
                [&ikp.serialize()[..]],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO conversations (remote_account, display_name, created_at) VALUES ('acct-peer', 'kept', 0)",
                [],
            )
            .unwrap();
            let v: u32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, from);
        }
        let mut acct = Account::open(&path, &key).unwrap();
        let v: u32 = acct
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, alcove_core::testing::CURRENT_VERSION);
        assert_eq!(acct.account_id(), "acct-old");
        assert_eq!(
            acct.conversations().unwrap()[0].display_name.as_deref(),
            Some("kept")
        );
        // The upgraded database works: it can make prekeys and keep a
        // contact's sealed-sender delivery key (v4).
        acct.initial_prekeys().unwrap();
        assert_eq!(acct.remote_delivery_key("acct-peer").unwrap(), None);
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let key = DbKey::random();
    let acct = Account::create(&path, &key, "acct-x", 1).unwrap();
    acct.connection()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    acct.close().unwrap();
    assert!(matches!(
        Account::open(&path, &key),
        Err(Error::SchemaTooNew { found: 999, .. })
    ));
}

#[test]
fn create_refuses_existing_account_and_bad_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let key = DbKey::random();
    Account::create(&path, &key, "acct-1", 1)
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(
        Account::create(&path, &key, "acct-1", 1).unwrap_err(),
        Error::AccountExists
    );
    let p2 = dir.path().join("b.db");
    assert!(matches!(
        Account::create(&p2, &key, "bad id!", 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Account::create(&p2, &key, "ok", 0),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        Account::open(&dir.path().join("none.db"), &key).unwrap_err(),
        Error::NoAccount
    );
}
