//! The practice admin's `alcove relay revoke ACCOUNT --device N` against a
//! relay's real database, and what the revoked phone does next: the typed
//! error, the event, its files gone; everyone else untouched.

mod common;

use std::process::{Command, Output};

use alcove_core::{Client, Error, SyncEvent};
use common::*;

fn revoke(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(ALCOVE_BIN)
        .args(["relay", "revoke", "--db"])
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_revokes_a_lost_phone_and_it_wipes_itself_on_its_next_contact() {
    let dir = tempfile::tempdir().unwrap();
    // The admin's command and the relay are separate processes on one
    // SQLite file, as in a practice.
    let db = dir.path().join("relay.db");
    let relay = RelayProcess::spawn(
        ALCOVE_BIN,
        [
            std::ffi::OsStr::new("--bind"),
            "127.0.0.1:0".as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
        ],
        db.clone(),
        "warn",
    );
    let a = relay.enroll(dir.path(), "a").await;
    let b = relay.enroll(dir.path(), "b").await;
    let with_b = a.client.conversation_with(b.client.account_id()).unwrap();
    assert!(a.client.send_text(with_b, "hello").await.unwrap().sent);
    let b_account = b.client.account_id().to_owned();

    // Hostile input: unknown accounts and devices, bad ids, junk; each
    // refused, nothing revoked, no account id echoed.
    let long = "a".repeat(10_000);
    let a_account = a.client.account_id().to_owned();
    let (bid, aid) = (b_account.as_str(), a_account.as_str());
    for bad in [
        &["no-such-account", "--device", "1"][..],
        &[bid, "--device", "2"],
        &[bid, "--device", "0"],
        &[bid, "--device", "-1"],
        &[bid, "--device", "one"],
        &[bid, "--device", "4294967296"],
        &[bid],
        &["../../etc/passwd", "--device", "1"],
        &[long.as_str(), "--device", "1"],
        &[aid, "--device", "2"],
    ] {
        let out = revoke(&relay.db, bad);
        assert!(!out.status.success(), "{:?}", &bad[1..]);
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&b_account));
    }
    assert_eq!(b.client.sync(soon(5)).await.unwrap().received, 1);

    let out = revoke(&relay.db, &[bid, "--device", "1"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("device 1 revoked") && !said.contains(&b_account));
    // Replayed: the device is gone, so the second one is refused.
    assert!(!revoke(&relay.db, &[bid, "--device", "1"]).status.success());

    // Its next contact: typed error, the event, and no file left.
    assert_eq!(
        b.client.sync(soon(5)).await.unwrap_err(),
        Error::DeviceRevoked
    );
    assert_eq!(b.client.take_events(), vec![SyncEvent::DeviceRevoked]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("b.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        Client::open(&b.path, &b.key, &relay.url).unwrap_err(),
        Error::NoAccount
    );
    // The key file is the shell's to delete (the Keystore / Keychain).
    assert!(b.key_file.exists());

    // The sync tool on the wiped path fails without re-creating anything.
    let out = Command::new(ALCOVE_BIN)
        .args(["sync", "--db"])
        .arg(&b.path)
        .arg("--key-file")
        .arg(&b.key_file)
        .args(["--relay", &relay.url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!b.path.exists());

    // The other account is untouched, at the relay and on disk.
    a.client.sync(soon(5)).await.unwrap();
    drop(a.client);
    let a2 = Client::open(&a.path, &a.key, &relay.url).unwrap();
    assert_eq!(
        a2.with_account(|x| x.messages(with_b, None, 10))
            .unwrap()
            .len(),
        1
    );
    a2.sync(soon(5)).await.unwrap();
}
