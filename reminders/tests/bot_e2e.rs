//! The reminder bot end to end: a real relay on loopback, real SQLCipher
//! accounts for the therapist, the client and the bot, and an injected
//! clock (no test sleeps for a reminder). Covers a DST change in the
//! client's zone and quiet hours, replies (buttons and typed, repeated
//! and conflicting) acknowledged and forwarded to the therapist, a restart
//! between scheduling and sending, clock jumps both ways, a relay outage,
//! and feed re-imports with a moved, a cancelled and a recurring
//! appointment.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::proto::content::reminder::State;
use alcove_core::reminders::ReminderChoice;
use alcove_core::{Client, DbKey, Message, MessageKind, StorageLayout, SyncEvent};
use alcove_reminders::appointments::{self, Incoming};
use alcove_reminders::{status, Bot, BotConfig};
use alcove_testkit::relay::Relay;
use chrono::{TimeZone, Utc};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    relay: Relay,
    therapist: Client,
    client: Client,
    bot: Bot,
    config: BotConfig,
}

fn write_key(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, hex::encode(alcove_core::random_bytes(32))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn world(feed: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let relay = Relay::start(&d).await;
    let therapist = Client::enroll(
        &d.join("t.db"),
        &DbKey::random(),
        &relay.url(),
        &relay.invite(),
    )
    .await
    .unwrap();
    write_key(&d.join("bot.key"));
    std::fs::write(d.join("feed.ics"), feed).unwrap();
    std::fs::write(
        d.join("bot.toml"),
        format!(
            r#"relay = "{}"
database = "bot.db"
key_file = "bot.key"
practice_name = "Harbor Counseling"
feed = "feed.ics"
clients = "clients.csv"
status_file = "status.json"
offsets = ["2d", "2h"]
quiet_hours = {{ start = "21:00", end = "08:00" }}
default_time_zone = "America/New_York"
horizon_days = 60
poll_seconds = 60
"#,
            relay.url()
        ),
    )
    .unwrap();
    // The mapping needs the client's account: written after enrolment.
    std::fs::write(d.join("clients.csv"), "uri,account,time_zone\n").unwrap();
    let config = BotConfig::load(&d.join("bot.toml")).unwrap();
    let bot = Bot::enroll(config.clone(), &relay.invite()).await.unwrap();
    let (bot_id, bot_key) = bot.identity().unwrap();
    therapist
        .with_account(|a| a.introduce_bot(&bot_id, &bot_key))
        .unwrap();
    let card = therapist
        .invite_card(&relay.invite(), None)
        .unwrap()
        .encode();
    let client = Client::enroll_by_card(
        &d.join("c.db"),
        &DbKey::random(),
        &card,
        "J.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    therapist.sync(soon()).await.unwrap();
    client.sync(soon()).await.unwrap();
    assert_eq!(client.with_account(|a| a.trusted_bots()).unwrap().len(), 1);
    std::fs::write(
        d.join("clients.csv"),
        format!(
            "uri,account,time_zone\nmailto:client@example.org,{},America/New_York\nmailto:dr@example.org,{},\n",
            client.account_id(),
            therapist.account_id()
        ),
    )
    .unwrap();
    drop(bot);
    let bot = Bot::open(config.clone()).unwrap();
    World {
        _dir: dir,
        dir: d,
        relay,
        therapist,
        client,
        bot,
        config,
    }
}

fn event(uid: &str, start_local: &str, extra: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART;TZID=America/New_York:{start_local}\r\nDURATION:PT50M\r\nSUMMARY:Session (private)\r\nORGANIZER:mailto:dr@example.org\r\nATTENDEE;CN=Jane:mailto:client@example.org\r\n{extra}END:VEVENT\r\n"
    )
}

fn calendar(events: &[String]) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Practice//EN\r\n{}END:VCALENDAR\r\n",
        events.concat()
    )
}

/// The client's messages from the bot, oldest first.
fn from_bot(w: &World) -> Vec<Message> {
    let (bot_id, _) = w.bot.identity().unwrap();
    let c = w.client.conversation_with(&bot_id).unwrap();
    let mut m = w.client.with_account(|a| a.messages(c, None, 100)).unwrap();
    m.reverse();
    m.into_iter().filter(|m| !m.outgoing).collect()
}

fn reminders(w: &World) -> Vec<Message> {
    from_bot(w)
        .into_iter()
        .filter(|m| m.kind == MessageKind::Reminder)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dst_quiet_hours_and_replies_reach_the_bot_and_the_therapist() {
    // Monday 15 March 2027, 09:00 in New York: the day after the clocks
    // went forward (14 March).
    let mut w = world(&calendar(&[event("a@practice", "20270315T090000", "")])).await;
    let r = w.bot.round(utc(2027, 3, 1, 0, 0)).await.unwrap();
    assert_eq!(r.import.unwrap().added, 1);
    assert_eq!(r.tick.sent, 0);
    let st = w.bot.engine(|a| status::statuses(a)).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].starts_at, "2027-03-15T13:00:00Z");
    // "2d": Saturday 09:00 EST, before the change (14:00 UTC, 47 h
    // earlier); "2h": 07:00 EDT is inside quiet hours (21:00-08:00), so
    // it goes at 21:00 EDT the evening before.
    let due: Vec<_> = st[0].reminders.iter().map(|r| r.due_at.as_str()).collect();
    assert_eq!(due, ["2027-03-13T14:00:00Z", "2027-03-15T01:00:00Z"]);

    assert_eq!(
        w.bot
            .round(utc(2027, 3, 13, 13, 59))
            .await
            .unwrap()
            .tick
            .sent,
        0
    );
    let r = w.bot.round(utc(2027, 3, 13, 14, 0)).await.unwrap();
    assert_eq!((r.tick.sent, r.flushed), (1, 1));
    let report = w.client.sync(soon()).await.unwrap();
    let got = reminders(&w);
    assert_eq!(got.len(), 1);
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, SyncEvent::ReminderReceived { message_row, .. } if *message_row == got[0].id)));
    assert!(
        got[0].body.contains("Monday, 15 March 2027 at 9:00 AM EDT"),
        "{}",
        got[0].body
    );
    assert!(got[0].body.contains("Harbor Counseling"));
    assert!(
        !got[0].body.contains("Session"),
        "no calendar text reaches the client"
    );
    let row = got[0].id;
    let view = w.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.starts_at_ms as i64, utc(2027, 3, 15, 13, 0));
    assert_eq!(view.choices, ReminderChoice::ALL.to_vec());

    // A button, tapped twice: one reply.
    assert!(w
        .client
        .reply_to_reminder(row, ReminderChoice::Confirm)
        .await
        .unwrap()
        .is_some());
    assert!(w
        .client
        .reply_to_reminder(row, ReminderChoice::Confirm)
        .await
        .unwrap()
        .is_none());
    let r = w.bot.round(utc(2027, 3, 13, 14, 5)).await.unwrap();
    assert_eq!(r.replies.applied, 1);
    assert_eq!(r.flushed, 2, "the acknowledgement and the therapist's copy");
    w.client.sync(soon()).await.unwrap();
    let view = w.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.acknowledged, Some((ReminderChoice::Confirm, true)));
    let report = w.therapist.sync(soon()).await.unwrap();
    let to_client = w
        .therapist
        .conversation_with(w.client.account_id())
        .unwrap();
    let forwarded: Vec<_> = w
        .therapist
        .with_account(|a| a.messages(to_client, None, 50))
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::AppointmentUpdate)
        .collect();
    assert_eq!(forwarded.len(), 1);
    assert!(
        forwarded[0].body.contains("confirmed"),
        "{}",
        forwarded[0].body
    );
    assert!(report.events.iter().any(|e| matches!(e, SyncEvent::AppointmentUpdated { conversation, .. } if *conversation == to_client)));

    // Typed "C" again: the same answer, nothing changes, nothing is sent.
    let (bot_id, _) = w.bot.identity().unwrap();
    let to_bot = w.client.conversation_with(&bot_id).unwrap();
    w.client.send_text(to_bot, "C").await.unwrap();
    let r = w.bot.round(utc(2027, 3, 13, 14, 10)).await.unwrap();
    assert_eq!((r.replies.repeated, r.flushed), (1, 0));

    // Typed "cancel" changes the answer: cancelled, the 2h reminder goes
    // with it, the therapist hears of it.
    w.client.send_text(to_bot, "cancel").await.unwrap();
    let r = w.bot.round(utc(2027, 3, 13, 14, 15)).await.unwrap();
    assert_eq!((r.replies.applied, r.flushed), (1, 2));
    w.therapist.sync(soon()).await.unwrap();
    let last = w
        .therapist
        .with_account(|a| a.messages(to_client, None, 1))
        .unwrap();
    assert!(last[0].body.contains("cancelled"), "{}", last[0].body);

    // A tap on the old buttons before the phone heard of the cancellation:
    // refused by the bot, and the client is told.
    w.client
        .reply_to_reminder(row, ReminderChoice::Reschedule)
        .await
        .unwrap()
        .unwrap();
    let r = w.bot.round(utc(2027, 3, 13, 14, 20)).await.unwrap();
    assert_eq!((r.replies.refused, r.flushed), (1, 1));
    w.client.sync(soon()).await.unwrap();
    let view = w.client.with_account(|a| a.reminder(row)).unwrap().unwrap();
    assert_eq!(view.acknowledged, Some((ReminderChoice::Reschedule, false)));
    // The accepted cancellation is what the phone keeps: no buttons.
    assert_eq!(view.reply, Some(ReminderChoice::Cancel));
    assert!(view.choices.is_empty());

    // Something unreadable gets the how-to-reply answer.
    w.client
        .send_text(to_bot, "can we talk about my week?")
        .await
        .unwrap();
    let r = w.bot.round(utc(2027, 3, 13, 14, 25)).await.unwrap();
    assert_eq!(r.replies.not_understood, 1);

    // The 2h reminder's time comes: nothing, the appointment is cancelled.
    let r = w.bot.round(utc(2027, 3, 15, 1, 0)).await.unwrap();
    assert_eq!(r.tick.sent, 0);
    let st = w.bot.engine(|a| status::statuses(a)).unwrap();
    assert_eq!((st[0].state, st[0].reply), ("cancelled", Some("cancel")));
    assert_eq!(st[0].reminders[1].state, "cancelled");
    // The status file says the same, and names no one.
    let file = std::fs::read_to_string(w.dir.join("status.json")).unwrap();
    assert!(file.contains("\"cancel\"") && file.contains("a@practice"));
    assert!(!file.contains(w.client.account_id()));
    assert_eq!(reminders(&w).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_clock_jumps_and_a_relay_outage_send_each_reminder_once() {
    let mut w = world(&calendar(&[])).await;
    let client = w.client.account_id().to_owned();
    // Wednesday 10 February 2027, 10:00 EST.
    let starts = utc(2027, 2, 10, 15, 0);
    let cfg = w.config.clone();
    let add = |uid: &str, starts: i64| Incoming {
        uid: uid.into(),
        occurrence: 0,
        client: client.clone(),
        therapist: None,
        starts_at: starts,
        time_zone: chrono_tz::America::New_York,
        cancelled: false,
        source: "cli",
    };
    let now = utc(2027, 2, 1, 0, 0);
    w.bot
        .engine(|a| appointments::add(a, &cfg, add("cli-1", starts), now))
        .unwrap();
    let due_2d = utc(2027, 2, 8, 15, 0);

    // The relay is down when the first reminder is due: it is marked
    // sent and waits in the outbox.
    w.relay.stop().await;
    let r = w.bot.round(due_2d).await.unwrap();
    assert_eq!((r.tick.sent, r.relay_reached), (1, false));
    // The bot restarts (a new process opens the same database).
    drop(w.bot);
    w.bot = Bot::open(w.config.clone()).unwrap();
    w.relay.restart().await;
    // The sync of the next round delivers what waited; nothing is sent
    // twice.
    let r = w.bot.round(due_2d + 60_000).await.unwrap();
    assert!(r.relay_reached);
    assert_eq!(r.tick.sent, 0);
    w.client.sync(soon()).await.unwrap();
    assert_eq!(reminders(&w).len(), 1);

    // The clock jumps back a day, then returns: nothing goes again.
    for t in [due_2d - 86_400_000, due_2d, due_2d + 1] {
        let r = w.bot.round(t).await.unwrap();
        assert_eq!((r.tick.sent, r.flushed), (0, 0));
    }
    // Forward past the 2h reminder's time (08:00 EST), before the start:
    // sent late, once.
    let r = w.bot.round(starts - 30 * 60_000).await.unwrap();
    assert_eq!(r.tick.sent, 1);
    let r = w.bot.round(starts - 29 * 60_000).await.unwrap();
    assert_eq!(r.tick.sent, 0);
    w.client.sync(soon()).await.unwrap();
    assert_eq!(reminders(&w).len(), 2);

    // An appointment whose reminders all fell due while the bot was down
    // and whose time has passed: nothing goes (the later one skipped, the
    // earlier superseded).
    let later = utc(2027, 2, 12, 15, 0);
    w.bot
        .engine(|a| appointments::add(a, &cfg, add("cli-2", later), starts))
        .unwrap();
    let r = w.bot.round(later + 3_600_000).await.unwrap();
    assert_eq!((r.tick.sent, r.tick.skipped, r.tick.superseded), (0, 1, 1));
    w.client.sync(soon()).await.unwrap();
    assert_eq!(reminders(&w).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_reimports_move_cancel_and_expand_recurring_appointments() {
    // A on Monday 5 April 2027 14:00, B on Tuesday 6 April, R weekly on
    // Tuesdays 10:00 from 6 April, four times, without 13 April.
    let v1 = calendar(&[
        event("a@practice", "20270405T140000", ""),
        event("b@practice", "20270406T160000", ""),
        event(
            "r@practice",
            "20270406T100000",
            "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=America/New_York:20270413T100000\r\n",
        ),
    ]);
    let mut w = world(&v1).await;
    let now = utc(2027, 4, 1, 0, 0);
    let r = w.bot.round(now).await.unwrap().import.unwrap();
    assert_eq!((r.added, r.unchanged, r.cancelled), (5, 0, 0));
    // The same feed again: nothing changes.
    let r = w.bot.import_feed(now, true).unwrap().unwrap();
    assert_eq!((r.added, r.moved, r.cancelled, r.unchanged), (0, 0, 0, 5));
    let st = w.bot.engine(|a| status::statuses(a)).unwrap();
    let r_starts: Vec<_> = st
        .iter()
        .filter(|s| s.uid == "r@practice")
        .map(|s| s.starts_at.as_str())
        .collect();
    assert_eq!(
        r_starts,
        [
            "2027-04-06T14:00:00Z",
            "2027-04-20T14:00:00Z",
            "2027-04-27T14:00:00Z"
        ]
    );

    // A's 2d reminder goes (Saturday 3 April 14:00 EDT).
    let r = w.bot.round(utc(2027, 4, 3, 18, 0)).await.unwrap();
    assert_eq!(r.tick.sent, 1);

    // A moves to Wednesday 7 April, B is cancelled, one occurrence of R
    // is cancelled by an override.
    let v2 = calendar(&[
        event("a@practice", "20270407T140000", "SEQUENCE:1\r\n"),
        event("b@practice", "20270406T160000", "STATUS:CANCELLED\r\n"),
        event(
            "r@practice",
            "20270406T100000",
            "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=America/New_York:20270413T100000\r\n",
        ),
        event(
            "r@practice",
            "20270420T100000",
            "RECURRENCE-ID;TZID=America/New_York:20270420T100000\r\nSTATUS:CANCELLED\r\n",
        ),
    ]);
    std::fs::write(w.dir.join("feed.ics"), v2).unwrap();
    let r = w.bot.round(utc(2027, 4, 3, 19, 0)).await.unwrap();
    let imp = r.import.unwrap();
    assert_eq!((imp.moved, imp.cancelled, imp.unchanged), (1, 2, 2));
    // Only A's client had heard of it: one "moved" message (and no new
    // reminder: the moved message carries the buttons).
    assert_eq!(r.tick.sent, 0);
    w.client.sync(soon()).await.unwrap();
    let got = reminders(&w);
    assert_eq!(got.len(), 2);
    let moved = w
        .client
        .with_account(|a| a.reminder(got[1].id))
        .unwrap()
        .unwrap();
    assert_eq!(moved.state, State::Moved);
    assert_eq!(moved.starts_at_ms as i64, utc(2027, 4, 7, 18, 0));
    assert!(got[1].body.contains("has moved to"), "{}", got[1].body);

    // A vanishes from the feed: cancelled, and its client told.
    let v3 = calendar(&[event(
        "r@practice",
        "20270406T100000",
        "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=America/New_York:20270413T100000\r\n",
    )]);
    std::fs::write(w.dir.join("feed.ics"), v3).unwrap();
    let r = w.bot.round(utc(2027, 4, 3, 20, 0)).await.unwrap();
    assert_eq!(r.import.unwrap().cancelled, 1);
    w.client.sync(soon()).await.unwrap();
    let got = reminders(&w);
    assert_eq!(got.len(), 3);
    let view = w
        .client
        .with_account(|a| a.reminder(got[2].id))
        .unwrap()
        .unwrap();
    assert_eq!(view.state, State::Cancelled);
    assert!(view.choices.is_empty());
    // And the first reminder's buttons are gone too.
    assert!(w
        .client
        .with_account(|a| a.reminder(got[0].id))
        .unwrap()
        .unwrap()
        .choices
        .is_empty());
}
