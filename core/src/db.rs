//! Opening the per-account SQLCipher database.
//!
//! The 32-byte raw key comes from the shell (Android Keystore / iOS
//! Keychain) and is handed to SQLCipher as a raw key, so no KDF runs on open.
//! A small sidecar file (`<db>.keycheck`) holds a random nonce and
//! HMAC-SHA256(key, nonce): it tells a wrong key apart from a corrupt file
//! before SQLCipher touches the database, and reveals nothing about the key.
//!
//! A database shared by an iOS app and its Notification Service Extension
//! ([`StorageLayout::SharedContainer`]) keeps its first 32 bytes in plain
//! text (`cipher_plaintext_header_size = 32`), so iOS sees a SQLite file in
//! WAL mode and does not kill a suspended process holding its lock
//! (0xdead10cc). SQLCipher's salt normally lives in those bytes, so Alcove
//! keeps it in the sidecar instead (version 2), authenticated by its tag.

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

    /// Version 2 also authenticates the flags and the salt, so a changed
    /// layout or salt is never used silently.
    fn check_tag_v2(&self, flags: u8, salt: &[u8], nonce: &[u8]) -> Result<Vec<u8>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0[..])
            .map_err(|_| Error::Internal("hmac key".into()))?;
        mac.update(b"alcove-db-keycheck-v2");
        mac.update(&[flags]);
        mac.update(salt);
        mac.update(nonce);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(..)")
    }
}

/// How the database file is laid out on disk; chosen when it is created and
/// remembered by the key-check sidecar, so opening needs no option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StorageLayout {
    /// Every byte encrypted; SQLCipher keeps its salt in the first 16 bytes.
    #[default]
    Standard,
    /// For a file in an iOS app-group container shared with the NSE: the
    /// first 32 bytes are SQLite's plain header, the salt is in the sidecar.
    SharedContainer,
}

const KEYCHECK_V1: u8 = 1;
const KEYCHECK_V2: u8 = 2;
const V1_LEN: usize = 1 + 16 + 32;
const V2_LEN: usize = 1 + 1 + 16 + 16 + 32;
/// Sidecar v2 flag: the database has a 32-byte plaintext header.
const FLAG_PLAINTEXT_HEADER: u8 = 0x01;
const PLAINTEXT_HEADER_SIZE: usize = 32;
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn keycheck_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".keycheck");
    PathBuf::from(p)
}

/// What the sidecar says about how to key the database: `Some(salt)` for a
/// plaintext-header database.
type Salt = Option<[u8; 16]>;

/// Verifies `key` against the sidecar; creates the sidecar (in `layout`)
/// for a new DB. Returns the salt SQLCipher must be given, if any.
fn check_key(db: &Path, key: &DbKey, db_exists: bool, layout: StorageLayout) -> Result<Salt> {
    let path = keycheck_path(db);
    match fs::read(&path) {
        Ok(bytes) => parse_keycheck(&bytes, key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if db_exists {
                // A plaintext-header database without its sidecar has lost
                // its salt: nothing can decrypt it.
                let mut head = [0u8; 16];
                if let Ok(mut f) = fs::File::open(db) {
                    use std::io::Read;
                    if f.read_exact(&mut head).is_ok() && &head == SQLITE_MAGIC {
                        return Err(Error::Corrupt);
                    }
                }
                // A database without its key check: we cannot tell wrong key
                // from corruption up front, so let SQLCipher decide below.
                return Ok(None);
            }
            use rand::RngCore;
            let mut nonce = [0u8; 16];
            rand::rng().fill_bytes(&mut nonce);
            let (out, salt) = match layout {
                // Version 1 stays the format for standard databases, so
                // older builds can still open them.
                StorageLayout::Standard => {
                    let mut out = vec![KEYCHECK_V1];
                    out.extend_from_slice(&nonce);
                    out.extend_from_slice(&key.check_tag(&nonce)?);
                    (out, None)
                }
                StorageLayout::SharedContainer => {
                    let mut salt = [0u8; 16];
                    rand::rng().fill_bytes(&mut salt);
                    let flags = FLAG_PLAINTEXT_HEADER;
                    let mut out = vec![KEYCHECK_V2, flags];
                    out.extend_from_slice(&salt);
                    out.extend_from_slice(&nonce);
                    out.extend_from_slice(&key.check_tag_v2(flags, &salt, &nonce)?);
                    (out, Some(salt))
                }
            };
            let tmp = path.with_extension("keycheck.tmp");
            let mut f = fs::File::create(&tmp).map_err(io_err)?;
            f.write_all(&out).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
            fs::rename(&tmp, &path).map_err(io_err)?;
            Ok(salt)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn parse_keycheck(bytes: &[u8], key: &DbKey) -> Result<Salt> {
    match bytes.first() {
        Some(&KEYCHECK_V1) if bytes.len() == V1_LEN => {
            let tag = key.check_tag(&bytes[1..17])?;
            if subtle_eq(&tag, &bytes[17..]) {
                Ok(None)
            } else {
                Err(Error::WrongKey)
            }
        }
        Some(&KEYCHECK_V2) if bytes.len() == V2_LEN => {
            let flags = bytes[1];
            if flags & !FLAG_PLAINTEXT_HEADER != 0 {
                return Err(Error::Corrupt);
            }
            let salt: [u8; 16] = bytes[2..18]
                .try_into()
                .map_err(|_| Error::Internal("salt length".into()))?;
            // The tag covers flags and salt: a wrong key and a changed
            // salt look the same here, and neither opens the database.
            let tag = key.check_tag_v2(flags, &salt, &bytes[18..34])?;
            if !subtle_eq(&tag, &bytes[34..]) {
                return Err(Error::WrongKey);
            }
            Ok((flags & FLAG_PLAINTEXT_HEADER != 0).then_some(salt))
        }
        _ => Err(Error::Corrupt),
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
/// An existing database keeps the layout it was created with.
pub fn open(path: &Path, key: &DbKey, cipher: Cipher) -> Result<Connection> {
    open_at(
        path,
        key,
        cipher,
        StorageLayout::Standard,
        schema::CURRENT_VERSION,
    )
}

/// Like [`open`], creating a new database in `layout` (ignored when the
/// database already exists: its sidecar says how it is laid out).
pub fn open_or_create(
    path: &Path,
    key: &DbKey,
    cipher: Cipher,
    layout: StorageLayout,
) -> Result<Connection> {
    open_at(path, key, cipher, layout, schema::CURRENT_VERSION)
}

pub(crate) fn open_at(
    path: &Path,
    key: &DbKey,
    cipher: Cipher,
    layout: StorageLayout,
    version: u32,
) -> Result<Connection> {
    // SQLCipher's primitives (RustCrypto): handed over before any page is
    // read or written.
    alcove_sqlcipher_crypto::install();
    let exists = path.exists();
    let salt = if cipher == Cipher::SqlCipher {
        check_key(path, key, exists, layout)?
    } else {
        None
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if cipher == Cipher::SqlCipher {
        let mut stmt = match salt {
            None => Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(&key.0[..]))),
            // SQLCipher's raw key-and-salt form, then the header size,
            // both before the first read: with a plain header the salt is
            // not in the file, so SQLCipher must be told it.
            Some(salt) => Zeroizing::new(format!(
                "PRAGMA key = \"x'{}{}'\"; PRAGMA cipher_plaintext_header_size = {};",
                hex::encode(&key.0[..]),
                hex::encode(salt),
                PLAINTEXT_HEADER_SIZE
            )),
        };
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
        // With a plain header SQLite parses page 1's header fine and a
        // failed page HMAC comes back as a generic SQLITE_ERROR; the
        // sidecar has already proved the key, so that is a damaged file.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if exists && salt.is_some() && e.code == rusqlite::ErrorCode::Unknown =>
        {
            return Err(Error::Corrupt)
        }
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
    // rusqlite keeps 16 prepared statements by default; the receive path
    // alone uses more, and an evicted statement is parsed again for every
    // message.
    conn.set_prepared_statement_cache_capacity(128);
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
