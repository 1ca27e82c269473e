//! The relay's HTTP API over real loopback sockets and a real SQLite file.

mod support;

use alcove_relay::key_checks::testing::DeviceKeys;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alcove_proto::relay::*;
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::{create_invite, create_role_invite, start, RelayConfig, RelayHandle};
use support::rnd;

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    relay: Option<RelayHandle>,
    base: String,
    http: reqwest::Client,
    now: Arc<AtomicU64>,
}

fn config(db: std::path::PathBuf, now: &Arc<AtomicU64>) -> RelayConfig {
    let mut c = RelayConfig::new("127.0.0.1:0".parse().unwrap(), db);
    let n = Arc::clone(now);
    c.clock = Arc::new(move || n.load(Ordering::SeqCst));
    c.max_queue = 20;
    c.max_body = 64 * 1024;
    c.push_coalesce = Duration::from_millis(300);
    c
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let now = Arc::new(AtomicU64::new(1_700_000_000_000));
    let relay = start(
        config(db.clone(), &now),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", relay.local_addr());
    Fixture {
        _dir: dir,
        db,
        relay: Some(relay),
        base,
        http: reqwest::Client::new(),
        now,
    }
}

#[derive(Clone)]
struct Dev {
    account: String,
    device: u32,
    secret: Vec<u8>,
}

impl Dev {
    fn auth(&self) -> String {
        support::basic_auth(&self.account, self.device, &self.secret)
    }
}

/// A real identity key and `n` one-time keys of each kind signed by it.
fn device(n: u32, start: u32) -> (Vec<u8>, PreKeyUpload) {
    let k = DeviceKeys::generate();
    (k.identity_key(), k.upload(n, start))
}

impl Fixture {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&Dev>,
        body: Option<Vec<u8>>,
    ) -> (u16, Vec<u8>) {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-alcove-reader", "reader-1");
        if let Some(d) = auth {
            r = r.header("authorization", d.auth());
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    async fn register(&self, keys_n: u32) -> Dev {
        let invite = create_invite(&self.db, None).unwrap();
        self.register_by(&invite, keys_n).await.0
    }

    /// Registers a fresh account by `invite`; its device and the answer.
    async fn register_by(&self, invite: &str, keys_n: u32) -> (Dev, RegisterResponse) {
        let invite = invite.to_owned();
        let account = hex::encode(rnd(8));
        let secret = rnd(32);
        let (identity_key, prekeys) = device(keys_n, 1);
        let req = RegisterRequest {
            invite_token: invite,
            account_id: account.clone(),
            registration_id: 77,
            identity_key,
            auth_secret: secret.clone(),
            prekeys: Some(prekeys),
            delivery_key: vec![],
        };
        let (s, b) = self
            .call(
                reqwest::Method::POST,
                "/v1/register",
                None,
                Some(req.encode_to_vec()),
            )
            .await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        let resp = RegisterResponse::decode(&b[..]).unwrap();
        (
            Dev {
                account,
                device: resp.device_id,
                secret,
            },
            resp,
        )
    }

    /// `dev` asks for a client invite with `body` (encoded as given).
    async fn mint(&self, dev: &Dev, body: Vec<u8>) -> (u16, Vec<u8>) {
        self.call(reqwest::Method::POST, "/v1/invites", Some(dev), Some(body))
            .await
    }

    async fn send(
        &self,
        from: &Dev,
        to: &Dev,
        guid: &[u8],
        devices: &[(u32, u32)],
    ) -> (u16, Vec<u8>) {
        let req = SendRequest {
            guid: guid.to_vec(),
            messages: devices
                .iter()
                .map(|(d, reg)| OutgoingMessage {
                    destination_device: *d,
                    destination_registration_id: *reg,
                    r#type: envelope::Type::SignalMessage as i32,
                    ciphertext: rnd(100),
                })
                .collect(),
        };
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}", to.account),
            Some(from),
            Some(req.encode_to_vec()),
        )
        .await
    }

    async fn fetch(&self, dev: &Dev, limit: u32) -> (u16, Option<EnvelopePage>) {
        let (s, b) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/messages?limit={limit}"),
                Some(dev),
                None,
            )
            .await;
        (s, (s == 200).then(|| EnvelopePage::decode(&b[..]).unwrap()))
    }
}

#[tokio::test]
async fn invites_are_single_use_and_required() {
    let f = fixture().await;
    let invite = create_invite(&f.db, None).unwrap();
    let mk = |token: &str, id: &str| {
        let (identity_key, prekeys) = device(3, 1);
        RegisterRequest {
            invite_token: token.into(),
            account_id: id.into(),
            registration_id: 5,
            identity_key,
            auth_secret: rnd(32),
            prekeys: Some(prekeys),
            delivery_key: vec![],
        }
    };
    let (s, _) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(mk(&invite, "acct-one").encode_to_vec()),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(mk(&invite, "acct-two").encode_to_vec()),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(ErrorBody::decode(&b[..]).unwrap().code, "invalid_invite");
    let (s, _) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(mk("made-up", "acct-three").encode_to_vec()),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(b"\xff\xff garbage".to_vec()),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn roles_come_from_the_invite_and_a_therapist_mints_client_invites() {
    let f = fixture().await;
    let now = f.now.load(Ordering::SeqCst);
    let hour = 3600 * 1000;
    // The admin's invites carry the role; the answer says it.
    for (role, wire) in [
        (alcove_relay::Role::Therapist, Role::Therapist),
        (alcove_relay::Role::Bot, Role::Bot),
        (alcove_relay::Role::Client, Role::Client),
    ] {
        let invite = create_role_invite(&f.db, role, None).unwrap();
        let (_, resp) = f.register_by(&invite, 1).await;
        assert_eq!(resp.role(), wire, "{role}");
    }
    let therapist = f
        .register_by(
            &create_role_invite(&f.db, alcove_relay::Role::Therapist, None).unwrap(),
            1,
        )
        .await
        .0;

    // The default lifetime (7 days), from an empty body or a zero.
    for body in [vec![], MintInviteRequest::default().encode_to_vec()] {
        let (s, b) = f.mint(&therapist, body).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        let minted = MintInviteResponse::decode(&b[..]).unwrap();
        assert_eq!(minted.expires_at_ms, now + 7 * 24 * hour);
        assert_eq!(minted.role(), Role::Client);
        assert_eq!(minted.token.len(), 43, "32 random bytes, base64url");
    }
    // The hours asked for, up to 30 days.
    let (s, b) = f
        .mint(
            &therapist,
            MintInviteRequest {
                expires_in_hours: 30 * 24,
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        MintInviteResponse::decode(&b[..]).unwrap().expires_at_ms,
        now + 30 * 24 * hour
    );
    let (s, b) = f
        .mint(
            &therapist,
            MintInviteRequest {
                expires_in_hours: 2,
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    let minted = MintInviteResponse::decode(&b[..]).unwrap();
    assert_eq!(minted.expires_at_ms, now + 2 * hour);

    // The minted token registers a client, once.
    let (client, resp) = f.register_by(&minted.token, 1).await;
    assert_eq!(resp.role(), Role::Client);
    assert_eq!(resp.device_id, 1);
    let (identity_key, prekeys) = device(1, 1);
    let replay = RegisterRequest {
        invite_token: minted.token.clone(),
        account_id: "replayed".into(),
        registration_id: 5,
        identity_key,
        auth_secret: rnd(32),
        prekeys: Some(prekeys),
        delivery_key: vec![],
    };
    let (s, b) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(replay.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(ErrorBody::decode(&b[..]).unwrap().code, "invalid_invite");

    // The client it enrolled may not mint.
    let (s, b) = f.mint(&client, vec![]).await;
    assert_eq!(s, 403);
    assert_eq!(ErrorBody::decode(&b[..]).unwrap().code, "not_permitted");

    // A minted invite past its expiry registers nobody.
    let (s, b) = f
        .mint(
            &therapist,
            MintInviteRequest {
                expires_in_hours: 1,
            }
            .encode_to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    let short = MintInviteResponse::decode(&b[..]).unwrap();
    f.now.store(now + hour, Ordering::SeqCst);
    let mut late = replay.clone();
    late.invite_token = short.token;
    late.account_id = "too-late".into();
    let (s, b) = f
        .call(
            reqwest::Method::POST,
            "/v1/register",
            None,
            Some(late.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(ErrorBody::decode(&b[..]).unwrap().code, "invalid_invite");

    // A second device of the therapist's account has its role.
    let (identity_key, prekeys) = device(1, 1);
    let second = RegisterRequest {
        invite_token: String::new(),
        account_id: therapist.account.clone(),
        registration_id: 6,
        identity_key,
        auth_secret: rnd(32),
        prekeys: Some(prekeys),
        delivery_key: vec![],
    };
    let (s, b) = f
        .call(
            reqwest::Method::POST,
            "/v1/devices",
            Some(&therapist),
            Some(second.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(
        RegisterResponse::decode(&b[..]).unwrap().role(),
        Role::Therapist
    );
}

#[tokio::test]
async fn bad_auth_malformed_and_oversized_requests_store_nothing() {
    let f = fixture().await;
    let a = f.register(5).await;
    let b = f.register(5).await;
    let mut wrong = a.clone();
    wrong.secret = rnd(32);
    let mut other_device = a.clone();
    other_device.device = 2;
    for bad in [&wrong, &other_device] {
        let (s, _) = f.send(bad, &b, &rnd(16), &[(1, 77)]).await;
        assert_eq!(s, 401);
    }
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}", b.account),
            None,
            Some(vec![]),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}", b.account),
            Some(&a),
            Some(vec![0xff, 0x01]),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}", b.account),
            Some(&a),
            Some(vec![0; 200 * 1024]),
        )
        .await;
    assert_eq!(s, 413);
    let (s, _) = f.send(&a, &b, &[1, 2, 3], &[(1, 77)]).await;
    assert_eq!(s, 400, "guid must be 16 bytes");
    let (s, _) = f
        .call(
            reqwest::Method::PUT,
            "/v1/keys",
            Some(&a),
            Some(
                PreKeyUpload {
                    one_time_prekeys: vec![
                        PreKey {
                            id: 1,
                            public_key: rnd(33)
                        };
                        101
                    ],
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
        )
        .await;
    assert_eq!(s, 400, "more than 100 keys");
    let (_, page) = f.fetch(&b, 50).await;
    assert!(page.unwrap().envelopes.is_empty(), "nothing stored");
}

#[tokio::test]
async fn bundles_consume_one_time_keys_then_fall_back_to_last_resort() {
    let f = fixture().await;
    let a = f.register(2).await;
    let b = f.register(2).await;
    let mut seen = Vec::new();
    for i in 0..3 {
        let (s, body) = f
            .call(
                reqwest::Method::GET,
                &format!("/v1/keys/{}", b.account),
                Some(&a),
                None,
            )
            .await;
        assert_eq!(s, 200);
        let bundles = PreKeyBundles::decode(&body[..]).unwrap();
        let d = &bundles.devices[0];
        let kyber = d.kyber_prekey.as_ref().unwrap().id;
        if i < 2 {
            let ec = d.one_time_prekey.as_ref().unwrap().id;
            assert!(!seen.contains(&ec));
            seen.push(ec);
            assert_ne!(kyber, 1000);
        } else {
            assert!(d.one_time_prekey.is_none(), "EC one-time keys exhausted");
            assert_eq!(kyber, 1000, "Kyber last-resort key");
        }
    }
    let (s, body) = f
        .call(reqwest::Method::GET, "/v1/keys/count", Some(&b), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        PreKeyCount::decode(&body[..]).unwrap(),
        PreKeyCount::default()
    );
    let (s, _) = f
        .call(reqwest::Method::GET, "/v1/keys/nobody-here", Some(&a), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn concurrent_bundle_fetches_never_share_a_one_time_key() {
    let f = Arc::new(fixture().await);
    let a = f.register(5).await;
    let b = f.register(35).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (f, a, b) = (Arc::clone(&f), a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let (_, body) = f
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/keys/{}", b.account),
                    Some(&a),
                    None,
                )
                .await;
            PreKeyBundles::decode(&body[..]).unwrap().devices[0]
                .one_time_prekey
                .as_ref()
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
}

#[tokio::test]
async fn send_fetch_ack_with_paging_dedup_and_device_mismatch() {
    let f = fixture().await;
    let a = f.register(5).await;
    let b = f.register(5).await;
    let guid = rnd(16);
    for _ in 0..3 {
        let (s, _) = f.send(&a, &b, &guid, &[(1, 77)]).await;
        assert_eq!(s, 204);
    }
    for _ in 0..4 {
        assert_eq!(f.send(&a, &b, &rnd(16), &[(1, 77)]).await.0, 204);
    }
    let (_, page) = f.fetch(&b, 3).await;
    let page = page.unwrap();
    assert_eq!(page.envelopes.len(), 3);
    assert!(page.more);
    assert_eq!(page.envelopes[0].guid, guid);
    assert_eq!(page.envelopes[0].source_account, a.account);
    let acks = AckRequest {
        guids: page.envelopes.iter().map(|e| e.guid.clone()).collect(),
    };
    let (s, _) = f
        .call(
            reqwest::Method::POST,
            "/v1/messages/ack",
            Some(&b),
            Some(acks.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 204);
    let (_, page) = f.fetch(&b, 50).await;
    let page = page.unwrap();
    assert_eq!(page.envelopes.len(), 2, "5 distinct guids, 3 acked");
    assert!(!page.more);

    // A second device: sends naming only device 1 are refused with the list.
    let (identity_key, prekeys) = device(2, 1);
    let req = RegisterRequest {
        account_id: b.account.clone(),
        registration_id: 88,
        identity_key,
        auth_secret: rnd(32),
        prekeys: Some(prekeys),
        ..Default::default()
    };
    let (s, body) = f
        .call(
            reqwest::Method::POST,
            "/v1/devices",
            Some(&b),
            Some(req.encode_to_vec()),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(RegisterResponse::decode(&body[..]).unwrap().device_id, 2);
    let (s, body) = f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    assert_eq!(s, 409);
    assert_eq!(
        MismatchedDevices::decode(&body[..])
            .unwrap()
            .missing_devices,
        vec![2]
    );
    let (s, body) = f.send(&a, &b, &rnd(16), &[(1, 77), (2, 88), (3, 1)]).await;
    assert_eq!(s, 409);
    assert_eq!(
        MismatchedDevices::decode(&body[..]).unwrap().extra_devices,
        vec![3]
    );
    let (s, body) = f.send(&a, &b, &rnd(16), &[(1, 77), (2, 99)]).await;
    assert_eq!(s, 410);
    assert_eq!(
        MismatchedDevices::decode(&body[..]).unwrap().stale_devices,
        vec![2]
    );
    assert_eq!(f.send(&a, &b, &rnd(16), &[(1, 77), (2, 88)]).await.0, 204);

    // Revoking device 2: it can no longer authenticate.
    let b2 = Dev {
        device: 2,
        secret: req.auth_secret.clone(),
        ..b.clone()
    };
    assert_eq!(f.fetch(&b2, 10).await.0, 200);
    let (s, _) = f
        .call(reqwest::Method::DELETE, "/v1/devices/2", Some(&b), None)
        .await;
    assert_eq!(s, 204);
    // Told it was revoked (403 `device_revoked`), not a plain 401.
    assert_eq!(f.fetch(&b2, 10).await.0, 403);
}

#[tokio::test]
async fn one_reader_per_mailbox_ttl_and_bounded_queue() {
    let f = fixture().await;
    let a = f.register(5).await;
    let b = f.register(5).await;
    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    assert_eq!(f.fetch(&b, 10).await.0, 200);
    let other = f
        .http
        .get(format!("{}/v1/messages", f.base))
        .header("authorization", b.auth())
        .header("x-alcove-reader", "reader-2")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 409, "second reader refused");
    // Released: the other reader may read.
    f.call(
        reqwest::Method::DELETE,
        "/v1/messages/reader",
        Some(&b),
        None,
    )
    .await;
    let other = f
        .http
        .get(format!("{}/v1/messages", f.base))
        .header("authorization", b.auth())
        .header("x-alcove-reader", "reader-2")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
    // Lease expiry: 31 s later reader-1 may take over.
    f.now.fetch_add(31_000, Ordering::SeqCst);
    assert_eq!(f.fetch(&b, 10).await.1.unwrap().envelopes.len(), 1);
    // TTL: 30 days later the envelope is gone.
    f.now.fetch_add(30 * 24 * 3600 * 1000 + 1, Ordering::SeqCst);
    assert!(f.fetch(&b, 10).await.1.unwrap().envelopes.is_empty());
    // Bounded queue (20 in this config, of which signed mail, all this
    // test sends, may take half).
    for _ in 0..10 {
        assert_eq!(f.send(&a, &b, &rnd(16), &[(1, 77)]).await.0, 204);
    }
    assert_eq!(f.send(&a, &b, &rnd(16), &[(1, 77)]).await.0, 507);
}

#[tokio::test]
async fn restart_keeps_queued_mail_and_db_holds_no_secrets() {
    let mut f = fixture().await;
    let invite = create_invite(&f.db, None).unwrap();
    let a = f.register(5).await;
    let b = f.register(5).await;
    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    f.relay.take().unwrap().shutdown().await;
    let relay = start(
        config(f.db.clone(), &f.now),
        alcove_relay::default_push_sender().unwrap(),
    )
    .await
    .unwrap();
    f.base = format!("http://{}", relay.local_addr());
    f.relay = Some(relay);
    assert_eq!(f.fetch(&b, 10).await.1.unwrap().envelopes.len(), 1);
    let mut bytes = std::fs::read(&f.db).unwrap();
    bytes.extend(std::fs::read(f.db.with_extension("db-wal")).unwrap_or_default());
    for needle in [
        a.secret.clone(),
        b.secret.clone(),
        hex::encode(&a.secret).into_bytes(),
        invite.into_bytes(),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret in clear in the relay DB"
        );
    }
}

#[tokio::test]
async fn unified_push_wakes_offline_devices_with_identical_bodies() {
    let mut up = alcove_testkit::unified_push::PushEndpoint::start().await;
    let endpoint = up.url.clone();

    let f = fixture().await;
    let a = f.register(5).await;
    let c = f.register(5).await;
    let b = f.register(5).await;
    let reg = PushRegistration {
        kind: push_registration::Kind::UnifiedPush as i32,
        endpoint: endpoint.clone(),
    };
    assert_eq!(
        f.call(
            reqwest::Method::PUT,
            "/v1/push",
            Some(&b),
            Some(reg.encode_to_vec())
        )
        .await
        .0,
        204
    );
    let bad = PushRegistration {
        kind: push_registration::Kind::UnifiedPush as i32,
        endpoint: "http://example.org/x".into(),
    };
    assert_eq!(
        f.call(
            reqwest::Method::PUT,
            "/v1/push",
            Some(&b),
            Some(bad.encode_to_vec())
        )
        .await
        .0,
        400
    );

    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    let first = up.next(Duration::from_secs(3)).await.expect("wake");
    // A burst from another sender: coalesced into one trailing wake.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..5 {
        f.send(&c, &b, &rnd(16), &[(1, 77)]).await;
    }
    let second = up.next(Duration::from_secs(3)).await.expect("wake");
    assert_eq!(first, second, "byte-identical across senders and messages");
    assert_eq!(first, alcove_relay::WAKE_BODY);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let extra = up.drain();
    assert!(extra <= 1, "burst of 5 coalesced (extra wakes: {extra})");

    // While the device holds the reader lease (it is syncing) no wake.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(f.fetch(&b, 1).await.0, 200);
    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    assert!(
        up.next(Duration::from_secs(3)).await.is_none(),
        "no push during sync"
    );

    // 404 from the endpoint drops it.
    f.call(
        reqwest::Method::DELETE,
        "/v1/messages/reader",
        Some(&b),
        None,
    )
    .await; // mail left: wakes once
    up.answer_with(404);
    let _ = up.next(Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    up.drain();
    f.send(&a, &b, &rnd(16), &[(1, 77)]).await;
    assert!(
        up.next(Duration::from_secs(3)).await.is_none(),
        "dropped endpoint is not called again"
    );
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig::new("0.0.0.0:0".parse().unwrap(), dir.path().join("r.db"));
    let err = start(cfg, alcove_relay::default_push_sender().unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, alcove_relay::RelayError::PlainHttpOffLoopback(_)),
        "{err}"
    );
}
