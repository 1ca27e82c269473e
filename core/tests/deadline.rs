//! The deadline bounds the whole sync: a relay that stalls on the ack
//! cannot hold a push-woken sync past its deadline, and nothing is lost or
//! stored twice when the next sync runs. A real relay on loopback, behind
//! a TCP proxy that can swallow ack requests (`POST /v1/messages/ack`, or
//! the `/v1/messages/sync` call after the one that fetched the page: the
//! call that carries its acks).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ACK_REQUEST: &[u8] = b"POST /v1/messages/ack";
const SYNC_REQUEST: &[u8] = b"POST /v1/messages/sync";

/// Forwards loopback TCP to the relay; while `stall_acks` is set, a
/// connection that carries an ack request goes silent (the request never
/// reaches the relay, no answer comes back) but stays open.
struct StallingProxy {
    url: String,
    stall_acks: Arc<AtomicBool>,
    stalled: Arc<AtomicU32>,
}

/// Where `needle` starts in `hay` past the first `skip` bytes (which were
/// already looked at as the previous chunk's tail).
fn occurrences(hay: &[u8], needle: &[u8], skip: usize) -> usize {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(pos, w)| *w == needle && pos + needle.len() > skip)
        .count()
}

impl StallingProxy {
    async fn start(upstream: std::net::SocketAddr) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stall_acks = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicU32::new(0));
        let (flag, count) = (stall_acks.clone(), stalled.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(forward(client, server, flag.clone(), count.clone()));
            }
        });
        StallingProxy {
            url,
            stall_acks,
            stalled,
        }
    }
}

async fn forward(
    client: TcpStream,
    server: TcpStream,
    stall: Arc<AtomicBool>,
    stalled: Arc<AtomicU32>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
    });
    // Keeps the tail of the previous read so a request line split across
    // reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut seen = std::mem::take(&mut tail);
        let skip = seen.len();
        seen.extend_from_slice(&buf[..n]);
        let stalling = stall.load(Ordering::SeqCst);
        // The drain's closing call: a `/sync` whose body ends with
        // `release: true` (field 4, varint 1), the only field after the
        // acks; page requests end with a limit, cursor or skip.
        let closing = occurrences(&seen, SYNC_REQUEST, skip) > 0 && seen.ends_with(&[0x20, 0x01]);
        if stalling && (occurrences(&seen, ACK_REQUEST, 0) > 0 || closing) {
            stalled.fetch_add(1, Ordering::SeqCst);
            // Hold both halves open and say nothing, like a relay that hangs.
            let _held = (client_rx, server_tx);
            std::future::pending::<()>().await;
            return;
        }
        tail = seen[seen.len().saturating_sub(SYNC_REQUEST.len())..].to_vec();
        if server_tx.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn mailbox_len(relay_db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(relay_db).unwrap();
    conn.query_row("SELECT count(*) FROM mailbox", [], |r| r.get(0))
        .unwrap()
}

/// Waits (5 s at most) for the relay to hold `want` envelopes: it answers
/// acks at once and deletes the acked mail off the request path, within
/// its `ack_delete_interval` (200 ms).
async fn mailbox_len_becomes(relay_db: &std::path::Path, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while mailbox_len(relay_db) != want {
        assert!(Instant::now() < deadline, "relay still holds acked mail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_returns_by_its_deadline_when_the_relay_stalls_on_ack() {
    let dir = tempfile::tempdir().unwrap();
    let relay_db = dir.path().join("relay.db");
    let relay = alcove_relay::start(
        alcove_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), relay_db.clone()),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let direct = format!("http://{}", relay.local_addr());
    let proxy = StallingProxy::start(relay.local_addr()).await;

    let invite = alcove_relay::create_invite(&relay_db, None).unwrap();
    let a = Client::enroll(&dir.path().join("a.db"), &DbKey::random(), &direct, &invite)
        .await
        .unwrap();
    let invite = alcove_relay::create_invite(&relay_db, None).unwrap();
    let b = Client::enroll(
        &dir.path().join("b.db"),
        &DbKey::random(),
        &proxy.url,
        &invite,
    )
    .await
    .unwrap();
    let (a_id, b_id) = (a.account_id().to_owned(), b.account_id().to_owned());

    const N: usize = 5;
    for i in 0..N {
        assert!(
            a.send_text(a.conversation_with(&b_id).unwrap(), &format!("m{i}"))
                .await
                .unwrap()
                .sent
        );
    }
    proxy.stall_acks.store(true, Ordering::SeqCst);

    let budget = Duration::from_millis(1500);
    let start = Instant::now();
    let report = b.sync(start + budget).await.unwrap();
    let took = start.elapsed();
    assert!(
        took <= budget + Duration::from_millis(300),
        "sync took {took:?} against a {budget:?} deadline"
    );
    assert_eq!(proxy.stalled.load(Ordering::SeqCst), 1, "the ack was held");
    assert!(report.more, "the sync says work was left");
    // The page was stored before the ack was tried.
    assert_eq!(report.received as usize, N);
    assert_eq!(
        b.with_account(|acct| {
            let with_a = acct.conversation_with(&a_id)?;
            acct.messages(with_a, None, 100)
        })
        .unwrap()
        .len(),
        N
    );
    // Not acked: the relay still holds every envelope.
    assert_eq!(mailbox_len(&relay_db), N as i64);

    // The relay answers again: the next sync gets the same envelopes,
    // stores none twice, and acks them.
    proxy.stall_acks.store(false, Ordering::SeqCst);
    let report = b
        .sync(Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        report.received, 0,
        "re-delivered envelopes are not stored again"
    );
    assert_eq!(report.failed, 0);
    assert!(!report.more);
    let mut bodies: Vec<String> = b
        .with_account(|acct| {
            let with_a = acct.conversation_with(&a_id)?;
            acct.messages(with_a, None, 100)
        })
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.reverse();
    assert_eq!(bodies, (0..N).map(|i| format!("m{i}")).collect::<Vec<_>>());
    mailbox_len_becomes(&relay_db, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_with_no_time_left_makes_no_relay_call_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay_db = dir.path().join("relay.db");
    let relay = alcove_relay::start(
        alcove_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), relay_db.clone()),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let url = format!("http://{}", relay.local_addr());
    let invite = alcove_relay::create_invite(&relay_db, None).unwrap();
    let a = Client::enroll(&dir.path().join("a.db"), &DbKey::random(), &url, &invite)
        .await
        .unwrap();
    let invite = alcove_relay::create_invite(&relay_db, None).unwrap();
    let b = Client::enroll(&dir.path().join("b.db"), &DbKey::random(), &url, &invite)
        .await
        .unwrap();
    a.send_text(a.conversation_with(b.account_id()).unwrap(), "hello")
        .await
        .unwrap();

    let report = b.sync(Instant::now()).await.unwrap();
    assert!(report.more);
    assert_eq!((report.pages, report.received, report.sent), (0, 0, 0));
    assert_eq!(mailbox_len(&relay_db), 1);
    let report = b
        .sync(Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.received, 1);
    mailbox_len_becomes(&relay_db, 0).await;
}
