//! Sealed sender end to end: the `alcove relay` process (debug-level logs
//! captured), two real clients enrolled by invite, a conversation in both
//! directions that turns sealed after the first exchange, some mail still
//! queued when the relay's files are scanned. The relay's database files
//! and logs must not tie any envelope to its sender.

mod common;

use std::path::Path;
use std::process::Command;

use alcove_core::proto::wire::{envelope, Envelope};
use alcove_core::proto::Message;
use common::{
    contains, count, file_bytes, soon, texts, Device, EnrollOn, RelayProcess, ALCOVE_BIN as ALCOVE,
};

/// `alcove relay` with `ALCOVE_LOG=debug`, so its log can be scanned.
fn start_relay(dir: &Path) -> RelayProcess {
    let db = dir.join("relay.db");
    RelayProcess::spawn(
        ALCOVE,
        [
            std::ffi::OsStr::new("--bind"),
            std::ffi::OsStr::new("127.0.0.1:0"),
            std::ffi::OsStr::new("--db"),
            db.as_os_str(),
        ],
        db.clone(),
        "debug",
    )
}

/// Every envelope queued for `accounts` (device 1), as stored in the
/// relay's database file.
async fn queued_at(relay: &RelayProcess, accounts: &[&str]) -> Vec<Envelope> {
    use alcove_relay::Storage;
    let storage = alcove_relay::SqliteStorage::open(&relay.db).unwrap();
    let mut out = Vec::new();
    for a in accounts {
        out.extend(storage.fetch(a, 1, 1000, 0).await.unwrap().0);
    }
    out
}

/// The relay deletes acked mail off the request path (within
/// `ack_delete_ms`, 200 ms) and scrubs it from the WAL within
/// `wal_scrub_ms` (1 s) after that: waits for `done` within 5 s, well
/// past that bound plus a delete and a checkpoint.
async fn within_the_delete_bound(mut done: impl AsyncFnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn say(from: &Device, to: &Device, text: &str) {
    let r = from
        .client
        .send_text(
            from.client
                .conversation_with(to.client.account_id())
                .unwrap(),
            text,
        )
        .await
        .unwrap();
    assert!(r.sent, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_learns_no_senders() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path());
    let t = relay.enroll(dir.path(), "therapist").await;
    let c = relay.enroll(dir.path(), "client").await;
    let t_id = t.client.account_id().to_owned();
    let c_id = c.client.account_id().to_owned();
    // Both pinned the relay's trust root at enrolment: the one the
    // operator's `alcove relay keys` prints.
    let pinned = t.client.with_account(|a| a.trust_root()).unwrap().unwrap();
    assert_eq!(
        c.client.with_account(|a| a.trust_root()).unwrap(),
        Some(pinned.clone())
    );
    let printed = Command::new(ALCOVE)
        .args(["relay", "keys", "--db"])
        .arg(&relay.db)
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap().trim(),
        hex::encode(&pinned)
    );
    // What each account's credentials look like on the wire: its
    // "<account>.<device>" user name and hex secret.
    let secrets: Vec<String> = [&t, &c]
        .iter()
        .map(|d| {
            hex::encode(
                &d.client
                    .with_account(|a| a.relay_credentials())
                    .unwrap()
                    .secret[..],
            )
        })
        .collect();
    let before = file_bytes(&relay.db);
    let (t_before, c_before) = (
        count(&before, t_id.as_bytes()),
        count(&before, c_id.as_bytes()),
    );
    assert!(t_before > 0 && c_before > 0, "accounts are registered");

    // 1. The client writes first: it has no delivery key for the therapist
    //    yet, so this one goes with credentials, and the relay sees it.
    say(&c, &t, "first message, signed").await;
    let queued = queued_at(&relay, &[&t_id, &c_id]).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].source_account, c_id,
        "unsealed: the relay sees it"
    );
    let unsealed_ct = queued[0].ciphertext[..48].to_vec();
    assert!(contains(&file_bytes(&relay.db), &unsealed_ct));
    assert_eq!(c.client.sealed_sends(), 0);

    // 2. The therapist reads it (and the client's delivery key inside):
    //    once acked, nothing of that envelope is left on disk.
    assert_eq!(t.client.sync(soon(10)).await.unwrap().received, 1);
    within_the_delete_bound(
        async || !contains(&file_bytes(&relay.db), &unsealed_ct),
        "the delivered unsealed envelope left bytes behind",
    )
    .await;

    // 3. From here on both directions are sealed.
    for i in 0..3 {
        say(&t, &c, &format!("therapist {i}")).await;
    }
    assert_eq!(t.client.sealed_sends(), 3);
    assert_eq!(c.client.sync(soon(10)).await.unwrap().received, 3);
    for i in 0..3 {
        say(&c, &t, &format!("client {i}")).await;
    }
    assert_eq!(c.client.sealed_sends(), 3);
    assert_eq!(t.client.sync(soon(10)).await.unwrap().received, 3);
    // 4. Mail left queued at the relay when it is scanned.
    say(&t, &c, "queued for the client").await;
    say(&t, &c, "queued for the client, 2").await;
    say(&c, &t, "queued for the therapist").await;
    assert_eq!((t.client.sealed_sends(), c.client.sealed_sends()), (5, 4));

    // What was acked is deleted within the bound; the three stay.
    within_the_delete_bound(
        async || queued_at(&relay, &[&t_id, &c_id]).await.len() == 3,
        "acked mail still queued past the delete bound",
    )
    .await;
    let queued = queued_at(&relay, &[&t_id, &c_id]).await;
    assert_eq!(queued.len(), 3);
    for env in &queued {
        assert_eq!(env.r#type, envelope::Type::SealedSender as i32);
        assert_eq!(env.source_account, "");
        assert_eq!(env.source_device, 0);
        for id in [&t_id, &c_id] {
            assert!(!contains(&env.encode_to_vec(), id.as_bytes()));
        }
    }
    let after = file_bytes(&relay.db);
    eprintln!(
        "account id occurrences in the relay's files, before -> after: therapist {} -> {}, client {} -> {}",
        t_before,
        count(&after, t_id.as_bytes()),
        c_before,
        count(&after, c_id.as_bytes())
    );
    assert!(
        count(&after, t_id.as_bytes()) <= t_before,
        "therapist id: {} occurrences now, {} before the conversation",
        count(&after, t_id.as_bytes()),
        t_before
    );
    assert!(
        count(&after, c_id.as_bytes()) <= c_before,
        "client id: {} occurrences now, {} before the conversation",
        count(&after, c_id.as_bytes()),
        c_before
    );
    for s in &secrets {
        assert!(!contains(&after, s.as_bytes()));
    }

    // The queued mail is intact and arrives with the right senders.
    assert_eq!(c.client.sync(soon(10)).await.unwrap().received, 2);
    assert_eq!(t.client.sync(soon(10)).await.unwrap().received, 1);
    assert_eq!(
        texts(&c, &t_id),
        [
            "therapist 0",
            "therapist 1",
            "therapist 2",
            "queued for the client",
            "queued for the client, 2"
        ]
    );
    assert_eq!(
        texts(&t, &c_id),
        [
            "first message, signed",
            "client 0",
            "client 1",
            "client 2",
            "queued for the therapist"
        ]
    );

    // The relay's debug-level log: plenty of lines, no account id, no secret.
    let log = relay.log.lock().unwrap().clone();
    assert!(
        count(&log, b"mail queued") >= 10 && count(&log, b"sync step") > 0,
        "debug logs captured: {}",
        String::from_utf8_lossy(&log)
    );
    eprintln!("relay log: {} lines", count(&log, b"\n"));
    for id in [&t_id, &c_id] {
        assert!(
            !contains(&log, id.as_bytes()),
            "log carries an account id:\n{}",
            String::from_utf8_lossy(&log)
        );
    }
    for s in &secrets {
        assert!(!contains(&log, s.as_bytes()));
    }
}

/// In-process relay with sealed sender configurable.
async fn relay_in_process(dir: &Path, sealed: bool) -> common::Relay {
    let db = dir.join("relay.db");
    let mut config = alcove_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), db);
    if !sealed {
        config.sealed_sender = None;
    }
    common::Relay::start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_sealed_sender_gets_signed_mail() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_in_process(dir.path(), false).await;
    let a = common::enroll(dir.path(), "a", &relay).await;
    let b = common::enroll(dir.path(), "b", &relay).await;
    assert_eq!(a.client.with_account(|a| a.trust_root()).unwrap(), None);
    for i in 0..3 {
        say(&a, &b, &format!("a{i}")).await;
        assert_eq!(b.client.sync(soon(10)).await.unwrap().received, 1);
        say(&b, &a, &format!("b{i}")).await;
        assert_eq!(a.client.sync(soon(10)).await.unwrap().received, 1);
    }
    assert_eq!((a.client.sealed_sends(), b.client.sealed_sends()), (0, 0));
    assert_eq!(texts(&b, a.client.account_id()), ["a0", "a1", "a2"]);
    assert!(matches!(
        a.client.rotate_delivery_key().await,
        Err(alcove_core::Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_delivery_key_falls_back_to_signed_then_turns_sealed_again() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_in_process(dir.path(), true).await;
    let a = common::enroll(dir.path(), "a", &relay).await;
    let b = common::enroll(dir.path(), "b", &relay).await;
    let (a_id, b_id) = (
        a.client.account_id().to_owned(),
        b.client.account_id().to_owned(),
    );
    say(&b, &a, "hello a").await;
    a.client.sync(soon(10)).await.unwrap();
    say(&a, &b, "sealed to b").await;
    assert_eq!(a.client.sealed_sends(), 1);
    b.client.sync(soon(10)).await.unwrap();

    // b changes its key: a's copy is refused, a sends signed and forgets it.
    let old = b.client.with_account(|a| a.delivery_key()).unwrap();
    b.client.rotate_delivery_key().await.unwrap();
    let new = b.client.with_account(|a| a.delivery_key()).unwrap();
    assert_ne!(old, new);
    say(&a, &b, "signed after the rotation").await;
    assert_eq!(a.client.sealed_sends(), 1);
    assert_eq!(
        a.client
            .with_account(|a| a.remote_delivery_key(&b_id))
            .unwrap(),
        None
    );
    // b's next message carries the new key: a's sends turn sealed again.
    b.client.sync(soon(10)).await.unwrap();
    say(&b, &a, "here is my new key").await;
    a.client.sync(soon(10)).await.unwrap();
    assert_eq!(
        a.client
            .with_account(|a| a.remote_delivery_key(&b_id))
            .unwrap(),
        new
    );
    say(&a, &b, "sealed again").await;
    assert_eq!(a.client.sealed_sends(), 2);
    b.client.sync(soon(10)).await.unwrap();
    assert_eq!(
        texts(&b, &a_id),
        ["sealed to b", "signed after the rotation", "sealed again"]
    );
}
