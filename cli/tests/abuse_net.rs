//! The relay's network edge under attack: a real `alcove relay` process
//! (or, where a test resolver must be injected, a real relay in this
//! process) attacked over loopback sockets with bounded loops. Attackers
//! connect from 127.0.0.2–127.0.0.9 (Linux routes all of 127/8 to lo), the
//! legitimate device from 127.0.0.1.
//!
//! - connection cap held by idle, slow-header and slow-body sockets: a
//!   device's authenticated request is still served within a second, and
//!   the relay's peak RSS is printed;
//! - header, body-progress and idle timeouts close stalled sockets, while
//!   a slow but steady upload completes;
//! - HTTP/2: the stream limit is advertised, a rapid-reset flood is cut off;
//! - push targets: non-public endpoints refused at registration with a
//!   typed error, a name resolving to private addresses never dialled,
//!   retries to a 503 target bounded.
//!
//! Quotas, rate limits, device authority, files and error bodies:
//! `abuse_limits.rs`.
mod common;
mod relay_http;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_proto::relay::{push_registration::Kind, ErrorBody};
use alcove_proto::Message;
use alcove_relay::{PushError, PushSender, PushTarget, UnifiedPushOptions, UnifiedPushSender};
use common::{RelayProcess, ALCOVE_BIN};
use relay_http::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

// ------------------------------------------------------------------ helpers

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .parse()
        .unwrap()
}

async fn connect_from(src: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
    s.connect(to).await
}

/// Still open: nothing to read and no end of stream.
fn is_open(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Everything the peer sent until it closed, or `None` if it is still
/// open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let end = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(all),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// `text` without terminal colour codes.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `VmHWM` (peak resident set) of process `pid`, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// (soft, hard) open-file limits of process `pid`.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_owned(), f[4].to_owned())
}

/// A loopback HTTP endpoint that counts the connections it accepts and
/// answers every request with `status`.
struct Counting {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Counting {
    async fn start(status: u16) -> Counting {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        Counting {
            port,
            accepted,
            task,
        }
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a TLS relay on loopback (a fresh self-signed certificate for
/// `localhost`) and returns a client that trusts it.
fn start_tls(dir: &Path, extra: &str) -> (RelayProcess, reqwest::Client) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\nbind = \"127.0.0.1:0\"\ndb = \"relay.db\"\n\
             tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\n{extra}"
        ),
    )
    .unwrap();
    let relay = RelayProcess::spawn(
        ALCOVE_BIN,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.join("relay.db"),
        "warn",
    );
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    (relay, https)
}

fn tls_base(relay: &RelayProcess) -> String {
    format!("https://localhost:{}", addr_of(&relay.url).port())
}

// ------------------------------------------------------------- connections

/// The cap (64) held by four attacker addresses (16 each, the per-address
/// cap) with idle, slow-header and slow-body sockets: a device's
/// authenticated requests on fresh connections are each served within a
/// second; a 17th socket from one address is closed at once; slow bodies
/// are cut off by the progress timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_at_the_cap_leave_a_device_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[limits]\nmax_connections = 64\nmax_connections_per_ip = 16\n\
         header_timeout_ms = 10000\nidle_timeout_ms = 10000\n\
         body_window_ms = 2000\nbody_min_bytes = 1024\n",
    );
    // Started with a low soft open-file limit: the relay raises it.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -Sn 512 && exec \"$0\" relay --config \"$1\"")
        .arg(ALCOVE_BIN)
        .arg(&config);
    let relay = RelayProcess::spawn_command(cmd, dir.path().join("relay.db"), "info");
    let (soft, hard) = nofile(relay.pid());
    assert_eq!(soft, hard, "open-file limit raised to the hard limit");
    let log = plain(&relay.log_text());
    assert!(log.contains("max_connections=64"), "{log}");
    let addr = addr_of(&relay.url);

    // Fresh connection per request: the device must get in at the cap.
    let legit = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let dev = register(&legit, &relay.url, &relay.db).await;

    let mut idle = Vec::new();
    let mut slow_headers = Vec::new();
    let mut slow_bodies = Vec::new();
    for host in 2..=5u8 {
        for i in 0..16 {
            let mut s = connect_from(loopback(host), addr).await.unwrap();
            match i % 3 {
                0 => idle.push(s),
                1 => {
                    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n")
                        .await
                        .unwrap();
                    slow_headers.push(s);
                }
                _ => {
                    s.write_all(
                        b"PUT /v1/keys HTTP/1.1\r\nHost: relay\r\nContent-Length: 100000\r\n\r\n",
                    )
                    .await
                    .unwrap();
                    slow_bodies.push(s);
                }
            }
        }
    }
    // The per-address cap: a 17th socket from 127.0.0.2 is closed at once.
    let mut extra = connect_from(loopback(2), addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(2))
            .await
            .is_some(),
        "17th connection from one address must be closed"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    for s in idle.iter().chain(&slow_headers).chain(&slow_bodies) {
        assert!(is_open(s), "attacker sockets hold the cap");
    }

    // The attackers keep trickling while the device asks.
    for s in &mut slow_headers {
        s.write_all(b"X-Pad: 1\r\n").await.unwrap();
    }
    for s in &mut slow_bodies {
        s.write_all(b"x").await.unwrap();
    }
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = legit
            .get(format!("{}/v1/keys/count", relay.url))
            .header("authorization", dev.auth())
            .send()
            .await
            .unwrap();
        let took = t.elapsed();
        assert_eq!(resp.status(), 200);
        worst = worst.max(took);
    }
    assert!(
        worst < Duration::from_secs(1),
        "device served in {worst:?} at the cap"
    );
    let evicted = idle
        .iter()
        .chain(&slow_headers)
        .filter(|s| !is_open(s))
        .count();
    let rss = peak_rss_kb(relay.pid());
    println!(
        "cap 64 held by 64 attacker sockets: device requests served, slowest {worst:?}; \
         {evicted} unproductive attacker sockets evicted; relay peak RSS {rss} kB"
    );

    // Slow bodies (1 byte per window, under 1024 bytes per 2 s) are cut
    // off by the progress timeout: an error answer, then the close.
    for mut s in slow_bodies {
        let got = closed_within(&mut s, Duration::from_secs(6))
            .await
            .expect("slow body cut off");
        assert!(
            got.is_empty() || status_of(&got).is_some_and(|c| c >= 400),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
    drop(idle);
    drop(slow_headers);

    // A flood of 300 connections from one address: at most 16 held, the
    // rest closed at once; the device is still served.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = connect_from(loopback(9), addr).await {
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = flood.iter().filter(|s| is_open(s)).count();
    assert!(held <= 16, "{held} sockets held by one address");
    let t = Instant::now();
    let resp = legit
        .get(format!("{}/v1/keys/count", relay.url))
        .header("authorization", dev.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(1));
    println!(
        "300-socket flood from one address: {held} held; relay peak RSS {} kB",
        peak_rss_kb(relay.pid())
    );
}

/// Stalled sockets are closed: silent, trickling headers, a dripping body,
/// an idle keep-alive connection. A slow but steady upload completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_body_and_idle_timeouts_close_stalled_connections() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[limits]\nheader_timeout_ms = 500\nidle_timeout_ms = 1000\n\
         body_window_ms = 500\nbody_min_bytes = 1024\n",
    );
    let addr = addr_of(&relay.url);
    let from = loopback(1);

    // Silent: closed by the header timeout.
    let mut silent = connect_from(from, addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3))
        .await
        .is_some());

    // Headers trickled one line every 100 ms: the header timeout is a
    // deadline, not an inactivity timer.
    let mut trickle = connect_from(from, addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        if trickle.write_all(b"X-Pad: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut trickle, Duration::from_millis(100))
            .await
            .is_some()
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "trickled headers must be cut off");
    assert!(t.elapsed() < Duration::from_secs(3));

    // An idle keep-alive connection after one request.
    let mut keep = connect_from(from, addr).await.unwrap();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = keep.read(&mut buf).await.unwrap();
    assert_eq!(status_of(&buf[..n]), Some(200));
    assert!(is_open(&keep));
    assert!(closed_within(&mut keep, Duration::from_secs(4))
        .await
        .is_some());

    // A dripping body (100 bytes per 200 ms, under 1024 per 500 ms).
    let mut drip = connect_from(from, addr).await.unwrap();
    drip.write_all(b"PUT /v1/keys HTTP/1.1\r\nHost: relay\r\nContent-Length: 50000\r\n\r\n")
        .await
        .unwrap();
    let mut cut = None;
    for _ in 0..25 {
        if drip.write_all(&[b'x'; 100]).await.is_err() {
            cut = Some(Vec::new());
            break;
        }
        if let Some(got) = closed_within(&mut drip, Duration::from_millis(200)).await {
            cut = Some(got);
            break;
        }
    }
    let got = cut.expect("a dripping body must be cut off");
    assert!(
        got.is_empty() || status_of(&got) == Some(400),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // A slow but steady upload: 64 KiB in 4 KiB pieces every 100 ms (1.6 s,
    // three windows) is read whole, so the handler runs and answers (401:
    // this socket carries no credentials) instead of a body error.
    let mut steady = connect_from(from, addr).await.unwrap();
    steady
        .write_all(b"PUT /v1/keys HTTP/1.1\r\nHost: relay\r\nContent-Length: 65536\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..16 {
        steady.write_all(&[b'k'; 4096]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = tokio::time::timeout(Duration::from_secs(3), steady.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status_of(&buf[..n]),
        Some(401),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    // The relay is fine afterwards.
    let ok = reqwest::get(format!("{}/healthz", relay.url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// Over TLS: a socket that never starts, or stalls in, its handshake is
/// closed by the header timeout; one that completes it and then sends
/// nothing, too; a device is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, https) = start_tls(
        dir.path(),
        "[limits]\nheader_timeout_ms = 500\nmax_connections = 16\nmax_connections_per_ip = 8\n",
    );
    let addr = addr_of(&relay.url);
    let mut silent = connect_from(loopback(2), addr).await.unwrap();
    let mut partial = connect_from(loopback(2), addr).await.unwrap();
    // The first bytes of a TLS record header for a ClientHello, then nothing.
    partial.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    // Fill the cap with silent sockets from other addresses.
    let mut filler = Vec::new();
    for host in 3..=4u8 {
        for _ in 0..8 {
            filler.push(connect_from(loopback(host), addr).await.unwrap());
        }
    }
    let t = Instant::now();
    let resp = https
        .get(format!("{}/healthz", tls_base(&relay)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(closed_within(&mut silent, Duration::from_secs(3))
        .await
        .is_some());
    assert!(closed_within(&mut partial, Duration::from_secs(3))
        .await
        .is_some());
    for s in &mut filler {
        assert!(closed_within(s, Duration::from_secs(3)).await.is_some());
    }
}

/// HTTP/2 (prior knowledge on the plain loopback relay): an idle
/// connection is closed; the concurrent stream limit is advertised and
/// enforced by the client library; a
/// rapid-reset flood (HEADERS then RST_STREAM, many times) gets the
/// connection closed, and the relay keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_stream_limit_and_rapid_reset_flood() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[limits]\nh2_max_concurrent_streams = 4\nh2_max_pending_accept_reset_streams = 5\n\
         idle_timeout_ms = 700\n",
    );
    let addr = addr_of(&relay.url);

    // An HTTP/2 connection left idle after a request is closed (GOAWAY)
    // by the idle timeout.
    let tcp = connect_from(loopback(4), addr).await.unwrap();
    let (idle, idle_conn) = h2::client::handshake(tcp).await.unwrap();
    let idle_task = tokio::spawn(idle_conn);
    let mut idle = idle.ready().await.unwrap();
    let get = axum::http::Request::builder()
        .uri(format!("http://{addr}/healthz"))
        .body(())
        .unwrap();
    let (resp, _) = idle.send_request(get, true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    tokio::time::timeout(Duration::from_secs(4), idle_task)
        .await
        .expect("idle HTTP/2 connection closed")
        .unwrap()
        .ok();

    let tcp = connect_from(loopback(3), addr).await.unwrap();
    let (client, mut conn) = h2::client::handshake(tcp).await.unwrap();
    // The stream limit the relay advertised, as the connection learns it.
    let limit = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&limit);
    let conn_task = tokio::spawn(std::future::poll_fn(move |cx| {
        let r = std::pin::Pin::new(&mut conn).poll(cx);
        seen.store(conn.max_concurrent_send_streams(), Ordering::SeqCst);
        r
    }));
    let mut client = client.ready().await.unwrap();
    let req = || {
        axum::http::Request::builder()
            .method("GET")
            .uri(format!("http://{addr}/healthz"))
            .body(())
            .unwrap()
    };
    let (resp, _) = client.send_request(req(), true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(limit.load(Ordering::SeqCst), 4);

    let mut sent = 0;
    for _ in 0..500 {
        let Ok(ready) = tokio::time::timeout(Duration::from_secs(2), client.ready()).await else {
            break;
        };
        let Ok(c) = ready else { break };
        client = c;
        let Ok((_, mut stream)) = client.send_request(req(), false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), conn_task)
        .await
        .expect("the relay closes a rapid-reset connection");
    let err = ended.unwrap().expect_err("closed with an error");
    println!("rapid reset: connection closed after {sent} resets ({err})");
    // The relay answers with GOAWAY(ENHANCE_YOUR_CALM) and closes; when
    // the client is still writing as the socket closes, it sees the close
    // (a broken pipe) before it reads the GOAWAY.
    let calm =
        err.is_go_away() && err.is_remote() && err.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM);
    assert!(calm || err.is_io(), "{err}");

    let ok = reqwest::get(format!("{}/healthz", relay.url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

// ------------------------------------------------------------ push targets

fn invalid_push(status: u16, body: &[u8], endpoint: &str) {
    assert_eq!(status, 400, "{endpoint} must be refused");
    let e = ErrorBody::decode(body).unwrap();
    assert_eq!(e.code, "invalid_push", "{endpoint}");
}

/// `PUT /v1/push` refuses UnifiedPush endpoints that are not https on 443
/// to a public host, with a typed error; a loopback test relay takes
/// http to loopback, a TLS relay on loopback does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_registration_refuses_non_public_targets() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path(), "");
    let http = reqwest::Client::new();
    let dev = register(&http, &relay.url, &relay.db).await;
    for endpoint in [
        "http://10.0.0.1/up",
        "https://10.0.0.1/up",
        "https://192.168.1.1/up",
        "https://172.16.5.4/up",
        "https://100.64.0.1/up",
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00::1]/up",
        "https://[fe80::1]/up",
        "https://[::ffff:127.0.0.1]/up",
        "https://[::ffff:10.0.0.1]/up",
        "https://[64:ff9b::a9fe:a9fe]/up",
        "https://0.0.0.0/up",
        "https://224.0.0.1/up",
        "https://push.example.org:8080/up",
        "https://push.example.org:22/up",
        "http://push.example.org/up",
        "http://10.0.0.1:8080/up",
        "https://user:pw@push.example.org/up",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://intranet/up",
        "gopher://push.example.org/up",
        "not a url",
    ] {
        let (status, body) = set_push(&http, &relay.url, &dev, endpoint).await;
        invalid_push(status, &body, endpoint);
    }
    let long = format!("https://push.example.org/{}", "a".repeat(3000));
    let (status, body) = set_push(&http, &relay.url, &dev, &long).await;
    invalid_push(status, &body, "a 3000-byte endpoint");
    // Accepted: a public https endpoint on 443 (never woken here), and,
    // on this loopback test relay, http to loopback.
    for endpoint in [
        "https://push.example.org/up/abc",
        "https://push.example.org:443/up/abc",
        "http://127.0.0.1:9/up",
        "http://localhost:9/up",
    ] {
        let (status, _) = set_push(&http, &relay.url, &dev, endpoint).await;
        assert_eq!(status, 204, "{endpoint}");
    }

    // Behind a reverse proxy on the same host the loopback exception is
    // turned off.
    let proxied_dir = tempfile::tempdir().unwrap();
    let proxied = start(proxied_dir.path(), "loopback_push_endpoints = false\n");
    let dev = register(&http, &proxied.url, &proxied.db).await;
    for endpoint in [
        "http://127.0.0.1:9/up",
        "http://localhost:9/up",
        "https://[::1]/up",
    ] {
        let (status, body) = set_push(&http, &proxied.url, &dev, endpoint).await;
        invalid_push(status, &body, endpoint);
    }

    // The same relay served over TLS on loopback is no test relay: no
    // plain-http endpoints, not even to loopback.
    let tls_dir = tempfile::tempdir().unwrap();
    let (tls_relay, https) = start_tls(tls_dir.path(), "");
    let base = tls_base(&tls_relay);
    let dev = register(&https, &base, &tls_relay.db).await;
    for endpoint in [
        "http://127.0.0.1:9/up",
        "http://localhost:9/up",
        "https://127.0.0.1/up",
        "https://[::1]/up",
        "https://localhost/up",
        "https://2130706433/up",
    ] {
        let (status, body) = set_push(&https, &base, &dev, endpoint).await;
        invalid_push(status, &body, endpoint);
    }
}

/// A resolver that answers every name with fixed addresses and counts
/// the questions.
struct Hostile {
    answers: Vec<IpAddr>,
    asked: Arc<AtomicUsize>,
}

impl reqwest::dns::Resolve for Hostile {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let addrs: Vec<SocketAddr> = self
            .answers
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs) })
    }
}

fn hostile(answers: &[&str]) -> (Arc<Hostile>, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let r = Hostile {
        answers: answers.iter().map(|a| a.parse().unwrap()).collect(),
        asked: Arc::clone(&asked),
    };
    (Arc::new(r), asked)
}

fn up_target(endpoint: String) -> PushTarget {
    PushTarget {
        kind: Kind::UnifiedPush as i32,
        endpoint,
    }
}

fn sender(loopback: bool, resolver: Arc<Hostile>) -> UnifiedPushSender {
    UnifiedPushSender::with_options(UnifiedPushOptions {
        loopback,
        resolver: Some(resolver),
        retry: alcove_relay::RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            ..Default::default()
        },
        ..UnifiedPushOptions::default()
    })
    .unwrap()
}

/// A push host whose DNS answers are private (loopback, RFC 1918,
/// link-local metadata) is refused at connect time: the counting listener
/// on loopback, which the URL points at, never sees a connection — with
/// the loopback exception off, and for names other than `localhost` even
/// with it on. Literal private addresses are refused the same way. The
/// control shows the listener does count a connection that is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_host_resolving_to_private_addresses_is_never_dialled() {
    let listener = Counting::start(201).await;
    let port = listener.port;
    let (resolver, asked) = hostile(&["127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1"]);

    let strict = sender(false, Arc::clone(&resolver));
    for host in ["push.rebind.test", "localhost"] {
        let t = up_target(format!("http://{host}:{port}/up"));
        assert!(
            matches!(strict.wake(&t).await, Err(PushError::Refused)),
            "{host}"
        );
    }
    for literal in [
        "127.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "10.0.0.1",
        "169.254.169.254",
    ] {
        let t = up_target(format!("http://{literal}:{port}/up"));
        assert!(
            matches!(strict.wake(&t).await, Err(PushError::Refused)),
            "{literal}"
        );
    }
    let lenient = sender(true, Arc::clone(&resolver));
    let t = up_target(format!("http://push.rebind.test:{port}/up"));
    assert!(matches!(lenient.wake(&t).await, Err(PushError::Refused)));
    assert!(asked.load(Ordering::SeqCst) >= 3, "the resolver was asked");
    assert_eq!(listener.count(), 0, "nothing was dialled");

    // Control: localhost on a loopback test relay's sender is dialled.
    lenient
        .wake(&up_target(format!("http://localhost:{port}/up")))
        .await
        .unwrap();
    assert_eq!(listener.count(), 1);
}

/// End to end in a relay on loopback sockets whose sender resolves through
/// a hostile resolver: the device registers `https://push.rebind.test/up`
/// (a name cannot be judged at registration), mail arrives, the wake
/// resolves the name to private addresses only and is refused, and the
/// registration is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_name_rebound_to_private_addresses_is_refused_at_wake() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (resolver, asked) = hostile(&["10.0.0.1", "169.254.169.254", "::ffff:192.168.0.1"]);
    let mut config = alcove_relay::RelayConfig::new("127.0.0.1:0".parse().unwrap(), db.clone());
    config.push_coalesce = Duration::from_millis(50);
    let handle = alcove_relay::start(config, Arc::new(sender(false, resolver)))
        .await
        .unwrap();
    let base = format!("http://{}", handle.local_addr());
    let http = reqwest::Client::new();
    let alice = register(&http, &base, &db).await;
    let bob = register(&http, &base, &db).await;
    let (status, _) = set_push(&http, &base, &bob, "https://push.rebind.test/up/bob").await;
    assert_eq!(status, 204);
    send_to(&http, &base, &alice, &bob).await;

    let storage = alcove_relay::SqliteStorage::open(&db).unwrap();
    use alcove_relay::Storage;
    let deadline = Instant::now() + Duration::from_secs(5);
    while storage
        .push_target(&bob.account, bob.device)
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "refused target not dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "resolved once, never retried"
    );
    handle.shutdown().await;
}

/// Ten accounts register the same endpoint, which answers 503; each gets
/// mail. Without budgets that is 10 wakes × 5 attempts; the per-target
/// budget (burst 3) lets at most 3 requests (plus a refill) reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_to_a_503_target_are_bounded_by_the_budget() {
    let target = Counting::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[push.retry]\nmax_attempts = 5\nbase_delay_ms = 20\n\n\
         [push.budget]\nper_target_burst = 3\nper_target_per_minute = 1\n",
    );
    let http = reqwest::Client::new();
    let sender_dev = register(&http, &relay.url, &relay.db).await;
    let endpoint = format!("http://127.0.0.1:{}/up/shared", target.port);
    let mut devs = Vec::new();
    for _ in 0..10 {
        let d = register(&http, &relay.url, &relay.db).await;
        let (status, _) = set_push(&http, &relay.url, &d, &endpoint).await;
        assert_eq!(status, 204);
        devs.push(d);
    }
    for d in &devs {
        send_to(&http, &relay.url, &sender_dev, d).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hits = target.count();
    println!("503 target: {hits} requests for 10 wakes (unbounded: 50)");
    assert!(
        (1..=4).contains(&hits),
        "{hits} requests reached the target"
    );
}
