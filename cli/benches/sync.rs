//! The push-wake path, measured as ratios against libsignal in the same
//! run, on the traffic a phone really sees:
//! - **sealed, steady state**: 1,000 sealed-sender messages on an
//!   established conversation (what every message after the first
//!   exchange is), synced on one wake (fetch + unseal + certificate check +
//!   decrypt + store + ack, relay on loopback), against libsignal's own
//!   in-memory `sealed_sender_decrypt` of 1,000 such messages;
//! - **unsealed, first messages**: 1,000 PreKey messages (a sender who has
//!   not yet heard back), against libsignal's in-memory `message_decrypt`:
//!   three such syncs, the median reported with the other two;
//! - the same sealed sync through a proxy adding 100 ms of round trip, with
//!   the relay calls it took (what a phone on a mobile network sees);
//! - peak RSS of a fresh process syncing 1,000 sealed messages, against the
//!   same process syncing an empty mailbox.
//!
//! Each sync prints its per-stage table (where the time went). The relay's
//! own throughput is in `relay_paths`.

#[path = "../tests/common.rs"]
mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use alcove_core::proto::wire::{envelope, Envelope};
use alcove_core::SyncReport;
use alcove_testkit::baseline::{inmem_decrypt, inmem_sealed_decrypt};
use alcove_testkit::latency::LatencyProxy;
use common::*;
use prost::Message;

const N: usize = 1000;
/// Unsealed syncs measured; the median is reported.
const UNSEALED_RUNS: usize = 3;
const TEXT: &str = "See you Thursday at 4; bring the worksheet if you can.";

fn field(out: &str, key: &str) -> u64 {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sync_subprocess(dev: &Device, url: &str) -> (u64, u64, u64) {
    let bin = std::env::var("ALCOVE_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("alcove")
            .display()
            .to_string()
    });
    let out = Command::new(bin)
        .args(["sync", "--db"])
        .arg(&dev.path)
        .arg("--key-file")
        .arg(&dev.key_file)
        .args(["--relay", url, "--deadline-ms", "60000", "--report-rss"])
        .output()
        .expect("run alcove sync (build it with `cargo build --release -p alcove-cli`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    (
        field(&s, "received"),
        field(&s, "elapsed_ms"),
        field(&s, "peak_rss_kib"),
    )
}

/// The same sync through the FFI facade in a process holding nothing else
/// (`ffi/examples/sync_probe.rs`): (received, peak RSS KiB), or `None` when
/// the probe was not built.
fn probe_subprocess(dev: &Device, url: &str) -> Option<(u64, u64)> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent()?.parent()?.join("examples").join("sync_probe");
    if !bin.exists() {
        println!(
            "(no {}: `cargo build --release -p alcove-ffi --example sync_probe` for the library's own RSS)",
            bin.display()
        );
        return None;
    }
    let out = Command::new(bin)
        .arg(&dev.path)
        .arg(&dev.key_file)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    Some((field(&s, "received"), field(&s, "peak_rss_kib")))
}

/// Envelopes waiting at the relay, by kind: (sealed, prekey, signal).
fn queued_kinds(relay: &Relay) -> (usize, usize, usize) {
    let conn = rusqlite::Connection::open(&relay.db).unwrap();
    let mut stmt = conn.prepare("SELECT envelope FROM mailbox").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    let mut kinds = (0, 0, 0);
    for row in rows {
        let env = Envelope::decode(&row.unwrap()[..]).unwrap();
        match envelope::Type::try_from(env.r#type) {
            Ok(envelope::Type::SealedSender) => kinds.0 += 1,
            Ok(envelope::Type::PrekeyMessage) => kinds.1 += 1,
            _ => kinds.2 += 1,
        }
    }
    kinds
}

async fn queue(from: &Device, to: &Device, n: usize) {
    let conv = from
        .client
        .conversation_with(to.client.account_id())
        .unwrap();
    for _ in 0..n {
        from.client.send_text(conv, TEXT).await.unwrap();
    }
}

/// `a` and `b` have texted both ways: `a` knows `b`'s delivery key, so
/// what `a` sends `b` from now on is sealed.
async fn converse(a: &Device, b: &Device) {
    queue(a, b, 1).await;
    b.client.sync(soon(30)).await.unwrap();
    queue(b, a, 1).await;
    a.client.sync(soon(30)).await.unwrap();
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn print_stages(r: &SyncReport, n: usize) {
    let s = &r.stages;
    let total = s.total();
    println!(
        "  per-stage (µs/message; relay calls {}, pages retried {}, second page asked early {}, dropped {}):",
        s.relay_calls, s.retried_pages, s.early_pages, s.dropped_pages
    );
    for (name, d) in s.rows() {
        if d.is_zero() {
            continue;
        }
        println!(
            "    {name:<34} {:>8.1}   {:>5.1}%",
            per(d, n),
            100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "    {:<34} {:>8.1}   (relay's Server-Timing, within fetch and ack)",
        "of which relay work",
        per(s.relay, n)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;

    // 1. Unsealed first messages: `a` has never heard back from `b`. Three
    // pairs, each its own 1,000: the median run is reported, with the
    // spread (one sync is ~20 ms here, where an fsync or the relay's turn
    // on the other core moves it by a tenth).
    let mut runs = Vec::new();
    for i in 0..UNSEALED_RUNS {
        let a = enroll(dir.path(), &format!("a{i}"), &relay).await;
        let b = enroll(dir.path(), &format!("b{i}"), &relay).await;
        queue(&a, &b, N).await;
        let kinds = queued_kinds(&relay);
        assert_eq!(kinds.1, N, "first messages are PreKey messages: {kinds:?}");
        let t = Instant::now();
        let report = b.client.sync(soon(300)).await.unwrap();
        let time = t.elapsed();
        assert_eq!(report.received as usize, N);
        runs.push((time, report));
    }
    runs.sort_by_key(|(time, _)| *time);
    let spread: Vec<Duration> = runs.iter().map(|(time, _)| *time).collect();
    let (unsealed_time, unsealed) = runs.swap_remove(UNSEALED_RUNS / 2);
    let unsealed_base = inmem_decrypt(N);

    // 2. Sealed steady state on an established conversation.
    let c = enroll(dir.path(), "c", &relay).await;
    let d = enroll(dir.path(), "d", &relay).await;
    converse(&c, &d).await;
    let t = Instant::now();
    queue(&c, &d, N).await;
    let one_by_one = t.elapsed();
    let kinds = queued_kinds(&relay);
    assert_eq!(kinds.0, N, "steady-state messages are sealed: {kinds:?}");
    let t = Instant::now();
    let sealed = d.client.sync(soon(300)).await.unwrap();
    let sealed_time = t.elapsed();
    assert_eq!(sealed.received as usize, N);
    let sealed_base = inmem_sealed_decrypt(N);

    // 3. The same through 100 ms of round trip.
    let upstream: SocketAddr = relay.addr;
    let proxy = LatencyProxy::start(upstream).await;
    let e = enroll_at(dir.path(), "e", &relay.url(), &relay.invite()).await;
    let f = enroll_at(dir.path(), "f", &proxy.url(), &relay.invite()).await;
    converse(&e, &f).await;
    queue(&e, &f, N).await;
    proxy.set_round_trip(Duration::from_millis(100));
    let t = Instant::now();
    let far = f.client.sync(soon(300)).await.unwrap();
    let far_time = t.elapsed();
    assert_eq!(far.received as usize, N);
    proxy.set_round_trip(Duration::ZERO);

    // 4. Peak RSS: a fresh process syncing 1,000 sealed vs syncing none.
    // The 1,000 go as a burst this time: queued while offline, then one
    // flush (one commit per burst for the ratchet, one for the dequeue).
    let (_, _, idle_rss) = sync_subprocess(&d, &relay.url());
    let conv = c.client.conversation_with(d.client.account_id()).unwrap();
    let t = Instant::now();
    for _ in 0..N {
        c.client
            .with_account(|a| a.compose_text(conv, TEXT))
            .unwrap();
    }
    assert_eq!(c.client.flush_outbox(None).await.unwrap() as usize, N);
    let burst = t.elapsed();
    let (got, sub_ms, rss) = sync_subprocess(&d, &relay.url());
    assert_eq!(got as usize, N);
    // And through the library alone: empty, then another 1,000.
    let mut probe = None;
    if let Some((_, idle)) = probe_subprocess(&d, &relay.url()) {
        for _ in 0..N {
            c.client
                .with_account(|a| a.compose_text(conv, TEXT))
                .unwrap();
        }
        assert_eq!(c.client.flush_outbox(None).await.unwrap() as usize, N);
        let (got, rss) = probe_subprocess(&d, &relay.url()).unwrap();
        assert_eq!(got as usize, N);
        probe = Some((idle, rss));
    }

    println!("== push-wake sync, {N} queued messages, relay on loopback (SQLite) ==");
    println!(
        "sealed steady state: sync                 : {:>8.1} µs/message  ({:.0} ms, {} pages)",
        per(sealed_time, N),
        sealed_time.as_secs_f64() * 1e3,
        sealed.pages
    );
    println!(
        "  libsignal in-memory sealed_sender_decrypt: {:>8.1} µs/message",
        per(sealed_base, N)
    );
    println!(
        "  ratio sealed sync / libsignal sealed      : {:>8.2}x   (target ≤ 1.0x)",
        sealed_time.as_secs_f64() / sealed_base.as_secs_f64()
    );
    print_stages(&sealed, N);
    println!(
        "unsealed first messages: sync             : {:>8.1} µs/message  ({:.0} ms, {} pages)",
        per(unsealed_time, N),
        unsealed_time.as_secs_f64() * 1e3,
        unsealed.pages
    );
    println!(
        "  libsignal in-memory message_decrypt      : {:>8.1} µs/message",
        per(unsealed_base, N)
    );
    println!(
        "  ratio unsealed sync / libsignal decrypt   : {:>8.2}x   (target ≤ 4x; median of {UNSEALED_RUNS}: {})",
        unsealed_time.as_secs_f64() / unsealed_base.as_secs_f64(),
        spread
            .iter()
            .map(|t| format!("{:.2}x", t.as_secs_f64() / unsealed_base.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    print_stages(&unsealed, N);
    println!(
        "sealed at 100 ms RTT (latency proxy)      : {:>8.0} ms for {N} messages, {} pages, {} relay calls, {} new connections",
        far_time.as_secs_f64() * 1e3,
        far.pages,
        far.stages.relay_calls,
        proxy.connections()
    );
    println!(
        "  ratio to the loopback sealed sync        : {:>8.2}x",
        far_time.as_secs_f64() / sealed_time.as_secs_f64()
    );
    print_stages(&far, N);
    println!(
        "send, one text at a time (sealed)         : {:>8.1} µs/text",
        per(one_by_one, N)
    );
    println!(
        "send, queued offline then one flush       : {:>8.1} µs/text",
        per(burst, N)
    );
    println!(
        "ratio burst / one at a time               : {:>8.2}x",
        burst.as_secs_f64() / one_by_one.as_secs_f64()
    );
    println!("sync as a fresh process (sealed)          : {sub_ms} ms for {N} messages");
    println!(
        "peak RSS, process syncing {N} sealed      : {:>8.1} MiB   (target < 16 MiB)",
        rss as f64 / 1024.0
    );
    println!(
        "peak RSS, same process, empty mailbox     : {:>8.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "ratio peak RSS {N} / empty               : {:>8.2}x",
        rss as f64 / idle_rss.max(1) as f64
    );
    if let Some((idle, rss)) = probe {
        println!(
            "peak RSS, library alone (FFI facade) {N} : {:>8.1} MiB   (target < 16 MiB)",
            rss as f64 / 1024.0
        );
        println!(
            "peak RSS, library alone, empty mailbox   : {:>8.1} MiB",
            idle as f64 / 1024.0
        );
    }
}
