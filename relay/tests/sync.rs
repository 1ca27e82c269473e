//! `POST /v1/messages/sync` over real loopback sockets and a real SQLite
//! file: a prefetching drain, hostile requests (typed errors, nothing
//! deleted, no lease taken), thousands of concurrent syncs on one mailbox,
//! a response lost after the relay committed, the WAL scrub's bounds, and
//! acks deleted off the request path (hidden from every read at once,
//! scoped to the caller's mailbox, deleted in batches and at shutdown).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alcove_proto::relay::*;
use alcove_proto::Message;
use alcove_relay::{create_invite, start, RelayConfig, RelayHandle};
use support::http::{Api, Dev};
use support::rnd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(db: &Path, scrub: Duration) -> RelayConfig {
    let mut c = RelayConfig::new("127.0.0.1:0".parse().unwrap(), db.to_path_buf());
    c.rate_limits = alcove_relay::rate_limits::RateLimitConfig::off();
    c.wal_scrub_interval = scrub;
    c
}

async fn relay(db: &Path, scrub: Duration) -> (RelayHandle, Api) {
    relay_with(config(db, scrub)).await
}

async fn relay_with(config: RelayConfig) -> (RelayHandle, Api) {
    let handle = start(config, alcove_relay::default_push_sender().unwrap())
        .await
        .unwrap();
    let api = Api::new(handle.local_addr());
    (handle, api)
}

/// Sends `n` messages from `from` to `to`; their GUIDs in order.
async fn queue(api: &Api, from: &Dev, to: &Dev, n: usize) -> Vec<Vec<u8>> {
    let mut guids = Vec::new();
    for _ in 0..n {
        let g = rnd(16);
        assert_eq!(api.send(from, to, &g).await, 204);
        guids.push(g);
    }
    guids
}

async fn sync(api: &Api, dev: &Dev, reader: &str, req: &SyncRequest) -> (u16, Vec<u8>) {
    api.call(
        reqwest::Method::POST,
        "/v1/messages/sync",
        Some(dev),
        reader,
        Some(req.encode_to_vec()),
    )
    .await
}

async fn page(api: &Api, dev: &Dev, reader: &str, req: &SyncRequest) -> EnvelopePage {
    let (s, b) = sync(api, dev, reader, req).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    EnvelopePage::decode(&b[..]).unwrap()
}

fn code(body: &[u8]) -> String {
    ErrorBody::decode(body).unwrap().code
}

fn guids(p: &EnvelopePage) -> Vec<Vec<u8>> {
    p.envelopes.iter().map(|e| e.guid.clone()).collect()
}

/// Every file of the relay database, concatenated.
fn db_files(db: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        all.extend(std::fs::read(PathBuf::from(p)).unwrap_or_default());
    }
    all
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetching_drain_delivers_every_envelope_once_and_ends_with_prekeys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (_relay, api) = relay(&db, Duration::from_secs(1)).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 5).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 7).await;
    let sent = queue(&api, &a, &b, 250).await;
    // Page 1, then page 2 by page 1's cursor before page 1 is acked, then
    // each call acks the page before the one it reads.
    let p1 = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert!(p1.more && p1.prekeys.is_none());
    let mut pending = guids(&p1);
    let mut seen = pending.clone();
    let mut cursor = p1.cursor;
    loop {
        let p = page(
            &api,
            &b,
            "app",
            &SyncRequest {
                ack: std::mem::take(&mut pending),
                limit: 100,
                after: cursor,
                release: false,
                skip: 0,
            },
        )
        .await;
        seen.extend(guids(&p));
        pending = guids(&p);
        cursor = p.cursor;
        if !p.more {
            let prekeys = p.prekeys.expect("the last page carries the prekey count");
            assert_eq!(prekeys.one_time_prekeys, 7);
            break;
        }
        assert!(p.prekeys.is_none());
    }
    assert_eq!(seen, sent, "every envelope once, oldest first");
    // The last call acks and lets the lease go: another reader may start.
    let last = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            ack: pending,
            limit: 0,
            after: cursor,
            release: true,
            skip: 0,
        },
    )
    .await;
    assert!(last.envelopes.is_empty() && !last.more);
    let other = page(
        &api,
        &b,
        "extension",
        &SyncRequest {
            limit: 500,
            ..Default::default()
        },
    )
    .await;
    assert!(other.envelopes.is_empty(), "everything was acked");
    // The older calls still work beside it.
    let (s, p) = api.fetch(&b, "extension", 10).await;
    assert_eq!((s, p.unwrap().envelopes.len()), (200, 0));
    assert_eq!(api.release(&b, "extension").await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_syncs_get_typed_errors_and_delete_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (_relay, api) = relay(&db, Duration::from_secs(1)).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let sent = queue(&api, &a, &b, 5).await;
    let ack_all = |extra: Vec<Vec<u8>>| SyncRequest {
        ack: sent.iter().cloned().chain(extra).collect(),
        limit: 10,
        ..Default::default()
    };
    // More than 1,000 GUIDs.
    let (s, body) = sync(&api, &b, "app", &ack_all(vec![rnd(16); 1000])).await;
    assert_eq!((s, code(&body).as_str()), (400, "too_many_guids"));
    // A GUID that is not 16 bytes.
    let (s, body) = sync(&api, &b, "app", &ack_all(vec![rnd(15)])).await;
    assert_eq!((s, code(&body).as_str()), (400, "invalid_guid"));
    // A body far over any sync's size.
    let (s, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/messages/sync",
            Some(&b),
            "app",
            Some(vec![0x0a; 40 * 1024]),
        )
        .await;
    assert_eq!((s, code(&body).as_str()), (413, "too_large"));
    // Not protobuf.
    let (s, body) = api
        .call(
            reqwest::Method::POST,
            "/v1/messages/sync",
            Some(&b),
            "app",
            Some(vec![0xff, 0xff, 0xff]),
        )
        .await;
    assert_eq!((s, code(&body).as_str()), (400, "malformed"));
    // No reader, an empty one, a too long one, one with spaces.
    for reader in [None, Some(""), Some(&*"r".repeat(65)), Some("two words")] {
        let mut r = api
            .http
            .post(format!("{}/v1/messages/sync", api.base))
            .header("authorization", b.auth())
            .body(ack_all(vec![]).encode_to_vec());
        if let Some(reader) = reader {
            r = r.header("x-alcove-reader", reader);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{reader:?}");
        assert_eq!(code(&resp.bytes().await.unwrap()), "reader_required");
    }
    // No credentials, a wrong secret, another device's name.
    let mut wrong = b.clone();
    wrong.secret = rnd(32);
    for who in [None, Some(&wrong)] {
        let (s, body) = api
            .call(
                reqwest::Method::POST,
                "/v1/messages/sync",
                who,
                "app",
                Some(ack_all(vec![]).encode_to_vec()),
            )
            .await;
        assert_eq!((s, code(&body).as_str()), (401, "unauthorized"));
    }
    // A stranger acking b's GUIDs in its own mailbox deletes nothing of b's.
    let p = page(&api, &a, "app", &ack_all(vec![])).await;
    assert!(p.envelopes.is_empty());
    // The wrong method.
    let (s, body) = api
        .call(
            reqwest::Method::GET,
            "/v1/messages/sync",
            Some(&b),
            "app",
            None,
        )
        .await;
    assert_eq!((s, code(&body).as_str()), (405, "method_not_allowed"));
    // Nothing was deleted and no lease taken: any reader reads it all.
    let p = page(
        &api,
        &b,
        "someone",
        &SyncRequest {
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(guids(&p), sent);
    // A replayed ack is harmless.
    let once = page(&api, &b, "someone", &ack_all(vec![])).await;
    let twice = page(&api, &b, "someone", &ack_all(vec![])).await;
    assert!(once.envelopes.is_empty() && twice.envelopes.is_empty() && !twice.more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_syncs_let_one_reader_drain_each_envelope_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (_relay, mut api) = relay(&db, Duration::from_secs(1)).await;
    // One HTTP/2 connection carries them all (the relay allows 64 streams
    // at once; the rest wait their turn in the client).
    api.http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let sent = queue(&api, &a, &b, 300).await;
    let calls = 2000;
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let (api, b) = (api.clone(), b.clone());
            tokio::spawn(async move {
                let req = SyncRequest {
                    limit: 100,
                    ..Default::default()
                };
                (i, sync(&api, &b, &format!("reader-{i}"), &req).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, (s, body)) = t.await.unwrap();
        match s {
            200 => winners.push((i, EnvelopePage::decode(&body[..]).unwrap())),
            409 => assert_eq!(code(&body), "mailbox_busy"),
            other => panic!("status {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reader wins");
    let (winner, first) = winners.pop().unwrap();
    let reader = format!("reader-{winner}");
    // The winner drains while the others keep trying (and keep failing).
    let mut delivered: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut p = first;
    loop {
        for g in guids(&p) {
            *delivered.entry(g).or_default() += 1;
        }
        let losers: Vec<_> = (0..200)
            .map(|i| {
                let (api, b) = (api.clone(), b.clone());
                let ack = sent.clone();
                tokio::spawn(async move {
                    let req = SyncRequest {
                        ack,
                        limit: 500,
                        ..Default::default()
                    };
                    sync(&api, &b, &format!("loser-{i}"), &req).await.0
                })
            })
            .collect();
        let next = SyncRequest {
            ack: guids(&p),
            limit: 100,
            after: p.cursor,
            release: false,
            skip: 0,
        };
        let more = p.more;
        p = page(&api, &b, &reader, &next).await;
        for l in losers {
            assert_eq!(l.await.unwrap(), 409);
        }
        if !more {
            break;
        }
    }
    let release = SyncRequest {
        release: true,
        ..Default::default()
    };
    page(&api, &b, &reader, &release).await;
    assert_eq!(delivered.len(), sent.len());
    assert!(delivered.values().all(|n| *n == 1), "each envelope once");
    let left = page(
        &api,
        &b,
        "after",
        &SyncRequest {
            limit: 500,
            ..Default::default()
        },
    )
    .await;
    assert!(left.envelopes.is_empty());
}

/// Forwards one request to `relay` and swallows the answer: the relay
/// committed (it answered), the client never learns it. Tells `answered`
/// once the relay's first bytes came back.
async fn lossy_proxy(relay: std::net::SocketAddr) -> (String, tokio::sync::oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (answered, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut upstream = tokio::net::TcpStream::connect(relay).await.unwrap();
        let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            tokio::select! {
                n = client.read(&mut up) => {
                    let n = n.unwrap_or(0);
                    if n == 0 { break; }
                    upstream.write_all(&up[..n]).await.unwrap();
                }
                n = upstream.read(&mut down) => {
                    if n.unwrap_or(0) > 0 {
                        let _ = answered.send(());
                    }
                    break;
                }
                _ = tokio::time::sleep_until(deadline.into()) => break,
            }
        }
        // Both sockets dropped: the client sees the connection die.
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_answer_is_lost_after_the_commit_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (relay1, api) = relay(&db, Duration::from_secs(60)).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let sent = queue(&api, &a, &b, 30).await;
    let p1 = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(guids(&p1), sent[..10].to_vec());
    // The ack of page 1 + page 2 goes through a proxy that loses the
    // answer; then the relay stops, as if killed, and starts again.
    let retry = SyncRequest {
        ack: guids(&p1),
        limit: 10,
        after: p1.cursor,
        release: false,
        skip: 0,
    };
    let (via, answered) = lossy_proxy(relay1.local_addr()).await;
    let lost = reqwest::Client::new()
        .post(format!("{via}/v1/messages/sync"))
        .header("authorization", b.auth())
        .header("x-alcove-reader", "app")
        .body(retry.encode_to_vec())
        .send()
        .await;
    assert!(lost.is_err(), "the client got no answer");
    answered
        .await
        .expect("the relay answered: it had committed");
    relay1.shutdown().await;
    let (_relay2, api) = relay(&db, Duration::from_secs(60)).await;
    // The client retries the same call: page 1's ack again (harmless),
    // page 2 delivered again, nothing lost.
    let p2 = page(&api, &b, "app", &retry).await;
    assert_eq!(guids(&p2), sent[10..20].to_vec());
    let p3 = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            ack: guids(&p2),
            limit: 100,
            after: p2.cursor,
            release: false,
            skip: 0,
        },
    )
    .await;
    assert_eq!(guids(&p3), sent[20..].to_vec());
    assert!(!p3.more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_mail_leaves_the_disk_within_the_scrub_interval_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    // A long interval: the first delete is scrubbed at once, the next one
    // waits for the interval, or for shutdown.
    let (relay1, api) = relay(&db, Duration::from_secs(600)).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 1).await;
    // Ciphertexts the test can find on disk.
    let marked = |tag: u8| {
        let mut ct = format!("delivered-marker-{tag}-").into_bytes();
        ct.extend(hex::encode(rnd(12)).into_bytes());
        ct
    };
    let send = |ct: Vec<u8>| {
        let (api, a, b) = (api.clone(), a.clone(), b.clone());
        async move {
            let req = SendRequest {
                guid: rnd(16),
                messages: vec![OutgoingMessage {
                    destination_device: b.device,
                    destination_registration_id: b.registration_id,
                    r#type: alcove_proto::wire::envelope::Type::SignalMessage as i32,
                    ciphertext: ct,
                }],
            };
            let (s, _) = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/messages/{}", b.account),
                    Some(&a),
                    "r",
                    Some(req.encode_to_vec()),
                )
                .await;
            assert_eq!(s, 204);
        }
    };
    let wait_gone = |ct: Vec<u8>| {
        let db = db.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(6);
            while holds(&db_files(&db), &ct) {
                assert!(Instant::now() < deadline, "still on disk");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (first, second) = (marked(1), marked(2));
    send(first.clone()).await;
    send(second.clone()).await;
    let p = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            limit: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(p.envelopes[0].ciphertext, first);
    // Acked: the scrubber wakes and scrubs, after the answer.
    page(
        &api,
        &b,
        "app",
        &SyncRequest {
            ack: guids(&p),
            limit: 0,
            ..Default::default()
        },
    )
    .await;
    wait_gone(first).await;
    // The second delete lands while the scrubber rests: still on disk
    // (the WAL, or the main file's old page image) ...
    let p = page(
        &api,
        &b,
        "app",
        &SyncRequest {
            limit: 1,
            ..Default::default()
        },
    )
    .await;
    page(
        &api,
        &b,
        "app",
        &SyncRequest {
            ack: guids(&p),
            limit: 0,
            release: true,
            ..Default::default()
        },
    )
    .await;
    assert!(holds(&db_files(&db), &second), "deferred until the scrub");
    // ... until shutdown scrubs it.
    relay1.shutdown().await;
    assert!(!holds(&db_files(&db), &second), "shutdown scrubs");
}

/// What the relay database holds for `dev`'s mailbox, read through a
/// second connection to the file (the running relay keeps its own).
async fn stored(db: &Path, dev: &Dev) -> u64 {
    let s = alcove_relay::SqliteStorage::open(db).unwrap();
    use alcove_relay::Storage;
    s.mailbox_usage(&dev.account, dev.device)
        .await
        .unwrap()
        .count
}

/// Polls `stored` until it is `want`, within `within`.
async fn wait_stored(db: &Path, dev: &Dev, want: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let n = stored(db, dev).await;
        if n == want {
            return;
        }
        assert!(Instant::now() < deadline, "{n} stored, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_is_answered_before_its_delete_and_no_read_sees_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    // A deleter that waits ten minutes (longer than a configuration file
    // may ask for): the acks stay pending for the whole test.
    let mut cfg = config(&db, Duration::from_secs(1));
    cfg.ack_delete_interval = Duration::from_secs(600);
    let (relay1, api) = relay_with(cfg).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let b = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let c = api.register(&create_invite(&db, None).unwrap(), 1).await;
    let sent = queue(&api, &a, &b, 30).await;
    // c holds envelopes under the same GUIDs (a sent them to c too).
    for g in &sent[..10] {
        assert_eq!(api.send(&a, &c, g).await, 204);
    }
    let req = |ack, limit, after, release| SyncRequest {
        ack,
        limit,
        after,
        release,
        skip: 0,
    };
    let p1 = page(&api, &b, "app", &req(vec![], 20, 0, false)).await;
    assert_eq!(guids(&p1), sent[..20].to_vec());
    // The drain's last call: ack and release, answered at once.
    let last = page(&api, &b, "app", &req(guids(&p1), 0, p1.cursor, true)).await;
    assert!(last.envelopes.is_empty() && last.more);
    assert_eq!(stored(&db, &b).await, 30, "answered before the delete");
    // Read again at once, by another reader, by every API: never the acked.
    let again = page(&api, &b, "ext", &req(vec![], 100, 0, false)).await;
    assert_eq!(guids(&again), sent[20..].to_vec());
    assert!(!again.more);
    let (st, old) = api.fetch(&b, "ext", 100).await;
    assert_eq!(st, 200);
    assert_eq!(guids(&old.unwrap()), sent[20..].to_vec());
    // The same ack replayed, then the rest acked by the old API.
    let replay = page(&api, &b, "ext", &req(guids(&p1), 100, 0, false)).await;
    assert_eq!(guids(&replay), sent[20..].to_vec());
    assert_eq!(api.ack(&b, "ext", sent[20..].to_vec()).await, 204);
    assert_eq!(api.release(&b, "ext").await, 204);
    let none = page(&api, &b, "app", &req(vec![], 100, 0, true)).await;
    assert!(none.envelopes.is_empty() && !none.more);
    // A stranger acking b's GUIDs (c holds copies under the same GUIDs)
    // deletes only c's own copies, never b's or anyone else's.
    let cs = page(&api, &c, "app", &req(sent.clone(), 100, 0, true)).await;
    assert!(cs.envelopes.is_empty());
    let stranger = page(&api, &a, "app", &req(sent.clone(), 100, 0, true)).await;
    assert!(stranger.envelopes.is_empty());
    // Shutdown deletes what is pending: after the restart, nothing.
    assert_eq!(stored(&db, &b).await, 30);
    relay1.shutdown().await;
    assert_eq!(stored(&db, &b).await, 0);
    assert_eq!(stored(&db, &c).await, 0);
    let (_relay2, api) = relay(&db, Duration::from_secs(1)).await;
    let after = page(&api, &b, "app", &req(vec![], 100, 0, true)).await;
    assert!(after.envelopes.is_empty() && !after.more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_acks_from_many_accounts_are_deleted_in_batches_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let mut cfg = config(&db, Duration::from_millis(100));
    cfg.ack_delete_interval = Duration::from_millis(200);
    cfg.max_queue = 10_000;
    let (_relay, api) = relay_with(cfg).await;
    let a = api.register(&create_invite(&db, None).unwrap(), 1).await;
    const ACCOUNTS: usize = 8;
    const EACH: usize = 150;
    let mut devs = Vec::new();
    for _ in 0..ACCOUNTS {
        let d = api.register(&create_invite(&db, None).unwrap(), 1).await;
        queue(&api, &a, &d, EACH).await;
        devs.push(d);
    }
    // Every account drains at once, acking each page with the next call
    // and everything with the last; each then reads again at once.
    let drains = devs.iter().map(|d| {
        let (api, d) = (api.clone(), d.clone());
        tokio::spawn(async move {
            let mut ack = Vec::new();
            let mut after = 0;
            let mut seen = 0;
            loop {
                let p = page(
                    &api,
                    &d,
                    "app",
                    &SyncRequest {
                        ack: std::mem::take(&mut ack),
                        limit: 40,
                        after,
                        release: false,
                        skip: 0,
                    },
                )
                .await;
                seen += p.envelopes.len();
                ack = guids(&p);
                after = p.cursor;
                if !p.more {
                    break;
                }
            }
            let last = page(
                &api,
                &d,
                "app",
                &SyncRequest {
                    ack,
                    release: true,
                    after,
                    ..Default::default()
                },
            )
            .await;
            assert!(!last.more);
            let again = page(
                &api,
                &d,
                "other",
                &SyncRequest {
                    limit: 500,
                    release: true,
                    ..Default::default()
                },
            )
            .await;
            assert!(again.envelopes.is_empty(), "an acked envelope came back");
            seen
        })
    });
    for d in drains {
        assert_eq!(d.await.unwrap(), EACH);
    }
    // Deleted within the deleter's interval (plus its transaction).
    for d in &devs {
        wait_stored(&db, d, 0, Duration::from_secs(5)).await;
    }
}
