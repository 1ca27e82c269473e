//! Opening the per-account SQLCipher database.
//!
//! The 32-byte raw key comes from the shell (Android Keystore / iOS
//! Keychain) and is handed to SQLCipher as a raw key, so no KDF runs on open.
//! A small sidecar file (`<db>.keycheck`) holds a random nonce and
//! HMAC-SHA256(key, nonce): it tells a wrong key apart from a corrupt file
//! before SQLCipher touches the database, and reveals nothing about the key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rusqlite::{Connection, OpenFlags};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::schema;

/// The raw 256-bit database key. Zeroed when dropped.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl DbKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key (for tests, tools and shells that have no key yet).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let key = Self::new(bytes);
        bytes.zeroize();
        key
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidArgument("database key must be 32 bytes".into()))?;
        Ok(Self::new(arr))
    }

    fn check_tag(&self, nonce: &[u8]) -> Result<Vec<u8>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..])
            .map_err(|_| Error::Internal("hmac key".into()))?;
        mac.update(b"alcove-db-keycheck-v1");
        mac.update(nonce);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(..)")
    }
}

const KEYCHECK_VERSION: u8 = 1;

fn keycheck_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".keycheck");
    PathBuf::from(p)
}

/// Verifies `key` against the sidecar; creates the sidecar for a new DB.
fn check_key(db: &Path, key: &DbKey, db_exists: bool) -> Result<()> {
    let path = keycheck_path(db);
    match fs::read(&path) {
        Ok(bytes) => {
            if bytes.len() != 1 + 16 + 32 || bytes[0] != KEYCHECK_VERSION {
                return Err(Error::Corrupt);
            }
            let tag = key.check_tag(&bytes[1..17])?;
            if subtle_eq(&tag, &bytes[17..]) {
                Ok(())
            } else {
                Err(Error::WrongKey)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if db_exists {
                // A database without its key check: we cannot tell wrong key
                // from corruption up front, so let SQLCipher decide below.
                return Ok(());
            }
            use rand::RngCore;
            let mut nonce = [0u8; 16];
            rand::rng().fill_bytes(&mut nonce);
            let mut out = vec![KEYCHECK_VERSION];
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&key.check_tag(&nonce)?);
            let tmp = path.with_extension("keycheck.tmp");
            let mut f = fs::File::create(&tmp).map_err(io_err)?;
            f.write_all(&out).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
            fs::rename(&tmp, &path).map_err(io_err)?;
            Ok(())
        }
        Err(e) => Err(io_err(e)),
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn io_err(e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        Error::StorageFull
    } else {
        Error::Storage(e.kind().to_string())
    }
}

/// Storage flavour: SQLCipher (always, on devices) or plain SQLite (only
/// for the benchmark that measures what encryption costs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    SqlCipher,
    /// Never for real data: only the SQLCipher-vs-SQLite benchmark uses it.
    PlainForBenchmarks,
}

/// Opens (creating if absent) the database at `path` with `key`, applies
/// pragmas and migrations.
pub fn open(path: &Path, key: &DbKey, cipher: Cipher) -> Result<Connection> {
    open_at(path, key, cipher, schema::CURRENT_VERSION)
}

pub(crate) fn open_at(
    path: &Path,
    key: &DbKey,
    cipher: Cipher,
    version: u32,
) -> Result<Connection> {
    let exists = path.exists();
    if cipher == Cipher::SqlCipher {
        check_key(path, key, exists)?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if cipher == Cipher::SqlCipher {
        let mut stmt = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(&key.0[..])));
        let r = conn.execute_batch(&stmt);
        stmt.zeroize();
        r?;
    }
    // The first read authenticates page 1: a wrong key (when no key check
    // exists) or a damaged header fails here, before anything is written.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(e) => {
            return Err(match Error::from(e) {
                Error::Corrupt if exists => Error::Corrupt,
                other => other,
            })
        }
    }
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    schema::migrate(&conn, version)?;
    Ok(conn)
}

/// Runs SQLCipher's page-HMAC check over every page (and SQLite's own
/// integrity check): finds tampering anywhere in the file.
pub fn verify_integrity(conn: &Connection, cipher: Cipher) -> Result<()> {
    if cipher == Cipher::SqlCipher {
        let mut stmt = conn.prepare("PRAGMA cipher_integrity_check")?;
        let problems = stmt.query_map([], |r| r.get::<_, String>(0))?.count();
        if problems > 0 {
            return Err(Error::Corrupt);
        }
    }
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(Error::Corrupt);
    }
    Ok(())
}
