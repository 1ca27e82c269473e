//! Local stand-ins for the push providers, speaking their documented APIs
//! on 127.0.0.1: APNs (HTTP/2 over TLS with a self-signed certificate made
//! here), FCM HTTP v1 (OAuth2 token endpoint that verifies the RS256
//! assertion, and the send endpoint) and a UnifiedPush server. Each records
//! every request and answers from a script (200 when the script is empty).
//! Shared by relay/tests/push.rs and cli/tests/push_e2e.rs.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub version: Version,
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every byte of the request we could leak through: path, headers, body.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = self.path.as_bytes().to_vec();
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_str().as_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.to_owned(),
    }
}

/// The FCM OAuth2 side: verifies assertions, issues and revokes tokens.
pub struct FcmAuth {
    pub public_pem: String,
    pub client_email: String,
    pub token_uri: Mutex<String>,
    pub expires_in: AtomicU64,
    pub issued: AtomicU64,
    pub valid: Mutex<HashSet<String>>,
    /// Claims of every accepted assertion.
    pub assertions: Mutex<Vec<serde_json::Value>>,
    /// Statuses to answer the next token requests with (then normal).
    pub token_failures: Mutex<VecDeque<u16>>,
    pub token_requests: AtomicU64,
}

impl FcmAuth {
    /// Forget every issued token: the next send gets 401.
    pub fn revoke_all(&self) {
        self.valid.lock().unwrap().clear();
    }
}

#[derive(Clone)]
struct State {
    tx: mpsc::UnboundedSender<Recorded>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    fcm: Option<Arc<FcmAuth>>,
}

pub struct Stub {
    pub url: String,
    /// The server's certificate (PEM) to trust, for TLS stubs.
    pub ca_pem: Option<String>,
    rx: mpsc::UnboundedReceiver<Recorded>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    pub fcm: Option<Arc<FcmAuth>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// Plain HTTP (UnifiedPush, FCM).
    pub async fn plain(fcm: Option<Arc<FcmAuth>>) -> Stub {
        let (state, rx) = Self::state(fcm.clone());
        let script = Arc::clone(&state.script);
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        if let Some(f) = &fcm {
            *f.token_uri.lock().unwrap() = format!("{url}/token");
        }
        Stub {
            url,
            ca_pem: None,
            rx,
            script,
            fcm,
            task,
        }
    }

    /// HTTPS with ALPN h2 (and http/1.1, so the test can tell which one the
    /// client really spoke), as APNs.
    pub async fn tls() -> Stub {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let ca_pem = ck.cert.pem();
        let cert = CertificateDer::from(ck.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));

        let (state, rx) = Self::state(None);
        let script = Arc::clone(&state.script);
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Stub {
            url,
            ca_pem: Some(ca_pem),
            rx,
            script,
            fcm: None,
            task,
        }
    }

    fn state(fcm: Option<Arc<FcmAuth>>) -> (State, mpsc::UnboundedReceiver<Recorded>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            State {
                tx,
                script: Arc::new(Mutex::new(VecDeque::new())),
                fcm,
            },
            rx,
        )
    }

    /// Answer the next request with `r` (queued in order).
    pub fn push_reply(&self, r: Reply) {
        self.script.lock().unwrap().push_back(r);
    }

    pub async fn next(&mut self, within: Duration) -> Option<Recorded> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Everything received so far.
    pub fn drain(&mut self) -> Vec<Recorded> {
        let mut out = vec![];
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn handle(
    axum::extract::State(st): axum::extract::State<State>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let rec = Recorded {
        version: parts.version,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    };
    if let Some(fcm) = &st.fcm {
        if rec.path == "/token" {
            return fcm_token(fcm, &rec);
        }
        let bearer = rec
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        if !fcm.valid.lock().unwrap().contains(&bearer) {
            let _ = st.tx.send(rec);
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
            )
                .into_response();
        }
    }
    let _ = st.tx.send(rec);
    let r = st.script.lock().unwrap().pop_front();
    let r = r.unwrap_or_else(|| reply(200, r#"{"name":"projects/p/messages/1"}"#));
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

fn fcm_token(fcm: &FcmAuth, rec: &Recorded) -> Response {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    fcm.token_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = fcm.token_failures.lock().unwrap().pop_front() {
        return (StatusCode::from_u16(status).unwrap(), "{}").into_response();
    }
    let form = String::from_utf8_lossy(&rec.body).to_string();
    let mut grant = None;
    let mut assertion = None;
    for kv in form.split('&') {
        match kv.split_once('=') {
            Some(("grant_type", v)) => grant = Some(v.to_owned()),
            Some(("assertion", v)) => assertion = Some(v.to_owned()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#,
        )
            .into_response();
    }
    let token_uri = fcm.token_uri.lock().unwrap().clone();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[token_uri]);
    v.set_issuer(std::slice::from_ref(&fcm.client_email));
    // The relay's clock may be moved by the test: expiry is checked by the
    // test on the recorded claims instead.
    v.validate_exp = false;
    v.set_required_spec_claims(&["iss", "aud", "exp"]);
    let key = DecodingKey::from_rsa_pem(fcm.public_pem.as_bytes()).unwrap();
    let Ok(data) =
        jsonwebtoken::decode::<serde_json::Value>(assertion.as_deref().unwrap_or(""), &key, &v)
    else {
        return (StatusCode::BAD_REQUEST, r#"{"error":"invalid_grant"}"#).into_response();
    };
    if data.claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return (StatusCode::BAD_REQUEST, r#"{"error":"invalid_scope"}"#).into_response();
    }
    fcm.assertions.lock().unwrap().push(data.claims);
    let n = fcm.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.test-access-token-{n}");
    fcm.valid.lock().unwrap().insert(token.clone());
    let body = serde_json::json!({
        "access_token": token,
        "expires_in": fcm.expires_in.load(Ordering::SeqCst),
        "token_type": "Bearer",
    });
    (StatusCode::OK, body.to_string()).into_response()
}

/// An APNs signing key as Apple hands it out (`AuthKey_XXXX.p8`: PKCS#8
/// PEM, P-256) and its public key (SPKI PEM).
pub fn apns_key() -> (String, String) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    (kp.serialize_pem(), kp.public_key_pem())
}

/// A service-account JSON file for `stub`'s token endpoint; returns its
/// path and the FcmAuth the stub verifies against.
pub fn fcm_auth() -> (Arc<FcmAuth>, String) {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let private_pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let auth = Arc::new(FcmAuth {
        public_pem,
        client_email: "alcove-relay@alcove-test.iam.gserviceaccount.com".into(),
        token_uri: Mutex::new(String::new()),
        expires_in: AtomicU64::new(3599),
        issued: AtomicU64::new(0),
        valid: Mutex::new(HashSet::new()),
        assertions: Mutex::new(vec![]),
        token_failures: Mutex::new(VecDeque::new()),
        token_requests: AtomicU64::new(0),
    });
    (auth, private_pem)
}

/// Writes a Google service-account file pointing at `token_uri`.
pub fn write_service_account(
    dir: &Path,
    auth: &FcmAuth,
    private_pem: &str,
    token_uri: &str,
) -> PathBuf {
    let path = dir.join("service-account.json");
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "alcove-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private_pem,
        "client_email": auth.client_email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// A fake 64-hex-digit APNs device token.
pub fn apns_device_token(n: u8) -> String {
    hex::encode([n; 32])
}

/// A fake FCM registration token (same shape as the real ones).
pub fn fcm_device_token(n: u8) -> String {
    format!("d{n:03}Xy7ZQ:APA91b{}", "Hk3_-x".repeat(24))
}
