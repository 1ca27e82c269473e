//! End to end over a real relay on loopback sockets and real SQLCipher
//! files: offline queueing and wake, relay restarts, SIGKILLed syncs, a
//! relay killed between an ack and its delete, two processes syncing one
//! account, duplicates, and a leak scan.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alcove_core::proto::relay::SendRequest;
use alcove_core::{NotificationPrivacy, RelayClient};
use alcove_testkit::unified_push::PushEndpoint;
use common::*;
use rand::Rng;

const ALCOVE: &str = env!("CARGO_BIN_EXE_alcove");

fn sync_cmd(dev: &Device, relay: &Relay, page: u32, deadline_ms: u64) -> Command {
    let mut c = Command::new(ALCOVE);
    c.args(["sync", "--db"])
        .arg(&dev.path)
        .arg("--key-file")
        .arg(&dev.key_file)
        .args(["--relay", &relay.url()])
        .args(["--page-size", &page.to_string()])
        .args(["--deadline-ms", &deadline_ms.to_string()])
        .env("ALCOVE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_client_is_woken_by_push_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let therapist = enroll(dir.path(), "therapist", &relay).await;
    let client = enroll(dir.path(), "client", &relay).await;
    let mut push = PushEndpoint::start().await;
    client
        .client
        .register_push(push.registration())
        .await
        .unwrap();

    // The client pins the therapist's identity from the invite card.
    let tkey = therapist
        .client
        .with_account(|a| Ok(a.identity_key()))
        .unwrap();
    client
        .client
        .with_account(|a| a.pin_identity(therapist.client.account_id(), &tkey))
        .unwrap();

    let texts_sent = ["first", "second", "third"];
    for t in texts_sent {
        assert!(
            therapist
                .client
                .send_text(
                    therapist
                        .client
                        .conversation_with(client.client.account_id())
                        .unwrap(),
                    t
                )
                .await
                .unwrap()
                .sent
        );
    }
    let body = push
        .next(Duration::from_secs(5))
        .await
        .expect("wake-up push");
    assert!(!body.is_empty() && body.len() < 64, "content-free push");
    for t in texts_sent {
        assert!(!contains(&body, t.as_bytes()));
    }
    let report = client.client.sync(soon(10)).await.unwrap();
    assert_eq!(report.received, 3);
    assert!(!report.more);
    assert_eq!(report.notifications.len(), 3);
    for n in &report.notifications {
        assert_eq!(
            (n.title.as_str(), n.body.as_str()),
            ("Alcove", "New secure message")
        );
    }
    assert_eq!(texts(&client, therapist.client.account_id()), texts_sent);

    // Reply; therapist sees it; a second sync finds nothing new.
    client
        .client
        .send_text(
            client
                .client
                .conversation_with(therapist.client.account_id())
                .unwrap(),
            "thanks",
        )
        .await
        .unwrap();
    let r = therapist.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 1);
    let r = client.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_privacy_levels() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let a_id = a.client.account_id().to_owned();
    b.client
        .with_account(|acct| {
            let with_a = acct.conversation_with(&a_id)?;
            acct.set_display_name(with_a, "Dr. Rivera")?;
            acct.set_notification_label(with_a, "R.")
        })
        .unwrap();
    for (privacy, title, body) in [
        (NotificationPrivacy::Hidden, "Alcove", "New secure message"),
        (NotificationPrivacy::Pseudonym, "R.", "New secure message"),
        (
            NotificationPrivacy::FullPreview,
            "Dr. Rivera",
            "hello there",
        ),
    ] {
        b.client
            .with_account(|a| a.set_notification_privacy(privacy))
            .unwrap();
        a.client
            .send_text(
                a.client.conversation_with(b.client.account_id()).unwrap(),
                "hello there",
            )
            .await
            .unwrap();
        let r = b.client.sync(soon(10)).await.unwrap();
        assert_eq!(r.notifications.len(), 1);
        assert_eq!(
            (
                r.notifications[0].title.as_str(),
                r.notifications[0].body.as_str()
            ),
            (title, body)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_and_restarted_mid_conversation_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    a.client
        .send_text(a.client.conversation_with(&b_id).unwrap(), "before")
        .await
        .unwrap();
    relay.stop().await;
    // Composed while the relay is down: queued, in order.
    for t in ["while down 1", "while down 2"] {
        let r = a
            .client
            .send_text(a.client.conversation_with(&b_id).unwrap(), t)
            .await
            .unwrap();
        assert!(!r.sent);
    }
    assert!(matches!(
        b.client.sync(soon(2)).await,
        Err(alcove_core::Error::Network(_))
    ));
    relay.restart().await;
    a.client
        .send_text(a.client.conversation_with(&b_id).unwrap(), "after")
        .await
        .unwrap();
    assert_eq!(a.client.with_account(|a| a.outbox_len()).unwrap(), 0);
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 4);
    assert_eq!(
        texts(&b, a.client.account_id()),
        ["before", "while down 1", "while down 2", "after"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_with_sigkill_many_times_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    let a_id = a.client.account_id().to_owned();
    let mut sent = Vec::new();
    let mut rng = rand::rng();
    for round in 0..12 {
        for i in 0..25 {
            let t = format!("round {round} message {i}");
            a.client
                .send_text(a.client.conversation_with(&b_id).unwrap(), &t)
                .await
                .unwrap();
            sent.push(t);
        }
        let mut child = sync_cmd(&b, &relay, 5, 20_000).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let out = sync_cmd(&b, &relay, 50, 30_000).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = texts(&b, &a_id);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &got {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    assert_eq!(got.len(), sent.len(), "every message exactly once");
    assert!(counts.values().all(|&n| n == 1));
    for t in &sent {
        assert!(counts.contains_key(t.as_str()), "lost {t}");
    }
}

/// How many envelopes the relay database holds for `account`'s device
/// 1, read through a connection of the test's own.
async fn stored(db: &std::path::Path, account: &str) -> u64 {
    use alcove_relay::Storage;
    let s = alcove_relay::SqliteStorage::open(db).unwrap();
    s.mailbox_usage(account, 1).await.unwrap().count
}

/// Whether the process `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_between_ack_and_delete_redelivers_and_the_client_drops_the_copies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    // One address for both relay processes (the devices keep its URL).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("relay.toml");
    // The deleter waits its longest (10 s): the acks stay pending.
    std::fs::write(
        &config,
        format!(
            "[relay]\nbind = \"127.0.0.1:{port}\"\ndb = \"relay.db\"\n\n\
             [storage]\nack_delete_ms = 10000\n"
        ),
    )
    .unwrap();
    let spawn = || {
        RelayProcess::spawn(
            ALCOVE,
            [std::ffi::OsStr::new("--config"), config.as_os_str()],
            db.clone(),
            "info",
        )
    };
    let relay = spawn();
    let a = relay.enroll(dir.path(), "a").await;
    let b = relay.enroll(dir.path(), "b").await;
    let (a_id, b_id) = (
        a.client.account_id().to_owned(),
        b.client.account_id().to_owned(),
    );
    let sent: Vec<String> = (0..20).map(|i| format!("before the kill {i}")).collect();
    for t in &sent {
        a.client
            .send_text(a.client.conversation_with(&b_id).unwrap(), t)
            .await
            .unwrap();
    }
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 20);
    // Acked and answered; the delete still to come.
    assert_eq!(stored(&db, &b_id).await, 20);
    // SIGKILL between the ack and the delete: the pending deletes die
    // with the process, the envelopes stay queued.
    drop(relay);
    assert_eq!(
        stored(&db, &b_id).await,
        20,
        "nothing deleted, nothing lost"
    );
    let relay = spawn();
    // Delivered again, and dropped by the device as copies it stored.
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!((r.received, r.failed), (0, 0));
    assert!(r.pages >= 1);
    let got = texts(&b, &a_id);
    assert_eq!(got, sent, "every message once, in order");
    // A graceful stop (SIGINT) deletes what is pending before it exits.
    assert_eq!(stored(&db, &b_id).await, 20, "acked again, pending again");
    let pid = relay.pid();
    let sent_int = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent_int.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !exited(pid) {
        assert!(Instant::now() < deadline, "the relay did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(relay.log_text().contains("shutting down"));
    drop(relay);
    assert_eq!(stored(&db, &b_id).await, 0, "deleted at shutdown");
    // And a later sync finds nothing to fetch.
    let _relay = spawn();
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!((r.received, r.failed), (0, 0));
    assert_eq!(texts(&b, &a_id).len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_syncing_one_account_never_fork_the_ratchet() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    let a_id = a.client.account_id().to_owned();
    let mut sent = Vec::new();
    for round in 0..6 {
        for i in 0..30 {
            let t = format!("r{round} m{i}");
            a.client
                .send_text(a.client.conversation_with(&b_id).unwrap(), &t)
                .await
                .unwrap();
            sent.push(t);
        }
        // Two processes at once (the app and its notification extension).
        let c1 = sync_cmd(&b, &relay, 7, 20_000).spawn().unwrap();
        let c2 = sync_cmd(&b, &relay, 7, 20_000).spawn().unwrap();
        let o1 = c1.wait_with_output().unwrap();
        let o2 = c2.wait_with_output().unwrap();
        for o in [&o1, &o2] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success()
                    || err.contains("another process")
                    || err.contains("mailbox is being read"),
                "unexpected failure: {err}"
            );
        }
        // And the in-process handle replies, advancing the same ratchet.
        b.client
            .send_text(
                b.client.conversation_with(&a_id).unwrap(),
                &format!("reply {round}"),
            )
            .await
            .unwrap();
    }
    let out = sync_cmd(&b, &relay, 50, 30_000).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = texts(&b, &a_id);
    assert_eq!(got.len(), sent.len());
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), sent.len(), "no duplicates");
    // A got every reply: b's sending chain never forked.
    let r = a.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 6);
    assert_eq!(r.failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_replayed_envelopes_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    a.client
        .send_text(a.client.conversation_with(&b_id).unwrap(), "hello")
        .await
        .unwrap();
    // Re-send the same sealed item with the same GUID, as a client would
    // after crashing between the relay's 200 and its own commit.
    let rc = RelayClient::new(&relay.url()).unwrap();
    let creds = a.client.with_account(|a| a.relay_credentials()).unwrap();
    let row = a
        .client
        .with_account(|acct| {
            let with_b = acct.conversation_with(&b_id)?;
            acct.compose_text(with_b, "once")
        })
        .unwrap();
    let item = a.client.with_account(|a| a.outbox_next()).unwrap().unwrap();
    for _ in 0..3 {
        let messages = a
            .client
            .with_account(|a| a.encrypt_outbox_item(&item))
            .unwrap();
        let req = SendRequest {
            guid: item.guid.clone(),
            messages,
        };
        rc.send(&creds, &b_id, &req).await.unwrap();
    }
    a.client.with_account(|a| a.outbox_done(&item)).unwrap();
    let _ = row;
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!(r.received, 2);
    assert_eq!(texts(&b, a.client.account_id()), ["hello", "once"]);
}

/// Pages of 10: the first asks for 5, later ones for 15, so 35 texts come
/// in three pages (pages of 10 would take four) and one closing call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_page_is_the_smaller_and_later_ones_larger() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let mut b = enroll(dir.path(), "b", &relay).await;
    send_numbered(&a, &b, 35).await;
    b.client.set_page_size(10);
    let r = b.client.sync(soon(30)).await.unwrap();
    assert_eq!((r.received, r.pages, r.more), (35, 3, false));
    assert_eq!(r.stages.relay_calls, 4, "three pages and the closing ack");
    assert_eq!(texts(&b, a.client.account_id()).len(), 35);
    // Nothing left: one call finds the mailbox empty and lets it go.
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!((r.received, r.pages), (0, 1));
}

/// Through 60 ms of round trip the first page is late, so the second is
/// asked for beside it, passing over it (`skip`): the same pages and
/// texts, none twice, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_slow_link_the_first_two_pages_travel_together() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let proxy = alcove_testkit::latency::LatencyProxy::start(relay.addr).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let mut b = enroll_at(dir.path(), "b", &proxy.url(), &relay.invite()).await;
    send_numbered(&a, &b, 35).await;
    b.client.set_page_size(10);
    proxy.set_round_trip(Duration::from_millis(60));
    let r = b.client.sync(soon(30)).await.unwrap();
    assert_eq!((r.received, r.pages, r.failed), (35, 3, 0));
    assert_eq!(r.stages.relay_calls, 4, "three pages and the closing ack");
    assert_eq!((r.stages.early_pages, r.stages.dropped_pages), (1, 0));
    let got = texts(&b, a.client.account_id());
    let want: Vec<String> = (0..35).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want, "every text once, in order");
    proxy.set_round_trip(Duration::ZERO);
    let r = b.client.sync(soon(10)).await.unwrap();
    assert_eq!((r.received, r.pages), (0, 1));
}

/// Pages of 250, 750 and 300: the last two pages' acks (1,050) are more
/// than one call may carry (1,000), so the second page's go in a call of
/// their own behind the last page's work, before the closing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_past_the_relays_cap_go_in_a_call_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let conv = a.client.conversation_with(b.client.account_id()).unwrap();
    for _ in 0..1300 {
        a.client
            .with_account(|x| x.compose_text(conv, "hi"))
            .unwrap();
    }
    assert_eq!(a.client.flush_outbox(None).await.unwrap(), 1300);
    let r = b.client.sync(soon(120)).await.unwrap();
    assert_eq!((r.received, r.failed, r.pages), (1300, 0, 3));
    assert_eq!(
        r.stages.relay_calls, 5,
        "three pages, the early acks, the close"
    );
    // Everything was acknowledged: nothing comes again.
    let r = b.client.sync(soon(30)).await.unwrap();
    assert_eq!((r.received, r.pages), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_sync_cleanly_and_next_wake_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let mut b = enroll(dir.path(), "b", &relay).await;
    send_numbered(&a, &b, 120).await;
    b.client.set_page_size(10);
    // A deadline already almost reached: stops before fetching.
    let r = b
        .client
        .sync(Instant::now() + Duration::from_millis(5))
        .await
        .unwrap();
    assert!(r.more);
    let mut total = r.received;
    let mut wakes = 1;
    while total < 120 {
        let r = b
            .client
            .sync(Instant::now() + Duration::from_millis(150))
            .await
            .unwrap();
        total += r.received;
        wakes += 1;
        assert!(wakes < 200);
    }
    assert_eq!(total, 120);
    assert_eq!(texts(&b, a.client.account_id()).len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_scan_after_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let secrets = [
        "my partner reads my phone at night",
        "I stopped taking the sertraline",
        "the panic started again at work",
    ];
    let names = ["Dr. Wilhelmina Oyelaran", "Casimir Thistlewood"];
    a.client
        .with_account(|acct| {
            let with_b = acct.conversation_with(b.client.account_id())?;
            acct.set_display_name(with_b, names[1])
        })
        .unwrap();
    b.client
        .with_account(|acct| {
            let with_a = acct.conversation_with(a.client.account_id())?;
            acct.set_display_name(with_a, names[0])
        })
        .unwrap();
    for s in secrets {
        a.client
            .send_text(
                a.client.conversation_with(b.client.account_id()).unwrap(),
                s,
            )
            .await
            .unwrap();
    }
    // b syncs in a subprocess whose logs (debug level) we capture.
    let out = sync_cmd(&b, &relay, 10, 20_000).output().unwrap();
    assert!(out.status.success());
    assert_eq!(texts(&b, a.client.account_id()), secrets);
    b.client
        .send_text(
            b.client.conversation_with(a.client.account_id()).unwrap(),
            secrets[0],
        )
        .await
        .unwrap();
    a.client.sync(soon(10)).await.unwrap();
    let haystacks = vec![
        ("relay db", file_bytes(&relay.db)),
        ("device a", file_bytes(&a.path)),
        ("device b", file_bytes(&b.path)),
        ("sync stdout", out.stdout.clone()),
        ("sync stderr (debug logs)", out.stderr.clone()),
    ];
    for (what, hay) in &haystacks {
        for needle in secrets
            .iter()
            .chain(names.iter())
            .chain(["Oyelaran", "Thistlewood"].iter())
        {
            assert!(
                !contains(hay, needle.as_bytes()),
                "{what} contains {needle:?}"
            );
        }
    }
    assert!(!out.stderr.is_empty(), "debug logging was captured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refills_prekeys_when_the_relay_runs_low() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let rc = RelayClient::new(&relay.url()).unwrap();
    let creds = b.client.with_account(|a| a.relay_credentials()).unwrap();
    // 95 strangers start sessions with b: 5 one-time keys of each kind left.
    let a = enroll(dir.path(), "a", &relay).await;
    let a_creds = a.client.with_account(|a| a.relay_credentials()).unwrap();
    for _ in 0..95 {
        rc.bundles(&a_creds, b.client.account_id()).await.unwrap();
    }
    let before = rc.prekey_count(&creds).await.unwrap();
    assert_eq!(
        (before.one_time_prekeys, before.one_time_kyber_prekeys),
        (5, 5)
    );
    b.client.sync(soon(10)).await.unwrap();
    let after = rc.prekey_count(&creds).await.unwrap();
    assert_eq!(
        (after.one_time_prekeys, after.one_time_kyber_prekeys),
        (100, 100)
    );
}

/// The README's first command: the demo runs end to end (relay, therapist,
/// client by card, consent, out-of-hours notice, push wake, sync) and says
/// so; its log lines (stderr) name no one and carry no text.
#[test]
fn the_demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::ALCOVE_BIN)
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "therapist  sees a new client join, shown as \"J.\"",
        "consent    texting policy v1 shown to the client:",
        "notice     written on the client's phone (out of hours):",
        "push       wake-up arrived",
        "done.",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    for secret in ["Thursday", "J.", "Dr. Rivera", "988"] {
        assert!(!stderr.contains(secret), "log leaked {secret:?}: {stderr}");
    }
}
