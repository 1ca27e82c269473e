//! Per-message cost of Alcove's store against libsignal's in-memory store,
//! and of SQLCipher against plain SQLite — printed as ratios measured in
//! the same run (absolute times depend on the machine; ratios much less).
//!
//! Every iteration moves 100 messages on an existing chain (Alice → Bob):
//! - `inmem`: libsignal's `InMemSignalProtocolStore`, encrypt + decrypt.
//! - `alcove_sqlcipher`: `send_text` ×100 (one transaction each, as a user
//!   sends) and `receive` of one page of 100 (one transaction).
//! - `alcove_plain`: the same on plain SQLite, to isolate encryption cost.
//! - `alcove_receive_sqlcipher` / `alcove_receive_plain`: the receive page
//!   alone (what a push wake costs), ciphertexts made outside the timing.
//! - `alcove_sync_page_sqlcipher` / `alcove_sync_page_plain`: the same with
//!   the page the sync really commits ([`alcove_core::PAGE_SIZE`], 500):
//!   a commit's fixed pages (session, index edges) are spread over more
//!   messages, and SQLCipher encrypts and MACs every page it writes.

use std::time::Duration;

use alcove_core::proto::relay::DeviceBundle;
use alcove_core::proto::wire::Envelope;
use alcove_core::{Account, Cipher, DbKey};
use alcove_testkit::baseline::InMemPair;
use criterion::{BatchSize, Criterion};
use rand::RngCore;

const N: usize = 100;

struct Pair {
    _dir: tempfile::TempDir,
    alice: Account,
    bob: Account,
}

fn pair(cipher: Cipher) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let key = DbKey::random();
    let mut alice =
        Account::create_with(&dir.path().join("a.db"), &key, "acct-alice", 1, cipher).unwrap();
    let mut bob =
        Account::create_with(&dir.path().join("b.db"), &key, "acct-bob", 1, cipher).unwrap();
    alice.initial_prekeys().unwrap();
    let up = bob.initial_prekeys().unwrap();
    let bundle = DeviceBundle {
        device_id: 1,
        registration_id: bob.registration_id(),
        identity_key: bob.identity_key(),
        signed_prekey: up.signed_prekey.clone(),
        kyber_prekey: up.one_time_kyber_prekeys.first().cloned(),
        one_time_prekey: up.one_time_prekeys.first().cloned(),
    };
    alice.process_bundle("acct-bob", &bundle).unwrap();
    // Establish the chain both ways so every measured message is a plain
    // SignalMessage on an existing chain.
    let out = alice.encrypt_text("acct-bob", "hello").unwrap();
    bob.receive(&[env(&alice, &out.messages[0])]).unwrap();
    let out = bob.encrypt_text("acct-alice", "hello").unwrap();
    alice.receive(&[env(&bob, &out.messages[0])]).unwrap();
    Pair {
        _dir: dir,
        alice,
        bob,
    }
}

fn env(from: &Account, m: &alcove_core::proto::relay::OutgoingMessage) -> Envelope {
    let mut guid = vec![0u8; 16];
    rand::rng().fill_bytes(&mut guid);
    Envelope {
        guid,
        r#type: m.r#type,
        source_account: from.account_id().into(),
        source_device: from.device_id(),
        destination_device: 1,
        ciphertext: m.ciphertext.clone(),
        // As the relay stamps it: its clock, in milliseconds.
        server_timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

const TEXT: &str = "See you Thursday at 4; bring the worksheet if you can.";

fn send_batch(alice: &mut Account) -> Vec<Envelope> {
    send_n(alice, N)
}

fn send_n(alice: &mut Account, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|_| {
            let out = alice.encrypt_text("acct-bob", TEXT).unwrap();
            env(alice, &out.messages[0])
        })
        .collect()
}

fn alcove_round(p: &mut Pair) {
    let envs = send_batch(&mut p.alice);
    let out = p.bob.receive(&envs).unwrap();
    assert!(out.iter().all(|o| o.result.is_ok()));
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut results: Vec<(&str, f64)> = Vec::new();

    {
        let mut p = InMemPair::established("acct-alice", "acct-bob");
        let padded = vec![0u8; 160];
        c.bench_function("inmem", |bch| {
            bch.iter(|| {
                for _ in 0..N {
                    p.a_to_b(&padded);
                }
            })
        });
    }
    for (name, cipher) in [
        ("alcove_sqlcipher", Cipher::SqlCipher),
        ("alcove_plain", Cipher::PlainForBenchmarks),
    ] {
        let mut p = pair(cipher);
        c.bench_function(name, |b| b.iter(|| alcove_round(&mut p)));
    }
    for (name, cipher) in [
        ("alcove_receive_sqlcipher", Cipher::SqlCipher),
        ("alcove_receive_plain", Cipher::PlainForBenchmarks),
    ] {
        let mut p = pair(cipher);
        c.bench_function(name, |b| {
            b.iter_batched(
                || send_batch(&mut p.alice),
                |envs| {
                    let out = p.bob.receive(&envs).unwrap();
                    assert!(out.iter().all(|o| o.result.is_ok()));
                },
                BatchSize::PerIteration,
            )
        });
    }
    let page = alcove_core::PAGE_SIZE as usize;
    for (name, cipher) in [
        ("alcove_sync_page_sqlcipher", Cipher::SqlCipher),
        ("alcove_sync_page_plain", Cipher::PlainForBenchmarks),
    ] {
        let mut p = pair(cipher);
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        g.bench_function("receive", |b| {
            b.iter_batched(
                || send_n(&mut p.alice, page),
                |envs| {
                    let out = p.bob.receive(&envs).unwrap();
                    assert!(out.iter().all(|o| o.result.is_ok()));
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
    c.final_summary();

    for name in [
        "inmem",
        "alcove_sqlcipher",
        "alcove_plain",
        "alcove_receive_sqlcipher",
        "alcove_receive_plain",
    ] {
        if let Some(ns) = read_estimate(name) {
            results.push((name, ns / N as f64));
        }
    }
    for name in ["alcove_sync_page_sqlcipher", "alcove_sync_page_plain"] {
        if let Some(ns) = read_estimate(&format!("{name}/receive")) {
            results.push((name, ns / page as f64));
        }
    }
    let get = |n: &str| results.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    println!("\n== per message (µs), 100 messages per iteration ({page} for sync_page) ==");
    for (k, v) in &results {
        println!("{k:<26} {:>9.1} µs", v / 1000.0);
    }
    if let (Some(inmem), Some(sc), Some(pl), Some(rsc), Some(rpl)) = (
        get("inmem"),
        get("alcove_sqlcipher"),
        get("alcove_plain"),
        get("alcove_receive_sqlcipher"),
        get("alcove_receive_plain"),
    ) {
        println!(
            "ratio send+receive SQLCipher / libsignal in-memory : {:.2}x",
            sc / inmem
        );
        println!(
            "ratio receive page SQLCipher / libsignal in-memory  : {:.2}x",
            rsc / inmem
        );
        println!(
            "ratio SQLCipher / plain SQLite (send+receive)       : {:.2}x",
            sc / pl
        );
        println!(
            "ratio SQLCipher / plain SQLite (receive page)       : {:.2}x",
            rsc / rpl
        );
    }
    if let (Some(sc), Some(pl)) = (
        get("alcove_sync_page_sqlcipher"),
        get("alcove_sync_page_plain"),
    ) {
        println!(
            "ratio SQLCipher / plain SQLite (sync page of {page})    : {:.2}x   (target ≤ 1.1x)",
            sc / pl
        );
    }
}

/// Criterion's point estimate (mean, ns) for one benchmark of this run.
fn read_estimate(name: &str) -> Option<f64> {
    let name = std::path::Path::new(name);
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = dir
        .join("criterion")
        .join(name)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}
