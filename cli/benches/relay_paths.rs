//! The relay's own paths, measured as ratios in one run (relay in this
//! process on loopback, SQLite, opaque ciphertexts, no decryption):
//! - throughput: send, then drain 1,000 envelopes with GET /v1/messages +
//!   POST /v1/messages/ack in pages of 100 (the baseline), and the same
//!   1,000 with POST /v1/messages/sync (each call acks the page before,
//!   the last one releases the lease) in pages of 100 and of 500;
//! - the mailbox quota check on the send path: sends into a mailbox that
//!   already holds 2,000 envelopes of 6 KB against sends into an empty one;
//! - the rate-limit checks a signed send passes (per account, per pair)
//!   against the cost of the send itself.
//!
//! A benchmark, not a test: `cargo bench -p alcove-cli --bench relay_paths`.

#[path = "../tests/common.rs"]
mod common;

use std::time::{Duration, Instant};

use alcove_core::proto::relay::{OutgoingMessage, SendRequest, SyncRequest};
use alcove_core::proto::wire::envelope;
use alcove_core::RelayClient;
use common::*;

/// Envelopes per drain.
const N: usize = 1000;
/// Drains of each kind, alternated; the median is printed.
const ROUNDS: usize = 5;
const READER: &str = "bench-reader";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path()).await;
    let a = enroll(dir.path(), "a", &relay).await;
    let b = enroll(dir.path(), "b", &relay).await;
    let b_id = b.client.account_id().to_owned();
    let rc = RelayClient::new(&relay.url()).unwrap();
    let creds_a = a.client.with_account(|a| a.relay_credentials()).unwrap();
    let creds_b = b.client.with_account(|a| a.relay_credentials()).unwrap();
    let reg_b = b.client.with_account(|a| Ok(a.registration_id())).unwrap();

    // Sends `n` envelopes of `size` bytes to b, GUIDs tagged by `tag`.
    let send_batch = |n: usize, size: usize, tag: u32| {
        let (rc, creds_a, b_id) = (&rc, &creds_a, &b_id);
        async move {
            let t = Instant::now();
            for i in 0..n {
                let mut guid = vec![0u8; 16];
                guid[..4].copy_from_slice(&tag.to_be_bytes());
                guid[8..].copy_from_slice(&(i as u64).to_be_bytes());
                let req = SendRequest {
                    guid,
                    messages: vec![OutgoingMessage {
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

    // The baseline drain: GET a page of 100, ack it, until a page is
    // empty (the release afterwards is not timed).
    let get_ack = || {
        let (rc, creds_b) = (&rc, &creds_b);
        async move {
            let t = Instant::now();
            let mut fetched = 0;
            loop {
                let page = rc
                    .fetch(creds_b, READER, 100, Duration::from_secs(10))
                    .await
                    .unwrap();
                if page.envelopes.is_empty() {
                    break;
                }
                fetched += page.envelopes.len();
                let guids = page.envelopes.into_iter().map(|e| e.guid).collect();
                rc.ack(creds_b, READER, guids).await.unwrap();
            }
            let took = t.elapsed();
            rc.release_reader(creds_b, READER).await.unwrap();
            assert_eq!(fetched, N);
            took
        }
    };

    // The new drain: one /sync per page, each acking the page before it;
    // the last call acks the last page and lets the lease go.
    let by_sync = |limit: u32| {
        let (rc, creds_b) = (&rc, &creds_b);
        async move {
            let t = Instant::now();
            let (mut fetched, mut pages) = (0, 0);
            let mut req = SyncRequest {
                limit,
                ..Default::default()
            };
            loop {
                let page = rc
                    .sync_page(creds_b, READER, &req, Duration::from_secs(10))
                    .await
                    .unwrap();
                if req.release {
                    break;
                }
                fetched += page.envelopes.len();
                pages += 1;
                req = SyncRequest {
                    ack: page.envelopes.into_iter().map(|e| e.guid).collect(),
                    limit: if page.more { limit } else { 0 },
                    after: page.cursor,
                    release: !page.more,
                    skip: 0,
                };
            }
            let took = t.elapsed();
            assert_eq!(fetched, N);
            (took, pages)
        }
    };

    // 3. Relay throughput: send + fetch + ack, 200-byte ciphertexts; the
    // three drains alternate, so they share the machine's state.
    let mut tag = 0;
    let mut sends = Vec::new();
    let (mut baseline, mut sync100, mut sync500) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pages100, mut pages500) = (0, 0);
    for _ in 0..ROUNDS {
        tag += 1;
        sends.push(send_batch(N, 200, tag).await);
        baseline.push(get_ack().await);
        tag += 1;
        send_batch(N, 200, tag).await;
        let (t, p) = by_sync(100).await;
        sync100.push(t);
        pages100 = p;
        tag += 1;
        send_batch(N, 200, tag).await;
        let (t, p) = by_sync(500).await;
        sync500.push(t);
        pages500 = p;
    }
    let send_time = median(sends);
    let drain_time = median(baseline);
    let sync100 = median(sync100);
    let sync500 = median(sync500);

    // 4. The quota check on the send path must not grow with the queue:
    // the same sends into an empty mailbox and into one holding 2,000
    // envelopes of 6 KB (sealed-size mail a device offline for weeks holds).
    let probe = 200;
    let empty_sends = send_batch(probe, 200, 1001).await;
    send_batch(2000, 6000, 1002).await;
    let full_sends = send_batch(probe, 200, 1003).await;

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
    println!("== relay paths, relay on loopback (SQLite), median of {ROUNDS} rounds of {N} ==");
    println!(
        "relay send (PUT), sequential              : {:>8.0} /s",
        N as f64 / send_time.as_secs_f64()
    );
    println!(
        "relay fetch+ack (GET+ack, pages of 100)   : {:>8.0} envelopes/s  ({:.1} ms per {N})",
        N as f64 / drain_time.as_secs_f64(),
        drain_time.as_secs_f64() * 1e3
    );
    println!(
        "relay send+fetch+ack                      : {:>8.0} messages/s",
        N as f64 / (send_time + drain_time).as_secs_f64()
    );
    println!(
        "relay /sync drain, pages of 100           : {:>8.0} envelopes/s  ({:.1} ms per {N}, {pages100} pages)",
        N as f64 / sync100.as_secs_f64(),
        sync100.as_secs_f64() * 1e3
    );
    println!(
        "relay /sync drain, pages of 500           : {:>8.0} envelopes/s  ({:.1} ms per {N}, {pages500} pages)",
        N as f64 / sync500.as_secs_f64(),
        sync500.as_secs_f64() * 1e3
    );
    println!(
        "ratio /sync(100) / GET+ack(100) drain time: {:>8.2}x",
        sync100.as_secs_f64() / drain_time.as_secs_f64()
    );
    println!(
        "ratio /sync(500) / GET+ack(100) drain time: {:>8.2}x",
        sync500.as_secs_f64() / drain_time.as_secs_f64()
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
