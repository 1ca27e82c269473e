//! Push providers against local servers that speak their documented APIs:
//! APNs over HTTP/2 + TLS with ES256 provider tokens, FCM HTTP v1 with an
//! OAuth2 service-account flow, UnifiedPush. Then the whole relay: wakes for
//! different messages, senders and conversations are byte-identical per
//! provider and carry no account id.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_proto::relay::*;
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::*;
use alcove_testkit::push_providers::*;
use axum::http::Version;
use support::rnd;

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        factor: 2,
        max_delay: Duration::from_secs(2),
    }
}

fn clock_at(now: &Arc<AtomicU64>) -> Clock {
    let n = Arc::clone(now);
    Arc::new(move || n.load(Ordering::SeqCst))
}

fn real_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn target(kind: push_registration::Kind, endpoint: &str) -> PushTarget {
    PushTarget {
        kind: kind as i32,
        endpoint: endpoint.to_owned(),
    }
}

const MIN: u64 = 60_000;

// ---------------------------------------------------------------- APNs

fn apns_sender(stub: &Stub, key_pem: &str, now: &Arc<AtomicU64>) -> ApnsSender {
    ApnsSender::new(ApnsOptions {
        key_pem: key_pem.as_bytes().to_vec(),
        key_id: "ABC123DEFG".into(),
        team_id: "TEAM123456".into(),
        topic: "org.alcove.app".into(),
        endpoint: stub.url.clone(),
        ca_pem: stub.ca_pem.clone().map(String::into_bytes),
        ttl: Duration::from_secs(3600),
        jwt_refresh: Duration::from_secs(40 * 60),
        retry: fast_retry(),
        clock: clock_at(now),
    })
    .unwrap()
}

/// Verifies the provider token's ES256 signature and returns (kid, claims).
fn verify_apns_jwt(rec: &Recorded, public_pem: &str) -> (String, serde_json::Value, String) {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let jwt = rec
        .header("authorization")
        .and_then(|a| a.strip_prefix("bearer "))
        .expect("bearer token")
        .to_owned();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let mut v = Validation::new(Algorithm::ES256);
    v.validate_exp = false;
    v.set_required_spec_claims(&["iss", "iat"]);
    let key = DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap();
    let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &v).expect("valid ES256");
    (header.kid.unwrap(), data.claims, jwt)
}

#[tokio::test]
async fn apns_http2_request_and_provider_token_lifecycle() {
    let mut stub = Stub::tls().await;
    let (key_pem, public_pem) = apns_key();
    let now = Arc::new(AtomicU64::new(real_now_ms()));
    let sender = apns_sender(&stub, &key_pem, &now);
    let token = apns_device_token(7);
    let t = target(push_registration::Kind::Apns, &token);

    sender.wake(&t).await.unwrap();
    let r1 = stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(r1.version, Version::HTTP_2, "APNs is HTTP/2 only");
    assert_eq!(r1.method, "POST");
    assert_eq!(r1.path, format!("/3/device/{token}"));
    assert_eq!(r1.header("apns-topic"), Some("org.alcove.app"));
    assert_eq!(r1.header("apns-push-type"), Some("alert"));
    assert_eq!(r1.header("apns-priority"), Some("10"));
    let t0 = now.load(Ordering::SeqCst) / 1000;
    assert_eq!(
        r1.header("apns-expiration"),
        Some(&*(t0 + 3600).to_string())
    );
    for h in ["apns-collapse-id", "apns-id"] {
        assert!(r1.header(h).is_none(), "{h} must not be sent");
    }
    assert_eq!(r1.body, APNS_BODY);
    let body: serde_json::Value = serde_json::from_slice(&r1.body).unwrap();
    assert_eq!(body["aps"]["mutable-content"], 1);
    assert_eq!(body["aps"]["alert"]["loc-key"], "ALCOVE_NEW_MESSAGE");
    assert!(body["aps"].get("badge").is_none() && body["aps"].get("thread-id").is_none());
    let (kid, claims, jwt1) = verify_apns_jwt(&r1, &public_pem);
    assert_eq!(kid, "ABC123DEFG");
    assert_eq!(claims["iss"], "TEAM123456");
    assert_eq!(claims["iat"], t0);

    // Ten minutes later the same token is reused.
    now.fetch_add(10 * MIN, Ordering::SeqCst);
    sender.wake(&t).await.unwrap();
    let r2 = stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(verify_apns_jwt(&r2, &public_pem).2, jwt1, "JWT reused");

    // Past the 40-minute refresh point a new one is minted.
    now.fetch_add(31 * MIN, Ordering::SeqCst);
    sender.wake(&t).await.unwrap();
    let r3 = stub.next(Duration::from_secs(5)).await.unwrap();
    let (_, claims3, jwt3) = verify_apns_jwt(&r3, &public_pem);
    assert_ne!(jwt3, jwt1);
    assert_eq!(claims3["iat"], now.load(Ordering::SeqCst) / 1000);

    // APNs says the token expired: a new JWT, one retry, delivered.
    now.fetch_add(5_000, Ordering::SeqCst);
    stub.push_reply(reply(403, r#"{"reason":"ExpiredProviderToken"}"#));
    sender.wake(&t).await.unwrap();
    let refused = stub.next(Duration::from_secs(5)).await.unwrap();
    let retried = stub.next(Duration::from_secs(5)).await.unwrap();
    let (_, _, jwt_refused) = verify_apns_jwt(&refused, &public_pem);
    let (_, claims_new, jwt_new) = verify_apns_jwt(&retried, &public_pem);
    assert_eq!(jwt_refused, jwt3);
    assert_ne!(jwt_new, jwt3);
    assert_eq!(claims_new["iat"], now.load(Ordering::SeqCst) / 1000);

    // Refused twice: only one re-mint, then the error.
    stub.push_reply(reply(403, r#"{"reason":"InvalidProviderToken"}"#));
    stub.push_reply(reply(403, r#"{"reason":"InvalidProviderToken"}"#));
    assert!(matches!(sender.wake(&t).await, Err(PushError::Failed(_))));
    assert_eq!(stub.drain().len(), 2);
}

#[tokio::test]
async fn apns_gone_tokens_are_dropped_and_busy_answers_retried() {
    let mut stub = Stub::tls().await;
    let (key_pem, _) = apns_key();
    let now = Arc::new(AtomicU64::new(real_now_ms()));
    let sender = apns_sender(&stub, &key_pem, &now);
    let t = target(push_registration::Kind::Apns, &apns_device_token(9));

    for (status, reason) in [
        (410, "Unregistered"),
        (400, "BadDeviceToken"),
        (400, "DeviceTokenNotForTopic"),
    ] {
        stub.push_reply(reply(status, &format!(r#"{{"reason":"{reason}"}}"#)));
        assert!(
            matches!(sender.wake(&t).await, Err(PushError::Gone)),
            "{status} {reason} drops the token"
        );
    }
    // Another 400 is our problem, not the token's: kept.
    stub.push_reply(reply(400, r#"{"reason":"BadTopic"}"#));
    assert!(matches!(sender.wake(&t).await, Err(PushError::Failed(_))));
    assert_eq!(stub.drain().len(), 4, "none of those was retried");

    // 429 then 503, then accepted: retried with growing delays (20 + 40 ms).
    stub.push_reply(reply(429, r#"{"reason":"TooManyRequests"}"#));
    stub.push_reply(reply(503, r#"{"reason":"ServiceUnavailable"}"#));
    let started = Instant::now();
    sender.wake(&t).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert_eq!(stub.drain().len(), 3);

    // Retry-After is honoured.
    let mut r = reply(429, r#"{"reason":"TooManyRequests"}"#);
    r.headers.push(("retry-after", "1".into()));
    stub.push_reply(r);
    let started = Instant::now();
    sender.wake(&t).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(stub.drain().len(), 2);

    // A Retry-After longer than we hold a wake: give up, do not come early.
    let mut r = reply(429, r#"{"reason":"TooManyRequests"}"#);
    r.headers.push(("retry-after", "3600".into()));
    stub.push_reply(r);
    assert!(matches!(sender.wake(&t).await, Err(PushError::RateLimited)));
    assert_eq!(stub.drain().len(), 1);

    // Attempts are bounded (4).
    for _ in 0..6 {
        stub.push_reply(reply(500, r#"{"reason":"InternalServerError"}"#));
    }
    assert!(matches!(sender.wake(&t).await, Err(PushError::Failed(_))));
    assert_eq!(stub.drain().len(), 4);

    // A token that is not hex is never sent.
    let bad = target(push_registration::Kind::Apns, "../../etc");
    assert!(matches!(sender.wake(&bad).await, Err(PushError::Gone)));
    assert!(stub.next(Duration::from_millis(200)).await.is_none());
}

// ---------------------------------------------------------------- FCM

struct Fcm {
    stub: Stub,
    auth: Arc<FcmAuth>,
    gateway: PushGateway,
    now: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

/// FCM configured through the TOML file, as an operator would.
async fn fcm_fixture() -> Fcm {
    let (auth, private_pem) = fcm_auth();
    let stub = Stub::plain(Some(Arc::clone(&auth))).await;
    let dir = tempfile::tempdir().unwrap();
    // The file names Google's real token URI; the config overrides it.
    write_service_account(
        dir.path(),
        &auth,
        &private_pem,
        "https://oauth2.googleapis.com/token",
    );
    let toml = format!(
        r#"
[push.retry]
max_attempts = 4
base_delay_ms = 20
max_delay_ms = 500

[push.fcm]
service_account_file = "service-account.json"
endpoint = "{url}"
token_uri = "{url}/token"
"#,
        url = stub.url
    );
    let path = dir.path().join("relay.toml");
    std::fs::write(&path, toml).unwrap();
    let cfg = load_config(&path).unwrap();
    let now = Arc::new(AtomicU64::new(real_now_ms()));
    let gateway = push_gateway_from_config(&cfg.push, clock_at(&now)).unwrap();
    Fcm {
        stub,
        auth,
        gateway,
        now,
        _dir: dir,
    }
}

fn bearer(rec: &Recorded) -> String {
    rec.header("authorization").unwrap().to_owned()
}

#[tokio::test]
async fn fcm_oauth_token_is_cached_refreshed_and_sends_a_fixed_data_message() {
    let mut f = fcm_fixture().await;
    let token = fcm_device_token(1);
    let t = target(push_registration::Kind::Fcm, &token);

    f.gateway.wake(&t).await.unwrap();
    let r1 = f.stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(r1.path, "/v1/projects/alcove-test/messages:send");
    assert_eq!(bearer(&r1), "Bearer ya29.test-access-token-1");
    let expected = format!(
        r#"{{"message":{{"token":"{token}","data":{{"alcove":"wake"}},"android":{{"priority":"HIGH","ttl":"86400s"}}}}}}"#
    );
    assert_eq!(String::from_utf8(r1.body.clone()).unwrap(), expected);
    {
        let a = f.auth.assertions.lock().unwrap();
        assert_eq!(a.len(), 1);
        let c = &a[0];
        assert_eq!(c["iss"], f.auth.client_email);
        assert_eq!(c["aud"], format!("{}/token", f.stub.url));
        assert_eq!(c["iat"], f.now.load(Ordering::SeqCst) / 1000);
        assert!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap() <= 3600);
    }

    // Cached across sends.
    f.now.fetch_add(30 * MIN, Ordering::SeqCst);
    f.gateway.wake(&t).await.unwrap();
    let r2 = f.stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(bearer(&r2), bearer(&r1));
    assert_eq!(r2.body, r1.body, "same bytes every time");
    assert_eq!(f.auth.issued.load(Ordering::SeqCst), 1);

    // Shortly before expires_in (3599 s) a new token is fetched.
    f.now.fetch_add(28 * MIN, Ordering::SeqCst);
    f.gateway.wake(&t).await.unwrap();
    let r3 = f.stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(bearer(&r3), "Bearer ya29.test-access-token-2");

    // FCM stops accepting it (401): refreshed once and resent.
    f.auth.revoke_all();
    f.gateway.wake(&t).await.unwrap();
    let refused = f.stub.next(Duration::from_secs(5)).await.unwrap();
    let resent = f.stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(bearer(&refused), "Bearer ya29.test-access-token-2");
    assert_eq!(bearer(&resent), "Bearer ya29.test-access-token-3");
    assert_eq!(f.auth.issued.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn fcm_unregistered_is_dropped_and_quota_retried() {
    let mut f = fcm_fixture().await;
    let t = target(push_registration::Kind::Fcm, &fcm_device_token(2));

    // The token endpoint is busy at first: backed off and retried too.
    f.auth.token_failures.lock().unwrap().push_back(503);
    f.gateway.wake(&t).await.unwrap();
    assert_eq!(f.auth.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(f.stub.drain().len(), 1);
    // A refused grant is not retried.
    f.auth.token_failures.lock().unwrap().push_back(400);
    f.auth.revoke_all();
    assert!(matches!(
        f.gateway.wake(&t).await,
        Err(PushError::Failed(_))
    ));
    assert_eq!(f.auth.token_requests.load(Ordering::SeqCst), 3);
    f.gateway.wake(&t).await.unwrap(); // a fresh grant
    f.stub.drain();

    f.stub.push_reply(reply(404, r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#));
    assert!(matches!(f.gateway.wake(&t).await, Err(PushError::Gone)));
    f.stub.push_reply(reply(400, r#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}"#));
    assert!(matches!(f.gateway.wake(&t).await, Err(PushError::Gone)));
    // INVALID_ARGUMENT about something else keeps the token.
    f.stub.push_reply(reply(400, r#"{"error":{"code":400,"message":"Invalid value at 'message.android.ttl'","status":"INVALID_ARGUMENT"}}"#));
    assert!(matches!(
        f.gateway.wake(&t).await,
        Err(PushError::Failed(_))
    ));
    assert_eq!(f.stub.drain().len(), 3, "none retried");

    let mut quota = reply(
        429,
        r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#,
    );
    quota.headers.push(("retry-after", "0".into()));
    f.stub.push_reply(quota);
    f.stub.push_reply(reply(
        503,
        r#"{"error":{"code":503,"status":"UNAVAILABLE","message":"x"}}"#,
    ));
    f.stub.push_reply(reply(
        500,
        r#"{"error":{"code":500,"status":"INTERNAL","message":"x"}}"#,
    ));
    let started = Instant::now();
    f.gateway.wake(&t).await.unwrap();
    // Retry-After 0, then 40 ms (third attempt's backoff).
    assert!(started.elapsed() >= Duration::from_millis(40));
    assert_eq!(f.stub.drain().len(), 4);

    // No APNs in this configuration: an APNs target is unsupported.
    let apns = target(push_registration::Kind::Apns, &apns_device_token(1));
    assert!(matches!(
        f.gateway.wake(&apns).await,
        Err(PushError::Unsupported)
    ));
}

// ---------------------------------------------------------------- UnifiedPush

#[tokio::test]
async fn unified_push_ttl_no_redirects_gone_backoff_and_size_limit() {
    let mut stub = Stub::plain(None).await;
    let mut elsewhere = Stub::plain(None).await;
    let opts = UnifiedPushOptions {
        ttl: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        retry: fast_retry(),
        // The stub is on loopback, and this test counts on every attempt.
        loopback: true,
        budget: BudgetPolicy {
            per_target_burst: 100,
            ..BudgetPolicy::default()
        },
        resolver: None,
    };
    let sender = UnifiedPushSender::with_options(opts.clone()).unwrap();
    let endpoint = format!("{}/up/Zx81", stub.url);
    let t = target(push_registration::Kind::UnifiedPush, &endpoint);

    sender.wake(&t).await.unwrap();
    let r = stub.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.path, "/up/Zx81");
    assert_eq!(r.header("ttl"), Some("3600"));
    assert_eq!(r.header("urgency"), Some("high"));
    assert_eq!(r.body, WAKE_BODY);

    // A redirect is not followed.
    let mut moved = reply(302, "");
    moved
        .headers
        .push(("location", format!("{}/up/other", elsewhere.url)));
    stub.push_reply(moved);
    assert!(matches!(sender.wake(&t).await, Err(PushError::Failed(_))));
    assert!(elsewhere.next(Duration::from_millis(300)).await.is_none());

    for status in [404, 410] {
        stub.push_reply(reply(status, ""));
        assert!(matches!(sender.wake(&t).await, Err(PushError::Gone)));
    }
    stub.drain();

    let mut busy = reply(429, "");
    busy.headers.push(("retry-after", "0".into()));
    stub.push_reply(busy);
    stub.push_reply(reply(503, ""));
    sender.wake(&t).await.unwrap();
    assert_eq!(stub.drain().len(), 3);
    for _ in 0..6 {
        stub.push_reply(reply(429, ""));
    }
    assert!(matches!(sender.wake(&t).await, Err(PushError::RateLimited)));
    assert_eq!(stub.drain().len(), 4, "bounded attempts");

    // The specification's 4096-byte limit.
    stub.push_reply(reply(413, ""));
    assert!(matches!(sender.wake(&t).await, Err(PushError::TooLarge)));
    let big: &'static [u8] = Box::leak(vec![7u8; 4097].into_boxed_slice());
    assert!(matches!(
        UnifiedPushSender::with_body(big, opts.clone()),
        Err(ConfigError::Invalid(_))
    ));
    let max: &'static [u8] = Box::leak(vec![7u8; 4096].into_boxed_slice());
    stub.drain();
    UnifiedPushSender::with_body(max, opts)
        .unwrap()
        .wake(&t)
        .await
        .unwrap();
    assert_eq!(
        stub.next(Duration::from_secs(5)).await.unwrap().body.len(),
        4096
    );
}

// ---------------------------------------------------------------- the relay

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

struct Relay {
    base: String,
    db: std::path::PathBuf,
    http: reqwest::Client,
    _handle: RelayHandle,
}

impl Relay {
    async fn register(&self) -> Dev {
        let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
        let account = uuid_like();
        let secret = rnd(32);
        let req = RegisterRequest {
            invite_token: create_invite(&self.db, None).unwrap(),
            account_id: account.clone(),
            registration_id: 77,
            identity_key: device.identity_key(),
            auth_secret: secret.clone(),
            prekeys: Some(device.upload(0, 1)),
            ..Default::default()
        };
        let resp = self
            .http
            .post(format!("{}/v1/register", self.base))
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let r = RegisterResponse::decode(&resp.bytes().await.unwrap()[..]).unwrap();
        Dev {
            account,
            device: r.device_id,
            secret,
        }
    }

    async fn set_push(&self, dev: &Dev, kind: push_registration::Kind, endpoint: &str) -> u16 {
        let reg = PushRegistration {
            kind: kind as i32,
            endpoint: endpoint.to_owned(),
        };
        self.http
            .put(format!("{}/v1/push", self.base))
            .header("authorization", dev.auth())
            .body(reg.encode_to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn send(&self, from: &Dev, to: &Dev) {
        let req = SendRequest {
            guid: rnd(16),
            messages: vec![OutgoingMessage {
                destination_device: to.device,
                destination_registration_id: 77,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: rnd(100),
            }],
        };
        let resp = self
            .http
            .put(format!("{}/v1/messages/{}", self.base, to.account))
            .header("authorization", from.auth())
            .body(req.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
}

fn uuid_like() -> String {
    let b = rnd(16);
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_wakes_every_provider_with_identical_content_free_bytes() {
    let mut apns = Stub::tls().await;
    let (fcm_auth_state, private_pem) = fcm_auth();
    let mut fcm = Stub::plain(Some(Arc::clone(&fcm_auth_state))).await;
    let mut up = Stub::plain(None).await;
    let dir = tempfile::tempdir().unwrap();
    let (key_pem, _) = apns_key();
    std::fs::write(dir.path().join("AuthKey_ABC123DEFG.p8"), key_pem).unwrap();
    std::fs::write(dir.path().join("apns-ca.pem"), apns.ca_pem.clone().unwrap()).unwrap();
    write_service_account(
        dir.path(),
        &fcm_auth_state,
        &private_pem,
        &format!("{}/token", fcm.url),
    );
    let toml = format!(
        r#"
[relay]
bind = "127.0.0.1:0"
db = "relay.db"
push_coalesce_ms = 100

[push.retry]
max_attempts = 3
base_delay_ms = 10

[push.apns]
key_file = "AuthKey_ABC123DEFG.p8"
key_id = "ABC123DEFG"
team_id = "TEAM123456"
topic = "org.alcove.app"
endpoint = "{apns}"
ca_file = "apns-ca.pem"

[push.fcm]
service_account_file = "service-account.json"
endpoint = "{fcm}"
"#,
        apns = apns.url,
        fcm = fcm.url
    );
    std::fs::write(dir.path().join("relay.toml"), toml).unwrap();
    let mut file = load_config(&dir.path().join("relay.toml")).unwrap();
    let config = file.relay_config(None, None, None).unwrap();
    file.push.unified_push.loopback = config.loopback_test_mode();
    let db = config.storage.sqlite_path().unwrap().to_path_buf();
    let handle = start(config, push_sender_from_config(&file.push).unwrap())
        .await
        .unwrap();
    let relay = Relay {
        base: format!("http://{}", handle.local_addr()),
        db,
        http: reqwest::Client::new(),
        _handle: handle,
    };

    let alice = relay.register().await;
    let carol = relay.register().await;
    let on_apns = relay.register().await;
    let on_fcm = relay.register().await;
    let on_up = relay.register().await;
    let apns_token = apns_device_token(3);
    let fcm_token = fcm_device_token(3);
    use push_registration::Kind;
    // Malformed tokens are refused at registration.
    assert_eq!(relay.set_push(&on_apns, Kind::Apns, "zz").await, 400);
    assert_eq!(
        relay.set_push(&on_apns, Kind::Apns, &"g".repeat(64)).await,
        400
    );
    assert_eq!(relay.set_push(&on_fcm, Kind::Fcm, "a b").await, 400);
    assert_eq!(relay.set_push(&on_apns, Kind::Apns, &apns_token).await, 204);
    assert_eq!(relay.set_push(&on_fcm, Kind::Fcm, &fcm_token).await, 204);
    let up_url = format!("{}/up/Qm9v", up.url);
    assert_eq!(
        relay.set_push(&on_up, Kind::UnifiedPush, &up_url).await,
        204
    );

    // Different messages, different senders (so different conversations),
    // each after the coalescing window: one wake each.
    let mut seen: Vec<Vec<Recorded>> = vec![vec![], vec![], vec![]];
    for from in [&alice, &carol, &alice, &carol] {
        for (i, (to, stub)) in [
            (&on_apns, &mut apns),
            (&on_fcm, &mut fcm),
            (&on_up, &mut up),
        ]
        .into_iter()
        .enumerate()
        {
            relay.send(from, to).await;
            seen[i].push(stub.next(Duration::from_secs(5)).await.expect("wake"));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let ids: Vec<&str> = [&alice, &carol, &on_apns, &on_fcm, &on_up]
        .iter()
        .map(|d| d.account.as_str())
        .collect();
    for (i, recs) in seen.iter().enumerate() {
        for r in recs {
            assert_eq!(r.body, recs[0].body, "provider {i}: byte-identical bodies");
            assert_eq!(r.path, recs[0].path);
            let all = r.all_bytes();
            for id in &ids {
                assert!(
                    !all.windows(id.len()).any(|w| w == id.as_bytes()),
                    "provider {i}: an account id went to the provider"
                );
            }
        }
    }
    assert_eq!(seen[0][0].version, Version::HTTP_2);
    assert_eq!(seen[0][0].body, APNS_BODY);
    assert_eq!(seen[2][0].body, WAKE_BODY);

    // Gone tokens are dropped by the relay: no further pushes to them.
    apns.push_reply(reply(410, r#"{"reason":"Unregistered"}"#));
    fcm.push_reply(reply(404, r#"{"error":{"code":404,"status":"NOT_FOUND","message":"x","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#));
    relay.send(&alice, &on_apns).await;
    relay.send(&alice, &on_fcm).await;
    assert!(apns.next(Duration::from_secs(5)).await.is_some());
    assert!(fcm.next(Duration::from_secs(5)).await.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.send(&carol, &on_apns).await;
    relay.send(&carol, &on_fcm).await;
    assert!(apns.next(Duration::from_millis(700)).await.is_none());
    assert!(fcm.next(Duration::from_millis(700)).await.is_none());
}

#[test]
fn config_file_refuses_unknown_keys_and_bad_values() {
    let e = parse_config("[push.apns]\nkey_file = \"k.p8\"\nkeyid = \"X\"\n").unwrap_err();
    assert!(e.contains("keyid"), "{e}");
    let e = parse_config("[relay]\nbnd = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(e.contains("bnd"), "{e}");
    let e = parse_config("[push.retry]\nmax_attempts = \"x\"\n").unwrap_err();
    assert!(e.contains("max_attempts"), "{e}");
    // A missing key file names the file.
    let cfg = parse_config(
        "[push.apns]\nkey_file = \"/nonexistent/AuthKey.p8\"\nkey_id = \"K\"\nteam_id = \"T\"\ntopic = \"org.alcove.app\"\n",
    )
    .unwrap();
    let e = push_sender_from_config(&cfg.push).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/AuthKey.p8"), "{e}");
    // A key that is not an EC key is refused at start-up.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.p8"), "not a key").unwrap();
    std::fs::write(
        dir.path().join("r.toml"),
        "[push.apns]\nkey_file = \"k.p8\"\nkey_id = \"K\"\nteam_id = \"T\"\ntopic = \"org.alcove.app\"\nendpoint = \"sandbox\"\n",
    )
    .unwrap();
    let cfg = load_config(&dir.path().join("r.toml")).unwrap();
    assert!(matches!(
        push_sender_from_config(&cfg.push),
        Err(ConfigError::Invalid(_))
    ));
    // Plain HTTP provider endpoints only on loopback.
    let cfg = parse_config(
        "[push.fcm]\nservice_account_file = \"/x.json\"\nendpoint = \"http://fcm.example\"\n",
    )
    .unwrap();
    assert!(push_sender_from_config(&cfg.push).is_err());
    // TLS settings go in pairs.
    let cfg = parse_config("[relay]\ntls_cert = \"c.pem\"\n").unwrap();
    assert!(cfg.relay_config(None, None, None).is_err());
    // Flags win over the file.
    let cfg = parse_config("[relay]\nbind = \"127.0.0.1:9\"\nmessage_ttl_days = 7\n").unwrap();
    let rc = cfg
        .relay_config(Some("127.0.0.1:10".parse().unwrap()), None, None)
        .unwrap();
    assert_eq!(rc.bind.port(), 10);
    assert_eq!(rc.message_ttl, Duration::from_secs(7 * 86400));
    assert_eq!(rc.sealed_sender, Some(SealedSenderConfig::default()));
    // [sealed_sender] maps onto the relay's sealed-sender settings.
    let cfg = parse_config("[sealed_sender]\nenabled = false\n").unwrap();
    assert_eq!(
        cfg.relay_config(None, None, None).unwrap().sealed_sender,
        None
    );
    let cfg = parse_config("[sealed_sender]\nkey_dir = \"/srv/ss\"\ncert_ttl_hours = 6\n").unwrap();
    assert_eq!(
        cfg.relay_config(None, None, None).unwrap().sealed_sender,
        Some(SealedSenderConfig {
            key_dir: Some("/srv/ss".into()),
            cert_ttl: Duration::from_secs(6 * 3600),
        })
    );
}
