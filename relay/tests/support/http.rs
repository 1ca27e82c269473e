//! A small client of the relay's HTTP API for tests that run several
//! relay processes: register, send, fetch, ack, release, push, bundles.

use alcove_proto::relay::*;
use alcove_proto::wire::envelope;
use alcove_proto::Message;
use alcove_relay::key_checks::testing::DeviceKeys;

use super::{basic_auth, rnd};

#[derive(Clone, Debug)]
pub struct Dev {
    pub account: String,
    pub device: u32,
    pub registration_id: u32,
    pub secret: Vec<u8>,
}

impl Dev {
    pub fn auth(&self) -> String {
        basic_auth(&self.account, self.device, &self.secret)
    }
}

/// One relay's base URL.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&Dev>,
        reader: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Vec<u8>) {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-alcove-reader", reader);
        if let Some(d) = auth {
            r = r.header("authorization", d.auth());
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    /// Registers a fresh account by `invite` with `keys_n` one-time keys
    /// of each kind.
    pub async fn register(&self, invite: &str, keys_n: u32) -> Dev {
        let account = hex::encode(rnd(8));
        let secret = rnd(32);
        let k = DeviceKeys::generate();
        let req = RegisterRequest {
            invite_token: invite.to_owned(),
            account_id: account.clone(),
            registration_id: 77,
            identity_key: k.identity_key(),
            auth_secret: secret.clone(),
            prekeys: Some(k.upload(keys_n, 1)),
            delivery_key: vec![],
        };
        let (s, b) = self
            .call(
                reqwest::Method::POST,
                "/v1/register",
                None,
                "r",
                Some(req.encode_to_vec()),
            )
            .await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        let resp = RegisterResponse::decode(&b[..]).unwrap();
        Dev {
            account,
            device: resp.device_id,
            registration_id: 77,
            secret,
        }
    }

    /// A signed send of one message from `from` to `to`'s device.
    pub async fn send(&self, from: &Dev, to: &Dev, guid: &[u8]) -> u16 {
        let req = SendRequest {
            guid: guid.to_vec(),
            messages: vec![OutgoingMessage {
                destination_device: to.device,
                destination_registration_id: to.registration_id,
                r#type: envelope::Type::SignalMessage as i32,
                ciphertext: rnd(100),
            }],
        };
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/messages/{}", to.account),
            Some(from),
            "r",
            Some(req.encode_to_vec()),
        )
        .await
        .0
    }

    /// A page as `reader`: (status, page).
    pub async fn fetch(&self, dev: &Dev, reader: &str, limit: u32) -> (u16, Option<EnvelopePage>) {
        let (s, b) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/messages?limit={limit}"),
                Some(dev),
                reader,
                None,
            )
            .await;
        (s, (s == 200).then(|| EnvelopePage::decode(&b[..]).unwrap()))
    }

    pub async fn ack(&self, dev: &Dev, reader: &str, guids: Vec<Vec<u8>>) -> u16 {
        self.call(
            reqwest::Method::POST,
            "/v1/messages/ack",
            Some(dev),
            reader,
            Some(AckRequest { guids }.encode_to_vec()),
        )
        .await
        .0
    }

    pub async fn release(&self, dev: &Dev, reader: &str) -> u16 {
        self.call(
            reqwest::Method::DELETE,
            "/v1/messages/reader",
            Some(dev),
            reader,
            None,
        )
        .await
        .0
    }

    pub async fn set_push(&self, dev: &Dev, kind: push_registration::Kind, endpoint: &str) -> u16 {
        let reg = PushRegistration {
            kind: kind as i32,
            endpoint: endpoint.to_owned(),
        };
        self.call(
            reqwest::Method::PUT,
            "/v1/push",
            Some(dev),
            "r",
            Some(reg.encode_to_vec()),
        )
        .await
        .0
    }

    /// `by` fetches `of`'s bundles: (status, bundles).
    pub async fn bundles(&self, by: &Dev, of: &Dev) -> (u16, Option<PreKeyBundles>) {
        let (s, b) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/keys/{}", of.account),
                Some(by),
                "r",
                None,
            )
            .await;
        (
            s,
            (s == 200).then(|| PreKeyBundles::decode(&b[..]).unwrap()),
        )
    }
}
