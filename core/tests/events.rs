//! The events a sync or send reports (for the shells' listeners), against a
//! real relay on loopback and real SQLCipher files.

use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey, Error, SyncEvent};
use alcove_testkit::relay::Relay;

async fn enroll(r: &Relay, dir: &std::path::Path, name: &str) -> Client {
    Client::enroll(&dir.join(name), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn identity_changed(id: &str) -> SyncEvent {
    SyncEvent::IdentityChanged {
        remote_account: id.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_reports_messages_and_receipts_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let (a_id, b_id) = (a.account_id().to_owned(), b.account_id().to_owned());

    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            a.send_text(a.conversation_with(&b_id).unwrap(), &format!("m{i}"))
                .await
                .unwrap(),
        );
    }
    let report = b.sync(soon()).await.unwrap();
    assert_eq!(report.received, 3);
    let rows: Vec<i64> = report
        .events
        .iter()
        .map(|e| match e {
            SyncEvent::MessageReceived {
                conversation,
                message_row,
            } => {
                assert_eq!(*conversation, b.conversation_with(&a_id).unwrap());
                *message_row
            }
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(rows.len(), 3);
    // The rows are the stored messages, in the order sent.
    let bodies: Vec<String> = rows
        .iter()
        .map(|row| b.with_account(|a| a.message(*row)).unwrap().unwrap().body)
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2"]);

    // B reads two of them: A's next sync reports one read receipt
    // updating two messages, from B.
    let ids: Vec<Vec<u8>> = rows[..2]
        .iter()
        .map(|row| {
            b.with_account(|a| a.message(*row))
                .unwrap()
                .unwrap()
                .message_id
        })
        .collect();
    b.with_account(|acct| {
        let with_a = acct.conversation_with(&a_id)?;
        acct.compose_receipt(with_a, true, ids)
    })
    .unwrap();
    let report = b.sync(soon()).await.unwrap();
    assert_eq!(report.sent, 1);
    assert!(report.events.is_empty());
    let report = a.sync(soon()).await.unwrap();
    assert_eq!(
        report.events,
        [SyncEvent::ReceiptUpdated {
            conversation: Some(a.conversation_with(&b_id).unwrap()),
            read: true,
            updated: 2
        }]
    );
    // Nothing new: no events.
    assert!(b.sync(soon()).await.unwrap().events.is_empty());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_change_is_an_error_on_send_and_an_event_on_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let m = enroll(&r, dir.path(), "mallory.db").await;
    let (a_id, b_id) = (a.account_id().to_owned(), b.account_id().to_owned());

    // A's invite card for B carried the wrong key (here Mallory's): the
    // relay's bundle for B does not match it.
    let wrong = m.with_account(|a| Ok(a.identity_key())).unwrap();
    a.with_account(|a| a.pin_identity(&b_id, &wrong)).unwrap();
    let err = a
        .send_text(a.conversation_with(&b_id).unwrap(), "first")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::IdentityChanged {
            account_id: b_id.clone()
        }
    );
    // Nothing is lost: the text waits in the outbox, and every sync while
    // it waits reports the change once.
    let report = a.sync(soon()).await.unwrap();
    assert_eq!(report.sent, 0);
    assert_eq!(report.events, [identity_changed(&b_id)]);
    // Others are not held back.
    a.send_text(a.conversation_with(m.account_id()).unwrap(), "to mallory")
        .await
        .unwrap();

    a.with_account(|a| a.accept_identity_change(&b_id)).unwrap();
    let report = a.sync(soon()).await.unwrap();
    assert_eq!(report.sent, 1);
    assert!(report.events.is_empty());
    let report = b.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    assert_eq!(report.events.len(), 1);

    // Receive side: C pinned a wrong key for A; A's first message arrives
    // (stored, as Signal does) and the sync reports the change before it.
    let c = enroll(&r, dir.path(), "c.db").await;
    c.with_account(|a| a.pin_identity(&a_id, &wrong)).unwrap();
    a.send_text(a.conversation_with(c.account_id()).unwrap(), "hello c")
        .await
        .unwrap();
    let report = c.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    assert_eq!(report.events[0], identity_changed(&a_id));
    assert!(matches!(
        &report.events[1],
        SyncEvent::MessageReceived { conversation, .. } if *conversation == c.conversation_with(&a_id).unwrap()
    ));
    assert_eq!(report.events.len(), 2);
    // Replying is refused until accepted; the reply is kept.
    assert!(matches!(
        c.send_text(c.conversation_with(&a_id).unwrap(), "reply")
            .await,
        Err(Error::IdentityChanged { .. })
    ));
    // Already pending: a later message reports no new change.
    a.send_text(a.conversation_with(c.account_id()).unwrap(), "again")
        .await
        .unwrap();
    let report = c.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    assert!(matches!(
        &report.events[0],
        SyncEvent::MessageReceived { .. }
    ));
    // ...but the held reply meets it again in the outbox.
    assert_eq!(report.events[1..], [identity_changed(&a_id)]);
    c.with_account(|a| a.accept_identity_change(&a_id)).unwrap();
    assert_eq!(c.sync(soon()).await.unwrap().sent, 1);
    let report = a.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_bounded_on_a_large_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let a = enroll(&r, dir.path(), "a.db").await;
    let b = enroll(&r, dir.path(), "b.db").await;
    let n = alcove_core::MAX_EVENTS + 30;
    for i in 0..n {
        a.send_text(
            a.conversation_with(b.account_id()).unwrap(),
            &format!("m{i}"),
        )
        .await
        .unwrap();
    }
    let report = b.sync(soon()).await.unwrap();
    assert_eq!(report.received as usize, n);
    assert_eq!(report.events.len(), alcove_core::MAX_EVENTS);
    // The newest are kept: the last event is the last message.
    let SyncEvent::MessageReceived { message_row, .. } = report.events.last().unwrap() else {
        panic!("expected a message event");
    };
    let last = b
        .with_account(|a| a.message(*message_row))
        .unwrap()
        .unwrap();
    assert_eq!(last.body, format!("m{}", n - 1));
    r.stop().await;
}
