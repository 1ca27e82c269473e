//! The encrypted store: wrong key, tampering, leaks, migrations.

mod support;

use alcove_core::{Account, DbKey, Error, Received, StorageLayout};
use support::*;

fn talk(dir: &std::path::Path, texts: &[&str]) -> (Peer, Peer) {
    talk_in(dir, texts, StorageLayout::Standard)
}

fn peer_in(dir: &std::path::Path, name: &str, layout: StorageLayout) -> Peer {
    let path = dir.join(format!("{name}.db"));
    let key = DbKey::random();
    let account_id = format!("acct-{}", uuid_like());
    let mut account = Account::create_in(&path, &key, &account_id, 1, layout).unwrap();
    let upload = account.initial_prekeys().unwrap();
    Peer {
        account,
        key,
        path,
        upload,
        bundles_served: 0,
    }
}

fn talk_in(dir: &std::path::Path, texts: &[&str], layout: StorageLayout) -> (Peer, Peer) {
    let mut alice = peer_in(dir, "alice", layout);
    let mut bob = peer_in(dir, "bob", layout);
    let with_bob = alice.account.conversation_with(&bob.id()).unwrap();
    alice
        .account
        .set_display_name(with_bob, "Dr. Imogen Featherstonehaugh")
        .unwrap();
    let with_alice = bob.account.conversation_with(&alice.id()).unwrap();
    bob.account
        .set_display_name(with_alice, "Bartholomew Quimby-Rourke")
        .unwrap();
    let bundle = bob.bundle();
    alice.account.process_bundle(&bob.id(), &bundle).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let (from, to) = if i % 2 == 0 {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let out = from.account.encrypt_text(&to.id(), text).unwrap();
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
            // Build a database as an older Alcove left it: an account row,
            // two conversations with messages both ways, and (from v3, when
            // the outbox came) a queued text and a queued receipt.
            let conn = alcove_core::testing::create_at_version(&path, &key, from).unwrap();
            let ikp = libsignal_protocol::IdentityKeyPair::generate(&mut rand::rng());
            conn.execute(
                "INSERT INTO local_account VALUES (1, 'acct-old', 1, 42, ?1, 0)",
                [&ikp.serialize()[..]],
            )
            .unwrap();
            if from < 5 {
                conn.execute_batch(
                    "INSERT INTO conversations (id, remote_account, display_name, created_at) VALUES (7, 'acct-peer', 'kept', 0);
                     INSERT INTO conversations (id, remote_account, created_at) VALUES (9, 'acct-other', 0);
                     INSERT INTO messages (conversation_id, message_id, outgoing, sender_device, body, sent_at, received_at, status)
                        VALUES (7, x'01', 0, 2, 'from peer', 1, 1, 10),
                               (7, x'02', 1, 1, 'to peer', 2, 2, 0),
                               (9, x'03', 0, 1, 'from other', 3, 3, 10);",
                )
                .unwrap();
            } else {
                // v5 had conversations by id with members, senders named.
                conn.execute_batch(
                    "INSERT INTO conversations (id, direct_peer, display_name, created_at)
                        VALUES (7, 'acct-peer', 'kept', 0), (9, 'acct-other', NULL, 0),
                               (11, 'acct-stranger', NULL, 0);
                     INSERT INTO conversation_members VALUES (7, 'acct-peer'), (9, 'acct-other'),
                               (11, 'acct-stranger');
                     INSERT INTO messages (conversation_id, sender_account, message_id, outgoing, sender_device, body, sent_at, received_at, status)
                        VALUES (7, 'acct-peer', x'01', 0, 2, 'from peer', 1, 1, 10),
                               (7, NULL, x'02', 1, 1, 'to peer', 2, 2, 0),
                               (9, 'acct-other', x'03', 0, 1, 'from other', 3, 3, 10);
                     INSERT INTO outbox (conversation_id, recipient, guid, content, message_row, created_at)
                        VALUES (7, 'acct-peer', x'00112233445566778899aabbccddeeff', x'aa', 2, 5),
                               (11, 'acct-stranger', x'ffeeddccbbaa99887766554433221100', x'bb', NULL, 6);",
                )
                .unwrap();
            }
            if (3..5).contains(&from) {
                conn.execute_batch(
                    "INSERT INTO outbox (recipient, guid, content, message_row, created_at)
                        VALUES ('acct-peer', x'00112233445566778899aabbccddeeff', x'aa', 2, 5),
                               ('acct-stranger', x'ffeeddccbbaa99887766554433221100', x'bb', NULL, 6);",
                )
                .unwrap();
            }
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
        // v5: conversations keep their ids and gain members; messages
        // name their senders; outbox items their conversations.
        let peer = acct.find_conversation_with("acct-peer").unwrap().unwrap();
        assert_eq!(peer, alcove_core::ConversationId::new(7));
        assert_eq!(acct.members(peer).unwrap(), ["acct-peer"]);
        let convs = acct.conversations().unwrap();
        let kept = convs.iter().find(|c| c.id == peer).unwrap();
        assert_eq!(kept.display_name.as_deref(), Some("kept"));
        assert_eq!(kept.members, ["acct-peer"]);
        let msgs = acct.messages(peer, None, 10).unwrap();
        let senders: Vec<_> = msgs
            .iter()
            .map(|m| (m.body.as_str(), m.sender.as_deref()))
            .collect();
        assert_eq!(
            senders,
            [("to peer", None), ("from peer", Some("acct-peer"))]
        );
        // v6: every earlier message is a text, not a local notice.
        assert!(msgs
            .iter()
            .all(|m| m.kind == alcove_core::MessageKind::Text));
        let other = acct.find_conversation_with("acct-other").unwrap().unwrap();
        assert_eq!(
            acct.messages(other, None, 10).unwrap()[0].sender.as_deref(),
            Some("acct-other")
        );
        if from >= 3 {
            let items = acct.outbox_items(10).unwrap();
            assert_eq!(items.len(), 2);
            assert_eq!(
                (items[0].conversation, items[0].message_row),
                (peer, Some(2))
            );
            // A receipt queued for someone we had no conversation with
            // gets one, so every item has a conversation.
            let stranger = acct
                .find_conversation_with("acct-stranger")
                .unwrap()
                .unwrap();
            assert_eq!(items[1].conversation, stranger);
        }
        // The direct conversation stays unique per peer, and new ones work.
        assert_eq!(acct.conversation_with("acct-peer").unwrap(), peer);
        let fresh = acct.conversation_with("acct-new").unwrap();
        assert_eq!(acct.members(fresh).unwrap(), ["acct-new"]);
        acct.verify_integrity().unwrap();
        let dangling: i64 = acct
            .connection()
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(dangling, 0);
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

// ---- SharedContainer: a 32-byte plaintext header for iOS app groups ----

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn keycheck_of(path: &std::path::Path) -> std::path::PathBuf {
    let mut kc = path.as_os_str().to_owned();
    kc.push(".keycheck");
    kc.into()
}

fn dir_snapshot(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn shared_container_has_a_plain_sqlite_header_and_nothing_else_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = talk_in(dir.path(), SECRETS, StorageLayout::SharedContainer);
    for phase in 0..2 {
        for peer in [&alice, &bob] {
            let main = std::fs::read(&peer.path).unwrap();
            assert_eq!(&main[..16], SQLITE_MAGIC, "phase {phase}");
            // Bytes 16..32 are SQLite's own header: page size 4096, and
            // read/write versions 2 = WAL, which is what iOS looks for.
            assert_eq!(u16::from_be_bytes([main[16], main[17]]), 4096);
            assert_eq!((main[18], main[19]), (2, 2), "WAL mode in the header");
            // The rest of page 1 is ciphertext: the schema's table names
            // (plain in an ordinary SQLite page 1) are not there.
            assert!(!contains(&main[..4096], b"CREATE TABLE"));
            let bytes = db_bytes(&peer.path);
            for needle in SECRETS.iter().copied().chain([
                "Imogen",
                "Featherstonehaugh",
                "Bartholomew",
                "Quimby",
                "local_account",
            ]) {
                assert!(
                    !contains(&bytes, needle.as_bytes()),
                    "phase {phase}: found {needle:?}"
                );
            }
        }
        if phase == 0 {
            for p in [&alice, &bob] {
                p.account.checkpoint().unwrap();
            }
        }
    }
    // Sidecar version 2 with the plaintext-header flag.
    let kc = std::fs::read(keycheck_of(&alice.path)).unwrap();
    assert_eq!((kc.len(), kc[0], kc[1]), (66, 2, 1));
    // The salt is not in the file, so plain SQLite sees a header but
    // cannot read the schema.
    let plain = rusqlite::Connection::open(&alice.path).unwrap();
    assert!(plain
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_err());
}

#[test]
fn shared_container_reopens_without_options_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = talk_in(dir.path(), SECRETS, StorageLayout::SharedContainer);
    let (alice, bob) = (alice.reopen(), bob.reopen());
    for peer in [&alice, &bob] {
        let convs = peer.account.conversations().unwrap();
        assert_eq!(convs.len(), 1);
        let msgs = peer.account.messages(convs[0].id, None, 100).unwrap();
        let mut bodies: Vec<_> = msgs.iter().map(|m| m.body.clone()).collect();
        bodies.sort();
        let mut want: Vec<_> = SECRETS.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(bodies, want);
        peer.account.verify_integrity().unwrap();
    }
    assert_eq!(
        alice.account.conversations().unwrap()[0]
            .display_name
            .as_deref(),
        Some("Dr. Imogen Featherstonehaugh")
    );
    // And the layout survives the reopen.
    let path = alice.path.clone();
    alice.account.close().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[..16], SQLITE_MAGIC);
}

#[test]
fn shared_container_wrong_key_is_a_typed_error_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = talk_in(dir.path(), &SECRETS[..2], StorageLayout::SharedContainer);
    let path = alice.path.clone();
    let key = alice.key.clone();
    alice.account.close().unwrap();
    bob.account.close().unwrap();
    let before = dir_snapshot(dir.path());
    assert_eq!(
        Account::open(&path, &DbKey::random()).unwrap_err(),
        Error::WrongKey
    );
    assert_eq!(
        before,
        dir_snapshot(dir.path()),
        "every file byte-identical"
    );
    assert_eq!(
        Account::open(&path, &key)
            .unwrap()
            .conversations()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn shared_container_flipped_byte_is_detected_by_page_hmac() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, _bob) = talk_in(dir.path(), SECRETS, StorageLayout::SharedContainer);
    let path = alice.path.clone();
    let key = alice.key.clone();
    alice.account.close().unwrap();
    let original = std::fs::read(&path).unwrap();
    let pages = original.len() / 4096;
    assert!(pages >= 3);
    // A byte in page 1 past the 32-byte plain header, and one in a later page.
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
fn shared_container_tampered_or_lost_salt_never_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, _bob) = talk_in(dir.path(), &SECRETS[..1], StorageLayout::SharedContainer);
    let path = alice.path.clone();
    let key = alice.key.clone();
    alice.account.close().unwrap();
    let kc_path = keycheck_of(&path);
    let kc = std::fs::read(&kc_path).unwrap();
    let db_before = std::fs::read(&path).unwrap();
    // The tag covers the salt, and a changed salt cannot be told from a
    // wrong key by the tag alone: WrongKey, before SQLCipher sees the file.
    let mut bad = kc.clone();
    bad[2] ^= 0x01;
    std::fs::write(&kc_path, &bad).unwrap();
    assert_eq!(Account::open(&path, &key).unwrap_err(), Error::WrongKey);
    // Clearing the plaintext-header flag is refused the same way.
    let mut bad = kc.clone();
    bad[1] = 0;
    std::fs::write(&kc_path, &bad).unwrap();
    assert_eq!(Account::open(&path, &key).unwrap_err(), Error::WrongKey);
    // Unknown flags or a truncated sidecar are Corrupt.
    let mut bad = kc.clone();
    bad[1] = 0x81;
    std::fs::write(&kc_path, &bad).unwrap();
    assert_eq!(Account::open(&path, &key).unwrap_err(), Error::Corrupt);
    std::fs::write(&kc_path, &kc[..40]).unwrap();
    assert_eq!(Account::open(&path, &key).unwrap_err(), Error::Corrupt);
    // Without its sidecar the salt is gone: Corrupt, not a new database.
    std::fs::remove_file(&kc_path).unwrap();
    assert_eq!(Account::open(&path, &key).unwrap_err(), Error::Corrupt);
    assert!(!kc_path.exists());
    assert_eq!(
        db_before,
        std::fs::read(&path).unwrap(),
        "database untouched"
    );
    // The real sidecar back: it opens.
    std::fs::write(&kc_path, &kc).unwrap();
    assert_eq!(
        Account::open(&path, &key)
            .unwrap()
            .conversations()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn shared_container_migrates_from_an_earlier_schema_version() {
    let from = alcove_core::testing::CURRENT_VERSION - 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let key = DbKey::random();
    {
        let conn = alcove_core::testing::create_at_version_with(
            &path,
            &key,
            from,
            StorageLayout::SharedContainer,
        )
        .unwrap();
        let ikp = libsignal_protocol::IdentityKeyPair::generate(&mut rand::rng());
        conn.execute(
            "INSERT INTO local_account VALUES (1, 'acct-old', 1, 42, ?1, 0)",
            [&ikp.serialize()[..]],
        )
        .unwrap();
    }
    assert_eq!(&std::fs::read(&path).unwrap()[..16], SQLITE_MAGIC);
    let mut acct = Account::open(&path, &key).unwrap();
    let v: u32 = acct
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, alcove_core::testing::CURRENT_VERSION);
    assert_eq!(acct.account_id(), "acct-old");
    acct.initial_prekeys().unwrap();
    acct.close().unwrap();
    assert_eq!(&std::fs::read(&path).unwrap()[..16], SQLITE_MAGIC);
}

#[test]
fn standard_layout_keeps_a_version_1_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = DbKey::random();
    Account::create(&path, &key, "acct-s", 1)
        .unwrap()
        .close()
        .unwrap();
    let kc = std::fs::read(keycheck_of(&path)).unwrap();
    assert_eq!((kc.len(), kc[0]), (49, 1));
    assert_ne!(&std::fs::read(&path).unwrap()[..16], SQLITE_MAGIC);
    Account::open(&path, &key).unwrap();
}
