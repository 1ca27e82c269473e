//! A relay from before `POST /v1/messages/sync` (it answers 404): the sync
//! falls back to fetch + ack, page by page, and loses nothing. A real relay
//! on loopback behind a TCP proxy that answers the new call itself.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
use alcove_testkit::relay::Relay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SYNC_REQUEST: &[u8] = b"POST /v1/messages/sync";

/// Forwards to `upstream`, but answers any connection whose request is
/// the new sync call with a bare 404 and closes it, as an old relay would.
async fn old_relay_proxy(upstream: std::net::SocketAddr, refused: Arc<AtomicU32>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let refused = refused.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut crx, ctx) = client.into_split();
                let ctx = Arc::new(tokio::sync::Mutex::new(ctx));
                let (mut srx, mut stx) = server.into_split();
                let to_client = ctx.clone();
                let back = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = srx.read(&mut buf).await {
                        if n == 0 || to_client.lock().await.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match crx.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if buf[..n].starts_with(SYNC_REQUEST) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        back.abort();
                        let _ = ctx
                            .lock()
                            .await
                            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    if stx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// `a` on the relay itself, `b` behind `b_url`; `a` has sent `b` the
/// texts "m0" … "m{n-1}".
async fn texted_pair(dir: &std::path::Path, r: &Relay, b_url: &str, n: usize) -> (Client, Client) {
    let a = Client::enroll(&dir.join("a.db"), &DbKey::random(), &r.url(), &r.invite())
        .await
        .unwrap();
    let b = Client::enroll(&dir.join("b.db"), &DbKey::random(), b_url, &r.invite())
        .await
        .unwrap();
    let to_b = a.conversation_with(b.account_id()).unwrap();
    for i in 0..n {
        a.send_text(to_b, &format!("m{i}")).await.unwrap();
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_sync_is_drained_by_fetch_and_ack() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let refused = Arc::new(AtomicU32::new(0));
    let old = old_relay_proxy(r.addr, refused.clone()).await;
    let (a, mut b) = texted_pair(dir.path(), &r, &old, 25).await;
    b.set_page_size(7);
    let report = b
        .sync(Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(report.received, 25);
    assert!(
        refused.load(Ordering::SeqCst) >= 1,
        "the new call was tried"
    );
    assert!(report.pages >= 4, "page by page: {}", report.pages);
    // Acked: the next sync finds nothing, stores nothing twice.
    let again = b
        .sync(Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(again.received, 0);
    let conv = b.conversation_with(a.account_id()).unwrap();
    let stored = b.with_account(|x| x.messages(conv, None, 100)).unwrap();
    assert_eq!(stored.len(), 25);
}

/// Forwards to `upstream` after `delay` per request, with `skip` taken out
/// of every `/sync` body, as a relay from before `skip` on a slow link
/// reads it (it would not know the field). HTTP/1.1, one request per read.
async fn no_skip_proxy(upstream: std::net::SocketAddr, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut crx, mut ctx) = client.into_split();
                let (mut srx, mut stx) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut srx, &mut ctx).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match crx.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut out = buf[..n].to_vec();
                    if out.starts_with(SYNC_REQUEST) {
                        out = without_skip(&out);
                    }
                    tokio::time::sleep(delay).await;
                    if stx.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// The request re-encoded with `skip` 0 and its Content-Length fixed.
fn without_skip(request: &[u8]) -> Vec<u8> {
    use prost::Message;
    let split = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("one whole request per read")
        + 4;
    let mut sync =
        alcove_core::proto::relay::SyncRequest::decode(&request[split..]).expect("a SyncRequest");
    sync.skip = 0;
    let body = sync.encode_to_vec();
    let head = String::from_utf8_lossy(&request[..split]).to_string();
    let mut out = Vec::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        } else if !line.is_empty() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// A relay that does not pass over the first page: the early second
/// page repeats it, says it follows nothing, and is dropped unread; the
/// page after the first is asked for by its cursor. Every text once,
/// all acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_page_that_does_not_follow_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let r = Relay::start(dir.path()).await;
    let slow = no_skip_proxy(r.addr, Duration::from_millis(30)).await;
    let (a, mut b) = texted_pair(dir.path(), &r, &slow, 35).await;
    b.set_page_size(10);
    let report = b
        .sync(Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!((report.received, report.failed), (35, 0));
    assert_eq!(
        (report.stages.early_pages, report.stages.dropped_pages),
        (1, 1)
    );
    // 5, the dropped repeat, 15, 15.
    assert_eq!(report.pages, 4);
    let conv = b.conversation_with(a.account_id()).unwrap();
    let mut stored: Vec<String> = b
        .with_account(|x| x.messages(conv, None, 100))
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    let mut want: Vec<String> = (0..35).map(|i| format!("m{i}")).collect();
    stored.sort();
    want.sort();
    assert_eq!(stored, want, "every text once");
    let again = b
        .sync(Instant::now() + Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!((again.received, again.failed), (0, 0));
}
