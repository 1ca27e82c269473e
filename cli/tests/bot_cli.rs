//! `alcove bot` as a practice runs it: real processes of the `alcove`
//! binary against a real relay on loopback, the therapist and the client
//! as real accounts. Enrolment prints the identity the therapist
//! introduces; an appointment added from the command line gets its
//! reminder from `run --once`; the client's answer reaches the bot and the
//! therapist; `list --json` reports it; SIGTERM stops `run` cleanly; and a
//! key file others can read, a wrong key, a time in the past, an unknown
//! appointment are refused with a clear error that names no one.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use alcove_core::reminders::ReminderChoice;
use alcove_core::{Client, DbKey, MessageKind, StorageLayout};
use alcove_testkit::relay::Relay;

const ALCOVE: &str = env!("CARGO_BIN_EXE_alcove");

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn bot(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(ALCOVE)
        .arg("bot")
        .arg("--config")
        .arg(dir.join("bot.toml"))
        .args(args)
        .env_remove("ALCOVE_BOT_KEY")
        .output()
        .unwrap();
    out
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_config(dir: &Path, relay: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(
        dir.join("bot.key"),
        hex::encode(alcove_core::random_bytes(32)),
    )
    .unwrap();
    std::fs::set_permissions(dir.join("bot.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.join("bot.toml"),
        format!(
            "relay = \"{relay}\"\ndatabase = \"bot.db\"\nkey_file = \"bot.key\"\nstatus_file = \"status.json\"\noffsets = [\"2d\", \"2h\"]\ndefault_time_zone = \"UTC\"\npoll_seconds = 1\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_runs_the_bot_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Relay::start(d).await;
    write_config(d, &r.url());
    let printed = ok(bot(d, &["enroll", "--invite", &r.invite()]));
    let mut lines = printed.lines();
    let bot_id = lines
        .next()
        .unwrap()
        .strip_prefix("account ")
        .unwrap()
        .to_owned();
    let bot_key =
        hex::decode(lines.next().unwrap().strip_prefix("identity_key ").unwrap()).unwrap();
    assert_eq!(ok(bot(d, &["identity"])), printed);

    let therapist = Client::enroll(&d.join("t.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    therapist
        .with_account(|a| a.introduce_bot(&bot_id, &bot_key))
        .unwrap();
    let card = therapist.invite_card(&r.invite(), None).unwrap().encode();
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

    // In 47 hours (UTC): the 2d reminder is already due, and goes now.
    let at = (chrono::Utc::now() + chrono::Duration::hours(47))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let c = client.account_id().to_owned();
    let t = therapist.account_id().to_owned();
    assert_eq!(
        ok(bot(
            d,
            &[
                "add",
                "--id",
                "s1",
                "--client",
                &c,
                "--therapist",
                &t,
                "--at",
                &at
            ]
        ))
        .trim(),
        "Added"
    );
    let once = ok(bot(d, &["run", "--once"]));
    assert!(once.starts_with("sent 1 "), "{once}");
    client.sync(soon()).await.unwrap();
    let to_bot = client.conversation_with(&bot_id).unwrap();
    let msgs = client
        .with_account(|a| a.messages(to_bot, None, 10))
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].kind, MessageKind::Reminder);
    client
        .reply_to_reminder(msgs[0].id, ReminderChoice::Confirm)
        .await
        .unwrap()
        .unwrap();
    let once = ok(bot(d, &["run", "--once"]));
    assert!(once.contains("replies 1 "), "{once}");
    therapist.sync(soon()).await.unwrap();
    let to_client = therapist.conversation_with(&c).unwrap();
    let last = therapist
        .with_account(|a| a.messages(to_client, None, 1))
        .unwrap();
    assert_eq!(last[0].kind, MessageKind::AppointmentUpdate);

    let json: serde_json::Value = serde_json::from_str(&ok(bot(d, &["list", "--json"]))).unwrap();
    assert_eq!(json[0]["uid"], "s1");
    assert_eq!(json[0]["reply"], "confirm");
    let listed = ok(bot(d, &["list"]));
    assert!(!listed.contains(&c) && !listed.contains(&t), "{listed}");
    let file = std::fs::read_to_string(d.join("status.json")).unwrap();
    assert!(file.contains("confirm") && !file.contains(&c));

    // `run` stops on SIGTERM, promptly, with success.
    let mut child = Command::new(ALCOVE)
        .args(["bot", "--config"])
        .arg(d.join("bot.toml"))
        .arg("run")
        .env("ALCOVE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "bot did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("bot stopped"), "{log}");
    for who in [&c, &t, &bot_id] {
        assert!(
            !log.contains(who.as_str()),
            "the log names an account: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_times_and_ids_are_refused_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Relay::start(d).await;
    write_config(d, &r.url());
    ok(bot(d, &["enroll", "--invite", &r.invite()]));
    let key = std::fs::read_to_string(d.join("bot.key")).unwrap();

    // Others may read the key file: refused before anything opens.
    std::fs::set_permissions(d.join("bot.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bot(d, &["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains(key.trim()), "{err}");
    assert!(err.contains("key"), "{err}");

    // Another key: the database does not open, and says so.
    std::fs::write(
        d.join("bot.key"),
        hex::encode(alcove_core::random_bytes(32)),
    )
    .unwrap();
    std::fs::set_permissions(d.join("bot.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = bot(d, &["list"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    std::fs::write(d.join("bot.key"), key.trim()).unwrap();

    let account = "0123456789abcdef0123456789abcdef";
    for args in [
        vec![
            "add",
            "--id",
            "x",
            "--client",
            account,
            "--at",
            "2001-01-01T10:00",
        ],
        vec!["add", "--id", "x", "--client", account, "--at", "tomorrow"],
        vec![
            "add",
            "--id",
            "x",
            "--client",
            "not an id",
            "--at",
            "2099-01-01T10:00",
        ],
        vec![
            "add",
            "--id",
            "x",
            "--client",
            account,
            "--at",
            "2099-01-01T10:00",
            "--tz",
            "Mars/Base",
        ],
        vec!["cancel", "--id", "never-added"],
    ] {
        let out = bot(d, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("alcove: "), "{err}");
        assert!(!err.contains(account), "{err}");
    }
    assert_eq!(ok(bot(d, &["list"])), "");
}
