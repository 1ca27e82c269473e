//! The push-wake path, measured as ratios in one run:
//! - 1,000 queued messages synced on one wake (fetch + decrypt + store +
//!   ack, relay on loopback) against libsignal's in-memory decrypt of 1,000
//!   messages;
//! - peak RSS of a process doing that sync, against the same process
//!   syncing an empty mailbox (and against the iOS NSE's 24 MB);
//! - relay throughput: send + fetch + ack per second on SQLite;
//! - the mailbox quota check on the send path: sends into a mailbox that
//!   already holds 2,000 envelopes of 6 KB against sends into an empty one;
//! - the rate-limit checks a signed send passes (per account, per pair)
//!   against the cost of the send itself.

#[path = "../tests/common.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use alcove_core::proto::relay::SendRequest;
use alcove_core::proto::wire::envelope;
use alcove_core::RelayClient;
use alcove_testkit::baseline::inmem_decrypt;
use common::*;

const N: usize = 1000;

fn field(out: &str, key: &str) -> u64 {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sync_subprocess(dev: &Device, relay: &Relay) -> (u64, u64, u64) {
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
        .args([
            "--relay",
            &relay.url(),
            "--deadline-ms",
            "60000",
            "--report-rss",
        ])
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    a.client.send_text(&b_id, "warm-up").await.unwrap();
    b.client.sync(soon(30)).await.unwrap();

    let text = "See you Thursday at 4; bring the worksheet if you can.";
    let queue = |n: usize| {
        let a = &a;
        let b_id = b_id.clone();
        async move {
            for _ in 0..n {
                a.client.send_text(&b_id, text).await.unwrap();
            }
        }
    };

    // 1. In-process sync of 1,000 queued messages.
    queue(N).await;
    let t = Instant::now();
    let r = b.client.sync(soon(120)).await.unwrap();
    let sync_time = t.elapsed();
    assert_eq!(r.received as usize, N);
    let inmem = inmem_decrypt(N);

    // 2. Peak RSS: a fresh process syncing 1,000 vs syncing none.
    let (_, _, idle_rss) = sync_subprocess(&b, &relay);
    queue(N).await;
    let (got, sub_ms, rss) = sync_subprocess(&b, &relay);
    assert_eq!(got as usize, N);

    // 3. Relay throughput: send + fetch + ack, opaque ciphertexts.
    let rc = RelayClient::new(&relay.url()).unwrap();
    let creds_a = a.client.account().unwrap().relay_credentials().unwrap();
    let creds_b = b.client.account().unwrap().relay_credentials().unwrap();
    let reg_b = b.client.account().unwrap().registration_id();
    let ops = 1000;
    let t = Instant::now();
    for i in 0..ops {
        let mut guid = vec![0u8; 16];
        guid[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let req = SendRequest {
            guid,
            messages: vec![alcove_core::proto::relay::OutgoingMessage {
                destination_device: 1,
                destination_registration_id: reg_b,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: vec![0x42; 200],
            }],
        };
        rc.send(&creds_a, &b_id, &req).await.unwrap();
    }
    let send_time = t.elapsed();
    let t = Instant::now();
    let mut fetched = 0;
    loop {
        let page = rc
            .fetch(&creds_b, "bench-reader", 100, Duration::from_secs(10))
            .await
            .unwrap();
        if page.envelopes.is_empty() {
            break;
        }
        fetched += page.envelopes.len();
        let guids = page.envelopes.into_iter().map(|e| e.guid).collect();
        rc.ack(&creds_b, "bench-reader", guids).await.unwrap();
    }
    let drain_time = t.elapsed();
    assert_eq!(fetched, ops);

    // 4. The quota check on the send path must not grow with the queue:
    // the same sends into an empty mailbox and into one holding 2,000
    // envelopes of 6 KB (sealed-size mail a device offline for weeks holds).
    let send_batch = |n: usize, size: usize, tag: u8| {
        let (rc, creds_a, b_id) = (&rc, &creds_a, &b_id);
        async move {
            let t = Instant::now();
            for i in 0..n {
                let mut guid = vec![tag; 16];
                guid[8..].copy_from_slice(&(i as u64).to_be_bytes());
                let req = SendRequest {
                    guid,
                    messages: vec![alcove_core::proto::relay::OutgoingMessage {
                        destination_device: 1,
                        destination_registration_id: reg_b,
                        r#type: envelope::Type::SignalMessage as i32,
                        ciphertext: vec![0x42; size],
                    }],
                };
                rc.send(creds_a, b_id, &req).await.unwrap();
            }
            t.elapsed()
        }
    };
    let probe = 200;
    let empty_sends = send_batch(probe, 200, 1).await;
    send_batch(2000, 6000, 2).await;
    let full_sends = send_batch(probe, 200, 3).await;

    // 5. The rate-limit checks of one signed send, at the default limits,
    // over many accounts (so no bucket runs dry).
    let limits = alcove_relay::rate_limits::RateLimits::new(&Default::default());
    let senders: Vec<String> = (0..1000).map(|i| format!("acct-{i}")).collect();
    let checks = 100_000;
    let t = Instant::now();
    for i in 0..checks {
        let s = &senders[i % senders.len()];
        let r = &senders[(i / senders.len()) % senders.len()];
        let _ = std::hint::black_box(limits.send(s).and(limits.signed_send(s, r)));
    }
    let limit_time = t.elapsed();

    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    println!("== push-wake sync, {N} queued messages, relay on loopback (SQLite) ==");
    println!(
        "sync in-process (fetch+decrypt+store+ack): {:>8.1} µs/message  ({:.0} ms total, {} pages)",
        per(sync_time, N),
        sync_time.as_secs_f64() * 1e3,
        r.pages
    );
    println!(
        "libsignal in-memory decrypt              : {:>8.1} µs/message",
        per(inmem, N)
    );
    println!(
        "ratio sync / in-memory decrypt            : {:>8.2}x",
        sync_time.as_secs_f64() / inmem.as_secs_f64()
    );
    println!("sync as a fresh process                   : {sub_ms} ms for {N} messages");
    println!(
        "peak RSS, process syncing {N}            : {:>8.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "peak RSS, same process, empty mailbox     : {:>8.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!("ratio peak RSS 1,000 / empty              : {:>8.2}x   (iOS NSE limit 24 MiB: {:.0}% used)", rss as f64 / idle_rss.max(1) as f64, rss as f64 / 1024.0 / 24.0 * 100.0);
    println!(
        "relay send (PUT), sequential              : {:>8.0} /s",
        ops as f64 / send_time.as_secs_f64()
    );
    println!(
        "relay fetch+ack (pages of 100)            : {:>8.0} envelopes/s",
        ops as f64 / drain_time.as_secs_f64()
    );
    println!(
        "relay send+fetch+ack                      : {:>8.0} messages/s",
        ops as f64 / (send_time + drain_time).as_secs_f64()
    );
    println!(
        "relay send, empty mailbox                 : {:>8.1} µs/send",
        per(empty_sends, probe)
    );
    println!(
        "relay send, mailbox holding 2,000 × 6 KB  : {:>8.1} µs/send",
        per(full_sends, probe)
    );
    println!(
        "ratio send full / empty mailbox           : {:>8.2}x",
        full_sends.as_secs_f64() / empty_sends.as_secs_f64()
    );
    println!(
        "rate-limit checks of one signed send      : {:>8.3} µs",
        per(limit_time, checks)
    );
    println!(
        "ratio rate-limit checks / relay send      : {:>8.4}x",
        (limit_time.as_secs_f64() / checks as f64) / (empty_sends.as_secs_f64() / probe as f64)
    );
}
