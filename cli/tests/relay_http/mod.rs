//! Talking to a real relay over raw HTTP, as a device without the core
//! would: the relay process from a config file, accounts registered with
//! real (signed) keys, and the small helpers the abuse suites share.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use alcove_proto::relay::{
    push_registration::Kind, ErrorBody, OutgoingMessage, PushRegistration, RegisterRequest,
    RegisterResponse, SendRequest,
};
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use base64::Engine;

use crate::common::{RelayProcess, ALCOVE_BIN};

/// Writes `relay.toml` (plain HTTP on 127.0.0.1:0, `relay.db`) with
/// `extra` appended.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\nbind = \"127.0.0.1:0\"\ndb = \"relay.db\"\npush_coalesce_ms = 100\n\n{extra}"
        ),
    )
    .unwrap();
    config
}

pub fn start(dir: &Path, extra: &str) -> RelayProcess {
    let config = write_config(dir, extra);
    RelayProcess::spawn(
        ALCOVE_BIN,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.join("relay.db"),
        "info",
    )
}
pub fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

pub fn rnd(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    b
}

pub struct Dev {
    pub account: String,
    pub device: u32,
    pub secret: Vec<u8>,
}

impl Dev {
    pub fn auth(&self) -> String {
        let s = format!(
            "{}.{}:{}",
            self.account,
            self.device,
            hex::encode(&self.secret)
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

/// Registers a fresh account (one device) at `base`, whose database is `db`.
pub async fn register(http: &reqwest::Client, base: &str, db: &Path) -> Dev {
    register_with_keys(http, base, db, 0).await
}

/// `register`, uploading `one_time` one-time keys of each kind.
pub async fn register_with_keys(
    http: &reqwest::Client,
    base: &str,
    db: &Path,
    one_time: u32,
) -> Dev {
    let invite = alcove_relay::create_invite(db, None).unwrap();
    register_by(http, base, &invite, one_time).await.0
}

/// Registers a fresh account by the admin's invite for `role`.
pub async fn register_as(
    http: &reqwest::Client,
    base: &str,
    db: &Path,
    role: alcove_relay::Role,
) -> Dev {
    let invite = alcove_relay::create_role_invite(db, role, None).unwrap();
    let (dev, resp) = register_by(http, base, &invite, 0).await;
    assert_eq!(
        resp.role().as_str_name(),
        format!("ROLE_{}", role.as_str().to_uppercase())
    );
    dev
}

/// Registers a fresh account (one device, `one_time` one-time keys of
/// each kind) by `invite`; its device and the relay's answer.
pub async fn register_by(
    http: &reqwest::Client,
    base: &str,
    invite: &str,
    one_time: u32,
) -> (Dev, RegisterResponse) {
    let device = alcove_relay::key_checks::testing::DeviceKeys::generate();
    let account = {
        let b = rnd(16);
        format!(
            "{}-{}-{}-{}-{}",
            hex::encode(&b[0..4]),
            hex::encode(&b[4..6]),
            hex::encode(&b[6..8]),
            hex::encode(&b[8..10]),
            hex::encode(&b[10..16])
        )
    };
    let secret = rnd(32);
    let req = RegisterRequest {
        invite_token: invite.to_owned(),
        account_id: account.clone(),
        registration_id: 77,
        identity_key: device.identity_key(),
        auth_secret: secret.clone(),
        prekeys: Some(device.upload(one_time, 1)),
        ..Default::default()
    };
    let resp = http
        .post(format!("{base}/v1/register"))
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = RegisterResponse::decode(&resp.bytes().await.unwrap()[..]).unwrap();
    (
        Dev {
            account,
            device: r.device_id,
            secret,
        },
        r,
    )
}

pub async fn set_push(
    http: &reqwest::Client,
    base: &str,
    dev: &Dev,
    endpoint: &str,
) -> (u16, Vec<u8>) {
    let reg = PushRegistration {
        kind: Kind::UnifiedPush as i32,
        endpoint: endpoint.to_owned(),
    };
    let resp = http
        .put(format!("{base}/v1/push"))
        .header("authorization", dev.auth())
        .body(reg.encode_to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

pub async fn send_to(http: &reqwest::Client, base: &str, from: &Dev, to: &Dev) {
    let req = SendRequest {
        guid: rnd(16),
        messages: vec![OutgoingMessage {
            destination_device: to.device,
            destination_registration_id: 77,
            r#type: envelope::Type::SignalMessage as i32,
            ciphertext: rnd(100),
        }],
    };
    let resp = http
        .put(format!("{base}/v1/messages/{}", to.account))
        .header("authorization", from.auth())
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// A client whose connections come from `src` (a loopback address).
pub fn client_from(src: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(src))
        .build()
        .unwrap()
}

/// The answer is `status` with a typed `ErrorBody` naming `code`.
pub async fn typed(resp: reqwest::Response, status: u16, code: &str) -> ErrorBody {
    assert_eq!(resp.status(), status, "{code}");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-protobuf"),
        "{code}"
    );
    let body = ErrorBody::decode(&resp.bytes().await.unwrap()[..]).expect("an ErrorBody");
    assert_eq!(body.code, code);
    assert!(!body.message.is_empty());
    body
}
