//! Encrypted backup and restore. A backup is the account's database —
//! identity, relay credentials, contacts and their identity keys,
//! conversations, messages, consents, the audit log — without its
//! sessions, queued items or leases, exported by SQLCipher
//! (`sqlcipher_export`, AES-256 pages with HMAC-SHA512) under a key
//! stretched from a random recovery code with Argon2id (64 MiB, 3 passes),
//! behind a small header: magic, version, the Argon2 salt, the length and
//! SHA-256 of the encrypted bytes (so a truncated or changed file is
//! refused before any work). Nothing in it is readable without the code.
//!
//! Restoring writes a fresh database under the new phone's key: the
//! identity and history come back; sessions do not (as in Signal), and
//! are made again on the next message each way, under the same identity,
//! so peers see no safety-number change. A wrong, mistyped or truncated
//! code, a damaged file or another account's backup is a typed error and
//! writes nothing.

mod code;

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::account::Account;
use crate::audit::AuditEvent;
use crate::client::enrollment::remove_db_files;
use crate::db::{self, Cipher, DbKey, StorageLayout};
use crate::error::{Error, Result};

pub use code::RecoveryCode;

const MAGIC: &[u8; 8] = b"ALCOVEBK";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = 8 + 1 + SALT_LEN + 8 + 32;
/// Largest backup restored (4 GiB).
pub const MAX_BACKUP_LEN: u64 = 4 << 30;
/// Tables a backup leaves out: sessions are made again, queued items and
/// leases belong to the old phone.
const NOT_BACKED_UP: &[&str] = &["sessions", "sender_keys", "outbox", "leases"];

fn stretch(secret: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(64 * 1024, 3, 1, Some(32))
        .map_err(|_| Error::Internal("argon2 parameters".into()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, salt, &mut out[..])
        .map_err(|_| Error::Internal("argon2".into()))?;
    Ok(out)
}

fn key_sql(key: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(format!("\"x'{}'\"", hex::encode(key)))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn remove_sqlite(path: &Path) {
    for s in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, s));
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    crate::private_file::write_new(path, data, "backup file")
}

fn io(e: std::io::Error) -> Error {
    crate::private_file::io_error(e, "backup file")
}

impl Account {
    /// Writes an encrypted backup of this account to `out` (a new file)
    /// and returns the recovery code to show the user once.
    pub fn backup(&self, out: &Path) -> Result<RecoveryCode> {
        if out.exists() {
            return Err(Error::InvalidArgument("the backup file exists".into()));
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(&mut secret[..]);
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let key = stretch(&secret[..], &salt)?;
        let tmp = with_suffix(out, ".partial");
        remove_sqlite(&tmp);
        let result = (|| {
            let attach = Zeroizing::new(format!(
                "ATTACH DATABASE '{}' AS backup KEY {};",
                tmp.display().to_string().replace('\'', "''"),
                key_sql(&key).as_str()
            ));
            self.conn.execute_batch(&attach)?;
            let exported = (|| {
                self.conn
                    .query_row("SELECT sqlcipher_export('backup')", [], |_| Ok(()))?;
                let version = crate::schema::version(&self.conn)?;
                let mut sql = format!(
                    "PRAGMA backup.user_version = {version}; PRAGMA backup.secure_delete = ON;"
                );
                for t in NOT_BACKED_UP {
                    sql.push_str(&format!("DELETE FROM backup.{t};"));
                }
                self.conn.execute_batch(&sql)?;
                Ok::<_, Error>(())
            })();
            self.conn.execute_batch("DETACH DATABASE backup")?;
            exported?;
            let body = std::fs::read(&tmp).map_err(io)?;
            let mut file = Vec::with_capacity(HEADER_LEN + body.len());
            file.extend_from_slice(MAGIC);
            file.push(VERSION);
            file.extend_from_slice(&salt);
            file.extend_from_slice(&(body.len() as u64).to_be_bytes());
            file.extend_from_slice(&Sha256::digest(&body));
            file.extend_from_slice(&body);
            write_private(out, &file)
        })();
        remove_sqlite(&tmp);
        if let Err(e) = result {
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
        self.audit(AuditEvent::BackupMade)?;
        tracing::info!("backup written");
        Ok(RecoveryCode::new(&secret))
    }

    /// Restores the backup at `backup` with the recovery code as typed
    /// into a new database at `path` under `key` (the new phone's), and
    /// opens it. `expected_account`: refuse a backup of another account.
    /// On any error nothing is left at `path`.
    pub fn restore_backup(
        backup: &Path,
        recovery_code: &str,
        path: &Path,
        key: &DbKey,
        expected_account: Option<&str>,
    ) -> Result<Account> {
        let secret = RecoveryCode::parse(recovery_code)?;
        if path.exists() {
            return Err(Error::AccountExists);
        }
        let meta = std::fs::metadata(backup).map_err(|_| Error::BackupCorrupt)?;
        if meta.len() > MAX_BACKUP_LEN || meta.len() < HEADER_LEN as u64 {
            return Err(Error::BackupCorrupt);
        }
        let file = std::fs::read(backup).map_err(|_| Error::BackupCorrupt)?;
        let (header, body) = file.split_at(HEADER_LEN);
        let salt = &header[9..9 + SALT_LEN];
        let len = u64::from_be_bytes(
            header[9 + SALT_LEN..17 + SALT_LEN]
                .try_into()
                .map_err(|_| Error::BackupCorrupt)?,
        );
        if &header[..8] != MAGIC
            || header[8] != VERSION
            || len != body.len() as u64
            || Sha256::digest(body)[..] != header[17 + SALT_LEN..]
        {
            return Err(Error::BackupCorrupt);
        }
        let bkey = stretch(&secret[..], salt)?;
        let tmp = with_suffix(path, ".restoring");
        remove_sqlite(&tmp);
        let result = restore_into(&tmp, body, &bkey, path, key, expected_account);
        remove_sqlite(&tmp);
        match result {
            Ok(()) => {
                let account = Account::open(path, key)?;
                account.audit(AuditEvent::BackupRestored)?;
                tracing::info!("backup restored");
                Ok(account)
            }
            Err(e) => {
                remove_db_files(path);
                Err(e)
            }
        }
    }
}

fn restore_into(
    tmp: &Path,
    body: &[u8],
    bkey: &[u8; 32],
    path: &Path,
    key: &DbKey,
    expected_account: Option<&str>,
) -> Result<()> {
    write_private(tmp, body)?;
    alcove_sqlcipher_crypto::install();
    let src = Connection::open(tmp)?;
    src.execute_batch(&format!("PRAGMA key = {};", key_sql(bkey).as_str()))?;
    if src
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_err()
    {
        return Err(Error::BackupWrongCode);
    }
    let account: String = src
        .query_row("SELECT account_id FROM local_account", [], |r| r.get(0))
        .map_err(|_| Error::BackupCorrupt)?;
    if expected_account.is_some_and(|e| e != account) {
        return Err(Error::BackupWrongAccount);
    }
    // An older build's backup is brought to this schema first.
    crate::schema::migrate(&src, crate::schema::CURRENT_VERSION)?;
    drop(src);

    let conn = db::open_or_create(path, key, Cipher::SqlCipher, StorageLayout::Standard)?;
    let attach = Zeroizing::new(format!(
        "ATTACH DATABASE '{}' AS bk KEY {};",
        tmp.display().to_string().replace('\'', "''"),
        key_sql(bkey).as_str()
    ));
    conn.execute_batch(&attach)?;
    let copied = (|| {
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM main.sqlite_master WHERE type = 'table'
                   AND name NOT LIKE 'sqlite_%'",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        let tx = conn.unchecked_transaction()?;
        for t in tables
            .iter()
            .filter(|t| !NOT_BACKED_UP.contains(&t.as_str()))
        {
            tx.execute_batch(&format!(
                "INSERT INTO main.\"{t}\" SELECT * FROM bk.\"{t}\";"
            ))?;
        }
        let dangling: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if dangling != 0 {
            return Err(Error::BackupCorrupt);
        }
        tx.commit()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        Ok(())
    })();
    conn.execute_batch("DETACH DATABASE bk")?;
    copied?;
    drop(conn);
    Ok(())
}

impl crate::client::Client {
    /// Writes an encrypted backup of the account to `out` and returns the
    /// recovery code to show once.
    pub fn backup(&self, out: &Path) -> Result<RecoveryCode> {
        self.with_account(|a| a.backup(out))
    }

    /// Restores a backup onto this phone (a new database at `path` under
    /// `key`) and opens it against `relay_url`. Sessions are made again
    /// on the next message each way.
    pub fn restore(
        backup: &Path,
        recovery_code: &str,
        path: &Path,
        key: &DbKey,
        relay_url: &str,
        expected_account: Option<&str>,
    ) -> Result<crate::client::Client> {
        let account = Account::restore_backup(backup, recovery_code, path, key, expected_account)?;
        account.close()?;
        crate::client::Client::open(path, key, relay_url)
    }
}
