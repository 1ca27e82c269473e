//! The practice's `uri,account,time_zone` file: lookups and hostile files.

use alcove_reminders::mapping::{Mapping, MappingError, MAX_MAPPING_BYTES, MAX_MAPPING_ROWS};
use proptest::prelude::*;

const ID1: &str = "3f2a8c1e-0b7d-4e5f-9a6b-1c2d3e4f5a6b";
const ID2: &str = "9b1d0c2e-7a6f-4b3c-8d2e-1f0a9b8c7d6e";

#[test]
fn rows_resolve_case_insensitively() {
    let m = Mapping::parse(&format!(
        "uri,account,time_zone\n\
         mailto:Jane.Client@Example.org,{ID1},America/Chicago\n\
         \"MAILTO:tom@client.example\" , {ID2} ,\n"
    ))
    .unwrap();
    assert_eq!(m.len(), 2);
    let jane = m.resolve("mailto:jane.client@example.org").unwrap();
    assert_eq!(jane.account, ID1);
    assert_eq!(jane.time_zone, Some(chrono_tz::America::Chicago));
    let same = m.resolve(" MailTo:JANE.CLIENT@EXAMPLE.ORG ").unwrap();
    assert_eq!(same, jane);
    // An empty zone falls back to the event's.
    let tom = m.resolve("mailto:Tom@Client.Example").unwrap();
    assert_eq!((tom.account.as_str(), tom.time_zone), (ID2, None));
    assert_eq!(m.resolve("mailto:nobody@example.org"), None);
    assert_eq!(m.resolve("not a uri"), None);
    // Debug names no one.
    let debug = format!("{m:?} {jane:?}");
    assert!(!debug.contains(ID1) && !debug.contains("Jane"), "{debug}");
}

#[test]
fn alcove_uris_need_no_row() {
    let m = Mapping::empty();
    assert!(m.is_empty());
    let r = m.resolve(&format!("ALCOVE:{ID1}")).unwrap();
    assert_eq!((r.account.as_str(), r.time_zone), (ID1, None));
    assert_eq!(m.resolve("alcove:"), None);
    assert_eq!(m.resolve("alcove:not/an id"), None);
    assert_eq!(m.resolve(&format!("alcove:{}", "a".repeat(65))), None);
    // A row for an alcove URI adds the client's zone.
    let m = Mapping::parse(&format!(
        "uri,account,time_zone\nalcove:{ID1},{ID1},Europe/London\n"
    ))
    .unwrap();
    assert_eq!(
        m.resolve(&format!("alcove:{ID1}")).unwrap().time_zone,
        Some(chrono_tz::Europe::London)
    );
}

#[test]
fn header_is_required() {
    for text in [
        "",
        "\n",
        &format!("mailto:a@b.c,{ID1},\n"),
        "uri,account\n",
        "uri,account,zone\n",
        "uri,account,time_zone,extra\n",
    ] {
        assert_eq!(
            Mapping::parse(text).unwrap_err(),
            MappingError::MissingHeader,
            "{text:?}"
        );
    }
    // Header case, spaces, a byte-order mark and CRLF are fine; blank lines skipped.
    let m = Mapping::parse(&format!(
        "\u{feff}URI, Account ,Time_Zone\r\n\r\nmailto:a@b.c,{ID1},UTC\r\n"
    ))
    .unwrap();
    assert_eq!(m.len(), 1);
}

#[test]
fn errors_name_the_line_never_the_content() {
    let cases: Vec<(String, MappingError)> = vec![
        (
            format!("uri,account,time_zone\nmailto:a@b.c,{ID1},\nmailto:A@B.C,{ID2},\n"),
            MappingError::DuplicateUri { line: 3, first: 2 },
        ),
        (
            "uri,account,time_zone\nmailto:a@b.c,jane smith,\n".to_owned(),
            MappingError::BadAccount { line: 2 },
        ),
        (
            "uri,account,time_zone\nmailto:a@b.c,,\n".to_owned(),
            MappingError::BadAccount { line: 2 },
        ),
        (
            format!("uri,account,time_zone\nmailto:a@b.c,{ID1},\nmailto:b@b.c,{ID2},Eastern Standard Time\n"),
            MappingError::BadTimeZone { line: 3 },
        ),
        (
            format!("uri,account,time_zone\njane@example.org,{ID1},\n"),
            MappingError::BadUri { line: 2 },
        ),
        (
            format!("uri,account,time_zone\nmailto:a@b.c,{ID1}\n"),
            MappingError::Malformed { line: 2 },
        ),
        (
            format!("uri,account,time_zone\nmailto:a@b.c,{ID1},UTC,extra\n"),
            MappingError::Malformed { line: 2 },
        ),
    ];
    for (text, want) in cases {
        let err = Mapping::parse(&text).unwrap_err();
        assert_eq!(err, want, "{text:?}");
        let shown = err.to_string();
        for secret in ["a@b.c", "jane", ID1, ID2, "Eastern"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[test]
fn an_unclosed_quote_is_refused() {
    let err =
        Mapping::parse(&format!("uri,account,time_zone\n\"mailto:a@b.c,{ID1},\n")).unwrap_err();
    assert!(
        matches!(
            err,
            MappingError::Malformed { .. } | MappingError::BadUri { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_and_too_many_rows_are_refused() {
    let mut big = String::from("uri,account,time_zone\n");
    big.push_str(&"x".repeat(MAX_MAPPING_BYTES));
    assert_eq!(Mapping::parse(&big).unwrap_err(), MappingError::TooLarge);

    let mut many = String::from("uri,account,time_zone\n");
    for i in 0..=MAX_MAPPING_ROWS {
        many.push_str(&format!("mailto:c{i}@x.io,a{i},\n"));
    }
    assert!(many.len() < MAX_MAPPING_BYTES);
    assert_eq!(
        Mapping::parse(&many).unwrap_err(),
        MappingError::TooManyRows
    );
}

#[test]
fn the_row_limit_itself_is_accepted() {
    let mut many = String::from("uri,account,time_zone\n");
    for i in 0..MAX_MAPPING_ROWS {
        many.push_str(&format!("mailto:c{i}@x.io,a{i},\n"));
    }
    let m = Mapping::parse(&many).unwrap();
    assert_eq!(m.len(), MAX_MAPPING_ROWS);
    assert_eq!(m.resolve("mailto:C99999@X.IO").unwrap().account, "a99999");
}

proptest! {
    #[test]
    fn arbitrary_files_never_panic(text in "\\PC{0,300}") {
        let _ = Mapping::parse(&text);
        let _ = Mapping::parse(&format!("uri,account,time_zone\n{text}"));
    }

    #[test]
    fn arbitrary_uris_never_panic(uri in "\\PC{0,80}") {
        let _ = Mapping::empty().resolve(&uri);
    }
}
