//! Retention on real accounts: a conversation's timer set by one side is
//! applied by both (over a real relay); the practice's policy in the
//! profile; a therapist's device told to keep until exported; archive and
//! purge in one step; every change and deletion in the audit log; and,
//! on a database without encryption so the bytes can be searched, nothing
//! deleted stays in the file or its WAL. Hostile timers are refused.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alcove_core::proto::content::{content::Body, RetentionTimer, Text};
use alcove_core::testing::encrypt_content;
use alcove_core::{Account, Cipher, Client, DbKey, Error, SyncEvent};
use alcove_testkit::relay::Relay;
use support::{single_envelope, Peer};

const DAY_MS: u64 = 86_400_000;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn text(from: &mut Account, to: &mut Account, body: &str) {
    let to_id = to.account_id().to_owned();
    let out = encrypt_content(from, &to_id, Body::Text(Text { body: body.into() })).unwrap();
    let got = to.receive(&[single_envelope(from, &out)]).unwrap();
    assert!(got[0].result.is_ok(), "{:?}", got[0].result);
}

fn kinds(a: &Account) -> Vec<String> {
    a.audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

static TIMER_CLOCK: AtomicU64 = AtomicU64::new(0);
fn timer_clock() -> u64 {
    TIMER_CLOCK.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_set_on_one_side_deletes_old_messages_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let t = Client::enroll(
        &dir.path().join("t.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap();
    let c = Client::enroll(
        &dir.path().join("c.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    TIMER_CLOCK.store(start, Ordering::SeqCst);
    for x in [&t, &c] {
        x.with_account(|a| {
            a.set_clock(timer_clock);
            Ok(())
        })
        .unwrap();
    }
    let to_t = c.conversation_with(t.account_id()).unwrap();
    c.send_text(to_t, "an old message").await.unwrap();
    t.sync(soon()).await.unwrap();
    let to_c = t.conversation_with(c.account_id()).unwrap();

    // The client turns on a one-day timer; the therapist's device takes it.
    c.with_account(|a| a.set_retention(to_t, 86_400)).unwrap();
    c.flush_outbox(None).await.unwrap();
    let report = t.sync(soon()).await.unwrap();
    assert!(report.events.contains(&SyncEvent::RetentionChanged {
        conversation: to_c,
        seconds: 86_400
    }));
    assert_eq!(
        t.with_account(|a| a.retention(to_c))
            .unwrap()
            .effective_seconds,
        86_400
    );

    // Two days later, a new message; the sync's retention takes the old one
    // on both sides and keeps the new.
    TIMER_CLOCK.store(start + 2 * DAY_MS, Ordering::SeqCst);
    c.send_text(to_t, "a new message").await.unwrap();
    t.sync(soon()).await.unwrap();
    c.sync(soon()).await.unwrap();
    for (x, conv) in [(&t, to_c), (&c, to_t)] {
        let bodies: Vec<String> = x
            .with_account(|a| a.messages(conv, None, 10))
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(bodies, ["a new message"]);
        let k = x.with_account(|a| Ok(kinds(a))).unwrap();
        assert!(k.contains(&"retention_changed".to_owned()), "{k:?}");
        assert!(k.contains(&"retention_deleted".to_owned()), "{k:?}");
        assert!(x.with_account(|a| a.verify_audit_log()).unwrap().intact());
    }
}

static POLICY_CLOCK: AtomicU64 = AtomicU64::new(1_000_000_000_000);
fn policy_clock() -> u64 {
    POLICY_CLOCK.load(Ordering::SeqCst)
}

#[test]
fn the_practice_policy_keep_until_exported_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let mut therapist = Peer::create(dir.path(), "t");
    let mut client = Peer::create(dir.path(), "c");
    for a in [&mut therapist.account, &mut client.account] {
        a.set_clock(policy_clock);
    }
    let b = therapist.bundle();
    client.account.process_bundle(&therapist.id(), &b).unwrap();
    let b = client.bundle();
    therapist.account.process_bundle(&client.id(), &b).unwrap();

    // The practice keeps texts 30 days on clients' phones.
    let mut profile = alcove_core::practice::PracticeProfile {
        revision: 0,
        display_name: "Dr. Rivera".into(),
        practice_name: "Harbor Counseling".into(),
        time_zone: "America/New_York".into(),
        hours: vec![],
        away: vec![],
        response_time_hours: 24,
        crisis_resources: "Call or text 988".into(),
        policy: None,
        notification_label: String::new(),
        retention_days: 30,
    };
    therapist
        .account
        .publish_practice_profile(profile.clone())
        .unwrap();
    profile.revision = 1;
    let out = encrypt_content(
        &mut therapist.account,
        &client.id(),
        Body::PracticeProfile(profile),
    )
    .unwrap();
    client
        .account
        .receive(&[single_envelope(&therapist.account, &out)])
        .unwrap();
    let (mut t, mut c) = (therapist.account, client.account);
    text(&mut t, &mut c, "day one");
    let to_t = c.find_conversation_with(t.account_id()).unwrap().unwrap();
    assert_eq!(c.retention(to_t).unwrap().policy_days, 30);
    POLICY_CLOCK.fetch_add(31 * DAY_MS, Ordering::SeqCst);
    text(&mut t, &mut c, "day thirty-two");
    assert_eq!(c.apply_retention().unwrap(), 1);
    let left: Vec<_> = c
        .messages(to_t, None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(left, ["day thirty-two"]);

    // The therapist's device keeps everything until an export covers it.
    t.set_keep_until_exported(true).unwrap();
    text(&mut c, &mut t, "from the client, early");
    let to_c = t.find_conversation_with(c.account_id()).unwrap().unwrap();
    t.set_retention(to_c, 86_400).unwrap();
    POLICY_CLOCK.fetch_add(2 * DAY_MS, Ordering::SeqCst);
    text(&mut c, &mut t, "from the client, late");
    assert_eq!(t.apply_retention().unwrap(), 0, "kept until exported");
    let rows = t.messages(to_c, None, 10).unwrap();
    let oldest = rows.last().unwrap().id;
    t.mark_exported(to_c, oldest).unwrap();
    assert_eq!(t.apply_retention().unwrap(), 1);

    // Ending the relationship: the client purges in one step.
    assert_eq!(c.purge_conversation(to_t).unwrap(), 1);
    assert!(c.messages(to_t, None, 10).unwrap().is_empty());
    assert!(c.conversations().unwrap().is_empty());
    assert_eq!(kinds(&c).last().unwrap(), "conversation_purged");
    assert!(c.verify_audit_log().unwrap().intact());
}

#[test]
fn deleted_messages_leave_no_bytes_in_the_file_or_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let mut a = Account::create_with(
        &path,
        &DbKey::random(),
        "0123456789abcdef0123456789abcdef",
        1,
        Cipher::PlainForBenchmarks,
    )
    .unwrap();
    let mut peer = Peer::create(dir.path(), "p");
    let b = peer.bundle();
    a.process_bundle(&peer.id(), &b).unwrap();
    let marker = "FORENSIC-MARKER-7f3a91";
    // The peer writes first, so it needs our bundle.
    let ours = a.initial_prekeys().unwrap();
    let bundle = alcove_core::proto::relay::DeviceBundle {
        device_id: 1,
        registration_id: a.registration_id(),
        identity_key: a.identity_key(),
        signed_prekey: ours.signed_prekey.clone(),
        kyber_prekey: ours.kyber_last_resort.clone(),
        one_time_prekey: ours.one_time_prekeys.first().cloned(),
    };
    peer.account
        .process_bundle(a.account_id(), &bundle)
        .unwrap();
    text(
        &mut peer.account,
        &mut a,
        &format!("{marker} what was said"),
    );
    let conv = a.find_conversation_with(&peer.id()).unwrap().unwrap();
    let scan = || -> bool {
        ["", "-wal"].iter().any(|s| {
            std::fs::read(format!("{}{s}", path.display()))
                .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
                .unwrap_or(false)
        })
    };
    assert!(
        scan(),
        "the marker is readable before deletion (plain file)"
    );
    a.set_retention(conv, 1).unwrap();
    // Received "now"; retention of one second: move past it.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(a.apply_retention().unwrap(), 1);
    assert!(!scan(), "deleted text still in the file or WAL");
    a.close().unwrap();
    assert!(!scan());
}

#[test]
fn hostile_timers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Peer::create(dir.path(), "a");
    let mut b = Peer::create(dir.path(), "b");
    let mut stranger = Peer::create(dir.path(), "s");
    for x in [&mut a, &mut stranger] {
        let bb = b.bundle();
        x.account.process_bundle(&b.id(), &bb).unwrap();
    }
    b.account.conversation_with(&a.id()).unwrap();
    for (from, seconds) in [(&mut stranger, 60), (&mut a, u64::MAX)] {
        let out = encrypt_content(
            &mut from.account,
            &b.id(),
            Body::RetentionTimer(RetentionTimer { seconds }),
        )
        .unwrap();
        let got = b
            .account
            .receive(&[single_envelope(&from.account, &out)])
            .unwrap();
        assert!(
            matches!(got[0].result, Err(Error::Malformed(_))),
            "{:?}",
            got[0].result
        );
    }
    let conv = b.account.find_conversation_with(&a.id()).unwrap().unwrap();
    assert_eq!(b.account.retention(conv).unwrap().timer_seconds, 0);
    assert!(matches!(
        b.account.set_retention(conv, u64::MAX),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.account
            .purge_conversation(alcove_core::ConversationId::new(999)),
        Err(Error::InvalidArgument(_))
    ));
}
