//! The PostgreSQL backend when things go wrong: a URL that does not
//! parse, a server that is not there at start, a server that goes away
//! mid-run and comes back, a schema from a newer relay, relays starting
//! together on an empty database. Errors are typed, say what failed, and
//! never carry the password.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alcove_relay::rate_limits::RateLimitConfig;
use alcove_relay::storage::postgres::SCHEMA_VERSION;
use alcove_relay::{
    issue_invite, start, PostgresStorage, PostgresUrl, RelayConfig, RelayError, Role,
    StorageConfig, StorageError,
};
use support::http::Api;
use support::rnd;
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "hunter2-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn config(url: &str, keys: &std::path::Path) -> RelayConfig {
    let mut c = RelayConfig::new("127.0.0.1:0".parse().unwrap(), StorageConfig::postgres(url));
    c.sealed_sender.as_mut().unwrap().key_dir = Some(keys.join("ss"));
    c.rate_limits = RateLimitConfig::off();
    c
}

#[tokio::test]
async fn a_url_that_does_not_parse_is_a_typed_error_without_the_password() {
    for url in [
        format!("postgres://alcove:{PASSWORD}@[::1/db"),
        format!("host=127.0.0.1 password={PASSWORD} port=notaport"),
        "mysql://localhost/x".to_owned(),
    ] {
        let e = PostgresStorage::connect(&PostgresUrl::new(url.clone()), 2)
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
        let shown = format!("{e} {e:?} {}", PostgresUrl::new(url));
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(e.to_string().contains("does not parse"), "{e}");
    }
}

#[tokio::test]
async fn no_server_at_start_is_a_typed_error_naming_the_host_not_the_password() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://alcove:{PASSWORD}@127.0.0.1:{port}/alcove");
    let keys = tempfile::tempdir().unwrap();
    let e = start(
        config(&url, keys.path()),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .err()
    .expect("no relay without its database");
    let shown = format!("{e} / {e:?}");
    assert!(
        matches!(e, RelayError::Storage(StorageError::Unavailable(_))),
        "{shown}"
    );
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn a_schema_from_a_newer_relay_is_refused() {
    let Some(db) = alcove_testkit::postgres::database("schema_too_new").await else {
        return;
    };
    let url = PostgresUrl::new(db.url.clone());
    drop(PostgresStorage::connect(&url, 1).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(SCHEMA_VERSION as i32 + 1)],
        )
        .await
        .unwrap();
    let e = PostgresStorage::connect(&url, 1)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(e, StorageError::SchemaTooNew(v) if v == SCHEMA_VERSION + 1),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_starting_together_on_an_empty_database_migrate_it_once() {
    let Some(db) = alcove_testkit::postgres::database("migrate_together").await else {
        return;
    };
    let url = PostgresUrl::new(db.url.clone());
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStorage::connect(&url, 1).await.map(|_| ()) })
        })
        .collect();
    for s in starts {
        s.await.unwrap().unwrap();
    }
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0) as u32, SCHEMA_VERSION);
}

/// A TCP proxy in front of PostgreSQL that the test can cut (every
/// connection dropped, new ones refused) and restore: the database going
/// away and coming back, as the relay sees it.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(handle);
            }
        });
        Proxy {
            port,
            up,
            conns,
            task,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_mid_run_is_503_busy_and_the_relay_recovers() {
    let Some(db) = alcove_testkit::postgres::database("pg_goes_away").await else {
        return;
    };
    let real = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", real.host_str().unwrap(), real.port().unwrap());
    let proxy = Proxy::start(target).await;
    let mut via = real.clone();
    via.set_port(Some(proxy.port)).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let relay = start(
        config(via.as_str(), keys.path()),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let api = Api::new(relay.local_addr());
    let storage = PostgresStorage::connect(&PostgresUrl::new(db.url.clone()), 2)
        .await
        .unwrap();
    let alice_invite = issue_invite(&storage, Role::Client, now(), None)
        .await
        .unwrap();
    let bob_invite = issue_invite(&storage, Role::Client, now(), None)
        .await
        .unwrap();
    let alice = api.register(&alice_invite, 2).await;
    let bob = api.register(&bob_invite, 2).await;
    let kept = rnd(16);
    assert_eq!(api.send(&alice, &bob, &kept).await, 204);

    proxy.cut();
    for _ in 0..5 {
        let (status, body) = api
            .call(
                reqwest::Method::GET,
                "/v1/messages",
                Some(&bob),
                "app",
                None,
            )
            .await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
        let e =
            <alcove_proto::relay::ErrorBody as alcove_proto::Message>::decode(&body[..]).unwrap();
        assert_eq!(e.code, "busy");
        assert_eq!(api.send(&alice, &bob, &rnd(16)).await, 503);
    }

    proxy.restore();
    // Back within a few seconds: the pool replaces its broken connections.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let page = loop {
        let (s, page) = api.fetch(&bob, "app", 100).await;
        if s == 200 {
            break page.unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no recovery: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let guids: Vec<Vec<u8>> = page.envelopes.iter().map(|e| e.guid.clone()).collect();
    assert_eq!(
        guids,
        vec![kept],
        "the mail from before the outage, nothing else"
    );
    assert_eq!(api.send(&alice, &bob, &rnd(16)).await, 204);
    relay.shutdown().await;
}
