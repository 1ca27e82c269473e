//! The outbox sends a burst (texts queued while offline, receipts after a
//! sync) with one commit for all its ratchet advances and one for its
//! dequeue. Against a real relay on loopback and real SQLCipher files:
//! order is kept per recipient, nothing is lost or doubled, a recipient
//! held back (identity changed) holds back only its own items, and a
//! burst cut by the relay going away resumes on the next flush.

use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey, MessageStatus, SyncEvent};
use alcove_testkit::relay::Relay;

async fn enroll(r: &Relay, dir: &std::path::Path, name: &str) -> Client {
    Client::enroll(&dir.join(name), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

/// Texts of `c`'s conversation with `peer`, oldest first.
fn bodies(c: &Client, peer: &str) -> Vec<String> {
    let conv = c.conversation_with(peer).unwrap();
    let mut m = c.with_account(|a| a.messages(conv, None, 1000)).unwrap();
    m.reverse();
    m.into_iter().map(|m| m.body).collect()
}

/// Queues a text without sending it (as while offline).
fn queue(c: &Client, peer: &str, text: &str) {
    let conv = c.conversation_with(peer).unwrap();
    c.with_account(|a| a.compose_text(conv, text)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_two_recipients_arrives_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let c = enroll(&r, dir.path(), "c.db").await;
    let (b_id, c_id) = (b.account_id().to_owned(), c.account_id().to_owned());
    // B answers, so A's texts to B go sealed; C never does (signed).
    a.send_text(a.conversation_with(&b_id).unwrap(), "hello b")
        .await
        .unwrap();
    b.sync(soon()).await.unwrap();
    b.send_text(b.conversation_with(a.account_id()).unwrap(), "hi a")
        .await
        .unwrap();
    a.sync(soon()).await.unwrap();

    let mut want_b = vec!["hello b".to_owned(), "hi a".to_owned()];
    let mut want_c = Vec::new();
    for i in 0..45 {
        let (peer, want) = if i % 3 == 0 {
            (&c_id, &mut want_c)
        } else {
            (&b_id, &mut want_b)
        };
        let text = format!("queued {i}");
        queue(&a, peer, &text);
        want.push(text);
    }
    assert_eq!(a.flush_outbox(None).await.unwrap(), 45);
    // Every queued text is marked sent; nothing is left queued.
    assert_eq!(a.flush_outbox(None).await.unwrap(), 0);
    for peer in [&b_id, &c_id] {
        let conv = a.conversation_with(peer).unwrap();
        let msgs = a.with_account(|x| x.messages(conv, None, 100)).unwrap();
        assert!(msgs.iter().all(|m| m.status >= MessageStatus::Sent));
    }
    assert_eq!(b.sync(soon()).await.unwrap().received, 30);
    assert_eq!(c.sync(soon()).await.unwrap().received, 15);
    assert_eq!(bodies(&b, a.account_id()), want_b);
    assert_eq!(bodies(&c, a.account_id()), want_c);
    // Replies still decrypt on both sides: the ratchets agree.
    for x in [&b, &c] {
        x.send_text(x.conversation_with(a.account_id()).unwrap(), "got them")
            .await
            .unwrap();
    }
    assert_eq!(a.sync(soon()).await.unwrap().received, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_recipient_in_a_burst_holds_only_its_own_items() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let m = enroll(&r, dir.path(), "m.db").await;
    let (b_id, m_id) = (b.account_id().to_owned(), m.account_id().to_owned());
    a.send_text(a.conversation_with(&m_id).unwrap(), "first to m")
        .await
        .unwrap();
    // A's card for B carried the wrong key: B's items wait for acceptance.
    let wrong = m.with_account(|x| Ok(x.identity_key())).unwrap();
    a.with_account(|x| x.pin_identity(&b_id, &wrong)).unwrap();
    for i in 0..20 {
        queue(&a, if i % 2 == 0 { &b_id } else { &m_id }, &format!("t{i}"));
    }
    let report = a.sync(soon()).await.unwrap();
    assert_eq!(report.sent, 10);
    assert_eq!(
        report.events,
        [SyncEvent::IdentityChanged {
            remote_account: b_id.clone()
        }]
    );
    let want_m: Vec<String> = std::iter::once("first to m".to_owned())
        .chain((1..20).step_by(2).map(|i| format!("t{i}")))
        .collect();
    m.sync(soon()).await.unwrap();
    assert_eq!(bodies(&m, a.account_id()), want_m);

    a.with_account(|x| x.accept_identity_change(&b_id)).unwrap();
    assert_eq!(a.sync(soon()).await.unwrap().sent, 10);
    b.sync(soon()).await.unwrap();
    let want_b: Vec<String> = (0..20).step_by(2).map(|i| format!("t{i}")).collect();
    assert_eq!(bodies(&b, a.account_id()), want_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_cut_by_the_relay_going_away_resumes_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let b_id = b.account_id().to_owned();
    a.send_text(a.conversation_with(&b_id).unwrap(), "t-first")
        .await
        .unwrap();
    for i in 0..40 {
        queue(&a, &b_id, &format!("t{i}"));
    }
    // The relay goes away mid-flush: whatever it took stays taken, the
    // rest waits in the outbox.
    let a = std::sync::Arc::new(a);
    let flush = {
        let a = a.clone();
        tokio::spawn(async move { a.flush_outbox(None).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    r.stop().await;
    let _ = flush.await.unwrap();
    r.restart().await;
    a.flush_outbox(None).await.unwrap();
    // The outbox is empty: everything went, once.
    assert_eq!(a.flush_outbox(None).await.unwrap(), 0);
    b.sync(soon()).await.unwrap();
    let want: Vec<String> = std::iter::once("t-first".to_owned())
        .chain((0..40).map(|i| format!("t{i}")))
        .collect();
    assert_eq!(bodies(&b, a.account_id()), want);
}
