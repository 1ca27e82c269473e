//! The practice's front door, end to end over a real relay on loopback and
//! real SQLCipher files: a therapist publishes a profile with a texting
//! policy; a client enrolled by card must accept it before texting (the
//! text is kept and goes after the consent); a new policy version asks
//! again; the therapist sees who accepted which version; the profile's
//! label is what the client's notifications show at the Pseudonym level.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::practice::{OfficeHours, PracticeProfile, TextingPolicy};
use alcove_core::{
    Client, DbKey, Error, MessageKind, NotificationPrivacy, StorageLayout, SyncEvent,
};
use alcove_testkit::relay::Relay;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn profile(policy_version: u32, policy: &str) -> PracticeProfile {
    PracticeProfile {
        revision: 0,
        display_name: "Dr. Rivera".into(),
        practice_name: "Harbor Counseling".into(),
        time_zone: "America/New_York".into(),
        hours: (1..=7)
            .map(|weekday| OfficeHours {
                weekday,
                start_minute: 0,
                end_minute: 1440,
            })
            .collect(),
        away: vec![],
        response_time_hours: 24,
        crisis_resources: "Call or text 988".into(),
        policy: Some(TextingPolicy {
            version: policy_version,
            text: policy.into(),
        }),
        notification_label: "HC".into(),
        retention_days: 0,
    }
}

async fn pair(r: &Relay, dir: &Path) -> (Client, Client) {
    let t = Client::enroll(&dir.join("t.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    t.with_account(|a| {
        a.publish_practice_profile(profile(
            1,
            "Texting is for scheduling. Not for emergencies.",
        ))
    })
    .unwrap();
    let card = t.invite_card(&r.invite(), None).unwrap().encode();
    let c = Client::enroll_by_card(
        &dir.join("c.db"),
        &DbKey::random(),
        &card,
        "J.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    // The therapist hears the client join and answers with the profile.
    t.sync(soon()).await.unwrap();
    (t, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_required_then_given_then_asked_again_for_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (t, c) = pair(&r, dir.path()).await;
    let report = c.sync(soon()).await.unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    assert!(report
        .events
        .contains(&SyncEvent::PracticeProfileUpdated { conversation: to_t }));
    let got = c
        .with_account(|a| a.practice_profile(to_t))
        .unwrap()
        .unwrap();
    assert_eq!(got.practice_name, "Harbor Counseling");
    let policy = c
        .with_account(|a| a.consent_required(to_t))
        .unwrap()
        .unwrap();
    assert_eq!(policy.version, 1);

    // No consent yet: a typed error, the text kept, nothing reaches the
    // therapist.
    assert_eq!(
        c.send_text(to_t, "can we move thursday?").await,
        Err(Error::ConsentRequired { policy_version: 1 })
    );
    let kept = c.with_account(|a| a.messages(to_t, None, 10)).unwrap();
    assert!(kept.iter().any(|m| m.body == "can we move thursday?"));
    assert_eq!(c.sync(soon()).await.unwrap().sent, 0);
    assert_eq!(t.sync(soon()).await.unwrap().received, 0);

    // Accepting another version than the current one is refused.
    assert!(matches!(
        c.with_account(|a| a.accept_policy(to_t, 2)),
        Err(Error::InvalidArgument(_))
    ));
    c.with_account(|a| a.accept_policy(to_t, 1)).unwrap();
    assert_eq!(c.with_account(|a| a.consent_required(to_t)).unwrap(), None);
    assert_eq!(
        c.sync(soon()).await.unwrap().sent,
        2,
        "consent, then the kept text"
    );
    let report = t.sync(soon()).await.unwrap();
    let to_c = t.conversation_with(c.account_id()).unwrap();
    // The consent arrives before the text it was held for.
    let consent_at = report
        .events
        .iter()
        .position(|e| {
            *e == SyncEvent::ConsentGiven {
                conversation: to_c,
                policy_version: 1,
            }
        })
        .expect("consent event");
    let text_at = report
        .events
        .iter()
        .position(|e| matches!(e, SyncEvent::MessageReceived { .. }))
        .expect("text event");
    assert!(consent_at < text_at);
    let seen = t.with_account(|a| a.consents(to_c)).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].account.as_str(), seen[0].policy_version),
        (c.account_id(), 1)
    );
    assert_eq!(seen[0].policy_sha256.len(), 32);
    // Kept on both sides.
    assert_eq!(c.with_account(|a| a.consents(to_t)).unwrap().len(), 1);

    // A new policy version asks again.
    t.with_account(|a| {
        a.publish_practice_profile(profile(
            2,
            "Texting is for scheduling. Replies within a day.",
        ))
    })
    .unwrap();
    t.sync(soon()).await.unwrap();
    c.sync(soon()).await.unwrap();
    assert_eq!(
        c.send_text(to_t, "ok").await,
        Err(Error::ConsentRequired { policy_version: 2 })
    );
    c.with_account(|a| a.accept_policy(to_t, 2)).unwrap();
    c.sync(soon()).await.unwrap();
    let report = t.sync(soon()).await.unwrap();
    assert_eq!(report.received, 1);
    let versions: Vec<u32> = t
        .with_account(|a| a.consents(to_c))
        .unwrap()
        .iter()
        .map(|x| x.policy_version)
        .collect();
    assert_eq!(versions, [1, 2]);

    // The therapist texting the client needs no consent.
    assert!(t.send_text(to_c, "see you thursday").await.unwrap().sent);
    // The profile's label is what the client's lock screen shows at the
    // Pseudonym level.
    c.with_account(|a| a.set_notification_privacy(NotificationPrivacy::Pseudonym))
        .unwrap();
    let report = c.sync(soon()).await.unwrap();
    assert_eq!(report.notifications.last().unwrap().title, "HC");
    // Open around the clock: no out-of-hours notice was written.
    let msgs = c.with_account(|a| a.messages(to_t, None, 50)).unwrap();
    assert!(msgs.iter().all(|m| m.kind == MessageKind::Text));
    r.stop().await;
}

/// 2026-03-09 (the Monday after New York's spring-forward), 12:59 UTC =
/// 08:59 EDT: a minute before a 9:00 opening. Under the winter offset
/// (EST) it would be 07:59.
fn monday_0859_edt() -> u64 {
    1_773_061_140_000
}

/// 13:00 UTC the same day = 09:00 EDT: open. (Under EST, 09:00 would be
/// 14:00 UTC: a zone offset computed before the change would still say
/// closed here.)
fn monday_0900_edt() -> u64 {
    1_773_061_200_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_outside_hours_across_a_dst_change_leaves_the_crisis_notice() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Relay::start(dir.path()).await;
    let (t, c) = pair(&r, dir.path()).await;
    // Monday 9:00-17:00 in New York, and an away week in April with a
    // covering contact.
    let mut p = profile(1, "Texting is for scheduling. Not for emergencies.");
    p.hours = vec![OfficeHours {
        weekday: 1,
        start_minute: 9 * 60,
        end_minute: 17 * 60,
    }];
    p.away = vec![alcove_core::practice::AwayPeriod {
        start_ms: 1_775_000_000_000,
        end_ms: 1_775_600_000_000,
        covering_contact: "Dr. Chen, 555-0100".into(),
    }];
    t.with_account(|a| a.publish_practice_profile(p)).unwrap();
    t.sync(soon()).await.unwrap();
    c.sync(soon()).await.unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    c.with_account(|a| a.accept_policy(to_t, 1)).unwrap();

    let notices = |c: &Client| {
        c.with_account(|a| a.messages(to_t, None, 100))
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == MessageKind::Notice)
            .map(|m| m.body)
            .rev() // oldest first
            .collect::<Vec<_>>()
    };
    // 08:59 EDT: closed; the client's own device writes the notice.
    c.with_account(|a| {
        a.set_clock(monday_0859_edt);
        assert!(matches!(
            a.availability(to_t)?,
            Some(alcove_core::practice::hours::Availability::Closed {
                next_open_ms: Some(t)
            }) if t == monday_0900_edt()
        ));
        a.compose_text(to_t, "running late")
    })
    .unwrap();
    let written = notices(&c);
    assert_eq!(written.len(), 1);
    assert!(
        written[0].contains("outside office hours"),
        "{}",
        written[0]
    );
    assert!(written[0].contains("Call or text 988"));
    assert!(written[0].contains("within 24 hours"));
    // 09:00 EDT: open, no notice.
    c.with_account(|a| {
        a.set_clock(monday_0900_edt);
        assert_eq!(
            a.availability(to_t)?,
            Some(alcove_core::practice::hours::Availability::Open)
        );
        a.compose_text(to_t, "here now")
    })
    .unwrap();
    assert_eq!(notices(&c).len(), 1);
    // During the away week: the notice names the covering contact.
    fn in_april() -> u64 {
        1_775_300_000_000
    }
    c.with_account(|a| {
        a.set_clock(in_april);
        a.compose_text(to_t, "are you back?")
    })
    .unwrap();
    let written = notices(&c);
    assert_eq!(written.len(), 2);
    assert!(written[1].contains("away") && written[1].contains("Dr. Chen, 555-0100"));
    // Notices never leave the device: the therapist gets the three texts.
    c.sync(soon()).await.unwrap();
    assert_eq!(t.sync(soon()).await.unwrap().received, 3);
    r.stop().await;
}
