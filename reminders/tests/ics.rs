//! Feed parsing: single, moved, cancelled and recurring events, overrides,
//! DST in the event's zone, unknown zones, window bounds, real-world exports,
//! and hostile input.

use alcove_reminders::ics::{
    parse_feed, FeedAppointment, IcsError, ParsedFeed, SkipReason, MAX_APPOINTMENTS,
    MAX_FEED_BYTES, MAX_OCCURRENCES_PER_SERIES,
};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// 2026-01-01 .. 2028-01-01.
fn wide() -> (i64, i64) {
    (utc(2026, 1, 1, 0, 0), utc(2028, 1, 1, 0, 0))
}

fn feed(events: &[&str]) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for e in events {
        s.push_str("BEGIN:VEVENT\r\n");
        for line in e.lines() {
            s.push_str(line.trim());
            s.push_str("\r\n");
        }
        s.push_str("END:VEVENT\r\n");
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

fn parse(text: &str) -> ParsedFeed {
    let (from, to) = wide();
    parse_feed(text, from, to).unwrap()
}

fn starts(appts: &[FeedAppointment]) -> Vec<i64> {
    appts.iter().map(|a| a.starts_at_ms).collect()
}

fn reasons(p: &ParsedFeed) -> Vec<SkipReason> {
    p.skipped.iter().map(|s| s.reason).collect()
}

#[test]
fn single_event_keeps_only_what_a_reminder_needs() {
    let text = feed(&["UID:one@x
        DTSTART;TZID=America/New_York:20261020T093000
        SUMMARY:Jane - panic disorder follow-up
        DESCRIPTION:Discuss medication
        LOCATION:Room 2
        ATTENDEE;CN=Jane Client:MAILTO:Jane@Example.org
        ATTENDEE:alcove:abc-123
        ORGANIZER;CN=Dr X:mailto:dr@practice.example
        SEQUENCE:4"]);
    let p = parse(&text);
    assert_eq!(p.skipped, vec![]);
    assert_eq!(p.appointments.len(), 1);
    let a = &p.appointments[0];
    assert_eq!(a.uid, "one@x");
    assert_eq!(a.occurrence, 0);
    // 09:30 EDT = 13:30 UTC.
    assert_eq!(a.starts_at_ms, utc(2026, 10, 20, 13, 30));
    assert_eq!(a.time_zone.as_deref(), Some("America/New_York"));
    assert!(!a.cancelled);
    assert_eq!(
        a.attendees,
        vec!["mailto:Jane@Example.org", "alcove:abc-123"]
    );
    assert_eq!(a.organizer.as_deref(), Some("mailto:dr@practice.example"));
    assert_eq!(a.sequence, 4);
    // Nothing of the free text survives, and Debug names no one.
    let debug = format!("{p:?}");
    for secret in ["panic", "medication", "Room", "Jane", "one@x", "dr@"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn utc_event_has_no_zone() {
    let p = parse(&feed(&["UID:u\nDTSTART:20261020T093000Z"]));
    assert_eq!(starts(&p.appointments), vec![utc(2026, 10, 20, 9, 30)]);
    assert_eq!(p.appointments[0].time_zone, None);
}

#[test]
fn moved_event_keeps_its_key_and_changes_its_start() {
    let before = parse(&feed(&["UID:m\nDTSTART:20261020T140000Z\nSEQUENCE:0"]));
    let after = parse(&feed(&["UID:m\nDTSTART:20261022T160000Z\nSEQUENCE:1"]));
    let (a, b) = (&before.appointments[0], &after.appointments[0]);
    assert_eq!(
        (a.uid.as_str(), a.occurrence),
        (b.uid.as_str(), b.occurrence)
    );
    assert_eq!(b.starts_at_ms, utc(2026, 10, 22, 16, 0));
    assert_eq!(b.sequence, 1);
}

#[test]
fn cancelled_event_is_returned_cancelled() {
    let p = parse(&feed(&[
        "UID:c\nDTSTART:20261020T140000Z\nSTATUS:CANCELLED",
    ]));
    assert_eq!(p.appointments.len(), 1);
    assert!(p.appointments[0].cancelled);
}

#[test]
fn weekly_with_count_and_exdate() {
    let p = parse(&feed(&["UID:w
        DTSTART;TZID=Europe/Berlin:20260105T100000
        RRULE:FREQ=WEEKLY;COUNT=4
        EXDATE;TZID=Europe/Berlin:20260112T100000"]));
    assert_eq!(
        starts(&p.appointments),
        vec![
            utc(2026, 1, 5, 9, 0),
            utc(2026, 1, 19, 9, 0),
            utc(2026, 1, 26, 9, 0)
        ]
    );
    for a in &p.appointments {
        assert_eq!(a.occurrence, a.starts_at_ms);
    }
}

#[test]
fn weekly_with_until_and_exdate_list_in_utc() {
    let p = parse(&feed(&["UID:w
        DTSTART:20260105T100000Z
        RRULE:FREQ=WEEKLY;UNTIL=20260202T100000Z
        EXDATE:20260112T100000Z,20260126T100000Z"]));
    assert_eq!(
        starts(&p.appointments),
        vec![
            utc(2026, 1, 5, 10, 0),
            utc(2026, 1, 19, 10, 0),
            utc(2026, 2, 2, 10, 0)
        ]
    );
}

#[test]
fn rdate_adds_an_occurrence() {
    let p = parse(&feed(&["UID:r
        DTSTART:20260105T100000Z
        RRULE:FREQ=WEEKLY;COUNT=2
        RDATE:20260110T120000Z"]));
    assert_eq!(
        starts(&p.appointments),
        vec![
            utc(2026, 1, 5, 10, 0),
            utc(2026, 1, 10, 12, 0),
            utc(2026, 1, 12, 10, 0)
        ]
    );
}

#[test]
fn overrides_move_one_occurrence_and_cancel_another() {
    let p = parse(&feed(&[
        "UID:s
        DTSTART;TZID=America/New_York:20260105T140000
        RRULE:FREQ=WEEKLY;COUNT=4
        ATTENDEE:mailto:a@b.c",
        // Moves 12 Jan 14:00 to 13 Jan 09:00.
        "UID:s
        RECURRENCE-ID;TZID=America/New_York:20260112T140000
        DTSTART;TZID=America/New_York:20260113T090000
        SEQUENCE:1",
        // Cancels 19 Jan.
        "UID:s
        RECURRENCE-ID;TZID=America/New_York:20260119T140000
        DTSTART;TZID=America/New_York:20260119T140000
        STATUS:CANCELLED
        SEQUENCE:1",
    ]));
    assert_eq!(p.skipped, vec![]);
    let got: Vec<(i64, i64, bool)> = p
        .appointments
        .iter()
        .map(|a| (a.occurrence, a.starts_at_ms, a.cancelled))
        .collect();
    assert_eq!(
        got,
        vec![
            (utc(2026, 1, 5, 19, 0), utc(2026, 1, 5, 19, 0), false),
            (utc(2026, 1, 12, 19, 0), utc(2026, 1, 13, 14, 0), false),
            (utc(2026, 1, 19, 19, 0), utc(2026, 1, 19, 19, 0), true),
            (utc(2026, 1, 26, 19, 0), utc(2026, 1, 26, 19, 0), false),
        ]
    );
    // The override without attendees inherits the series'.
    assert_eq!(p.appointments[1].attendees, vec!["mailto:a@b.c"]);
    assert_eq!(p.appointments[1].sequence, 1);
}

#[test]
fn of_two_overrides_of_one_occurrence_the_higher_sequence_wins() {
    let series = "UID:s\nDTSTART:20260105T100000Z\nRRULE:FREQ=WEEKLY;COUNT=2";
    let newer = "UID:s\nRECURRENCE-ID:20260105T100000Z\nDTSTART:20260106T100000Z\nSEQUENCE:3";
    let older = "UID:s\nRECURRENCE-ID:20260105T100000Z\nDTSTART:20260107T100000Z\nSEQUENCE:2";
    for events in [[series, newer, older], [series, older, newer]] {
        let p = parse(&feed(&events));
        assert_eq!(
            starts(&p.appointments),
            vec![utc(2026, 1, 6, 10, 0), utc(2026, 1, 12, 10, 0)]
        );
    }
}

#[test]
fn dst_new_york_weekly_stays_at_local_time() {
    // Mondays 14:00 New York from 19 Oct 2026: EDT until 1 Nov, then EST;
    // EST until 14 Mar 2027, then EDT.
    let p = parse(&feed(&["UID:ny
        DTSTART;TZID=America/New_York:20261019T140000
        RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270322T235959Z"]));
    let s = starts(&p.appointments);
    assert_eq!(s[0], utc(2026, 10, 19, 18, 0));
    assert_eq!(s[1], utc(2026, 10, 26, 18, 0));
    assert_eq!(s[2], utc(2026, 11, 2, 19, 0));
    assert!(s.contains(&utc(2027, 3, 8, 19, 0)));
    assert!(s.contains(&utc(2027, 3, 15, 18, 0)));
    assert_eq!(*s.last().unwrap(), utc(2027, 3, 22, 18, 0));
}

#[test]
fn dst_london_weekly_stays_at_local_time() {
    // Thursdays 09:00 London: BST until 25 Oct 2026, GMT until 28 Mar 2027.
    let p = parse(&feed(&["UID:ldn
        DTSTART;TZID=Europe/London:20261022T090000
        RRULE:FREQ=WEEKLY;COUNT=2"]));
    assert_eq!(
        starts(&p.appointments),
        vec![utc(2026, 10, 22, 8, 0), utc(2026, 10, 29, 9, 0)]
    );
    let p = parse(&feed(&["UID:ldn2
        DTSTART;TZID=Europe/London:20270325T090000
        RRULE:FREQ=WEEKLY;COUNT=2"]));
    assert_eq!(
        starts(&p.appointments),
        vec![utc(2027, 3, 25, 9, 0), utc(2027, 4, 1, 8, 0)]
    );
}

#[test]
fn nonexistent_and_ambiguous_local_starts() {
    // 02:30 on 8 Mar 2026 does not exist in New York: read with the offset
    // before the gap (EST), 07:30 UTC.
    let p = parse(&feed(&[
        "UID:gap\nDTSTART;TZID=America/New_York:20260308T023000",
    ]));
    assert_eq!(starts(&p.appointments), vec![utc(2026, 3, 8, 7, 30)]);
    // 01:30 on 1 Nov 2026 happens twice: the earlier (EDT), 05:30 UTC.
    let p = parse(&feed(&[
        "UID:amb\nDTSTART;TZID=America/New_York:20261101T013000",
    ]));
    assert_eq!(starts(&p.appointments), vec![utc(2026, 11, 1, 5, 30)]);
}

#[test]
fn unknown_tzid_is_skipped() {
    let p = parse(&feed(&[
        "UID:win\nDTSTART;TZID=Eastern Standard Time:20261020T090000",
        "UID:made-up\nDTSTART;TZID=Mars/Olympus:20261020T090000",
        "UID:ok\nDTSTART;TZID=\"/mozilla.org/20070129_1/Europe/London\":20261020T090000",
    ]));
    assert_eq!(
        reasons(&p),
        vec![SkipReason::UnknownTimeZone, SkipReason::UnknownTimeZone]
    );
    assert_eq!(p.skipped[0].uid.as_deref(), Some("win"));
    assert_eq!(p.appointments.len(), 1);
    assert_eq!(
        p.appointments[0].time_zone.as_deref(),
        Some("Europe/London")
    );
    assert_eq!(p.appointments[0].starts_at_ms, utc(2026, 10, 20, 8, 0));
}

#[test]
fn floating_times_use_the_calendar_zone_or_are_skipped() {
    let p = parse(&feed(&["UID:f\nDTSTART:20261020T090000"]));
    assert_eq!(reasons(&p), vec![SkipReason::FloatingTime]);
    let text = feed(&["UID:f\nDTSTART:20261020T090000"]).replacen(
        "VERSION:2.0",
        "VERSION:2.0\r\nX-WR-TIMEZONE:America/Chicago",
        1,
    );
    let p = parse(&text);
    assert_eq!(starts(&p.appointments), vec![utc(2026, 10, 20, 14, 0)]);
    assert_eq!(
        p.appointments[0].time_zone.as_deref(),
        Some("America/Chicago")
    );
}

#[test]
fn window_is_half_open_and_bounds_unbounded_series() {
    let text = feed(&[
        "UID:daily\nDTSTART:20200101T120000Z\nRRULE:FREQ=DAILY",
        "UID:at-from\nDTSTART:20261001T000000Z",
        "UID:at-to\nDTSTART:20261004T000000Z",
    ]);
    let (from, to) = (utc(2026, 10, 1, 0, 0), utc(2026, 10, 4, 0, 0));
    let p = parse_feed(&text, from, to).unwrap();
    assert_eq!(p.skipped, vec![]);
    let got: Vec<(&str, i64)> = p
        .appointments
        .iter()
        .map(|a| (a.uid.as_str(), a.starts_at_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            ("at-from", from),
            ("daily", utc(2026, 10, 1, 12, 0)),
            ("daily", utc(2026, 10, 2, 12, 0)),
            ("daily", utc(2026, 10, 3, 12, 0)),
        ]
    );
    assert_eq!(
        parse_feed(&text, to, from).unwrap_err(),
        IcsError::BadWindow
    );
}

#[test]
fn override_moved_out_of_and_into_the_window() {
    let text = feed(&[
        "UID:s\nDTSTART:20261001T100000Z\nRRULE:FREQ=WEEKLY;COUNT=3",
        // 8 Oct moved out to 30 Oct; 1 Oct (before the window) moved in to 9 Oct.
        "UID:s\nRECURRENCE-ID:20261008T100000Z\nDTSTART:20261030T100000Z",
        "UID:s\nRECURRENCE-ID:20261001T100000Z\nDTSTART:20261009T100000Z",
    ]);
    let p = parse_feed(&text, utc(2026, 10, 5, 0, 0), utc(2026, 10, 20, 0, 0)).unwrap();
    let got: Vec<(i64, i64)> = p
        .appointments
        .iter()
        .map(|a| (a.occurrence, a.starts_at_ms))
        .collect();
    assert_eq!(
        got,
        vec![
            (utc(2026, 10, 1, 10, 0), utc(2026, 10, 9, 10, 0)),
            (utc(2026, 10, 15, 10, 0), utc(2026, 10, 15, 10, 0)),
        ]
    );
}

#[test]
fn series_cap_and_its_reason() {
    let text = feed(&["UID:hourly\nDTSTART:20260101T000000Z\nRRULE:FREQ=HOURLY"]);
    let p = parse(&text);
    assert_eq!(p.appointments.len(), MAX_OCCURRENCES_PER_SERIES);
    assert_eq!(reasons(&p), vec![SkipReason::TooManyOccurrences]);
}

#[test]
fn duplicate_uids_without_recurrence_id_are_both_skipped() {
    let p = parse(&feed(&[
        "UID:d\nDTSTART:20261020T100000Z",
        "UID:d\nDTSTART:20261021T100000Z",
        "UID:d\nDTSTART:20261022T100000Z",
        "UID:other\nDTSTART:20261023T100000Z",
    ]));
    assert_eq!(reasons(&p), vec![SkipReason::DuplicateUid]);
    assert_eq!(p.appointments.len(), 1);
    assert_eq!(p.appointments[0].uid, "other");
}

#[test]
fn bad_events_are_skipped_with_a_reason_and_the_rest_kept() {
    let p = parse(&feed(&[
        "DTSTART:20261020T100000Z",
        "UID:bad\u{7}uid\nDTSTART:20261020T100000Z",
        &format!("UID:{}\nDTSTART:20261020T100000Z", "u".repeat(300)),
        "UID:nostart",
        "UID:garbage-start\nDTSTART:tomorrow",
        "UID:allday\nDTSTART;VALUE=DATE:20261020",
        "UID:allday2\nDTSTART:20261020",
        "UID:badrule\nDTSTART:20261020T100000Z\nRRULE:FREQ=SOMETIMES",
        "UID:badseq\nDTSTART:20261020T100000Z\nSEQUENCE:-1",
        "UID:orphan\nRECURRENCE-ID:20261020T100000Z\nDTSTART:20261020T110000Z",
        "UID:good\nDTSTART:20261020T100000Z",
    ]));
    let mut r = reasons(&p);
    r.sort_by_key(|r| format!("{r:?}"));
    let mut want = vec![
        SkipReason::NoUid,
        SkipReason::BadUid,
        SkipReason::BadUid,
        SkipReason::NoStart,
        SkipReason::NoStart,
        SkipReason::AllDay,
        SkipReason::AllDay,
        SkipReason::BadRecurrence,
        SkipReason::BadSequence,
        SkipReason::BadOverride,
    ];
    want.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(r, want);
    assert_eq!(p.appointments.len(), 1);
    assert_eq!(p.appointments[0].uid, "good");
    // Reasons say what kind, never what the event said.
    for s in &p.skipped {
        let text = s.reason.to_string();
        assert!(!text.contains("uid\u{7}") && !text.contains("SOMETIMES"));
    }
}

#[test]
fn google_calendar_export() {
    let text = include_str!("fixtures/google.ics");
    let p = parse_feed(text, utc(2026, 10, 1, 0, 0), utc(2026, 12, 31, 0, 0)).unwrap();
    assert_eq!(reasons(&p), vec![SkipReason::AllDay]);
    let got: Vec<(&str, i64, bool)> = p
        .appointments
        .iter()
        .map(|a| (a.uid.as_str(), a.starts_at_ms, a.cancelled))
        .collect();
    let series = "7kukuqrfedlm2f9t2vr42q9nj8@google.com";
    assert_eq!(
        got,
        vec![
            (series, utc(2026, 10, 19, 18, 0), false),
            ("0a1b2c3d4e5f@google.com", utc(2026, 10, 21, 15, 0), true),
            // 26 Oct moved to 27 Oct 10:00 EDT.
            (series, utc(2026, 10, 27, 14, 0), false),
            // 2 Nov: EST now.
            (series, utc(2026, 11, 2, 19, 0), false),
            // 9 Nov is an EXDATE; UNTIL ends the series on 30 Nov.
            (series, utc(2026, 11, 16, 19, 0), false),
            (series, utc(2026, 11, 23, 19, 0), false),
            (series, utc(2026, 11, 30, 19, 0), false),
        ]
    );
    let first = &p.appointments[0];
    assert_eq!(
        first.attendees,
        vec![
            "mailto:rivera@harbor.example",
            "mailto:Jane.Client@Example.org"
        ]
    );
    assert_eq!(
        first.organizer.as_deref(),
        Some("mailto:rivera@harbor.example")
    );
    assert_eq!(
        p.appointments[1].attendees,
        vec!["alcove:3f2a8c1e-0b7d-4e5f-9a6b-1c2d3e4f5a6b"]
    );
    assert_eq!(p.appointments[1].sequence, 2);
    // The override replaced the attendees and raised the SEQUENCE.
    assert_eq!(
        p.appointments[2].attendees,
        vec!["mailto:jane.client@example.org"]
    );
    assert_eq!(p.appointments[2].occurrence, utc(2026, 10, 26, 18, 0));
    assert_eq!(p.appointments[2].sequence, 1);
}

#[test]
fn outlook_export() {
    let text = include_str!("fixtures/outlook.ics");
    let p = parse_feed(text, utc(2026, 10, 1, 0, 0), utc(2026, 12, 31, 0, 0)).unwrap();
    // The Windows zone name is not guessed.
    assert_eq!(reasons(&p), vec![SkipReason::UnknownTimeZone]);
    let got: Vec<(i64, Option<&str>)> = p
        .appointments
        .iter()
        .map(|a| (a.starts_at_ms, a.time_zone.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (utc(2026, 10, 22, 8, 0), Some("Europe/London")),
            (utc(2026, 10, 29, 9, 0), Some("Europe/London")),
            (utc(2026, 11, 3, 16, 0), None),
            (utc(2026, 11, 5, 9, 0), Some("Europe/London")),
        ]
    );
    let mia = &p.appointments[0];
    assert!(mia.uid.starts_with("040000008200E000"));
    assert!(mia.uid.ends_with("CCBBAA"), "folded UID unfolded");
    assert_eq!(mia.attendees, vec!["mailto:mia@client.example"]);
    assert_eq!(
        mia.organizer.as_deref(),
        Some("mailto:ada.okafor@practice.example")
    );
    assert_eq!(mia.sequence, 3);
}

#[test]
fn not_icalendar_is_malformed() {
    let (from, to) = wide();
    for text in [
        "",
        "hello",
        "BEGIN:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "{\"json\": true}",
    ] {
        assert_eq!(
            parse_feed(text, from, to).unwrap_err(),
            IcsError::Malformed,
            "{text:?}"
        );
    }
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let (from, to) = wide();
    let mut text = String::new();
    for _ in 0..100_000 {
        text.push_str("BEGIN:X\r\n");
    }
    for _ in 0..100_000 {
        text.push_str("END:X\r\n");
    }
    assert_eq!(
        parse_feed(&text, from, to).unwrap_err(),
        IcsError::Malformed
    );
}

#[test]
fn oversized_feed_is_refused() {
    let (from, to) = wide();
    let mut text = feed(&["UID:a\nDTSTART:20261020T100000Z"]);
    text.push_str(&"X".repeat(MAX_FEED_BYTES));
    assert_eq!(parse_feed(&text, from, to).unwrap_err(), IcsError::TooLarge);
}

#[test]
fn thousands_of_events_at_once() {
    let events: Vec<String> = (0..5_000)
        .map(|i| format!("UID:e{i}\nDTSTART:2026102{}T1{}0000Z", i % 9 + 1, i % 10))
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let p = parse(&feed(&refs));
    assert_eq!(p.appointments.len(), 5_000);
    assert!(p.skipped.is_empty());
    assert!(p
        .appointments
        .windows(2)
        .all(|w| w[0].starts_at_ms <= w[1].starts_at_ms));
}

#[test]
fn many_long_series_are_bounded() {
    // 60 unbounded daily series over a two-year window: each capped.
    let events: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "UID:s{i}\nDTSTART:20260101T0{}0000Z\nRRULE:FREQ=DAILY",
                i % 10
            )
        })
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let p = parse(&feed(&refs));
    assert_eq!(p.appointments.len(), 60 * 730);
    // Over four years each series hits its cap, and together the feed cap.
    let p2 = parse_feed(&feed(&refs), utc(2026, 1, 1, 0, 0), utc(2030, 1, 1, 0, 0)).unwrap();
    assert_eq!(p2.appointments.len(), MAX_APPOINTMENTS);
    let r = reasons(&p2);
    assert_eq!(r.len(), 61);
    assert_eq!(
        r.iter()
            .filter(|r| **r == SkipReason::TooManyOccurrences)
            .count(),
        60
    );
    assert_eq!(r.last(), Some(&SkipReason::TooManyAppointments));
}

const VALID: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:p\r\nDTSTART;TZID=America/New_York:20260105T140000\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\nEXDATE;TZID=America/New_York:20260112T140000\r\nATTENDEE;CN=A:mailto:a@b.c\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:p\r\nRECURRENCE-ID;TZID=America/New_York:20260119T140000\r\nDTSTART:20260120T150000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let (from, to) = wide();
        let _ = parse_feed(&text, from, to);
    }

    #[test]
    fn mutated_feeds_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[\\x00-\\x7f]{0,3}"), 1..8)
    ) {
        let (from, to) = wide();
        let mut text = VALID.to_owned();
        for (at, kind, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            match kind {
                0 => text.insert_str(i, &insert),
                1 => { let end = (i + 4).min(text.len()); if text.is_char_boundary(end) { text.replace_range(i..end, ""); } }
                _ => { let end = (i + insert.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(i..end, &insert); } }
            }
        }
        if let Ok(p) = parse_feed(&text, from, to) {
            for a in &p.appointments {
                prop_assert!(from <= a.starts_at_ms && a.starts_at_ms < to);
            }
        }
    }

    #[test]
    fn arbitrary_rules_never_panic(
        freq in prop::sample::select(vec!["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY", "X"]),
        interval in prop_oneof![4 => 1u32..4, 1 => 0u32..100_000],
        count in prop::option::weighted(0.3, 0u32..100_000),
        byday in prop::option::weighted(0.3, "[-+]?[0-9]{0,2}(MO|TU|WE|TH|FR|SA|SU|XX)"),
        bysetpos in prop::option::weighted(0.1, -400i32..400),
        bymonthday in prop::option::weighted(0.2, -40i32..40),
        byweekno in prop::option::weighted(0.1, -60i32..60),
        byyearday in prop::option::weighted(0.1, -400i32..400),
        bymonth in prop::option::weighted(0.2, 0u32..14),
        byhour in prop::option::weighted(0.3, 0u32..25),
        until in prop::option::weighted(0.2, "20[2-3][0-9](0[1-9]|1[0-2])[0-2][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]Z?"),
        start_year in prop_oneof![4 => 2020i32..2028, 1 => 1900i32..2199],
    ) {
        let mut rule = format!("FREQ={freq};INTERVAL={interval}");
        if let Some(c) = count { rule += &format!(";COUNT={c}"); }
        if let Some(d) = byday { rule += &format!(";BYDAY={d}"); }
        if let Some(p) = bysetpos { rule += &format!(";BYSETPOS={p}"); }
        if let Some(d) = bymonthday { rule += &format!(";BYMONTHDAY={d}"); }
        if let Some(w) = byweekno { rule += &format!(";BYWEEKNO={w}"); }
        if let Some(y) = byyearday { rule += &format!(";BYYEARDAY={y}"); }
        if let Some(m) = bymonth { rule += &format!(";BYMONTH={m}"); }
        if let Some(h) = byhour { rule += &format!(";BYHOUR={h};BYMINUTE=0;BYSECOND=0"); }
        if let Some(u) = until { rule += &format!(";UNTIL={u}"); }
        let text = feed(&[&format!("UID:r\nDTSTART;TZID=America/New_York:{start_year}0310T023000\nRRULE:{rule}")]);
        let (from, to) = wide();
        let p = parse_feed(&text, from, to).unwrap();
        prop_assert!(p.appointments.len() <= MAX_OCCURRENCES_PER_SERIES);
    }
}

#[test]
fn rules_that_never_produce_are_bounded_by_time() {
    // Each costs the recurrence crate its full loop limit (~10 ms) without
    // producing: thousands of them must not hold the bot for minutes.
    // 5,000 of them would take ~50 s: the feed budget stops expansion and
    // skips the rest with their reason.
    let events: Vec<String> = (0..5_000)
        .map(|i| {
            format!(
                "UID:n{i}\nDTSTART:19000101T000000Z\nRRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30"
            )
        })
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let (from, to) = wide();
    let p = parse_feed(&feed(&refs), from, to).unwrap();
    assert!(p.appointments.is_empty());
    let too_costly = reasons(&p)
        .iter()
        .filter(|r| **r == SkipReason::FeedTooCostly)
        .count();
    assert!(too_costly > 0);
    assert!(too_costly < 5_000);
}

#[test]
fn dense_rules_long_before_the_window_are_bounded_by_count() {
    let (from, to) = wide();
    let p = parse_feed(
        &feed(&["UID:s\nDTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY"]),
        from,
        to,
    )
    .unwrap();
    assert!(p.appointments.is_empty());
    assert_eq!(reasons(&p), vec![SkipReason::TooManyOccurrences]);
}

#[test]
fn five_thousand_weekly_series_since_2020_all_expand() {
    // ~370 generated occurrences each before the window ends: 1.9 million
    // in all, within the feed's budget.
    let events: Vec<String> = (0..5_000)
        .map(|i| {
            format!(
                "UID:w{i}\nDTSTART;TZID=America/New_York:20200106T1{}0000\nRRULE:FREQ=WEEKLY;BYDAY=MO",
                i % 8
            )
        })
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let p = parse_feed(&feed(&refs), utc(2026, 12, 1, 0, 0), utc(2027, 2, 1, 0, 0)).unwrap();
    assert_eq!(p.skipped, vec![]);
    // Eight Mondays, 7 Dec 2026 to 25 Jan 2027.
    assert_eq!(p.appointments.len(), 5_000 * 8);
}
