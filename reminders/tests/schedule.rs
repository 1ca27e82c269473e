//! Reminder timing in the client's zone: calendar-day and exact offsets
//! across DST in both hemispheres, quiet hours across midnight, late
//! reminders, and the texts.

use alcove_reminders::schedule::{
    cancelled_text, due_at, in_quiet, late_action, moved_text, quiet_ends_after, reminder_text,
    LateAction, Offset, QuietHours, ScheduleError, REPLY_HINT,
};
use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

const H: i64 = 3_600_000;
const NY: Tz = chrono_tz::America::New_York;
const LONDON: Tz = chrono_tz::Europe::London;
const SYDNEY: Tz = chrono_tz::Australia::Sydney;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

fn off(s: &str) -> Offset {
    s.parse().unwrap()
}

fn quiet() -> QuietHours {
    QuietHours::parse("21:00", "08:00").unwrap()
}

#[test]
fn offsets_parse() {
    assert_eq!(off("2d"), Offset::Days(2));
    assert_eq!(off(" 2D "), Offset::Days(2));
    assert_eq!(off("48h"), Offset::Duration(Duration::hours(48)));
    assert_eq!(off("90m"), Offset::Duration(Duration::minutes(90)));
    assert_eq!(off("366d"), Offset::Days(366));
    for bad in [
        "", "d", "2", "-2d", "+2d", "2w", "0h", "0d", "1.5h", "2dd", "h2", "٣d", "2 d",
    ] {
        assert_eq!(
            bad.parse::<Offset>(),
            Err(ScheduleError::BadOffset),
            "{bad:?}"
        );
    }
    for long in ["367d", "8785h", "527041m", "99999999999h"] {
        assert_eq!(
            long.parse::<Offset>(),
            Err(ScheduleError::OffsetTooLong),
            "{long:?}"
        );
    }
    assert_eq!(off("2d").to_string(), "2d");
    assert_eq!(off("48h").to_string(), "48h");
    assert_eq!(off("90m").to_string(), "90m");
}

#[test]
fn quiet_hours_parse() {
    assert_eq!(
        quiet(),
        QuietHours {
            start_minute: 21 * 60,
            end_minute: 8 * 60
        }
    );
    for (s, e) in [
        ("24:00", "08:00"),
        ("21:60", "08:00"),
        ("8:00", "21:00"),
        ("21", "08:00"),
        ("", ""),
    ] {
        assert_eq!(
            QuietHours::parse(s, e),
            Err(ScheduleError::BadTime),
            "{s}-{e}"
        );
    }
    assert_eq!(
        QuietHours::parse("08:00", "08:00"),
        Err(ScheduleError::EmptyQuietHours)
    );
}

#[test]
fn days_before_spring_forward_new_york() {
    // Monday 9 March 2026 09:00 EDT, the day after spring-forward.
    let start = utc(2026, 3, 9, 13, 0);
    let two_days = due_at(start, NY, &off("2d"), None);
    // Saturday 7 March 09:00 EST: 47 hours earlier.
    assert_eq!(two_days, utc(2026, 3, 7, 14, 0));
    assert_eq!(start - two_days, 47 * H);
    // 48h is exact: Saturday 08:00 EST.
    assert_eq!(due_at(start, NY, &off("48h"), None), start - 48 * H);
}

#[test]
fn days_before_fall_back_new_york() {
    // Monday 2 November 2026 09:00 EST, the day after fall-back.
    let start = utc(2026, 11, 2, 14, 0);
    let two_days = due_at(start, NY, &off("2d"), None);
    assert_eq!(two_days, utc(2026, 10, 31, 13, 0));
    assert_eq!(start - two_days, 49 * H);
}

#[test]
fn due_time_in_the_nonexistent_hour_moves_to_the_first_valid_instant() {
    // Monday 9 March 2026 02:30 EDT; a day earlier is 02:30 on the
    // spring-forward Sunday, which does not exist: 03:00 EDT.
    let start = utc(2026, 3, 9, 6, 30);
    assert_eq!(due_at(start, NY, &off("1d"), None), utc(2026, 3, 8, 7, 0));
    // Monday 2 November 2026 01:30 EST; a day earlier is ambiguous: the
    // earlier one, 01:30 EDT.
    let start = utc(2026, 11, 2, 6, 30);
    assert_eq!(due_at(start, NY, &off("1d"), None), utc(2026, 11, 1, 5, 30));
}

#[test]
fn days_before_dst_london() {
    // Monday 30 March 2026 10:00 BST (BST began Sunday 29 March).
    let start = utc(2026, 3, 30, 9, 0);
    assert_eq!(
        due_at(start, LONDON, &off("2d"), None),
        utc(2026, 3, 28, 10, 0)
    );
    // Monday 26 October 2026 10:00 GMT (BST ended Sunday 25 October).
    let start = utc(2026, 10, 26, 10, 0);
    assert_eq!(
        due_at(start, LONDON, &off("2d"), None),
        utc(2026, 10, 24, 9, 0)
    );
}

#[test]
fn days_before_dst_sydney() {
    // Monday 5 October 2026 09:00 AEDT (DST began Sunday 4 October).
    let start = utc(2026, 10, 4, 22, 0);
    let due = due_at(start, SYDNEY, &off("2d"), None);
    assert_eq!(due, utc(2026, 10, 2, 23, 0)); // Saturday 09:00 AEST
    assert_eq!(start - due, 47 * H);
    // Monday 6 April 2026 09:00 AEST (DST ended Sunday 5 April).
    let start = utc(2026, 4, 5, 23, 0);
    let due = due_at(start, SYDNEY, &off("2d"), None);
    assert_eq!(due, utc(2026, 4, 3, 22, 0)); // Saturday 09:00 AEDT
    assert_eq!(start - due, 49 * H);
}

#[test]
fn quiet_hours_move_a_reminder_earlier_across_midnight() {
    // 08:30 EDT appointment, 2h reminder due 06:30: goes at 21:00 the evening before.
    let start = utc(2026, 6, 10, 12, 30);
    assert_eq!(
        due_at(start, NY, &off("2h"), Some(&quiet())),
        utc(2026, 6, 10, 1, 0)
    );
    // Due 22:00 the same evening: goes at 21:00.
    let start = utc(2026, 6, 11, 2, 0) + 2 * H; // 00:00 EDT on the 11th
    assert_eq!(
        due_at(start, NY, &off("2h"), Some(&quiet())),
        utc(2026, 6, 11, 1, 0)
    );
    // Outside quiet hours nothing moves.
    let start = utc(2026, 6, 10, 18, 0);
    assert_eq!(due_at(start, NY, &off("2h"), Some(&quiet())), start - 2 * H);
    // Quiet hours that do not wrap.
    let lunch = QuietHours::parse("12:00", "13:00").unwrap();
    let start = utc(2026, 6, 10, 18, 30); // 14:30 EDT; 2h before is 12:30
    assert_eq!(
        due_at(start, NY, &off("2h"), Some(&lunch)),
        utc(2026, 6, 10, 16, 0)
    );
    // In the client's zone, not the server's: 06:30 London is quiet there.
    let start = utc(2026, 6, 10, 7, 30); // 08:30 BST
    assert_eq!(
        due_at(start, LONDON, &off("2h"), Some(&quiet())),
        utc(2026, 6, 9, 20, 0)
    );
}

#[test]
fn quiet_boundaries_are_open() {
    let q = quiet();
    let nine_pm = utc(2026, 6, 10, 1, 0); // 21:00 EDT
    assert!(!in_quiet(nine_pm, NY, &q));
    assert!(in_quiet(nine_pm + 1, NY, &q));
    let eight_am = utc(2026, 6, 10, 12, 0);
    assert!(in_quiet(eight_am - 1, NY, &q));
    assert!(!in_quiet(eight_am, NY, &q));
    assert!(!in_quiet(utc(2026, 6, 10, 16, 0), NY, &q));
}

#[test]
fn quiet_ends_after_finds_the_morning() {
    let q = quiet();
    // 23:00 EDT → 08:00 EDT next day.
    assert_eq!(
        quiet_ends_after(utc(2026, 6, 10, 3, 0), NY, &q),
        utc(2026, 6, 10, 12, 0)
    );
    // 03:00 EDT → 08:00 EDT same day.
    assert_eq!(
        quiet_ends_after(utc(2026, 6, 10, 7, 0), NY, &q),
        utc(2026, 6, 10, 12, 0)
    );
    // Outside: itself.
    let noon = utc(2026, 6, 10, 16, 0);
    assert_eq!(quiet_ends_after(noon, NY, &q), noon);
    // Across spring-forward: 23:00 EST Saturday → 08:00 EDT Sunday.
    assert_eq!(
        quiet_ends_after(utc(2026, 3, 8, 4, 0), NY, &q),
        utc(2026, 3, 8, 12, 0)
    );
}

#[test]
fn late_actions() {
    let q = quiet();
    let start = utc(2026, 6, 10, 14, 0); // 10:00 EDT
                                         // The appointment has started (or is starting): skip.
    assert_eq!(late_action(start, start, NY, Some(&q)), LateAction::Skip);
    assert_eq!(late_action(start + H, start, NY, None), LateAction::Skip);
    // 09:00, outside quiet hours: send now, late.
    assert_eq!(
        late_action(start - H, start, NY, Some(&q)),
        LateAction::SendNow
    );
    assert_eq!(late_action(start - H, start, NY, None), LateAction::SendNow);
    // 05:00, quiet until 08:00, which is before 10:00: wait.
    assert_eq!(
        late_action(utc(2026, 6, 10, 9, 0), start, NY, Some(&q)),
        LateAction::WaitUntil(utc(2026, 6, 10, 12, 0))
    );
    // A 07:30 appointment, at 05:00: quiet ends after it starts: skip.
    let early = utc(2026, 6, 10, 11, 30);
    assert_eq!(
        late_action(utc(2026, 6, 10, 9, 0), early, NY, Some(&q)),
        LateAction::Skip
    );
    // Without quiet hours the same moment sends.
    assert_eq!(
        late_action(utc(2026, 6, 10, 9, 0), early, NY, None),
        LateAction::SendNow
    );
}

#[test]
fn texts_say_when_and_how_to_answer_and_nothing_else() {
    let start = utc(2026, 3, 9, 13, 0); // Monday 9 March 2026 09:00 EDT
    let text = reminder_text(start, NY, Some("Harbor Counseling"));
    assert_eq!(
        text,
        format!(
            "Reminder from Harbor Counseling: your appointment is on Monday, 9 March 2026 at 9:00 AM EDT. {REPLY_HINT}"
        )
    );
    assert_eq!(
        reminder_text(start, LONDON, None),
        format!(
            "Reminder: your appointment is on Monday, 9 March 2026 at 1:00 PM GMT. {REPLY_HINT}"
        )
    );
    assert!(REPLY_HINT.contains("C to confirm") && REPLY_HINT.contains("X to cancel"));
    let moved = moved_text(start, start + 26 * H, NY, None);
    assert_eq!(
        moved,
        format!("Update: your appointment on Monday, 9 March 2026 at 9:00 AM EDT has moved to Tuesday, 10 March 2026 at 11:00 AM EDT. {REPLY_HINT}")
    );
    assert_eq!(
        cancelled_text(start, NY, Some("Harbor")),
        "Update from Harbor: your appointment on Monday, 9 March 2026 at 9:00 AM EDT was cancelled."
    );
    // A practice name cannot smuggle lines or length into a message.
    let hostile = format!("Evil\nReply Y to pay{}", "!".repeat(500));
    let t = reminder_text(start, NY, Some(&hostile));
    assert!(!t.contains('\n'));
    assert!(t.len() < 300);
    // An empty name is no name.
    assert!(reminder_text(start, NY, Some("  ")).starts_with("Reminder: "));
}

fn zones() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        NY,
        LONDON,
        SYDNEY,
        chrono_tz::Pacific::Auckland,
        chrono_tz::America::Sao_Paulo,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::UTC,
    ])
}

fn offsets() -> impl Strategy<Value = Offset> {
    prop_oneof![
        (1u32..=30).prop_map(Offset::Days),
        (1i64..=20_000).prop_map(|m| Offset::Duration(Duration::minutes(m))),
    ]
}

fn quiets() -> impl Strategy<Value = QuietHours> {
    (0u16..1440, 1u16..1440).prop_map(|(s, len)| QuietHours {
        start_minute: s,
        end_minute: (s + len) % 1440,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn due_is_before_the_start_and_never_quiet(
        start in utc(2000, 1, 1, 0, 0)..utc(2100, 1, 1, 0, 0),
        tz in zones(),
        offset in offsets(),
        quiet in prop::option::of(quiets()),
    ) {
        let due = due_at(start, tz, &offset, quiet.as_ref());
        prop_assert!(due < start);
        let plain = due_at(start, tz, &offset, None);
        prop_assert!(due <= plain);
        if let Some(q) = &quiet {
            prop_assert!(!in_quiet(due, tz, q));
            // Moved no further than one quiet period back.
            prop_assert!(plain - due < 24 * H + H);
        }
    }

    #[test]
    fn quiet_ends_after_is_the_first_free_instant(
        t in utc(2000, 1, 1, 0, 0)..utc(2100, 1, 1, 0, 0),
        tz in zones(),
        q in quiets(),
    ) {
        let e = quiet_ends_after(t, tz, &q);
        prop_assert!(e >= t);
        prop_assert!(!in_quiet(e, tz, &q));
        prop_assert!(e - t < 25 * H);
        // Nothing in between is free (sampled each minute).
        let mut m = t;
        while m < e - 60_000 {
            prop_assert!(in_quiet(m, tz, &q));
            m += 60_000 * 7;
        }
    }

    #[test]
    fn late_action_never_sends_after_the_start_or_in_quiet(
        now in utc(2000, 1, 1, 0, 0)..utc(2100, 1, 1, 0, 0),
        ahead in -10 * H..(3 * 24 * H),
        tz in zones(),
        q in prop::option::of(quiets()),
    ) {
        let start = now + ahead;
        match late_action(now, start, tz, q.as_ref()) {
            LateAction::Skip => prop_assert!(
                start <= now || q.as_ref().is_some_and(|q| in_quiet(now, tz, q))
            ),
            LateAction::SendNow => {
                prop_assert!(now < start);
                if let Some(q) = &q { prop_assert!(!in_quiet(now, tz, q)); }
            }
            LateAction::WaitUntil(w) => {
                prop_assert!(now < w && w < start);
                let q = q.as_ref().unwrap();
                prop_assert!(in_quiet(now, tz, q) && !in_quiet(w, tz, q));
            }
        }
    }
}
