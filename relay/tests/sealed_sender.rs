//! Sealed sender at the relay, over real loopback sockets and a real SQLite
//! file: key files, sender certificates (checked with libsignal), delivery
//! keys, sealed sends (no credentials, no source in the stored envelope),
//! dedup and device-mismatch behaviour, and no bytes left after delivery.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alcove_proto::relay::*;
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::{create_invite, start, RelayConfig, RelayHandle, SealedSenderConfig};
use base64::Engine;
use libsignal_protocol::{KeyPair, PublicKey, SenderCertificate, Timestamp};
use support::rnd;

const T0: u64 = 1_700_000_000_000;

struct Fixture {
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    relay: Option<RelayHandle>,
    base: String,
    http: reqwest::Client,
    now: Arc<AtomicU64>,
}

fn config(db: std::path::PathBuf, now: &Arc<AtomicU64>, sealed: bool) -> RelayConfig {
    let mut c = RelayConfig::new("127.0.0.1:0".parse().unwrap(), db);
    let n = Arc::clone(now);
    c.clock = Arc::new(move || n.load(Ordering::SeqCst));
    c.max_queue = 20;
    c.sealed_sender = sealed.then(|| SealedSenderConfig {
        key_dir: None,
        cert_ttl: Duration::from_secs(3600),
    });
    c
}

async fn fixture_with(sealed: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let now = Arc::new(AtomicU64::new(T0));
    let relay = start(
        config(db.clone(), &now, sealed),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", relay.local_addr());
    Fixture {
        dir,
        db,
        relay: Some(relay),
        base,
        http: reqwest::Client::new(),
        now,
    }
}

async fn fixture() -> Fixture {
    fixture_with(true).await
}

#[derive(Clone)]
struct Dev {
    account: String,
    device: u32,
    secret: Vec<u8>,
    identity: Vec<u8>,
    delivery_key: Vec<u8>,
    trust_root: Vec<u8>,
}

impl Dev {
    fn auth(&self) -> String {
        support::basic_auth(&self.account, self.device, &self.secret)
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl Fixture {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> (u16, Vec<u8>) {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-alcove-reader", "reader-1");
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    async fn register(&self) -> Dev {
        let invite = create_invite(&self.db, None).unwrap();
        let account = hex::encode(rnd(8));
        let secret = rnd(32);
        let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
        let identity = device.identity_key();
        let delivery_key = rnd(32);
        let req = RegisterRequest {
            invite_token: invite,
            account_id: account.clone(),
            registration_id: 77,
            identity_key: identity.clone(),
            auth_secret: secret.clone(),
            prekeys: Some(device.upload(0, 1)),
            delivery_key: delivery_key.clone(),
        };
        let (s, b) = self
            .call(
                reqwest::Method::POST,
                "/v1/register",
                &[],
                Some(req.encode_to_vec()),
            )
            .await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        let resp = RegisterResponse::decode(&b[..]).unwrap();
        Dev {
            account,
            device: resp.device_id,
            secret,
            identity,
            delivery_key,
            trust_root: resp.trust_root,
        }
    }

    fn sealed_request(&self, guid: &[u8], devices: &[(u32, u32)]) -> SendRequest {
        SendRequest {
            guid: guid.to_vec(),
            messages: devices
                .iter()
                .map(|(d, reg)| OutgoingMessage {
                    destination_device: *d,
                    destination_registration_id: *reg,
                    r#type: envelope::Type::SealedSender as i32,
                    ciphertext: rnd(200),
                })
                .collect(),
        }
    }

    async fn send_sealed(&self, to: &str, key: Option<&[u8]>, req: &SendRequest) -> (u16, Vec<u8>) {
        let headers: Vec<(&str, String)> = key
            .map(|k| vec![(alcove_relay::DELIVERY_KEY_HEADER, b64(k))])
            .unwrap_or_default();
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{to}/sealed"),
            &headers,
            Some(req.encode_to_vec()),
        )
        .await
    }

    async fn fetch(&self, dev: &Dev) -> EnvelopePage {
        let (s, b) = self
            .call(
                reqwest::Method::GET,
                "/v1/messages?limit=100",
                &[("authorization", dev.auth())],
                None,
            )
            .await;
        assert_eq!(s, 200);
        EnvelopePage::decode(&b[..]).unwrap()
    }

    async fn certificate(&self, dev: &Dev) -> (u16, Vec<u8>) {
        self.call(
            reqwest::Method::GET,
            "/v1/certificate",
            &[("authorization", dev.auth())],
            None,
        )
        .await
    }

    fn key_dir(&self) -> std::path::PathBuf {
        alcove_relay::sealed_sender_key_dir(&SealedSenderConfig::default(), &self.db).unwrap()
    }
}

fn code(body: &[u8]) -> String {
    ErrorBody::decode(body).map(|b| b.code).unwrap_or_default()
}

#[tokio::test]
async fn keys_are_files_created_once_and_the_trust_root_is_handed_out() {
    let mut f = fixture().await;
    let a = f.register().await;
    assert_eq!(a.trust_root.len(), 33);
    let root = PublicKey::deserialize(&a.trust_root).unwrap();
    let printed =
        alcove_relay::trust_root_public_key(&SealedSenderConfig::default(), &f.db).unwrap();
    assert_eq!(printed, a.trust_root, "what `alcove relay keys` prints");

    let dir = f.key_dir();
    for name in [
        "trust_root.pub",
        "trust_root.key",
        "server.key",
        "server.cert",
    ] {
        let meta = std::fs::metadata(dir.join(name)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        }
        assert!(meta.len() > 0);
    }
    // No key material in the relay database.
    let db = std::fs::read(&f.db).unwrap();
    let server_key = std::fs::read(dir.join("server.key")).unwrap();
    assert!(!db.windows(server_key.len()).any(|w| w == server_key));

    // A restart keeps the same trust root (clients pinned it).
    f.relay.take().unwrap().shutdown().await;
    let relay = start(
        config(f.db.clone(), &f.now, true),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    f.base = format!("http://{}", relay.local_addr());
    f.relay = Some(relay);
    let b = f.register().await;
    assert_eq!(b.trust_root, a.trust_root);
    let (s, cert) = f.certificate(&b).await;
    assert_eq!(s, 200);
    let cert = SenderCertificate::deserialize(
        &alcove_proto::relay::SenderCertificate::decode(&cert[..])
            .unwrap()
            .certificate,
    )
    .unwrap();
    assert!(cert
        .validate(&root, Timestamp::from_epoch_millis(T0))
        .unwrap());

    // The trust root's private key may move offline: the relay still runs.
    f.relay.take().unwrap().shutdown().await;
    std::fs::remove_file(dir.join("trust_root.key")).unwrap();
    let relay = start(
        config(f.db.clone(), &f.now, true),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    relay.shutdown().await;

    // A half-present key set is refused, never silently replaced.
    std::fs::remove_file(dir.join("server.cert")).unwrap();
    let err = start(
        config(f.db.clone(), &f.now, true),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .err()
    .expect("must refuse to start");
    assert!(err.to_string().contains("server.cert"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("trust_root.pub")).unwrap(),
        a.trust_root
    );
}

#[tokio::test]
async fn sender_certificate_binds_account_device_and_registered_identity() {
    let f = fixture().await;
    let a = f.register().await;
    let root = PublicKey::deserialize(&a.trust_root).unwrap();

    let (s, _) = f
        .call(reqwest::Method::GET, "/v1/certificate", &[], None)
        .await;
    assert_eq!(s, 401, "certificates need device credentials");
    let mut wrong = a.clone();
    wrong.secret = rnd(32);
    assert_eq!(f.certificate(&wrong).await.0, 401);

    let (s, body) = f.certificate(&a).await;
    assert_eq!(s, 200);
    let bytes = alcove_proto::relay::SenderCertificate::decode(&body[..])
        .unwrap()
        .certificate;
    let cert = SenderCertificate::deserialize(&bytes).unwrap();
    assert_eq!(cert.sender_uuid().unwrap(), a.account);
    assert_eq!(u32::from(cert.sender_device_id().unwrap()), a.device);
    assert_eq!(&cert.key().unwrap().serialize()[..], &a.identity[..]);
    assert_eq!(cert.expiration().unwrap().epoch_millis(), T0 + 3_600_000);
    assert!(cert
        .validate(&root, Timestamp::from_epoch_millis(T0))
        .unwrap());
    assert!(
        !cert
            .validate(&root, Timestamp::from_epoch_millis(T0 + 3_600_001))
            .unwrap(),
        "expires after the TTL"
    );
    let other_root = KeyPair::generate(&mut rand::rng()).public_key;
    assert!(!cert
        .validate(&other_root, Timestamp::from_epoch_millis(T0))
        .unwrap());
}

#[tokio::test]
async fn sealed_send_needs_the_recipient_delivery_key_and_names_no_sender() {
    let f = fixture().await;
    let a = f.register().await;
    let b = f.register().await;
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);

    // Missing, malformed, wrong key; unknown account: the same 401.
    let (s1, b1) = f.send_sealed(&b.account, None, &req).await;
    let (s2, b2) = f.send_sealed(&b.account, Some(&rnd(32)), &req).await;
    let (s3, b3) = f.send_sealed(&b.account, Some(&rnd(5)), &req).await;
    let (s4, b4) = f.send_sealed(&b.account, Some(&a.delivery_key), &req).await;
    let (s5, b5) = f.send_sealed("nobody-here", Some(&rnd(32)), &req).await;
    let (s6, b6) = f
        .call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}/sealed", b.account),
            &[(alcove_relay::DELIVERY_KEY_HEADER, "not base64!".into())],
            Some(req.encode_to_vec()),
        )
        .await;
    for (s, body) in [(s1, b1), (s2, b2), (s3, b3), (s4, b4), (s5, b5), (s6, b6)] {
        assert_eq!(s, 401);
        assert_eq!(body, ErrorBody::decode(&body[..]).unwrap().encode_to_vec());
        assert_eq!(code(&body), "unauthorized");
    }
    assert!(f.fetch(&b).await.envelopes.is_empty(), "nothing stored");

    // Credentials on a sealed send are refused (they would name the sender).
    let (s, body) = f
        .call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}/sealed", b.account),
            &[
                (alcove_relay::DELIVERY_KEY_HEADER, b64(&b.delivery_key)),
                ("authorization", a.auth()),
            ],
            Some(req.encode_to_vec()),
        )
        .await;
    assert_eq!((s, code(&body).as_str()), (400, "credentials_on_sealed"));
    // Only SEALED_SENDER messages go this way.
    let mut plain = req.clone();
    plain.messages[0].r#type = envelope::Type::SignalMessage as i32;
    let (s, _) = f
        .send_sealed(&b.account, Some(&b.delivery_key), &plain)
        .await;
    assert_eq!(s, 400);

    // The right key: stored, with no source, and stored once per GUID.
    let (s, _) = f.send_sealed(&b.account, Some(&b.delivery_key), &req).await;
    assert_eq!(s, 204);
    let (s, _) = f.send_sealed(&b.account, Some(&b.delivery_key), &req).await;
    assert_eq!(s, 204, "a retry is accepted");
    let page = f.fetch(&b).await;
    assert_eq!(page.envelopes.len(), 1, "and stored once");
    let env = &page.envelopes[0];
    assert_eq!(env.r#type, envelope::Type::SealedSender as i32);
    assert_eq!(env.source_account, "");
    assert_eq!(env.source_device, 0);
    assert_eq!(env.ciphertext, req.messages[0].ciphertext);
    assert_eq!(env.server_timestamp, T0);

    // In the database: the row holds no sender either.
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    let stored: Vec<Vec<u8>> = conn
        .prepare("SELECT envelope FROM mailbox")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0]
        .windows(a.account.len())
        .any(|w| w == a.account.as_bytes()));
}

#[tokio::test]
async fn sealed_send_keeps_device_mismatch_rules() {
    let f = fixture().await;
    let b = f.register().await;
    let key = Some(&b.delivery_key[..]);
    // Missing device 1, extra device 2.
    let (s, body) = f
        .send_sealed(&b.account, key, &f.sealed_request(&rnd(16), &[(2, 77)]))
        .await;
    assert_eq!(s, 409);
    let m = MismatchedDevices::decode(&body[..]).unwrap();
    assert_eq!((m.missing_devices, m.extra_devices), (vec![1], vec![2]));
    // Stale registration id.
    let (s, body) = f
        .send_sealed(&b.account, key, &f.sealed_request(&rnd(16), &[(1, 78)]))
        .await;
    assert_eq!(s, 410);
    assert_eq!(
        MismatchedDevices::decode(&body[..]).unwrap().stale_devices,
        vec![1]
    );
    assert!(f.fetch(&b).await.envelopes.is_empty());
    // Queue bound (20 in this fixture) holds for sealed mail too.
    for i in 0..20 {
        let (s, _) = f
            .send_sealed(&b.account, key, &f.sealed_request(&rnd(16), &[(1, 77)]))
            .await;
        assert_eq!(s, 204, "message {i}");
    }
    let (s, _) = f
        .send_sealed(&b.account, key, &f.sealed_request(&rnd(16), &[(1, 77)]))
        .await;
    assert_eq!(s, 507);
}

#[tokio::test]
async fn delivery_key_can_be_replaced_by_its_account_only() {
    let f = fixture().await;
    let a = f.register().await;
    let b = f.register().await;
    let new_key = rnd(32);
    let body = DeliveryKey {
        key: new_key.clone(),
    }
    .encode_to_vec();
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            "/v1/delivery-key",
            &[],
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            "/v1/delivery-key",
            &[("authorization", b.auth())],
            Some(DeliveryKey { key: rnd(31) }.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 400, "32 bytes or nothing");
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            "/v1/delivery-key",
            &[("authorization", b.auth())],
            Some(body),
        )
        .await;
    assert_eq!(s, 204);
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    assert_eq!(
        f.send_sealed(&b.account, Some(&b.delivery_key), &req)
            .await
            .0,
        401,
        "the old key no longer works"
    );
    assert_eq!(f.send_sealed(&b.account, Some(&new_key), &req).await.0, 204);
    // a's key is untouched.
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    assert_eq!(
        f.send_sealed(&a.account, Some(&a.delivery_key), &req)
            .await
            .0,
        204
    );
    // The database holds hashes, never the keys.
    drop(f.relay);
    let db = std::fs::read(&f.db).unwrap();
    for k in [&new_key, &a.delivery_key, &b.delivery_key] {
        assert!(!db.windows(32).any(|w| w == &k[..]));
    }
}

#[tokio::test]
async fn relay_without_sealed_sender_offers_none() {
    let f = fixture_with(false).await;
    let a = f.register().await;
    assert!(a.trust_root.is_empty());
    let (s, body) = f.certificate(&a).await;
    assert_eq!((s, code(&body).as_str()), (404, "sealed_sender_off"));
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    let (s, _) = f.send_sealed(&a.account, Some(&a.delivery_key), &req).await;
    assert_eq!(s, 404);
    assert!(!f.key_dir().exists(), "no keys created");
    let _ = &f.dir;
}

#[tokio::test]
async fn delivered_mail_leaves_no_bytes_in_the_database_files() {
    let f = fixture().await;
    let b = f.register().await;
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    let ct = req.messages[0].ciphertext.clone();
    let (s, _) = f.send_sealed(&b.account, Some(&b.delivery_key), &req).await;
    assert_eq!(s, 204);
    let files = |db: &std::path::Path| {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            if let Ok(bytes) = std::fs::read(std::path::PathBuf::from(p)) {
                all.extend(bytes);
            }
        }
        all
    };
    let has = |hay: &[u8]| hay.windows(ct.len()).any(|w| w == &ct[..]);
    assert!(has(&files(&f.db)), "queued: the ciphertext is on disk");
    let page = f.fetch(&b).await;
    let (s, _) = f
        .call(
            reqwest::Method::POST,
            "/v1/messages/ack",
            &[("authorization", b.auth())],
            Some(
                AckRequest {
                    guids: vec![page.envelopes[0].guid.clone()],
                }
                .encode_to_vec(),
            ),
        )
        .await;
    assert_eq!(s, 204);
    // The WAL is scrubbed off the request path, within the scrub interval
    // (1 s by default) of the ack; the wait is bounded with room for a
    // loaded machine.
    let gone = |ct: Vec<u8>| {
        let db = f.db.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
            loop {
                let all = files(&db);
                if !all.windows(ct.len()).any(|w| w == &ct[..]) {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert!(
        gone(ct.clone()).await,
        "acked: no byte of it in the db, WAL or shm"
    );
    // Expired mail dropped on a fetch is scrubbed alike.
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    let ct2 = req.messages[0].ciphertext.clone();
    f.send_sealed(&b.account, Some(&b.delivery_key), &req).await;
    f.now.fetch_add(31 * 24 * 3600 * 1000, Ordering::SeqCst);
    let _ = f.fetch(&b).await; // expired mail is dropped on fetch
    assert!(gone(ct2).await, "expired: no byte of it left");
}

/// A relay database from before sealed sender (schema v1: mailboxes keyed
/// by account id) is upgraded in place: queued mail survives, keyed by the
/// opaque mailbox number, and the account can set a delivery key.
#[tokio::test]
async fn a_v1_database_is_upgraded_with_its_mail() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let (account, secret, salt) = ("acct-old-1", rnd(32), rnd(16));
    let env = alcove_proto::wire::Envelope {
        guid: rnd(16),
        r#type: envelope::Type::SignalMessage as i32,
        source_account: "acct-sender".into(),
        source_device: 1,
        destination_device: 1,
        ciphertext: rnd(64),
        server_timestamp: T0,
    };
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // The v1 schema as the first relay release created it.
        conn.execute_batch(
            "CREATE TABLE invites (token_hash BLOB PRIMARY KEY, created_at INTEGER NOT NULL,
                expires_at INTEGER, used INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE accounts (account_id TEXT PRIMARY KEY, identity_key BLOB NOT NULL,
                created_at INTEGER NOT NULL);
             CREATE TABLE devices (account_id TEXT NOT NULL REFERENCES accounts(account_id),
                device_id INTEGER NOT NULL, registration_id INTEGER NOT NULL,
                salt BLOB NOT NULL, secret_hash BLOB NOT NULL,
                push_kind INTEGER, push_endpoint TEXT, created_at INTEGER NOT NULL,
                PRIMARY KEY (account_id, device_id));
             CREATE TABLE signed_prekeys (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
                kind INTEGER NOT NULL, key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
                signature BLOB NOT NULL, PRIMARY KEY (account_id, device_id, kind));
             CREATE TABLE one_time_prekeys (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
                kind INTEGER NOT NULL, key_id INTEGER NOT NULL, public_key BLOB NOT NULL,
                signature BLOB, PRIMARY KEY (account_id, device_id, kind, key_id));
             CREATE TABLE mailbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id TEXT NOT NULL, device_id INTEGER NOT NULL, guid BLOB NOT NULL,
                envelope BLOB NOT NULL, server_timestamp INTEGER NOT NULL,
                UNIQUE (account_id, device_id, guid));
             CREATE INDEX mailbox_by_device ON mailbox (account_id, device_id, seq);
             CREATE INDEX mailbox_by_time ON mailbox (server_timestamp);
             CREATE TABLE readers (account_id TEXT NOT NULL, device_id INTEGER NOT NULL,
                reader TEXT NOT NULL, expires_at INTEGER NOT NULL,
                PRIMARY KEY (account_id, device_id));
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let identity = KeyPair::generate(&mut rand::rng()).public_key.serialize();
        conn.execute(
            "INSERT INTO accounts VALUES (?1, ?2, 0)",
            rusqlite::params![account, &identity[..]],
        )
        .unwrap();
        let mut h = Sha256::new();
        h.update(b"alcove-relay-device-secret-v1");
        h.update(&salt);
        h.update(&secret);
        conn.execute(
            "INSERT INTO devices (account_id, device_id, registration_id, salt, secret_hash, created_at)
             VALUES (?1, 1, 77, ?2, ?3, 0)",
            rusqlite::params![account, salt, h.finalize().to_vec()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mailbox (account_id, device_id, guid, envelope, server_timestamp)
             VALUES (?1, 1, ?2, ?3, ?4)",
            rusqlite::params![account, env.guid, env.encode_to_vec(), T0 as i64],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO readers VALUES (?1, 1, 'old-reader', ?2)",
            rusqlite::params![account, (T0 + 1_000_000) as i64],
        )
        .unwrap();
    }
    let now = Arc::new(AtomicU64::new(T0));
    let relay = start(
        config(db.clone(), &now, true),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let f = Fixture {
        dir,
        db,
        base: format!("http://{}", relay.local_addr()),
        relay: Some(relay),
        http: reqwest::Client::new(),
        now,
    };
    let dev = Dev {
        account: account.into(),
        device: 1,
        secret,
        identity: vec![],
        delivery_key: rnd(32),
        trust_root: vec![],
    };
    let page = f.fetch(&dev).await;
    assert_eq!(
        page.envelopes,
        vec![env],
        "queued mail survived the upgrade"
    );
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            "/v1/delivery-key",
            &[("authorization", dev.auth())],
            Some(
                DeliveryKey {
                    key: dev.delivery_key.clone(),
                }
                .encode_to_vec(),
            ),
        )
        .await;
    assert_eq!(s, 204);
    let req = f.sealed_request(&rnd(16), &[(1, 77)]);
    assert_eq!(
        f.send_sealed(account, Some(&dev.delivery_key), &req)
            .await
            .0,
        204
    );
    assert_eq!(f.certificate(&dev).await.0, 200);
}
