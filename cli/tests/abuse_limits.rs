//! The relay's quotas and rules under attack, against a real `alcove
//! relay` process over loopback sockets with bounded loops:
//! - rate limits: a stranger's flood of signed mail stopped while a
//!   contact still gets through, prekey draining capped per target, failed
//!   logins and registrations capped per address; every refusal a typed
//!   `ErrorBody` with a retry-after;
//! - uploaded keys: junk and foreign-signed keys refused at registration;
//! - files 0600 under `umask 000`, no lifetime counter; a typed
//!   `ErrorBody` on every error status; invites that expire;
//! - device authority: who may revoke whom, the last device kept, a revoked
//!   device told, its mail gone at once, a devices-per-account cap;
//! - mailbox quotas: strangers fill only half a mailbox;
//! - invites minted by therapists' devices: strangers, wrong secrets,
//!   clients and bots refused, junk bodies typed, the open-invite quota
//!   and the per-account rate holding under a flood, nothing stored by a
//!   refusal, a used token refused, a role never taken from the request.
mod common;
mod relay_http;

use std::path::Path;
use std::time::Duration;

use alcove_proto::relay::{
    ErrorBody, MintInviteRequest, MintInviteResponse, OutgoingMessage, RegisterRequest,
    RegisterResponse, SendRequest,
};
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::Role;
use base64::Engine;
use common::{contains, RelayProcess, ALCOVE_BIN};
use relay_http::*;

// ------------------------------------------------- quotas and rate limits

/// A 429 with a typed body naming `code`, a retry-after in the body and
/// in the header.
async fn assert_rate_limited(resp: reqwest::Response, code: &str) {
    assert_eq!(resp.status(), 429);
    let header: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    let body = ErrorBody::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(body.code, code);
    assert!(body.retry_after_ms > 0);
    assert!(header >= 1 && header * 1000 >= body.retry_after_ms);
}

async fn send_raw(http: &reqwest::Client, base: &str, from: &Dev, to: &Dev) -> reqwest::Response {
    let req = SendRequest {
        guid: rnd(16),
        messages: vec![OutgoingMessage {
            destination_device: to.device,
            destination_registration_id: 77,
            r#type: envelope::Type::SignalMessage as i32,
            ciphertext: rnd(1000),
        }],
    };
    http.put(format!("{base}/v1/messages/{}", to.account))
        .header("authorization", from.auth())
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap()
}

async fn queued(http: &reqwest::Client, base: &str, dev: &Dev) -> usize {
    let resp = http
        .get(format!("{base}/v1/messages?limit=100"))
        .header("authorization", dev.auth())
        .header("x-alcove-reader", "counter")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = alcove_proto::relay::EnvelopePage::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    page.envelopes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_flood_is_stopped_while_a_contact_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[rate_limits]\nsigned_sends_per_pair = { count = 5, window_secs = 3600 }\n\
         sends_per_account = { count = 1000, window_secs = 60 }\n",
    );
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let victim = register(&http, &base, &relay.db).await;
    let stranger = register(&http, &base, &relay.db).await;
    let contact = register(&http, &base, &relay.db).await;
    for _ in 0..5 {
        assert!(send_raw(&http, &base, &stranger, &victim)
            .await
            .status()
            .is_success());
    }
    assert_rate_limited(
        send_raw(&http, &base, &stranger, &victim).await,
        "rate_limited_unsolicited",
    )
    .await;
    // The flood goes on, bounded: every further send is refused.
    let mut refused = 0;
    for _ in 0..300 {
        if send_raw(&http, &base, &stranger, &victim).await.status() == 429 {
            refused += 1;
        }
    }
    assert_eq!(refused, 300);
    // The victim's real contact still gets through.
    assert!(send_raw(&http, &base, &contact, &victim)
        .await
        .status()
        .is_success());
    assert_eq!(queued(&http, &base, &victim).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_victims_one_time_prekeys_cannot_be_drained() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[rate_limits]\nbundle_fetches_per_target = { count = 5, window_secs = 3600 }\n",
    );
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let victim = register_with_keys(&http, &base, &relay.db, 20).await;
    let mut strangers = Vec::new();
    for _ in 0..8 {
        strangers.push(register(&http, &base, &relay.db).await);
    }
    let fetch = |who: &Dev| {
        http.get(format!("{base}/v1/keys/{}", victim.account))
            .header("authorization", who.auth())
            .send()
    };
    let mut ok = 0;
    for (i, s) in strangers.iter().enumerate() {
        let resp = fetch(s).await.unwrap();
        if i < 5 {
            assert_eq!(resp.status(), 200);
            ok += 1;
        } else {
            assert_rate_limited(resp, "rate_limited_bundles").await;
        }
    }
    // Hundreds of attempts more, none served.
    for _ in 0..200 {
        assert_eq!(fetch(&strangers[0]).await.unwrap().status(), 429);
    }
    let count = http
        .get(format!("{base}/v1/keys/count"))
        .header("authorization", victim.auth())
        .send()
        .await
        .unwrap();
    let count =
        alcove_proto::relay::PreKeyCount::decode(&count.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(ok, 5);
    assert_eq!(
        count.one_time_prekeys, 15,
        "only the allowed fetches used keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_block_an_address_not_the_device_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[rate_limits]\nfailed_auth_per_address = { count = 5, window_secs = 3600 }\n",
    );
    let base = relay.url.clone();
    let honest = client_from(loopback(1));
    let attacker = client_from(loopback(3));
    let victim = register(&honest, &base, &relay.db).await;
    let guess = Dev {
        account: victim.account.clone(),
        device: victim.device,
        secret: rnd(32),
    };
    let count = |c: &reqwest::Client, d: &Dev| {
        c.get(format!("{base}/v1/keys/count"))
            .header("authorization", d.auth())
            .send()
    };
    for _ in 0..6 {
        assert_eq!(count(&attacker, &guess).await.unwrap().status(), 401);
    }
    // Now refused before any check, even with the right secret.
    assert_rate_limited(
        count(&attacker, &victim).await.unwrap(),
        "rate_limited_auth",
    )
    .await;
    for _ in 0..500 {
        assert_eq!(count(&attacker, &guess).await.unwrap().status(), 429);
    }
    // The device itself, from its own address, is served.
    assert_eq!(count(&honest, &victim).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_capped_per_address_and_junk_keys_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[rate_limits]\nregistrations_per_address = { count = 3, window_secs = 3600 }\n",
    );
    let base = relay.url.clone();
    let scripted = client_from(loopback(4));
    // A junk identity key is refused as a key, not stored to fail later.
    let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let invite = alcove_relay::create_invite(&relay.db, None).unwrap();
    let mut junk = RegisterRequest {
        invite_token: invite.clone(),
        account_id: "junk-identity".into(),
        registration_id: 77,
        identity_key: rnd(33),
        auth_secret: rnd(32),
        prekeys: Some(device.upload(2, 1)),
        ..Default::default()
    };
    junk.identity_key[0] = 0x42;
    let resp = scripted
        .post(format!("{base}/v1/register"))
        .body(junk.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = ErrorBody::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(body.code, "invalid_identity_key");
    // Keys signed by another identity are refused too.
    let mut foreign = junk.clone();
    foreign.identity_key = alcove_relay::key_checks::testing::DeviceKeys::generate().identity_key();
    let resp = scripted
        .post(format!("{base}/v1/register"))
        .body(foreign.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Two attempts used; one more is allowed, then 429 even with a good
    // invite, which stays unused for the practice's real client.
    let _ = register(&scripted, &base, &relay.db).await;
    let mut good = junk.clone();
    good.identity_key = device.identity_key();
    good.account_id = "good-account".into();
    let resp = scripted
        .post(format!("{base}/v1/register"))
        .body(good.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_rate_limited(resp, "rate_limited_registrations").await;
    let resp = client_from(loopback(1))
        .post(format!("{base}/v1/register"))
        .body(good.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the invite was not spent by the refusal"
    );
}

// ------------------------------------------------ files, errors, invites

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_owner_only_under_umask_000_and_keep_no_lifetime_counter() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" relay --config \"$1\"")
        .arg(ALCOVE_BIN)
        .arg(&config);
    let relay = RelayProcess::spawn_command(cmd, dir.path().join("relay.db"), "info");
    let http = reqwest::Client::new();
    let a = register(&http, &relay.url, &relay.db).await;
    let b = register(&http, &relay.url, &relay.db).await;
    for _ in 0..3 {
        send_to(&http, &relay.url, &a, &b).await;
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("relay.db{suffix}"));
        assert!(p.exists(), "{suffix}");
        assert_eq!(mode_of(&p), 0o600, "relay.db{suffix}");
    }
    // No AUTOINCREMENT: no lifetime count of envelopes anywhere.
    let conn = rusqlite::Connection::open_with_flags(
        dir.path().join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let autoincrement: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%AUTOINCREMENT%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(autoincrement, 0);
    let counters: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_sequence", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(counters, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_answers_a_typed_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path(), "");
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let a = register(&http, &base, &relay.db).await;
    let b = register(&http, &base, &relay.db).await;
    typed(
        http.get(format!("{base}/no/such/path"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    typed(
        http.delete(format!("{base}/v1/keys/count"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    typed(
        http.delete(format!("{base}/v1/devices/not-a-number"))
            .header("authorization", a.auth())
            .send()
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    typed(
        http.get(format!("{base}/v1/messages?limit=lots"))
            .header("authorization", a.auth())
            .header("x-alcove-reader", "r")
            .send()
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    // On its own connection: the relay closes one it refused a body on,
    // and the shared pool could pick that closed connection up next.
    typed(
        reqwest::Client::new()
            .put(format!("{base}/v1/messages/{}", b.account))
            .header("authorization", a.auth())
            .body(vec![0u8; 300 * 1024])
            .send()
            .await
            .unwrap(),
        413,
        "too_large",
    )
    .await;
    typed(
        http.post(format!("{base}/v1/register"))
            .body(vec![0xff; 64])
            .send()
            .await
            .unwrap(),
        400,
        "malformed",
    )
    .await;
    // Thousands of envelopes in one send: told what is wrong, not a bare 409.
    let many = SendRequest {
        guid: rnd(16),
        messages: (0..3000)
            .map(|i| OutgoingMessage {
                destination_device: i,
                destination_registration_id: 77,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: vec![1],
            })
            .collect(),
    };
    let body = typed(
        http.put(format!("{base}/v1/messages/{}", b.account))
            .header("authorization", a.auth())
            .body(many.encode_to_vec())
            .send()
            .await
            .unwrap(),
        400,
        "too_many_messages",
    )
    .await;
    assert!(body.message.contains("3000"), "{}", body.message);
    let twice = SendRequest {
        guid: rnd(16),
        messages: vec![
            OutgoingMessage {
                destination_device: b.device,
                destination_registration_id: 77,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: vec![1],
            };
            2
        ],
    };
    typed(
        http.put(format!("{base}/v1/messages/{}", b.account))
            .header("authorization", a.auth())
            .body(twice.encode_to_vec())
            .send()
            .await
            .unwrap(),
        400,
        "duplicate_device",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_expire_by_default_and_the_command_says_when() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let out = std::process::Command::new(ALCOVE_BIN)
        .args(["relay", "invite", "--count", "2", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let tokens: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(tokens.len(), 2, "tokens alone on stdout");
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("expires") && note.contains("(14 days)"),
        "{note}"
    );
    // A TTL out of range is refused by the command.
    let bad = std::process::Command::new(ALCOVE_BIN)
        .args(["relay", "invite", "--ttl-days", "0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // An invite past its expiry is refused like a used one.
    let expired = alcove_relay::create_invite(&db, Some(1)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let relay = start(dir.path(), "");
    let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let req = RegisterRequest {
        invite_token: expired,
        account_id: "late-client".into(),
        registration_id: 77,
        identity_key: device.identity_key(),
        auth_secret: rnd(32),
        prekeys: Some(device.upload(0, 1)),
        ..Default::default()
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/register", relay.url))
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    typed(resp, 403, "invalid_invite").await;
    let mut fresh = req.clone();
    fresh.invite_token = tokens[0].clone();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/register", relay.url))
        .body(fresh.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_command_enrols_therapists_and_bots_and_refuses_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    let invite = |args: &[&str]| {
        std::process::Command::new(ALCOVE_BIN)
            .args(["relay", "invite", "--db"])
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let out = invite(&["--role", "therapist", "--expires-in-hours", "5"]);
    assert!(out.status.success());
    let therapist_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("therapist invites") && note.contains("(5 hours)"),
        "{note}"
    );
    let out = invite(&["--role", "bot"]);
    assert!(out.status.success());
    let bot_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    for bad in [
        &["--role", "admin"][..],
        &["--role", ""],
        &["--expires-in-hours", "0"],
        &["--expires-in-hours", "8761"],
        &["--ttl-days", "3", "--expires-in-hours", "5"],
    ] {
        assert!(!invite(bad).status.success(), "{bad:?}");
    }
    let relay = start(dir.path(), "");
    let http = reqwest::Client::new();
    let (therapist, r) = register_by(&http, &relay.url, &therapist_token, 0).await;
    assert_eq!(r.role(), alcove_proto::relay::Role::Therapist);
    let (_, r) = register_by(&http, &relay.url, &bot_token, 0).await;
    assert_eq!(r.role(), alcove_proto::relay::Role::Bot);
    let resp = mint(&http, &relay.url, Some(therapist.auth()), vec![]).await;
    assert_eq!(resp.status(), 200);

    // set-role: a client account made a therapist may mint; made a client
    // again it may not; an unknown account and a bad role are refused, and
    // the command never echoes the account id.
    let client_token = String::from_utf8(invite(&[]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (client, _) = register_by(&http, &relay.url, &client_token, 0).await;
    let mint_status = |d: &Dev| {
        let (http, url, auth) = (http.clone(), relay.url.clone(), d.auth());
        async move { mint(&http, &url, Some(auth), vec![]).await.status() }
    };
    assert_eq!(mint_status(&client).await, 403);
    let set_role = |account: &str, role: &str| {
        std::process::Command::new(ALCOVE_BIN)
            .args(["relay", "set-role", "--db"])
            .arg(&db)
            .args([account, "--role", role])
            .output()
            .unwrap()
    };
    let out = set_role(&client.account, "therapist");
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&client.account));
    assert_eq!(mint_status(&client).await, 200);
    assert!(set_role(&client.account, "client").status.success());
    assert_eq!(mint_status(&client).await, 403);
    assert!(!set_role("no-such-account", "therapist").status.success());
    assert!(!set_role(&client.account, "admin").status.success());
}

// ------------------------------------------------------- device authority

/// Adds a device to `primary`'s account; returns it.
async fn add_device(http: &reqwest::Client, base: &str, primary: &Dev) -> Dev {
    let keys = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let secret = rnd(32);
    let req = RegisterRequest {
        account_id: primary.account.clone(),
        registration_id: 77,
        identity_key: keys.identity_key(),
        auth_secret: secret.clone(),
        prekeys: Some(keys.upload(0, 1)),
        ..Default::default()
    };
    let resp = http
        .post(format!("{base}/v1/devices"))
        .header("authorization", primary.auth())
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = RegisterResponse::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    Dev {
        account: primary.account.clone(),
        device: r.device_id,
        secret,
    }
}

async fn revoke(http: &reqwest::Client, base: &str, by: &Dev, device: u32) -> reqwest::Response {
    http.delete(format!("{base}/v1/devices/{device}"))
        .header("authorization", by.auth())
        .send()
        .await
        .unwrap()
}

fn relay_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        all.extend(std::fs::read(dir.join(format!("relay.db{suffix}"))).unwrap_or_default());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_primary_revokes_others_never_the_last_and_a_revoked_device_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path(), "");
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let primary = register(&http, &base, &relay.db).await;
    let second = add_device(&http, &base, &primary).await;
    let third = add_device(&http, &base, &primary).await;
    assert_eq!((primary.device, second.device, third.device), (1, 2, 3));

    // A secondary device revokes neither another secondary nor the primary.
    typed(revoke(&http, &base, &second, 3).await, 403, "not_primary").await;
    typed(
        revoke(&http, &base, &second, 1).await,
        409,
        "primary_device",
    )
    .await;

    // Mail queued for every device, with a marker per device.
    let sender = register(&http, &base, &relay.db).await;
    let marker = |d: u32| format!("ciphertext-for-device-{d}-{}", hex::encode(rnd(8))).into_bytes();
    let markers: Vec<Vec<u8>> = (1..=3).map(marker).collect();
    let req = SendRequest {
        guid: rnd(16),
        messages: (1..=3u32)
            .map(|d| OutgoingMessage {
                destination_device: d,
                destination_registration_id: 77,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: markers[d as usize - 1].clone(),
            })
            .collect(),
    };
    let resp = http
        .put(format!("{base}/v1/messages/{}", primary.account))
        .header("authorization", sender.auth())
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(contains(&relay_files(dir.path()), &markers[1]));

    // The primary revokes device 2: its queued ciphertext is gone at once,
    // WAL included; the others' mail stays.
    assert_eq!(revoke(&http, &base, &primary, 2).await.status(), 204);
    let files = relay_files(dir.path());
    assert!(
        !contains(&files, &markers[1]),
        "revoked device's mail deleted"
    );
    assert!(queued(&http, &base, &primary).await == 1);

    // The revoked device, with its own secret, is told so (distinct from a
    // wrong password, which stays a plain 401).
    let count = |d: &Dev| {
        http.get(format!("{base}/v1/keys/count"))
            .header("authorization", d.auth())
            .send()
    };
    typed(count(&second).await.unwrap(), 403, "device_revoked").await;
    let guess = Dev {
        account: second.account.clone(),
        device: 2,
        secret: rnd(32),
    };
    typed(count(&guess).await.unwrap(), 401, "unauthorized").await;

    // A device may revoke itself; the last one never goes.
    assert_eq!(revoke(&http, &base, &third, 3).await.status(), 204);
    typed(revoke(&http, &base, &primary, 1).await, 409, "last_device").await;
    assert_eq!(count(&primary).await.unwrap().status(), 200);
    // Revoked ids are never handed out again.
    let fourth = add_device(&http, &base, &primary).await;
    assert_eq!(fourth.device, 4);
    // At most `max_devices` (5) at once: 2 held, 3 more fit, the next not.
    for _ in 0..3 {
        add_device(&http, &base, &primary).await;
    }
    let keys = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let req = RegisterRequest {
        account_id: primary.account.clone(),
        registration_id: 77,
        identity_key: keys.identity_key(),
        auth_secret: rnd(32),
        prekeys: Some(keys.upload(0, 1)),
        ..Default::default()
    };
    let resp = http
        .post(format!("{base}/v1/devices"))
        .header("authorization", primary.auth())
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    typed(resp, 409, "too_many_devices").await;
}

// ------------------------------------------------------- mailbox quotas

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_fill_only_half_a_mailbox_so_contacts_still_get_through() {
    let dir = tempfile::tempdir().unwrap();
    // The byte cap is what binds: 100 envelopes, 40,000 bytes.
    let config = write_config(
        dir.path(),
        "[rate_limits]\nsigned_sends_per_pair = { count = 1000, window_secs = 60 }\n",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "push_coalesce_ms = 100\n",
        "push_coalesce_ms = 100\nmax_queue = 100\nmax_queue_bytes = 40000\n",
    );
    std::fs::write(&config, text).unwrap();
    let relay = RelayProcess::spawn(
        ALCOVE_BIN,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.path().join("relay.db"),
        "info",
    );
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    // The victim shares a delivery key with its contact (in real use,
    // inside end-to-end encrypted content).
    let keys = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let delivery_key = rnd(32);
    let secret = rnd(32);
    let req = RegisterRequest {
        invite_token: alcove_relay::create_invite(&relay.db, None).unwrap(),
        account_id: "victim-account".into(),
        registration_id: 77,
        identity_key: keys.identity_key(),
        auth_secret: secret.clone(),
        prekeys: Some(keys.upload(0, 1)),
        delivery_key: delivery_key.clone(),
    };
    let resp = http
        .post(format!("{base}/v1/register"))
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let victim = Dev {
        account: "victim-account".into(),
        device: 1,
        secret,
    };
    let stranger = register(&http, &base, &relay.db).await;
    let message = |kind: envelope::Type| SendRequest {
        guid: rnd(16),
        messages: vec![OutgoingMessage {
            destination_device: 1,
            destination_registration_id: 77,
            r#type: kind as i32,
            ciphertext: rnd(6000),
        }],
    };
    // A stranger's signed mail: three of 6 KB fit in half of 40,000 bytes.
    let mut accepted = 0;
    for _ in 0..20 {
        let resp = http
            .put(format!("{base}/v1/messages/{}", victim.account))
            .header("authorization", stranger.auth())
            .body(message(envelope::Type::SignalMessage).encode_to_vec())
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            204 | 200 => accepted += 1,
            507 => {
                let body = ErrorBody::decode(&resp.bytes().await.unwrap()[..]).unwrap();
                assert_eq!(body.code, "mailbox_full");
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(accepted, 3);
    // The contact's sealed mail still gets through, up to the whole cap.
    let mut sealed = 0;
    for _ in 0..10 {
        let resp = http
            .put(format!("{base}/v1/messages/{}/sealed", victim.account))
            .header(
                "x-alcove-delivery-key",
                base64::engine::general_purpose::STANDARD.encode(&delivery_key),
            )
            .body(message(envelope::Type::SealedSender).encode_to_vec())
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            sealed += 1;
        } else {
            assert_eq!(resp.status(), 507);
        }
    }
    assert_eq!(
        sealed, 3,
        "18 KB signed + 3 × 6 KB sealed fit in 40,000 bytes"
    );
    assert_eq!(queued(&http, &base, &victim).await, 6);
}

// ------------------------------------------- invites minted by therapists

async fn mint(
    http: &reqwest::Client,
    base: &str,
    auth: Option<String>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = http.post(format!("{base}/v1/invites")).body(body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.send().await.unwrap()
}

fn hours(h: u32) -> Vec<u8> {
    MintInviteRequest {
        expires_in_hours: h,
    }
    .encode_to_vec()
}

/// Invites in the relay's database that a device minted (open or not).
fn minted_rows(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM invites WHERE minted_by IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_therapist_mints_within_its_quota_and_refusals_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[invites]\nmax_open_per_account = 3\n\n[rate_limits]\n\
         invite_mints_per_account = { count = 1000, window_secs = 60 }\n",
    );
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let therapist = register_as(&http, &base, &relay.db, Role::Therapist).await;
    let bot = register_as(&http, &base, &relay.db, Role::Bot).await;
    let client = register(&http, &base, &relay.db).await;

    // A stranger, a wrong secret, a made-up account, a mangled header.
    typed(mint(&http, &base, None, vec![]).await, 401, "unauthorized").await;
    let wrong = Dev {
        account: therapist.account.clone(),
        device: therapist.device,
        secret: rnd(32),
    };
    typed(
        mint(&http, &base, Some(wrong.auth()), vec![]).await,
        401,
        "unauthorized",
    )
    .await;
    let nobody = Dev {
        account: "no-such-account".into(),
        device: 1,
        secret: rnd(32),
    };
    typed(
        mint(&http, &base, Some(nobody.auth()), vec![]).await,
        401,
        "unauthorized",
    )
    .await;
    typed(
        mint(&http, &base, Some("Basic !!!not base64".into()), vec![]).await,
        401,
        "unauthorized",
    )
    .await;
    // Enrolled, but not a therapist.
    for who in [&client, &bot] {
        typed(
            mint(&http, &base, Some(who.auth()), vec![]).await,
            403,
            "not_permitted",
        )
        .await;
    }
    // A therapist's junk: not protobuf, too long, a body over the relay's
    // limit, an expiry out of range.
    let auth = || Some(therapist.auth());
    typed(
        mint(&http, &base, auth(), b"\xff\xff\xff\xff".to_vec()).await,
        400,
        "malformed",
    )
    .await;
    let mut padded = hours(1);
    padded.extend([0x7a, 0x40]);
    padded.extend(rnd(64));
    typed(mint(&http, &base, auth(), padded).await, 400, "malformed").await;
    // On a connection of its own: the relay closes it after a 413
    // without reading the rest of the body.
    typed(
        mint(&reqwest::Client::new(), &base, auth(), rnd(300 * 1024)).await,
        413,
        "too_large",
    )
    .await;
    for h in [30 * 24 + 1, u32::MAX] {
        typed(
            mint(&http, &base, auth(), hours(h)).await,
            400,
            "invalid_expiry",
        )
        .await;
    }
    assert_eq!(minted_rows(&relay.db), 0, "no refusal stored an invite");

    // Three open invites; then the quota holds, however often asked.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let resp = mint(&http, &base, auth(), hours(24)).await;
        assert_eq!(resp.status(), 200);
        let m = MintInviteResponse::decode(&resp.bytes().await.unwrap()[..]).unwrap();
        tokens.push(m.token);
    }
    let refused = typed(
        mint(&http, &base, auth(), hours(24)).await,
        429,
        "invite_quota",
    )
    .await;
    assert_eq!(refused.retry_after_ms, 0, "no time the relay could promise");
    for _ in 0..100 {
        assert_eq!(mint(&http, &base, auth(), vec![]).await.status(), 429);
    }
    assert_eq!(minted_rows(&relay.db), 3, "nothing more stored");

    // A used invite frees a place; its token is then spent.
    let (enrolled, resp) = register_by(&http, &base, &tokens[0], 0).await;
    assert_eq!(resp.role(), alcove_proto::relay::Role::Client);
    assert_eq!(mint(&http, &base, auth(), vec![]).await.status(), 200);
    typed(
        mint(&http, &base, auth(), vec![]).await,
        429,
        "invite_quota",
    )
    .await;
    let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let mut replay = RegisterRequest {
        invite_token: tokens[0].clone(),
        account_id: "replayed-token".into(),
        registration_id: 77,
        identity_key: device.identity_key(),
        auth_secret: rnd(32),
        prekeys: Some(device.upload(0, 1)),
        ..Default::default()
    };
    let register_raw = |body: Vec<u8>| http.post(format!("{base}/v1/register")).body(body).send();
    typed(
        register_raw(replay.encode_to_vec()).await.unwrap(),
        403,
        "invalid_invite",
    )
    .await;
    // A client invite with a role smuggled in as unknown fields (8 and
    // 255, each ROLE_THERAPIST) enrols a client all the same.
    replay.invite_token = tokens[1].clone();
    replay.account_id = "would-be-therapist".into();
    let mut smuggled = replay.encode_to_vec();
    smuggled.extend([0x40, 0x02, 0xf8, 0x0f, 0x02]);
    let resp = register_raw(smuggled).await.unwrap();
    assert_eq!(resp.status(), 200);
    let r = RegisterResponse::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(r.role(), alcove_proto::relay::Role::Client);
    let smuggler = Dev {
        account: replay.account_id.clone(),
        device: r.device_id,
        secret: replay.auth_secret.clone(),
    };
    for who in [&smuggler, &enrolled] {
        typed(
            mint(&http, &base, Some(who.auth()), vec![]).await,
            403,
            "not_permitted",
        )
        .await;
    }
    // The database no longer ties the therapist to the two accounts its
    // invites enrolled: a used invite forgets who minted it.
    let conn = rusqlite::Connection::open_with_flags(
        &relay.db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let named: i64 = conn
        .query_row(
            "SELECT count(*) FROM invites WHERE used = 1 AND minted_by IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(named, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_mint_requests_is_bounded_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(
        dir.path(),
        "[rate_limits]\ninvite_mints_per_account = { count = 5, window_secs = 3600 }\n",
    );
    let http = reqwest::Client::new();
    let base = relay.url.clone();
    let flooder = register_as(&http, &base, &relay.db, Role::Therapist).await;
    let colleague = register_as(&http, &base, &relay.db, Role::Therapist).await;
    let client = register(&http, &base, &relay.db).await;
    for _ in 0..5 {
        assert_eq!(
            mint(&http, &base, Some(flooder.auth()), vec![])
                .await
                .status(),
            200
        );
    }
    assert_rate_limited(
        mint(&http, &base, Some(flooder.auth()), vec![]).await,
        "rate_limited_invites",
    )
    .await;
    // A thousand more at once, from 8 tasks: none minted.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, base, auth) = (http.clone(), base.clone(), flooder.auth());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..125 {
                    statuses.push(
                        mint(&http, &base, Some(auth.clone()), vec![])
                            .await
                            .status(),
                    );
                }
                statuses
            })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        refused += t
            .await
            .unwrap()
            .iter()
            .filter(|s| s.as_u16() == 429)
            .count();
    }
    assert_eq!(refused, 1000);
    assert_eq!(minted_rows(&relay.db), 5);
    // A client's attempts are bounded too: refused, then rate limited.
    for _ in 0..5 {
        typed(
            mint(&http, &base, Some(client.auth()), vec![]).await,
            403,
            "not_permitted",
        )
        .await;
    }
    assert_rate_limited(
        mint(&http, &base, Some(client.auth()), vec![]).await,
        "rate_limited_invites",
    )
    .await;
    // Another therapist is untouched.
    assert_eq!(
        mint(&http, &base, Some(colleague.auth()), vec![])
            .await
            .status(),
        200
    );
    assert_eq!(minted_rows(&relay.db), 6);
}
