//! Shared set-up for end-to-end tests: a real relay on a loopback socket,
//! real SQLCipher files, a local UnifiedPush endpoint.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alcove_core::proto::relay::{push_registration, PushRegistration};
use alcove_core::{Client, DbKey};
use tokio::sync::mpsc;

pub struct Relay {
    pub handle: Option<alcove_relay::RelayHandle>,
    pub db: PathBuf,
    pub addr: SocketAddr,
}

/// These suites flood on purpose (a thousand-message backlog, a drained
/// prekey supply) to test sync, not the rate limits (abuse_net tests those).
fn unlimited(mut c: alcove_relay::RelayConfig) -> alcove_relay::RelayConfig {
    c.rate_limits = alcove_relay::rate_limits::RateLimitConfig::off();
    c
}

impl Relay {
    pub async fn start(dir: &Path) -> Relay {
        let db = dir.join("relay.db");
        Self::start_at(db, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_at(db: PathBuf, bind: SocketAddr) -> Relay {
        let handle = alcove_relay::start(
            unlimited(alcove_relay::RelayConfig::new(bind, db.clone())),
            alcove_relay::default_push_sender().unwrap(),
        )
        .await
        .unwrap();
        let addr = handle.local_addr();
        Relay {
            handle: Some(handle),
            db,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn invite(&self) -> String {
        alcove_relay::create_invite(&self.db, None).unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Restart on the same address and database file.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = None;
        for _ in 0..50 {
            match alcove_relay::start(
                unlimited(alcove_relay::RelayConfig::new(self.addr, self.db.clone())),
                alcove_relay::default_push_sender().unwrap(),
            )
            .await
            {
                Ok(h) => {
                    self.handle = Some(h);
                    return;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("relay did not restart: {last:?}");
    }
}

pub struct Device {
    pub client: Client,
    pub path: PathBuf,
    pub key_file: PathBuf,
    pub key: DbKey,
}

pub async fn enroll(dir: &Path, name: &str, relay: &Relay) -> Device {
    enroll_at(dir, name, &relay.url(), &relay.invite()).await
}

/// Enrols `name` (database and hex key file under `dir`) by `invite` at the
/// relay at `url`.
pub async fn enroll_at(dir: &Path, name: &str, url: &str, invite: &str) -> Device {
    let path = dir.join(format!("{name}.db"));
    let key_file = dir.join(format!("{name}.key"));
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    std::fs::write(&key_file, hex::encode(bytes)).unwrap();
    let key = DbKey::new(bytes);
    let client = Client::enroll(&path, &key, url, invite).await.unwrap();
    Device {
        client,
        path,
        key_file,
        key,
    }
}

/// The `alcove` binary under test.
pub const ALCOVE_BIN: &str = env!("CARGO_BIN_EXE_alcove");

/// An `alcove relay` process, killed on drop. Every line it logs is kept
/// (and its pipe drained, so it never blocks).
pub struct RelayProcess {
    child: std::process::Child,
    pub url: String,
    pub db: PathBuf,
    pub log: Arc<Mutex<Vec<u8>>>,
}

impl RelayProcess {
    /// Runs `alcove relay <args>` (which must bind 127.0.0.1:0 and use the
    /// database `db`) with `ALCOVE_LOG=<log_level>`, and waits for the
    /// address it listens on.
    pub fn spawn<I, A>(args: I, db: PathBuf, log_level: &str) -> RelayProcess
    where
        I: IntoIterator<Item = A>,
        A: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = std::process::Command::new(ALCOVE_BIN);
        cmd.arg("relay").args(args);
        Self::spawn_command(cmd, db, log_level)
    }

    /// Runs `cmd`, which must end up running `alcove relay` (e.g. through a
    /// shell that sets limits first), as [`RelayProcess::spawn`] does.
    pub fn spawn_command(
        mut cmd: std::process::Command,
        db: PathBuf,
        log_level: &str,
    ) -> RelayProcess {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .env("ALCOVE_LOG", log_level)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = |log: &Mutex<Vec<u8>>, line: &str| {
            let mut l = log.lock().unwrap();
            l.extend(line.as_bytes());
            l.push(b'\n');
        };
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("relay exited before listening")
                .unwrap();
            keep(&log, &line);
            if let Some(rest) = line.strip_prefix("alcove relay listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep(&sink, &line);
            }
        });
        RelayProcess {
            child,
            url: format!("http://{addr}"),
            db,
            log,
        }
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the relay logged so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Enrols `name` by a fresh invite from this relay's database.
    pub async fn enroll(&self, dir: &Path, name: &str) -> Device {
        let invite = alcove_relay::create_invite(&self.db, None).unwrap();
        enroll_at(dir, name, &self.url, &invite).await
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local UnifiedPush endpoint that records every wake-up body.
pub struct PushEndpoint {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl PushEndpoint {
    pub async fn start() -> PushEndpoint {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/up/{token}",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body.to_vec());
                    axum::http::StatusCode::CREATED
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushEndpoint {
            url: format!("http://{addr}/up/device-token"),
            rx,
            task,
        }
    }

    pub fn registration(&self) -> PushRegistration {
        PushRegistration {
            kind: push_registration::Kind::UnifiedPush as i32,
            endpoint: self.url.clone(),
        }
    }

    pub async fn next(&mut self, within: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for PushEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Every stored text in `device`'s conversation with `peer`.
pub fn texts(device: &Device, peer: &str) -> Vec<String> {
    let account = device.client.account().unwrap();
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = account.messages(peer, before, 500).unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        out.extend(page.into_iter().filter(|m| !m.outgoing).map(|m| m.body));
    }
    out.reverse();
    out
}

/// All bytes of a SQLite database and its side files.
pub fn file_bytes(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How many times `needle` occurs in `hay` (overlaps counted).
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}
