//! Relay load on loopback: N devices, M messages to each, through real
//! `alcove relay` processes — SQLite with one process (the baseline),
//! PostgreSQL with one process, PostgreSQL with two processes on one
//! database (requests alternate between them). Per configuration: send,
//! fetch and ack throughput and p50/p99 latency, with ratios against the
//! SQLite baseline of the same run; then every device's mail is checked:
//! each message delivered exactly once, none lost, none duplicated.
//!
//! A benchmark, not a test: `cargo bench -p alcove-cli --bench relay_load`.
//! Size with `ALCOVE_BENCH_DEVICES` (default 200) and
//! `ALCOVE_BENCH_MESSAGES` (default 50 per device); PostgreSQL rows need
//! `ALCOVE_TEST_POSTGRES` (e.g. `scripts/postgres.sh start DIR`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_proto::relay::*;
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::key_checks::testing::DeviceKeys;
use alcove_testkit::relay::RelayProcess;
use base64::Engine;
use rand::RngCore;

/// Requests in flight at once, across all relays.
const CONCURRENCY: usize = 32;

#[derive(Clone)]
struct Dev {
    account: String,
    secret: Vec<u8>,
}

impl Dev {
    fn auth(&self) -> String {
        let s = format!("{}.1:{}", self.account, hex::encode(&self.secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

fn rnd(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn register(http: &reqwest::Client, base: &str, invite: String) -> Dev {
    let account = hex::encode(rnd(8));
    let secret = rnd(32);
    let k = DeviceKeys::generate();
    let req = RegisterRequest {
        invite_token: invite,
        account_id: account.clone(),
        registration_id: 7,
        identity_key: k.identity_key(),
        auth_secret: secret.clone(),
        prekeys: Some(k.upload(1, 1)),
        delivery_key: vec![],
    };
    let r = http
        .post(format!("{base}/v1/register"))
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Dev { account, secret }
}

struct Lat(Vec<Duration>);

impl Lat {
    fn pct(&mut self, p: f64) -> Duration {
        self.0.sort();
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }
}

struct Row {
    name: &'static str,
    send_rate: f64,
    send: Lat,
    drain_rate: f64,
    fetch: Lat,
    ack: Lat,
}

/// Sends M messages to each of the devices, then drains every mailbox;
/// checks exactly-once delivery.
async fn run(name: &'static str, bases: &[String], invites: Vec<String>, m: usize) -> Row {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let mut devs = Vec::new();
    for (i, inv) in invites.into_iter().enumerate() {
        devs.push(register(&http, &bases[i % bases.len()], inv).await);
    }
    let devs = Arc::new(devs);
    let n = devs.len();
    let bases = Arc::new(bases.to_vec());

    // Sends: job j is message j / n to device j % n, from device j % n + 1.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, devs, bases, next) = (
            http.clone(),
            Arc::clone(&devs),
            Arc::clone(&bases),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if j >= n * m {
                    break lat;
                }
                let (to, msg) = (j % n, j / n);
                let from = &devs[(to + 1) % n];
                let mut guid = [0u8; 16];
                guid[..8].copy_from_slice(&(to as u64).to_be_bytes());
                guid[8..].copy_from_slice(&(msg as u64).to_be_bytes());
                let req = SendRequest {
                    guid: guid.to_vec(),
                    messages: vec![OutgoingMessage {
                        destination_device: 1,
                        destination_registration_id: 7,
                        r#type: envelope::Type::SignalMessage as i32,
                        ciphertext: vec![7; 200],
                    }],
                };
                let t = Instant::now();
                let r = http
                    .put(format!(
                        "{}/v1/messages/{}",
                        bases[j % bases.len()],
                        devs[to].account
                    ))
                    .header("authorization", from.auth())
                    .body(req.encode_to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204, "send");
                lat.push(t.elapsed());
            }
        }));
    }
    let mut send = Vec::new();
    for t in tasks {
        send.extend(t.await.unwrap());
    }
    let send_rate = (n * m) as f64 / started.elapsed().as_secs_f64();

    // Drain: each device fetches pages of 100 and acks them, devices in
    // parallel, alternating relays page by page.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, devs, bases, next) = (
            http.clone(),
            Arc::clone(&devs),
            Arc::clone(&bases),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let (mut fetch, mut ack, mut got) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                let d = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if d >= n {
                    break (fetch, ack, got);
                }
                let mut seen = Vec::new();
                for page_no in 0.. {
                    let base = &bases[(d + page_no) % bases.len()];
                    let t = Instant::now();
                    let r = http
                        .get(format!("{base}/v1/messages?limit=100"))
                        .header("authorization", devs[d].auth())
                        .header("x-alcove-reader", "bench")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200, "fetch");
                    let page = EnvelopePage::decode(&r.bytes().await.unwrap()[..]).unwrap();
                    fetch.push(t.elapsed());
                    if page.envelopes.is_empty() {
                        break;
                    }
                    let guids: Vec<Vec<u8>> =
                        page.envelopes.iter().map(|e| e.guid.clone()).collect();
                    seen.extend(guids.iter().cloned());
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/v1/messages/ack"))
                        .header("authorization", devs[d].auth())
                        .header("x-alcove-reader", "bench")
                        .body(AckRequest { guids }.encode_to_vec())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 204, "ack");
                    ack.push(t.elapsed());
                }
                got.push((d, seen));
            }
        }));
    }
    let (mut fetch, mut ack) = (Vec::new(), Vec::new());
    let mut delivered = 0usize;
    for t in tasks {
        let (f, a, got) = t.await.unwrap();
        fetch.extend(f);
        ack.extend(a);
        for (d, seen) in got {
            let distinct: HashSet<&Vec<u8>> = seen.iter().collect();
            assert_eq!(
                distinct.len(),
                seen.len(),
                "{name}: device {d} got a duplicate"
            );
            assert_eq!(seen.len(), m, "{name}: device {d} lost mail");
            for g in &seen {
                assert_eq!(&g[..8], &(d as u64).to_be_bytes(), "{name}: misdelivered");
            }
            delivered += seen.len();
        }
    }
    let drain_rate = delivered as f64 / started.elapsed().as_secs_f64();
    assert_eq!(delivered, n * m);
    Row {
        name,
        send_rate,
        send: Lat(send),
        drain_rate,
        fetch: Lat(fetch),
        ack: Lat(ack),
    }
}

fn relay_toml(dir: &Path, storage: &str) -> std::path::PathBuf {
    let off = "{ count = 0, window_secs = 1 }";
    let text = format!(
        "[relay]\nbind = \"127.0.0.1:0\"\n[storage]\n{storage}\n\
         [sealed_sender]\nkey_dir = \"ss\"\n\
         [rate_limits]\nsends_per_account = {off}\nsigned_sends_per_pair = {off}\n\
         bundle_fetches_per_requester = {off}\nbundle_fetches_per_target = {off}\n\
         registrations_per_address = {off}\nfailed_auth_per_address = {off}\n\
         invite_mints_per_account = {off}\n"
    );
    let path = dir.join("relay.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(config: &Path, db: &Path) -> RelayProcess {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alcove"));
    cmd.arg("relay").arg("--config").arg(config);
    RelayProcess::spawn_command(cmd, db.to_path_buf(), "warn")
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_num("ALCOVE_BENCH_DEVICES", 200).max(2);
    let m = env_num("ALCOVE_BENCH_MESSAGES", 50).max(1);
    println!("relay load: {n} devices x {m} messages, {CONCURRENCY} requests in flight");
    let mut rows = Vec::new();

    // SQLite, one process: the baseline.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let config = relay_toml(dir.path(), "sqlite = \"relay.db\"");
    let relay = spawn(&config, &db);
    let invites = (0..n)
        .map(|_| alcove_relay::create_invite(&db, None).unwrap())
        .collect();
    rows.push(
        run(
            "SQLite, 1 process",
            std::slice::from_ref(&relay.url),
            invites,
            m,
        )
        .await,
    );
    drop(relay);

    for processes in [1usize, 2] {
        let Some(pg) = alcove_testkit::postgres::database("relay_load").await else {
            break;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = relay_toml(
            dir.path(),
            &format!("postgres = \"{}\"\nmax_connections = 16", pg.url),
        );
        let relays: Vec<RelayProcess> = (0..processes)
            .map(|_| spawn(&config, &dir.path().join("none.db")))
            .collect();
        let storage = alcove_relay::PostgresStorage::connect(
            &alcove_relay::PostgresUrl::new(pg.url.clone()),
            2,
        )
        .await
        .unwrap();
        let mut invites = Vec::new();
        for _ in 0..n {
            invites.push(
                alcove_relay::issue_invite(&storage, alcove_relay::Role::Client, now(), None)
                    .await
                    .unwrap(),
            );
        }
        let bases: Vec<String> = relays.iter().map(|r| r.url.clone()).collect();
        let name = if processes == 1 {
            "PostgreSQL, 1 process"
        } else {
            "PostgreSQL, 2 processes"
        };
        rows.push(run(name, &bases, invites, m).await);
    }

    let base_send = rows[0].send_rate;
    let base_drain = rows[0].drain_rate;
    println!(
        "\n| configuration | send/s | ratio | send p50 ms | send p99 ms | fetch+ack msgs/s | ratio | fetch p50 ms | fetch p99 ms | ack p50 ms | ack p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &mut rows {
        println!(
            "| {} | {:.0} | {:.2} | {} | {} | {:.0} | {:.2} | {} | {} | {} | {} |",
            r.name,
            r.send_rate,
            r.send_rate / base_send,
            ms(r.send.pct(0.5)),
            ms(r.send.pct(0.99)),
            r.drain_rate,
            r.drain_rate / base_drain,
            ms(r.fetch.pct(0.5)),
            ms(r.fetch.pct(0.99)),
            ms(r.ack.pct(0.5)),
            ms(r.ack.pct(0.99)),
        );
    }
    println!(
        "\nevery configuration: {} messages delivered exactly once (none lost, none duplicated)",
        n * m
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
