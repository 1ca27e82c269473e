//! Revocation and remote wipe against a real relay on loopback and real
//! SQLCipher files: a revoked device says so with a typed event, deletes
//! its files and stays unusable; a plain 401 never wipes; and killing the
//! process at every step of the wipe (and at random moments) leaves either
//! the whole account or nothing readable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use alcove_core::wipe::{self, WipeStep};
use alcove_core::{Account, Client, DbKey, Error, SyncEvent};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

async fn enroll(r: &Relay, dir: &Path, name: &str, key: &DbKey) -> Client {
    Client::enroll(&dir.join(name), key, &r.url(), &r.invite())
        .await
        .unwrap()
}

/// Every file of the directory whose name starts with `name`.
fn files_of(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(name))
        })
        .collect();
    v.sort();
    v
}

fn revoke(r: &Relay, account: &str, device: u32) {
    alcove_relay::revoke_device(&r.db, account, device).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_says_so_first_then_wipes_itself_and_stays_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (ka, kb) = (DbKey::random(), DbKey::random());
    let a = enroll(&r, dir.path(), "a.db", &ka).await;
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let with_b = a.conversation_with(b.account_id()).unwrap();
    assert!(a.send_text(with_b, "before").await.unwrap().sent);
    assert_eq!(b.sync(soon()).await.unwrap().received, 1);
    let b_account = b.account_id().to_owned();
    let with_a = b.conversation_with(a.account_id()).unwrap();
    assert!(!files_of(dir.path(), "b.db").is_empty());
    assert!(b.take_events().is_empty());

    // The admin revokes b's phone; mail queued for it goes with it.
    assert!(a.send_text(with_b, "after").await.unwrap().sent);
    revoke(&r, &b_account, 1);

    // Its next contact: the typed error, the event kept before the wipe,
    // and no file of the account left.
    assert_eq!(b.sync(soon()).await.unwrap_err(), Error::DeviceRevoked);
    assert!(b.is_revoked());
    assert_eq!(b.take_events(), vec![SyncEvent::DeviceRevoked]);
    assert_eq!(files_of(dir.path(), "b.db"), Vec::<PathBuf>::new());
    assert!(!wipe::any_files_left(&dir.path().join("b.db")));

    // Every later call fails typed, and the event is not repeated.
    assert_eq!(b.sync(soon()).await.unwrap_err(), Error::DeviceRevoked);
    assert_eq!(
        b.with_account(|x| x.outbox_len()),
        Err(Error::DeviceRevoked)
    );
    assert_eq!(
        b.send_text(with_a, "x").await.unwrap_err(),
        Error::DeviceRevoked
    );
    assert_eq!(
        b.conversation_with(a.account_id()),
        Err(Error::DeviceRevoked)
    );
    assert_eq!(b.unlock(&kb), Err(Error::NoAccount));
    assert_eq!(
        b.sync_unlocking(&kb, soon()).await.unwrap_err(),
        Error::NoAccount
    );
    assert!(b.take_events().is_empty());
    assert_eq!(
        Client::open(&dir.path().join("b.db"), &kb, &r.url()).unwrap_err(),
        Error::NoAccount
    );
    // Nothing re-created the file either.
    assert_eq!(files_of(dir.path(), "b.db"), Vec::<PathBuf>::new());

    // The other account is untouched: its files, its messages, its relay
    // access (it may still send to the revoked account's mailbox set,
    // which now has no device).
    assert_eq!(
        a.with_account(|x| x.messages(with_b, None, 10))
            .unwrap()
            .len(),
        2
    );
    a.sync(soon()).await.unwrap();
    drop(a);
    let a = Client::open(&dir.path().join("a.db"), &ka, &r.url()).unwrap();
    a.sync(soon()).await.unwrap();
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_relay_call_learns_it_a_send_and_a_prekey_upkeep_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (ka, kb, kc) = (DbKey::random(), DbKey::random(), DbKey::random());
    let a = enroll(&r, dir.path(), "a.db", &ka).await;
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let c = enroll(&r, dir.path(), "c.db", &kc).await;
    let with_a = b.conversation_with(a.account_id()).unwrap();
    revoke(&r, b.account_id(), 1);
    revoke(&r, c.account_id(), 1);

    // A send: the text was queued, then the relay said "revoked".
    assert_eq!(
        b.send_text(with_a, "to a").await.unwrap_err(),
        Error::DeviceRevoked
    );
    assert_eq!(b.take_events(), vec![SyncEvent::DeviceRevoked]);
    assert!(!wipe::any_files_left(&dir.path().join("b.db")));

    assert_eq!(c.upkeep_prekeys().await.unwrap_err(), Error::DeviceRevoked);
    assert_eq!(c.take_events(), vec![SyncEvent::DeviceRevoked]);
    assert!(!wipe::any_files_left(&dir.path().join("c.db")));

    // The revoked accounts' neighbour syncs on; nothing of b reached it.
    assert_eq!(a.sync(soon()).await.unwrap().received, 0);
    assert!(!a.is_revoked());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_401_or_another_refusal_never_wipes() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let mut other =
        Relay::start_at(dir.path().join("other.db"), "127.0.0.1:0".parse().unwrap()).await;
    let kb = DbKey::random();
    let b = enroll(&r, dir.path(), "b.db", &kb).await;
    let path = dir.path().join("b.db");
    drop(b);

    // A relay that does not know these credentials answers 401, as would
    // anyone on the network forging an answer: typed, and nothing wiped.
    let b = Client::open(&path, &kb, &other.url()).unwrap();
    assert_eq!(b.sync(soon()).await.unwrap_err(), Error::Unauthorized);
    assert_eq!(b.upkeep_prekeys().await.unwrap_err(), Error::Unauthorized);
    assert!(!b.is_revoked());
    assert!(b.take_events().is_empty());
    assert!(path.exists());
    b.with_account(|x| x.outbox_len()).unwrap();
    drop(b);

    // A relay that cannot be reached: nothing wiped either.
    other.stop().await;
    let b = Client::open(&path, &kb, &other.url()).unwrap();
    assert!(matches!(
        b.sync(soon()).await.unwrap_err(),
        Error::Network(_)
    ));
    drop(b);

    // The account still opens with its key on its own relay and works.
    let b = Client::open(&path, &kb, &r.url()).unwrap();
    b.sync(soon()).await.unwrap();
    assert!(!b.is_revoked());
    r.stop().await;
}

// ------------------------------------------------------------ kill tests

const CHILD_DB: &str = "ALCOVE_WIPE_TEST_CHILD_DB";
const PROBE: &[u8] = b"wipe-probe-plaintext-7f3a";

/// Runs only as a child of the kill tests: wipes the account at the path
/// it is given (the parent sets `ALCOVE_WIPE_ABORT_AT`, or kills it).
#[test]
fn wipe_child_process() {
    let Ok(db) = std::env::var(CHILD_DB) else {
        return;
    };
    wipe::wipe(Path::new(&db)).unwrap();
}

/// An account with a known row and some megabytes of history in the
/// database and its WAL, so a wipe takes long enough to be killed midway.
fn make_account(dir: &Path, key: &DbKey) -> PathBuf {
    let path = dir.join("acct.db");
    let mut acct = Account::create(&path, key, "wipe-test-account", 1).unwrap();
    let a = acct.conversation_with("peer-account").unwrap();
    let filler = "x".repeat(3000);
    for _ in 0..400 {
        acct.compose_text(a, &filler).unwrap();
    }
    acct.compose_text(a, std::str::from_utf8(PROBE).unwrap())
        .unwrap();
    drop(acct);
    path
}

fn spawn_child(db: &Path, abort_at: Option<&str>) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "wipe_child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DB, db)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    match abort_at {
        Some(step) => cmd.env("ALCOVE_WIPE_ABORT_AT", step),
        None => cmd.env_remove("ALCOVE_WIPE_ABORT_AT"),
    };
    cmd.spawn().unwrap()
}

/// Whole or nothing: either the account opens with its key and holds every
/// message, or it fails `NoAccount`, no file holds the probe's plaintext,
/// and after that open no file of it is left. Returns whether it survived.
fn assert_whole_or_nothing(dir: &Path, db: &Path, key: &DbKey) -> bool {
    for f in files_of(dir, "acct.db") {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(PROBE.len()).any(|w| w == PROBE),
            "plaintext in {f:?}"
        );
    }
    match Account::open(db, key) {
        Ok(mut acct) => {
            assert!(!wipe::in_progress(db));
            let c = acct.conversation_with("peer-account").unwrap();
            let msgs = acct.messages(c, None, 1000).unwrap();
            assert_eq!(msgs.len(), 401);
            assert!(msgs.iter().any(|m| m.body.as_bytes() == PROBE));
            true
        }
        Err(e) => {
            assert_eq!(e, Error::NoAccount);
            assert_eq!(files_of(dir, "acct.db"), Vec::<PathBuf>::new());
            assert_eq!(Account::open(db, key).unwrap_err(), Error::NoAccount);
            false
        }
    }
}

#[test]
fn killing_the_wipe_at_every_step_leaves_the_whole_account_or_nothing() {
    for step in WipeStep::ALL {
        let dir = tempfile::tempdir().unwrap();
        let key = DbKey::random();
        let db = make_account(dir.path(), &key);
        let status = spawn_child(&db, Some(step.name())).wait().unwrap();
        assert!(!status.success(), "{step:?}: the child should have aborted");
        let survived = assert_whole_or_nothing(dir.path(), &db, &key);
        // Only an abort before the marker is durable keeps the account.
        assert_eq!(survived, step == WipeStep::Start, "{step:?}");
    }
    // A new account created where a wipe was interrupted (marker left,
    // files gone) is not wiped by that marker later.
    let dir = tempfile::tempdir().unwrap();
    let key = DbKey::random();
    let db = make_account(dir.path(), &key);
    let status = spawn_child(&db, Some(WipeStep::Deleted.name()))
        .wait()
        .unwrap();
    assert!(!status.success());
    assert!(wipe::in_progress(&db) && !db.exists());
    let fresh = Account::create(&db, &key, "wipe-test-account-2", 1).unwrap();
    drop(fresh);
    assert!(!wipe::in_progress(&db));
    Account::open(&db, &key).unwrap();
    // And without an abort the child wipes everything.
    let dir = tempfile::tempdir().unwrap();
    let key = DbKey::random();
    let db = make_account(dir.path(), &key);
    assert!(spawn_child(&db, None).wait().unwrap().success());
    assert_eq!(files_of(dir.path(), "acct.db"), Vec::<PathBuf>::new());
}

#[test]
fn sigkill_at_random_moments_leaves_the_whole_account_or_nothing() {
    use rand::Rng;
    let mut outcomes = (0, 0);
    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let key = DbKey::random();
        let db = make_account(dir.path(), &key);
        let mut child = spawn_child(&db, None);
        let delay = rand::rng().random_range(0..40);
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL on Unix
        child.wait().unwrap();
        if assert_whole_or_nothing(dir.path(), &db, &key) {
            outcomes.0 += 1;
        } else {
            outcomes.1 += 1;
        }
    }
    eprintln!("survived {}, wiped {}", outcomes.0, outcomes.1);
}
