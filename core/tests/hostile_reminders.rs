//! Reminder content from peers who break the rules (real accounts, real
//! SQLCipher files, real libsignal sessions): a bot introduction from a
//! stranger or an unverified peer, malformed reminders, replies to an
//! account that is no bot, statuses from an untrusted bot or about a
//! stranger, a replayed reminder, and a thousand replies at once into a
//! bot's inbox. Each bad content is `Malformed` (acked, nothing kept).

mod support;

use alcove_core::proto::content::{
    content::Body, reminder::State, AppointmentStatus, BotIntroduction, Reminder, ReminderReply,
};
use alcove_core::reminders::{InboxItem, ReminderChoice};
use alcove_core::testing::encrypt_content;
use alcove_core::{Error, MessageKind};
use support::{envelope_for, single_envelope, Peer};

fn deliver(from: &mut Peer, to: &mut Peer, body: Body) -> alcove_core::EnvelopeOutcome {
    let out = encrypt_content(&mut from.account, &to.id(), body).unwrap();
    let mut got = to
        .account
        .receive(&[single_envelope(&from.account, &out)])
        .unwrap();
    got.remove(0)
}

fn malformed(o: &alcove_core::EnvelopeOutcome) {
    assert!(
        matches!(o.result, Err(Error::Malformed(_))),
        "{:?}",
        o.result
    );
    assert!(o.ackable() && o.events.is_empty());
}

fn talk(a: &mut Peer, b: &mut Peer) {
    let bundle = b.bundle();
    a.account.process_bundle(&b.id(), &bundle).unwrap();
    let bundle = a.bundle();
    b.account.process_bundle(&a.id(), &bundle).unwrap();
}

fn reminder(r: &str, tz: &str, text: &str) -> Reminder {
    Reminder {
        appointment_ref: r.into(),
        starts_at_ms: 4_000_000_000_000,
        time_zone: tz.into(),
        state: State::Upcoming as i32,
        text: text.into(),
        choices: vec![ReminderChoice::Confirm.to_wire() as i32],
    }
}

fn introduce(therapist: &mut Peer, client: &mut Peer, bot: &Peer) -> alcove_core::EnvelopeOutcome {
    deliver(
        therapist,
        client,
        Body::BotIntroduction(BotIntroduction {
            bot_account: bot.id(),
            bot_identity_key: bot.account.identity_key(),
        }),
    )
}

#[test]
fn introductions_only_from_a_verified_therapist() {
    let dir = tempfile::tempdir().unwrap();
    let mut therapist = Peer::create(dir.path(), "t");
    let mut client = Peer::create(dir.path(), "c");
    let mut stranger = Peer::create(dir.path(), "s");
    let bot = Peer::create(dir.path(), "b");
    talk(&mut therapist, &mut client);
    talk(&mut stranger, &mut client);
    client.account.conversation_with(&stranger.id()).unwrap();

    // A stranger with a conversation but an identity never verified.
    malformed(&introduce(&mut stranger, &mut client, &bot));
    // The therapist, pinned (as from the invite card): taken.
    let key = therapist.account.identity_key();
    client.account.pin_identity(&therapist.id(), &key).unwrap();
    client.account.conversation_with(&therapist.id()).unwrap();
    // Bad bodies from the therapist: not an account id, not a key, itself.
    for (account, key) in [
        ("not an id!".to_owned(), bot.account.identity_key()),
        (bot.id(), vec![5u8; 10]),
        (bot.id(), vec![9u8; 33]),
        (therapist.id(), therapist.account.identity_key()),
        (client.id(), client.account.identity_key()),
    ] {
        let o = deliver(
            &mut therapist,
            &mut client,
            Body::BotIntroduction(BotIntroduction {
                bot_account: account,
                bot_identity_key: key,
            }),
        );
        malformed(&o);
    }
    assert!(client.account.trusted_bots().unwrap().is_empty());
    let o = introduce(&mut therapist, &mut client, &bot);
    assert!(o.result.is_ok(), "{:?}", o.result);
    let bots = client.account.trusted_bots().unwrap();
    assert_eq!(bots.len(), 1);
    assert_eq!(
        (bots[0].account.as_str(), bots[0].introduced_by.as_str()),
        (bot.id().as_str(), therapist.id().as_str())
    );
}

#[test]
fn malformed_reminders_replies_and_statuses_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut therapist = Peer::create(dir.path(), "t");
    let mut client = Peer::create(dir.path(), "c");
    let mut bot = Peer::create(dir.path(), "b");
    talk(&mut therapist, &mut client);
    talk(&mut bot, &mut client);
    talk(&mut bot, &mut therapist);
    let key = therapist.account.identity_key();
    client.account.pin_identity(&therapist.id(), &key).unwrap();
    client.account.conversation_with(&therapist.id()).unwrap();
    assert!(introduce(&mut therapist, &mut client, &bot).result.is_ok());

    let long_ref = "r".repeat(65);
    let long_text = "x".repeat(1025);
    let bad = [
        reminder("a 1", "America/New_York", "ok"),
        reminder(&long_ref, "America/New_York", "ok"),
        reminder("", "America/New_York", "ok"),
        reminder("a1", "Mars/Olympus_Mons", "ok"),
        reminder("a1", "America/New_York", "bell\u{7}"),
        reminder("a1", "America/New_York", &long_text),
        reminder("a1", "America/New_York", "   "),
        Reminder {
            starts_at_ms: 0,
            ..reminder("a1", "America/New_York", "ok")
        },
        Reminder {
            state: 9,
            ..reminder("a1", "America/New_York", "ok")
        },
        Reminder {
            choices: vec![7],
            ..reminder("a1", "America/New_York", "ok")
        },
        Reminder {
            choices: vec![1, 1, 1, 1],
            ..reminder("a1", "America/New_York", "ok")
        },
    ];
    for r in bad {
        malformed(&deliver(&mut bot, &mut client, Body::Reminder(r)));
    }
    let to_bot = client.account.conversation_with(&bot.id()).unwrap();
    assert!(client
        .account
        .messages(to_bot, None, 10)
        .unwrap()
        .is_empty());

    // A reply to an account that is no bot (the therapist).
    malformed(&deliver(
        &mut client,
        &mut therapist,
        Body::ReminderReply(ReminderReply {
            appointment_ref: "a1".into(),
            choice: 1,
        }),
    ));
    // A status for an appointment the client was never told of.
    let status = AppointmentStatus {
        appointment_ref: "a1".into(),
        starts_at_ms: 4_000_000_000_000,
        time_zone: "America/New_York".into(),
        choice: 1,
        accepted: true,
        client_account: String::new(),
        text: "Confirmed.".into(),
    };
    malformed(&deliver(
        &mut bot,
        &mut client,
        Body::AppointmentStatus(status.clone()),
    ));
    // To the therapist, from a bot it never introduced.
    let forwarded = AppointmentStatus {
        client_account: client.id(),
        ..status.clone()
    };
    malformed(&deliver(
        &mut bot,
        &mut therapist,
        Body::AppointmentStatus(forwarded.clone()),
    ));
    // Introduced, but about an account the therapist has no conversation with.
    let (bot_id, bot_key) = (bot.id(), bot.account.identity_key());
    therapist.account.introduce_bot(&bot_id, &bot_key).unwrap();
    malformed(&deliver(
        &mut bot,
        &mut therapist,
        Body::AppointmentStatus(forwarded.clone()),
    ));
    therapist.account.conversation_with(&client.id()).unwrap();
    let o = deliver(&mut bot, &mut therapist, Body::AppointmentStatus(forwarded));
    assert!(o.result.is_ok(), "{:?}", o.result);

    // A good reminder, then the same envelope replayed: stored once.
    let out = encrypt_content(
        &mut bot.account,
        &client.id(),
        Body::Reminder(reminder("a1", "America/New_York", "Your appointment.")),
    )
    .unwrap();
    let env = single_envelope(&bot.account, &out);
    let first = client.account.receive(std::slice::from_ref(&env)).unwrap();
    assert!(first[0].result.is_ok());
    let again = client.account.receive(&[env]).unwrap();
    assert!(again[0].result.is_err());
    let msgs = client.account.messages(to_bot, None, 10).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, MessageKind::Reminder);
}

#[test]
fn a_thousand_replies_at_once_all_reach_the_bots_inbox_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Peer::create(dir.path(), "b");
    let mut client = Peer::create(dir.path(), "c");
    talk(&mut bot, &mut client);
    bot.account.set_bot_mode(true).unwrap();
    let envelopes: Vec<_> = (0..1000)
        .map(|i| {
            let out = encrypt_content(
                &mut client.account,
                &bot.id(),
                Body::ReminderReply(ReminderReply {
                    appointment_ref: format!("a{i}"),
                    choice: 1 + (i % 3),
                }),
            )
            .unwrap();
            envelope_for(&client.account, &out.messages[0])
        })
        .collect();
    for page in envelopes.chunks(100) {
        let got = bot.account.receive(page).unwrap();
        assert!(got.iter().all(|o| o.result.is_ok()));
    }
    let inbox = bot.account.bot_inbox(2000).unwrap();
    assert_eq!(inbox.len(), 1000);
    for (i, item) in inbox.iter().enumerate() {
        let InboxItem::Reply {
            appointment_ref,
            choice,
            ..
        } = item
        else {
            panic!("{item:?}")
        };
        assert_eq!(appointment_ref, &format!("a{i}"));
        assert_eq!(choice.to_wire() as i32, 1 + (i as i32 % 3));
    }
    assert_eq!(bot.account.bot_inbox(10).unwrap().len(), 10);
    // Typed text lands in the inbox too; done items go.
    let out = encrypt_content(
        &mut client.account,
        &bot.id(),
        Body::Text(alcove_core::proto::content::Text { body: "yes".into() }),
    )
    .unwrap();
    bot.account
        .receive(&[single_envelope(&client.account, &out)])
        .unwrap();
    let ids: Vec<i64> = bot
        .account
        .bot_inbox(2000)
        .unwrap()
        .iter()
        .map(|i| i.id())
        .collect();
    bot.account
        .bot_transaction(|tx| ids[..1000].iter().try_for_each(|id| tx.inbox_done(*id)))
        .unwrap();
    let left = bot.account.bot_inbox(10).unwrap();
    assert!(
        matches!(&left[..], [InboxItem::Text { body, .. }] if body == "yes"),
        "{left:?}"
    );
}
