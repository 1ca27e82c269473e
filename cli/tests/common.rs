//! Shared set-up for end-to-end tests: a real relay on a loopback socket,
//! real SQLCipher files, a local UnifiedPush endpoint.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alcove_core::{Client, DbKey};
pub use alcove_testkit::relay::{Relay, RelayProcess};

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

/// Enrolling on a relay process (core-dependent, so not in the kit).
pub(crate) trait EnrollOn {
    /// Enrols `name` by a fresh invite from this relay's database.
    async fn enroll(&self, dir: &Path, name: &str) -> Device;
}

impl EnrollOn for RelayProcess {
    async fn enroll(&self, dir: &Path, name: &str) -> Device {
        enroll_at(dir, name, &self.url, &self.invite()).await
    }
}

/// Sends `from` → `to` the texts "m0" … "m{n-1}", in order, online.
#[allow(dead_code)]
pub async fn send_numbered(from: &Device, to: &Device, n: usize) {
    let conv = from
        .client
        .conversation_with(to.client.account_id())
        .unwrap();
    for i in 0..n {
        from.client.send_text(conv, &format!("m{i}")).await.unwrap();
    }
}

pub fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Every stored text in `device`'s conversation with `peer`.
pub fn texts(device: &Device, peer: &str) -> Vec<String> {
    let Some(with_peer) = device
        .client
        .with_account(|a| a.find_conversation_with(peer))
        .unwrap()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = device
            .client
            .with_account(|a| a.messages(with_peer, before, 500))
            .unwrap();
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
