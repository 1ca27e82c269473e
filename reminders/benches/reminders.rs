//! One bot for a practice of thousands of clients: the time and memory to
//! schedule and send 10,000 reminders over a loopback relay, as ratios
//! against a baseline measured in the same run: the same bot sending the
//! same number of plain texts to the same clients through the core's
//! outbox (so the ratio is what the reminder engine adds to sending).
//!
//! `ALCOVE_BENCH_CLIENTS` (default 500) clients with
//! `ALCOVE_BENCH_APPOINTMENTS` (default 20) appointments each. Run with
//! `cargo bench -p alcove-reminders --bench reminders`.

use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
use alcove_reminders::appointments;
use alcove_reminders::{sending, Bot, BotConfig};
use alcove_testkit::relay::Relay;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory since the last reset, in KiB (Linux).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn reset_peak() {
    // "5" resets the peak RSS counter (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn flush_all(bot: &Bot) -> u32 {
    let mut sent = 0;
    loop {
        let n = bot.client().flush_outbox(None).await.unwrap();
        sent += n;
        if n == 0 {
            return sent;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clients_n = env("ALCOVE_BENCH_CLIENTS", 500);
    let per = env("ALCOVE_BENCH_APPOINTMENTS", 20);
    let total = clients_n * per;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = Relay::start(d).await;

    let t = Instant::now();
    let mut clients = Vec::with_capacity(clients_n);
    for i in 0..clients_n {
        let c = Client::enroll(
            &d.join(format!("c{i}.db")),
            &DbKey::random(),
            &relay.url(),
            &relay.invite(),
        )
        .await
        .unwrap();
        clients.push(c.account_id().to_owned());
    }
    println!(
        "setup: {clients_n} clients enrolled in {}",
        secs(t.elapsed())
    );

    std::fs::write(
        d.join("bot.key"),
        hex::encode(alcove_core::random_bytes(32)),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("bot.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    std::fs::write(
        d.join("bot.toml"),
        format!(
            "relay = \"{}\"\ndatabase = \"bot.db\"\nkey_file = \"bot.key\"\noffsets = [\"4h\"]\ndefault_time_zone = \"America/New_York\"\n",
            relay.url()
        ),
    )
    .unwrap();
    let config = BotConfig::load(&d.join("bot.toml")).unwrap();
    let bot = Bot::enroll(config.clone(), &relay.invite()).await.unwrap();

    // Sessions with every client first, so neither measurement pays for
    // prekey fetches.
    bot.engine(|a| {
        a.bot_transaction(|tx| clients.iter().try_for_each(|c| tx.queue_text(c, "Hello.")))
            .map_err(Into::into)
    })
    .unwrap();
    assert_eq!(flush_all(&bot).await as usize, clients_n);

    // Baseline: the same number of plain texts, queued in one
    // transaction and sent through the outbox.
    reset_peak();
    let t = Instant::now();
    bot.engine(|a| {
        a.bot_transaction(|tx| {
            (0..total).try_for_each(|i| {
                tx.queue_text(
                    &clients[i % clients_n],
                    "Reminder: your appointment is soon.",
                )
            })
        })
        .map_err(Into::into)
    })
    .unwrap();
    let sent = flush_all(&bot).await;
    let baseline = t.elapsed();
    let baseline_peak = peak_kib();
    assert_eq!(sent as usize, total);

    // Schedule: a feed of `total` appointments, one second apart, five
    // hours from now, imported in one transaction (parse, map, reconcile,
    // a reminder row each).
    let now = alcove_reminders::bot::now_ms();
    let first = now - now % 1000 + 5 * 3_600_000;
    let mut feed = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n");
    for i in 0..total {
        let start = chrono::DateTime::from_timestamp_millis(first + i as i64 * 1000).unwrap();
        feed.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:b{i}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:{}\r\nATTENDEE:alcove:{}\r\nEND:VEVENT\r\n",
            start.format("%Y%m%dT%H%M%SZ"),
            clients[i % clients_n]
        ));
    }
    feed.push_str("END:VCALENDAR\r\n");
    let mapping = alcove_reminders::Mapping::empty();
    reset_peak();
    let t = Instant::now();
    let imported = bot
        .engine(|a| appointments::import_feed(a, &config, &mapping, &feed, now))
        .unwrap();
    assert_eq!(imported.added as usize, total);
    let schedule = t.elapsed();

    // Send: every reminder due at once (the clock is injected), queued by
    // the engine and sent through the outbox.
    let t = Instant::now();
    // Every reminder is due, no appointment has started.
    let due_all = first - 4 * 3_600_000 + (total as i64) * 1000;
    let report = bot.engine(|a| sending::tick(a, &config, due_all)).unwrap();
    let ticked = t.elapsed();
    let sent = flush_all(&bot).await;
    let send = t.elapsed();
    let peak = peak_kib();
    assert_eq!(report.sent as usize + report.superseded as usize, total);
    assert_eq!(sent, report.sent);
    // Nothing goes twice.
    let again = bot.engine(|a| sending::tick(a, &config, due_all)).unwrap();
    assert_eq!(again.sent, 0);

    println!("\n{total} reminders to {clients_n} clients over a loopback relay");
    println!("| stage | time | per reminder | ratio |");
    println!("|---|---|---|---|");
    let per_item = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6 / total as f64);
    println!(
        "| baseline: {total} plain texts queued (one transaction) + sent | {} | {} | 1.00× |",
        secs(baseline),
        per_item(baseline)
    );
    println!(
        "| import a feed of {total} appointments (reminder rows) | {} | {} | {:.2}× |",
        secs(schedule),
        per_item(schedule),
        schedule.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "| tick: reminders queued | {} | {} | {:.2}× |",
        secs(ticked),
        per_item(ticked),
        ticked.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "| tick + send {} reminders | {} | {} | {:.2}× |",
        report.sent,
        secs(send),
        per_item(send),
        send.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "\npeak RSS: schedule + send {:.1} MiB vs baseline texts {:.1} MiB ({:.2}×)",
        peak as f64 / 1024.0,
        baseline_peak as f64 / 1024.0,
        peak as f64 / baseline_peak.max(1) as f64
    );
}
