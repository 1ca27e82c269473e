//! Appointment reminders end to end over a real relay on loopback and real
//! SQLCipher files: a therapist introduces the practice's bot, the bot's
//! reminder reaches the client with buttons, the client answers (a second
//! tap changes nothing), the bot hears the answer from its durable inbox
//! and acknowledges it to the client and forwards it to the therapist. A
//! reminder from a bot nobody introduced, or from the introduced account
//! under another identity key, is an ordinary text.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::proto::content::{reminder::State, AppointmentStatus, Reminder};
use alcove_core::reminders::{InboxItem, ReminderChoice};
use alcove_core::{Client, DbKey, Error, MessageKind, StorageLayout, SyncEvent};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn in_a_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000
}

fn reminder(appointment_ref: &str, starts_at_ms: u64, state: State) -> Reminder {
    Reminder {
        appointment_ref: appointment_ref.into(),
        starts_at_ms,
        time_zone: "America/New_York".into(),
        state: state as i32,
        text: "Reminder: your appointment is tomorrow at 14:00.".into(),
        choices: ReminderChoice::ALL
            .iter()
            .map(|c| c.to_wire() as i32)
            .collect(),
    }
}

struct Practice {
    therapist: Client,
    client: Client,
    bot: Client,
}

async fn practice(r: &Relay, dir: &Path, introduce: bool) -> Practice {
    let therapist = Client::enroll(&dir.join("t.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    let bot = Client::enroll(&dir.join("b.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    bot.with_account(|a| a.set_bot_mode(true)).unwrap();
    if introduce {
        let key = bot.with_account(|a| Ok(a.identity_key())).unwrap();
        let id = bot.account_id().to_owned();
        therapist
            .with_account(|a| a.introduce_bot(&id, &key))
            .unwrap();
    }
    let card = therapist.invite_card(&r.invite(), None).unwrap().encode();
    let client = Client::enroll_by_card(
        &dir.join("c.db"),
        &DbKey::random(),
        &card,
        "J.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    // The therapist hears the client join and answers with the bot's
    // introduction; the client takes it.
    therapist.sync(soon()).await.unwrap();
    client.sync(soon()).await.unwrap();
    Practice {
        therapist,
        client,
        bot,
    }
}

async fn send_reminder(bot: &Client, to: &str, r: Reminder) {
    bot.with_account(|a| a.bot_transaction(|tx| tx.queue_reminder(to, r)))
        .unwrap();
    assert_eq!(bot.flush_outbox(None).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_answered_acknowledged_and_forwarded_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let p = practice(&r, dir.path(), true).await;
    let client_id = p.client.account_id().to_owned();
    let starts = in_a_day();
    send_reminder(&p.bot, &client_id, reminder("a1", starts, State::Upcoming)).await;

    let report = p.client.sync(soon()).await.unwrap();
    let to_bot = p.client.conversation_with(p.bot.account_id()).unwrap();
    let row = report
        .events
        .iter()
        .find_map(|e| match e {
            SyncEvent::ReminderReceived {
                conversation,
                message_row,
            } if *conversation == to_bot => Some(*message_row),
            _ => None,
        })
        .expect("a reminder event");
    let view = p.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.starts_at_ms, starts);
    assert_eq!(view.choices, ReminderChoice::ALL.to_vec());
    assert_eq!(view.reply, None);
    let msg = p.client.with_account(|a| a.message(row)).unwrap().unwrap();
    assert_eq!(msg.kind, MessageKind::Reminder);

    // Tap Confirm twice: one reply goes.
    let first = p
        .client
        .reply_to_reminder(row, ReminderChoice::Confirm)
        .await
        .unwrap()
        .unwrap();
    assert!(first.sent);
    assert!(p
        .client
        .reply_to_reminder(row, ReminderChoice::Confirm)
        .await
        .unwrap()
        .is_none());
    let reply = p
        .client
        .with_account(|a| a.message(first.message_row))
        .unwrap()
        .unwrap();
    assert_eq!(
        (reply.kind, reply.body.as_str()),
        (MessageKind::ReminderReply, "Confirm")
    );

    // The bot hears one reply, from its durable inbox.
    p.bot.sync(soon()).await.unwrap();
    let inbox = p.bot.with_account(|a| a.bot_inbox(10)).unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let InboxItem::Reply {
        id,
        from,
        appointment_ref,
        choice,
        ..
    } = &inbox[0]
    else {
        panic!("not a reply: {inbox:?}")
    };
    assert_eq!(
        (from.as_str(), appointment_ref.as_str(), *choice),
        (client_id.as_str(), "a1", ReminderChoice::Confirm)
    );

    // It acknowledges to the client and forwards to the therapist, and
    // the item is done, in one transaction.
    let therapist_id = p.therapist.account_id().to_owned();
    let status = |client_account: &str| AppointmentStatus {
        appointment_ref: "a1".into(),
        starts_at_ms: starts,
        time_zone: "America/New_York".into(),
        choice: ReminderChoice::Confirm.to_wire() as i32,
        accepted: true,
        client_account: client_account.into(),
        text: "Confirmed: your appointment tomorrow at 14:00.".into(),
    };
    let id = *id;
    p.bot
        .with_account(|a| {
            a.bot_transaction(|tx| {
                tx.queue_status(&client_id, status(""))?;
                tx.queue_status(&therapist_id, status(&client_id))?;
                tx.inbox_done(id)
            })
        })
        .unwrap();
    assert_eq!(p.bot.flush_outbox(None).await.unwrap(), 2);
    assert!(p.bot.with_account(|a| a.bot_inbox(10)).unwrap().is_empty());

    let report = p.client.sync(soon()).await.unwrap();
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::AppointmentUpdated { conversation, .. } if *conversation == to_bot)));
    let view = p.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.reply, Some(ReminderChoice::Confirm));
    assert_eq!(view.acknowledged, Some((ReminderChoice::Confirm, true)));

    let report = p.therapist.sync(soon()).await.unwrap();
    let to_client = p.therapist.conversation_with(&client_id).unwrap();
    let update_row = report
        .events
        .iter()
        .find_map(|e| match e {
            SyncEvent::AppointmentUpdated {
                conversation,
                message_row,
            } if *conversation == to_client => Some(*message_row),
            _ => None,
        })
        .expect("the therapist sees the answer in the client's conversation");
    let update = p
        .therapist
        .with_account(|a| a.message(update_row))
        .unwrap()
        .unwrap();
    assert_eq!(update.kind, MessageKind::AppointmentUpdate);
    assert!(update.body.starts_with("Confirmed"));

    // Cancelled by the bot later: the buttons go.
    send_reminder(&p.bot, &client_id, reminder("a1", starts, State::Cancelled)).await;
    p.client.sync(soon()).await.unwrap();
    let view = p.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.state, State::Cancelled);
    assert!(view.choices.is_empty());
    let e = p
        .client
        .reply_to_reminder(row, ReminderChoice::Reschedule)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_from_a_bot_nobody_introduced_is_an_ordinary_text() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let p = practice(&r, dir.path(), false).await;
    let client_id = p.client.account_id().to_owned();
    send_reminder(
        &p.bot,
        &client_id,
        reminder("a1", in_a_day(), State::Upcoming),
    )
    .await;
    let report = p.client.sync(soon()).await.unwrap();
    assert!(!report
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::ReminderReceived { .. })));
    let to_bot = p.client.conversation_with(p.bot.account_id()).unwrap();
    let msgs = p
        .client
        .with_account(|a| a.messages(to_bot, None, 10))
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, MessageKind::Text);
    assert!(p
        .client
        .with_account(|a| a.reminder(msgs[0].id))
        .unwrap()
        .is_none());
    assert!(p
        .client
        .with_account(|a| a.trusted_bots())
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_introduced_account_under_another_identity_key_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let p = practice(&r, dir.path(), false).await;
    // The therapist introduces the bot's account with someone else's key
    // (say, the bot was re-enrolled and an old key was copied).
    let wrong_key = p.therapist.with_account(|a| Ok(a.identity_key())).unwrap();
    let bot_id = p.bot.account_id().to_owned();
    let other = Client::enroll(
        &dir.path().join("o.db"),
        &DbKey::random(),
        &r.url(),
        &r.invite(),
    )
    .await
    .unwrap();
    let other_key = other.with_account(|a| Ok(a.identity_key())).unwrap();
    assert_ne!(other_key, wrong_key);
    p.therapist
        .with_account(|a| a.introduce_bot(&bot_id, &other_key))
        .unwrap();
    p.therapist.flush_outbox(None).await.unwrap();
    p.client.sync(soon()).await.unwrap();
    assert_eq!(
        p.client.with_account(|a| a.trusted_bots()).unwrap().len(),
        1
    );

    let client_id = p.client.account_id().to_owned();
    p.bot
        .with_account(|a| {
            a.bot_transaction(|tx| {
                tx.queue_reminder(&client_id, reminder("a1", in_a_day(), State::Upcoming))
            })
        })
        .unwrap();
    // The client's pinned key for the bot is not the bot's: the client
    // hears of an identity change and keeps the reminder as a plain text,
    // without buttons.
    let _ = p.bot.flush_outbox(None).await;
    let report = p.client.sync(soon()).await.unwrap();
    assert!(report.events.contains(&SyncEvent::IdentityChanged {
        remote_account: bot_id.clone()
    }));
    assert!(!report
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::ReminderReceived { .. })));
    let to_bot = p.client.conversation_with(&bot_id).unwrap();
    let msgs = p
        .client
        .with_account(|a| a.messages(to_bot, None, 10))
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, MessageKind::Text);
    assert!(p
        .client
        .with_account(|a| a.reminder(msgs[0].id))
        .unwrap()
        .is_none());
}
