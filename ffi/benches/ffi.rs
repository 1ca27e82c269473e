//! The Rust half of the FFI benchmark (`android/run-bench.sh` runs it, then
//! the Kotlin half against the same relay process, and prints the ratios):
//! - one cheap `AlcoveClient` call (`is_locked`, `account_id`) made from
//!   Rust, ns per call;
//! - 1,000 messages queued at the relay, synced on one wake by
//!   `AlcoveClient::sync` called from Rust, µs per message.
//!
//! Needs ALCOVE_BENCH_RELAY_URL and ALCOVE_BENCH_RELAY_DB (a running
//! `alcove relay` and its database, for invites). Prints `RESULT key value`
//! lines.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use alcove_ffi::{generate_database_key, AlcoveClient};

const CALLS: u32 = 1_000_000;
const ROUNDS: usize = 7;
const MESSAGES: u32 = 1_000;

/// The best round: on a shared machine, load only ever adds time.
fn best(v: Vec<f64>) -> f64 {
    v.into_iter().fold(f64::INFINITY, f64::min)
}

/// Best of ROUNDS rounds, ns per call, after one warm-up round.
fn per_call(mut f: impl FnMut()) -> f64 {
    let mut rounds = Vec::new();
    for round in 0..=ROUNDS {
        let t = Instant::now();
        for _ in 0..CALLS {
            f();
        }
        if round > 0 {
            rounds.push(t.elapsed().as_nanos() as f64 / f64::from(CALLS));
        }
    }
    best(rounds)
}

struct Setup {
    url: String,
    relay_db: std::path::PathBuf,
    dir: tempfile::TempDir,
    n: u32,
}

impl Setup {
    async fn enroll(&mut self) -> Arc<AlcoveClient> {
        self.n += 1;
        let invite = alcove_relay::create_invite(&self.relay_db, None).expect("invite");
        AlcoveClient::enroll(
            self.dir
                .path()
                .join(format!("{}.db", self.n))
                .display()
                .to_string(),
            generate_database_key(),
            self.url.clone(),
            invite,
            false,
            None,
        )
        .await
        .expect("enrol")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (Ok(url), Ok(relay_db)) = (
        std::env::var("ALCOVE_BENCH_RELAY_URL"),
        std::env::var("ALCOVE_BENCH_RELAY_DB"),
    ) else {
        eprintln!(
            "set ALCOVE_BENCH_RELAY_URL and ALCOVE_BENCH_RELAY_DB (see android/run-bench.sh)"
        );
        return;
    };
    let mut s = Setup {
        url,
        relay_db: relay_db.into(),
        dir: tempfile::tempdir().expect("tempdir"),
        n: 0,
    };

    let mut per_message = Vec::new();
    for _ in 0..ROUNDS {
        let sender = s.enroll().await;
        let receiver = s.enroll().await;
        let to = sender
            .conversation_with(receiver.account_id())
            .expect("conversation");
        for i in 0..MESSAGES {
            sender
                .send_text(to, format!("message {i}"))
                .await
                .expect("send");
        }
        // The same pause as the Kotlin half (which lets the sends' garbage
        // be collected first).
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let t = Instant::now();
        let report = receiver.sync(120_000).await.expect("sync");
        let elapsed = t.elapsed();
        assert_eq!(report.received, MESSAGES);
        assert!(!report.more);
        per_message.push(elapsed.as_micros() as f64 / f64::from(MESSAGES));
    }
    println!("RESULT rust.sync_us_per_msg {:.1}", best(per_message));

    // After the syncs, as in the Kotlin half (whose per-call garbage would
    // otherwise still be collected during its syncs).
    let c = s.enroll().await;
    let is_locked = per_call(|| {
        black_box(black_box(&c).is_locked());
    });
    let account_id = per_call(|| {
        black_box(black_box(&c).account_id());
    });
    println!("RESULT rust.is_locked_ns {is_locked:.1}");
    println!("RESULT rust.account_id_ns {account_id:.1}");
}
