//! Two relay processes' servers on one PostgreSQL database, each on its
//! own loopback socket, behaving as one relay: a send through one wakes a
//! device whose push registration the other handled, exactly once; one
//! reader per mailbox across both; no one-time prekey handed out twice
//! under a storm of fetches through both; rate limits counted once for
//! both. Each test gets a database of its own (`ALCOVE_TEST_POSTGRES`,
//! see `alcove_testkit::postgres`).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use alcove_proto::relay::push_registration::Kind;
use alcove_relay::rate_limits::{Rate, RateLimitConfig};
use alcove_relay::{
    issue_invite, start, PostgresStorage, PostgresUrl, RelayConfig, RelayHandle, Role,
    StorageConfig,
};
use alcove_testkit::push_providers::Stub;
use support::http::{Api, Dev};
use support::rnd;

struct Pair {
    a: RelayHandle,
    b: RelayHandle,
    api_a: Api,
    api_b: Api,
    storage: PostgresStorage,
    _keys: tempfile::TempDir,
}

impl Pair {
    async fn invite(&self) -> String {
        issue_invite(&self.storage, Role::Client, now(), None)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Two relays on a fresh database; `None` when PostgreSQL is not
/// configured (and not required).
async fn pair(test: &str, tune: impl Fn(&mut RelayConfig)) -> Option<Pair> {
    let db = alcove_testkit::postgres::database(test).await?;
    let keys = tempfile::tempdir().unwrap();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let mut c = RelayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            StorageConfig::postgres(db.url.clone()),
        );
        // One sealed-sender key directory for both, as two processes of
        // one relay share it.
        c.sealed_sender.as_mut().unwrap().key_dir = Some(keys.path().join("ss"));
        c.push_coalesce = Duration::from_millis(400);
        tune(&mut c);
        handles.push(
            start(c, alcove_relay::default_push_sender().unwrap())
                .await
                .unwrap(),
        );
    }
    let b = handles.pop().unwrap();
    let a = handles.pop().unwrap();
    Some(Pair {
        api_a: Api::new(a.local_addr()),
        api_b: Api::new(b.local_addr()),
        a,
        b,
        storage: PostgresStorage::connect(&PostgresUrl::new(db.url), 4)
            .await
            .unwrap(),
        _keys: keys,
    })
}

fn unlimited(c: &mut RelayConfig) {
    c.rate_limits = RateLimitConfig::off();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_through_one_instance_wakes_the_device_once_whoever_took_its_push_registration() {
    let Some(p) = pair("wake_once", unlimited).await else {
        return;
    };
    let mut up = Stub::plain(None).await;
    let alice = p.api_a.register(&p.invite().await, 2).await;
    let bob = p.api_b.register(&p.invite().await, 2).await;
    // Bob's push registration goes through B.
    let endpoint = format!("{}/up/bob", up.url);
    assert_eq!(
        p.api_b.set_push(&bob, Kind::UnifiedPush, &endpoint).await,
        204
    );

    // One send through A: one wake, and only one (both processes claim).
    assert_eq!(p.api_a.send(&alice, &bob, &rnd(16)).await, 204);
    let first = up.next(Duration::from_secs(5)).await.expect("a wake");
    assert_eq!(first.path, "/up/bob");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(up.drain().is_empty(), "one send, one wake");

    // A burst through both: one wake now, then at most one per
    // coalescing window while the burst lasts (one trailing wake when it
    // fits in a window), never one per send.
    let burst = std::time::Instant::now();
    for i in 0..10 {
        let api = if i % 2 == 0 { &p.api_a } else { &p.api_b };
        assert_eq!(api.send(&alice, &bob, &rnd(16)).await, 204);
    }
    let lasted = burst.elapsed();
    assert!(
        up.next(Duration::from_secs(5)).await.is_some(),
        "the burst wakes"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let wakes = 1 + up.drain().len();
    let allowed = 2 + (lasted.as_millis() / 400) as usize;
    assert!(
        wakes <= allowed.min(9),
        "{wakes} wakes for 10 sends across two relays in {lasted:?}"
    );

    // The device's mail is all there, once.
    let (s, page) = p.api_b.fetch(&bob, "app", 100).await;
    assert_eq!(s, 200);
    assert_eq!(page.unwrap().envelopes.len(), 11);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reader_holds_a_mailbox_across_instances() {
    let Some(p) = pair("one_reader", unlimited).await else {
        return;
    };
    let alice = p.api_a.register(&p.invite().await, 2).await;
    let bob = p.api_a.register(&p.invite().await, 2).await;
    for _ in 0..3 {
        assert_eq!(p.api_a.send(&alice, &bob, &rnd(16)).await, 204);
    }
    // The app reads through A; the extension through B is refused.
    let (s, page) = p.api_a.fetch(&bob, "app", 100).await;
    assert_eq!(s, 200);
    let guids: Vec<Vec<u8>> = page
        .unwrap()
        .envelopes
        .into_iter()
        .map(|e| e.guid)
        .collect();
    assert_eq!(guids.len(), 3);
    assert_eq!(p.api_b.fetch(&bob, "extension", 100).await.0, 409);
    assert_eq!(p.api_b.ack(&bob, "extension", guids.clone()).await, 409);
    // Both at once, many times: never both.
    let mut both = 0;
    for i in 0..20 {
        let (rx, ry) = (format!("x{i}"), format!("y{i}"));
        let (x, y) = tokio::join!(p.api_a.fetch(&bob, &rx, 10), p.api_b.fetch(&bob, &ry, 10));
        if x.0 == 200 && y.0 == 200 {
            both += 1;
        }
        p.api_a.release(&bob, &format!("x{i}")).await;
        p.api_b.release(&bob, &format!("y{i}")).await;
        p.api_a.release(&bob, "app").await;
    }
    assert_eq!(both, 0, "two readers held one mailbox at once");
    // Released through A, B's reader may take it and ack.
    assert_eq!(p.api_a.release(&bob, "app").await, 204);
    assert_eq!(p.api_b.fetch(&bob, "extension", 100).await.0, 200);
    assert_eq!(p.api_b.ack(&bob, "extension", guids).await, 204);
    let (_, page) = p.api_b.fetch(&bob, "extension", 100).await;
    assert!(page.unwrap().envelopes.is_empty());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_time_prekey_is_handed_out_twice_under_a_storm_through_both_instances() {
    let Some(p) = pair("prekey_storm", unlimited).await else {
        return;
    };
    let bob = p.api_a.register(&p.invite().await, 100).await;
    let mut askers = Vec::new();
    for _ in 0..10 {
        askers.push(p.api_b.register(&p.invite().await, 1).await);
    }
    let askers = Arc::new(askers);
    let fetches: Vec<_> = (0..200)
        .map(|i| {
            let api = if i % 2 == 0 {
                p.api_a.clone()
            } else {
                p.api_b.clone()
            };
            let (askers, bob) = (Arc::clone(&askers), bob.clone());
            tokio::spawn(async move { api.bundles(&askers[i % askers.len()], &bob).await })
        })
        .collect();
    let mut ec = Vec::new();
    let mut kyber = Vec::new();
    let mut without_ec = 0;
    for f in fetches {
        let (s, b) = f.await.unwrap();
        assert_eq!(s, 200);
        let d = &b.unwrap().devices[0];
        match &d.one_time_prekey {
            Some(k) => ec.push(k.id),
            None => without_ec += 1,
        }
        kyber.push(d.kyber_prekey.as_ref().unwrap().id);
    }
    let distinct: BTreeSet<u32> = ec.iter().copied().collect();
    assert_eq!((ec.len(), distinct.len()), (100, 100), "each EC key once");
    assert_eq!(without_ec, 100, "then bundles without a one-time EC key");
    // Kyber: the 100 one-time keys once each, then the last-resort key.
    let one_time: Vec<u32> = kyber
        .iter()
        .copied()
        .filter(|id| distinct_kyber(*id))
        .collect();
    let distinct: BTreeSet<u32> = one_time.iter().copied().collect();
    assert_eq!(
        (one_time.len(), distinct.len()),
        (100, 100),
        "each Kyber key once"
    );
    let last_resort: BTreeSet<u32> = kyber
        .iter()
        .copied()
        .filter(|id| !distinct_kyber(*id))
        .collect();
    assert_eq!(
        last_resort.len(),
        1,
        "then one last-resort key: {last_resort:?}"
    );
    assert_eq!(kyber.len() - one_time.len(), 100);
    p.stop().await;
}

/// One-time Kyber ids of `DeviceKeys::upload(100, 1)` run 1..=100; the
/// last-resort key's id is outside them.
fn distinct_kyber(id: u32) -> bool {
    (1..=100).contains(&id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_count_once_for_both_instances() {
    let Some(p) = pair("shared_rates", |c| {
        c.rate_limits = RateLimitConfig::off();
        // A day's window: the test never straddles two.
        c.rate_limits.sends_per_account = Rate {
            count: 10,
            window: Duration::from_secs(24 * 3600),
        };
    })
    .await
    else {
        return;
    };
    let alice = p.api_a.register(&p.invite().await, 2).await;
    let bob = p.api_b.register(&p.invite().await, 2).await;
    let mut statuses = Vec::new();
    for i in 0..14 {
        let api = if i % 2 == 0 { &p.api_a } else { &p.api_b };
        statuses.push(api.send(&alice, &bob, &rnd(16)).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        10,
        "{statuses:?}"
    );
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another account's budget is its own.
    assert_eq!(p.api_b.send(&bob, &alice, &rnd(16)).await, 204);
    let _: &Dev = &alice;
    p.stop().await;
}
