//! `bot.toml`: a full file, defaults, relative paths, the key rules, and
//! hostile files.

use std::path::Path;

use alcove_reminders::config::{BotConfig, ConfigError, KEY_ENV, MAX_CONFIG_BYTES};
use alcove_reminders::schedule::{Offset, QuietHours};
use chrono::Duration;

const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

const FULL: &str = r#"
relay = "https://relay.example.org"
database = "bot.db"
key_file = "bot.key"
practice_name = "Harbor Counseling"
feed = "appointments.ics"
clients = "/srv/practice/clients.csv"
status_file = "status.json"
offsets = ["2d", "2h"]
quiet_hours = { start = "21:00", end = "08:00" }
default_time_zone = "America/New_York"
horizon_days = 60
poll_seconds = 60
"#;

const MINIMAL: &str = r#"
relay = "http://127.0.0.1:8080"
database = "bot.db"
offsets = ["90m"]
default_time_zone = "Europe/London"
"#;

fn write_key(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join("bot.key");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

#[test]
fn full_file_loads_with_paths_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.toml");
    std::fs::write(&path, FULL).unwrap();
    let c = BotConfig::load(&path).unwrap();
    assert_eq!(c.relay, "https://relay.example.org");
    assert_eq!(c.database, dir.path().join("bot.db"));
    assert_eq!(c.key_file, Some(dir.path().join("bot.key")));
    assert_eq!(c.practice_name.as_deref(), Some("Harbor Counseling"));
    assert_eq!(c.feed, Some(dir.path().join("appointments.ics")));
    assert_eq!(c.clients, Some("/srv/practice/clients.csv".into()));
    assert_eq!(c.status_file, Some(dir.path().join("status.json")));
    assert_eq!(
        c.offsets,
        vec![Offset::Days(2), Offset::Duration(Duration::hours(2))]
    );
    assert_eq!(
        c.quiet_hours,
        Some(QuietHours::parse("21:00", "08:00").unwrap())
    );
    assert_eq!(c.default_time_zone, chrono_tz::America::New_York);
    assert_eq!((c.horizon_days, c.poll_seconds), (60, 60));
}

#[test]
fn minimal_file_takes_defaults() {
    let c = BotConfig::parse(MINIMAL, Path::new("/etc/alcove")).unwrap();
    assert_eq!(c.database, Path::new("/etc/alcove/bot.db"));
    assert_eq!(
        (c.key_file, c.feed, c.clients, c.status_file),
        (None, None, None, None)
    );
    assert_eq!(c.quiet_hours, None);
    assert_eq!(c.practice_name, None);
    assert_eq!((c.horizon_days, c.poll_seconds), (60, 60));
}

fn with(line: &str) -> String {
    format!("{MINIMAL}{line}\n")
}

fn replace(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from));
    MINIMAL.replace(from, to)
}

#[test]
fn hostile_files_get_typed_errors() {
    let base = Path::new("/x");
    let err = |text: &str| BotConfig::parse(text, base).unwrap_err();
    // Unknown key, syntax, missing key, wrong type: the line, not the value.
    match err(&with("secret_sauce = \"jane@example.org\"")) {
        ConfigError::Invalid { line } => assert_eq!(line, Some(6)),
        e => panic!("{e:?}"),
    }
    let shown = err(&with("secret_sauce = \"jane@example.org\"")).to_string();
    assert!(!shown.contains("jane"), "{shown}");
    assert!(matches!(err("relay = "), ConfigError::Invalid { .. }));
    assert!(matches!(
        err("relay = \"http://a\"\n"),
        ConfigError::Invalid { .. }
    ));
    assert!(matches!(
        err(&with("poll_seconds = \"sixty\"")),
        ConfigError::Invalid { .. }
    ));
    assert!(matches!(
        err(&with(
            "quiet_hours = { start = \"21:00\", end = \"08:00\", x = 1 }"
        )),
        ConfigError::Invalid { .. }
    ));
    assert!(matches!(
        err(&with("poll_seconds = -1")),
        ConfigError::Invalid { .. }
    ));

    assert!(matches!(
        err(&replace("\"90m\"", "\"90x\"")),
        ConfigError::BadOffset { index: 0 }
    ));
    assert!(matches!(
        err(&replace("[\"90m\"]", "[\"1d\", \"soon\"]")),
        ConfigError::BadOffset { index: 1 }
    ));
    assert!(matches!(
        err(&replace("[\"90m\"]", "[]")),
        ConfigError::OffsetCount
    ));
    assert!(matches!(
        err(&replace("[\"90m\"]", "[\"1h\", \"60m\"]")),
        ConfigError::OffsetCount
    ));
    let eleven: Vec<String> = (1..=11).map(|h| format!("\"{h}h\"")).collect();
    assert!(matches!(
        err(&replace("[\"90m\"]", &format!("[{}]", eleven.join(",")))),
        ConfigError::OffsetCount
    ));
    assert!(matches!(
        err(&replace("Europe/London", "Eastern Standard Time")),
        ConfigError::BadTimeZone {
            field: "default_time_zone"
        }
    ));
    assert!(matches!(
        err(&with(
            "quiet_hours = { start = \"25:00\", end = \"08:00\" }"
        )),
        ConfigError::BadQuietHours
    ));
    assert!(matches!(
        err(&with(
            "quiet_hours = { start = \"08:00\", end = \"08:00\" }"
        )),
        ConfigError::BadQuietHours
    ));
    for relay in [
        "ftp://relay",
        "relay.example.org",
        "https://",
        "http://:8080",
        "mailto:relay@example.org",
        "",
    ] {
        assert!(
            matches!(
                err(&replace("http://127.0.0.1:8080", relay)),
                ConfigError::BadRelay
            ),
            "{relay}"
        );
    }
    for (line, want) in [
        ("horizon_days = 0", "horizon"),
        ("horizon_days = 367", "horizon"),
        ("poll_seconds = 0", "poll"),
        ("poll_seconds = 3601", "poll"),
    ] {
        let e = err(&with(line));
        match (want, &e) {
            ("horizon", ConfigError::BadHorizon) | ("poll", ConfigError::BadPoll) => {}
            _ => panic!("{line}: {e:?}"),
        }
    }
    assert!(matches!(
        err(&replace("\"bot.db\"", "\"\"")),
        ConfigError::EmptyPath { field: "database" }
    ));
    assert!(matches!(
        err(&with("feed = \"\"")),
        ConfigError::EmptyPath { field: "feed" }
    ));
    for name in ["", "  ", "Harbor\nReply Y", &"x".repeat(81)] {
        let text = with(&format!("practice_name = {}", toml_string(name)));
        assert!(
            matches!(err(&text), ConfigError::BadPracticeName),
            "{name:?}"
        );
    }
}

fn toml_string(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

#[test]
fn missing_and_oversized_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        BotConfig::load(&dir.path().join("absent.toml")),
        Err(ConfigError::Read(_))
    ));
    let big = dir.path().join("big.toml");
    std::fs::write(
        &big,
        format!("{MINIMAL}#{}", "x".repeat(MAX_CONFIG_BYTES as usize)),
    )
    .unwrap();
    assert!(matches!(BotConfig::load(&big), Err(ConfigError::TooLarge)));
    assert!(matches!(
        BotConfig::load(dir.path()),
        Err(ConfigError::Read(_))
    ));
}

#[test]
fn key_from_file_with_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = |key: Option<&Path>| {
        let mut c = BotConfig::parse(MINIMAL, dir.path()).unwrap();
        c.key_file = key.map(Path::to_path_buf);
        c
    };
    // No key anywhere.
    assert!(matches!(
        config(None).db_key_with_env(None),
        Err(ConfigError::NoKey)
    ));
    assert!(matches!(
        config(None).db_key_with_env(Some("  ")),
        Err(ConfigError::NoKey)
    ));

    // A good file (a trailing newline is fine).
    let path = write_key(dir.path(), &format!("{KEY_HEX}\n"), 0o600);
    config(Some(&path)).db_key_with_env(None).unwrap();
    let upper = write_key(dir.path(), &KEY_HEX.to_uppercase(), 0o400);
    config(Some(&upper)).db_key_with_env(None).unwrap();

    // Too open.
    #[cfg(unix)]
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let path = write_key(dir.path(), KEY_HEX, mode);
        assert!(
            matches!(
                config(Some(&path)).db_key_with_env(None),
                Err(ConfigError::KeyFileTooOpen)
            ),
            "{mode:o}"
        );
    }
    // Wrong length, not hex, not text, huge.
    for text in [
        &KEY_HEX[..62],
        &format!("{KEY_HEX}00"),
        &KEY_HEX.replace('a', "g"),
        "",
        &"0".repeat(10_000),
    ] {
        let path = write_key(dir.path(), text, 0o600);
        assert!(
            matches!(
                config(Some(&path)).db_key_with_env(None),
                Err(ConfigError::KeyFormat)
            ),
            "{}",
            text.len()
        );
    }
    let path = dir.path().join("bot.key");
    std::fs::write(&path, [0xff_u8; 64]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(matches!(
        config(Some(&path)).db_key_with_env(None),
        Err(ConfigError::KeyFormat)
    ));
    // Missing file.
    assert!(matches!(
        config(Some(&dir.path().join("absent.key"))).db_key_with_env(None),
        Err(ConfigError::KeyRead(_))
    ));
    // Errors never show the key.
    let e = config(Some(&path))
        .db_key_with_env(Some(&KEY_HEX[..60]))
        .unwrap_err();
    assert!(!e.to_string().contains(&KEY_HEX[..16]));
}

#[test]
fn the_environment_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // The file is too open, but the environment is set: the file is not read.
    let path = write_key(dir.path(), KEY_HEX, 0o644);
    let mut c = BotConfig::parse(MINIMAL, dir.path()).unwrap();
    c.key_file = Some(path);
    c.db_key_with_env(Some(KEY_HEX)).unwrap();
    assert!(matches!(
        c.db_key_with_env(Some("nothex")),
        Err(ConfigError::KeyFormat)
    ));
    // Without a file, the environment alone does.
    c.key_file = None;
    c.db_key_with_env(Some(&format!(" {KEY_HEX}\n"))).unwrap();
    assert_eq!(KEY_ENV, "ALCOVE_BOT_KEY");
}

#[test]
fn debug_shows_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_key(dir.path(), KEY_HEX, 0o600);
    let mut c = BotConfig::parse(MINIMAL, dir.path()).unwrap();
    c.key_file = Some(path);
    let _key = c.db_key_with_env(None).unwrap();
    assert!(!format!("{c:?}").contains(&KEY_HEX[..16]));
}
