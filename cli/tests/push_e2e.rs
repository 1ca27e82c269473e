//! End to end for each push path: the `alcove relay` process configured by
//! its TOML file (`--config`) with APNs, FCM or UnifiedPush pointed at a
//! local server that speaks the provider's API; two real clients enrolled
//! by invite; the recipient registers its token and goes quiet; the sender
//! texts; the provider receives a content-free wake; the recipient syncs
//! and the text is there.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use alcove_core::proto::relay::{push_registration::Kind, PushRegistration};
use alcove_testkit::push_providers::*;
use common::{contains, soon, texts, EnrollOn, RelayProcess, ALCOVE_BIN as ALCOVE};

/// Starts `alcove relay --config <dir>/relay.toml` (the file's [relay]
/// section binds 127.0.0.1:0) and reads the address it listens on.
fn start_relay(dir: &Path, push_section: &str) -> RelayProcess {
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\nbind = \"127.0.0.1:0\"\ndb = \"relay.db\"\npush_coalesce_ms = 200\n\n\
             [push.retry]\nmax_attempts = 3\nbase_delay_ms = 50\n\n{push_section}"
        ),
    )
    .unwrap();
    RelayProcess::spawn(
        ALCOVE,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.join("relay.db"),
        "warn",
    )
}

/// The path every test takes once the relay and the provider stand-in run.
async fn wake_then_sync(
    relay: &RelayProcess,
    dir: &Path,
    stub: &mut Stub,
    reg: PushRegistration,
) -> Recorded {
    let therapist = relay.enroll(dir, "therapist").await;
    let client = relay.enroll(dir, "client").await;
    client.client.register_push(reg).await.unwrap();
    let tkey = therapist
        .client
        .with_account(|a| Ok(a.identity_key()))
        .unwrap();
    client
        .client
        .with_account(|a| a.pin_identity(therapist.client.account_id(), &tkey))
        .unwrap();

    // The client is offline (not syncing); the therapist texts.
    let text = "Can we move Thursday's session to 4pm?";
    assert!(
        therapist
            .client
            .send_text(
                therapist
                    .client
                    .conversation_with(client.client.account_id())
                    .unwrap(),
                text
            )
            .await
            .unwrap()
            .sent
    );
    let wake = stub.next(Duration::from_secs(10)).await.expect("wake-up");
    let all = wake.all_bytes();
    for secret in [
        text.as_bytes(),
        client.client.account_id().as_bytes(),
        therapist.client.account_id().as_bytes(),
    ] {
        assert!(!contains(&all, secret), "the provider learns nothing");
    }

    let report = client.client.sync(soon(10)).await.unwrap();
    assert_eq!(report.received, 1);
    assert_eq!(texts(&client, therapist.client.account_id()), vec![text]);
    wake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_wake_then_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut apns = Stub::tls().await;
    let (key_pem, _) = apns_key();
    std::fs::write(dir.path().join("AuthKey_ABC123DEFG.p8"), key_pem).unwrap();
    std::fs::write(dir.path().join("test-ca.pem"), apns.ca_pem.clone().unwrap()).unwrap();
    let relay = start_relay(
        dir.path(),
        &format!(
            "[push.apns]\nkey_file = \"AuthKey_ABC123DEFG.p8\"\nkey_id = \"ABC123DEFG\"\n\
             team_id = \"TEAM123456\"\ntopic = \"org.alcove.app\"\nendpoint = \"{}\"\n\
             ca_file = \"test-ca.pem\"\n",
            apns.url
        ),
    );
    let token = apns_device_token(0xa7);
    let wake = wake_then_sync(
        &relay,
        dir.path(),
        &mut apns,
        PushRegistration {
            kind: Kind::Apns as i32,
            endpoint: token.clone(),
        },
    )
    .await;
    assert_eq!(wake.version, axum::http::Version::HTTP_2);
    assert_eq!(wake.path, format!("/3/device/{token}"));
    assert_eq!(wake.body, alcove_relay::APNS_BODY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_wake_then_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, private_pem) = fcm_auth();
    let mut fcm = Stub::plain(Some(Arc::clone(&auth))).await;
    write_service_account(
        dir.path(),
        &auth,
        &private_pem,
        &format!("{}/token", fcm.url),
    );
    let relay = start_relay(
        dir.path(),
        &format!(
            "[push.fcm]\nservice_account_file = \"service-account.json\"\nendpoint = \"{}\"\n",
            fcm.url
        ),
    );
    let token = fcm_device_token(7);
    let wake = wake_then_sync(
        &relay,
        dir.path(),
        &mut fcm,
        PushRegistration {
            kind: Kind::Fcm as i32,
            endpoint: token.clone(),
        },
    )
    .await;
    assert_eq!(wake.path, "/v1/projects/alcove-test/messages:send");
    let body: serde_json::Value = serde_json::from_slice(&wake.body).unwrap();
    assert_eq!(body["message"]["token"], token);
    assert_eq!(body["message"]["data"]["alcove"], "wake");
    assert!(body["message"].get("notification").is_none());
    assert_eq!(auth.assertions.lock().unwrap().len(), 1, "one OAuth2 grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unified_push_wake_then_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Stub::plain(None).await;
    let relay = start_relay(dir.path(), "[push.unified_push]\ntimeout_secs = 5\n");
    let endpoint = format!("{}/up/bc81", up.url);
    let wake = wake_then_sync(
        &relay,
        dir.path(),
        &mut up,
        PushRegistration {
            kind: Kind::UnifiedPush as i32,
            endpoint,
        },
    )
    .await;
    assert_eq!(wake.path, "/up/bc81");
    assert_eq!(wake.body, alcove_relay::WAKE_BODY);
}

#[test]
fn relay_refuses_a_config_with_an_unknown_key_or_a_bad_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |toml: &str| {
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(ALCOVE)
            .args(["relay", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("[relay]\nbind = \"127.0.0.1:0\"\n[push.apns]\nkey_path = \"k.p8\"\n");
    assert!(err.contains("key_path"), "{err}");
    std::fs::write(
        dir.path().join("k.p8"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = run(
        "[relay]\nbind = \"127.0.0.1:0\"\n[push.apns]\nkey_file = \"k.p8\"\nkey_id = \"K\"\n\
         team_id = \"T\"\ntopic = \"org.alcove.app\"\n",
    );
    assert!(err.contains("APNs key"), "{err}");
}
