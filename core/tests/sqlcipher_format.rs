//! SQLCipher's provider is Alcove's hand-over to RustCrypto
//! (`sqlcipher-crypto/`), where it was OpenSSL before. The file format must
//! not notice: the databases in `fixtures/sqlcipher-openssl/` were written
//! by the OpenSSL provider (SQLCipher 4.6.1, commit e8e29d3: two accounts,
//! one per storage layout, that exchanged three texts) and must open, read,
//! verify every page's HMAC, take new writes and open again.

mod support;

use alcove_core::{Account, DbKey, Error};
use rusqlite::Connection;

const TEXTS: [&str; 3] = [
    "first text from standard",
    "a reply from shared",
    "and a third one",
];

fn copy_fixture(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqlcipher-openssl");
    for file in [format!("{name}.db"), format!("{name}.db.keycheck")] {
        std::fs::copy(src.join(&file), dir.join(&file)).unwrap();
    }
    dir.join(format!("{name}.db"))
}

fn bodies(account: &Account) -> Vec<String> {
    let convs = account.conversations().unwrap();
    assert_eq!(convs.len(), 1);
    let mut got: Vec<String> = account
        .messages(convs[0].id, None, 100)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    got.sort();
    got
}

fn want() -> Vec<String> {
    let mut want: Vec<String> = TEXTS.iter().map(|s| s.to_string()).collect();
    want.sort();
    want
}

#[test]
fn databases_written_by_the_openssl_provider_open_verify_and_take_writes() {
    for (name, key_byte) in [("standard", 0x11u8), ("shared", 0x22)] {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_fixture(dir.path(), name);
        let key = DbKey::new([key_byte; 32]);

        let mut account = Account::open(&path, &key).unwrap();
        assert_eq!(account.account_id(), format!("acct-{name}"));
        assert_eq!(bodies(&account), want(), "{name}");
        // Every page's HMAC and SQLite's own structure.
        account.verify_integrity().unwrap();

        // New pages written by this provider, beside the old ones.
        let conv = account.conversations().unwrap()[0].id;
        account
            .set_display_name(conv, "written by the RustCrypto provider")
            .unwrap();
        account.checkpoint().unwrap();
        account.close().unwrap();

        let account = Account::open(&path, &key).unwrap();
        account.verify_integrity().unwrap();
        assert_eq!(bodies(&account), want());
        assert_eq!(
            account.conversations().unwrap()[0].display_name.as_deref(),
            Some("written by the RustCrypto provider")
        );
        account.close().unwrap();

        // The wrong key is still refused, typed, and changes nothing.
        let before = std::fs::read(&path).unwrap();
        let wrong = Account::open(&path, &DbKey::new([key_byte ^ 0xff; 32]));
        assert!(matches!(wrong, Err(Error::WrongKey)), "{name}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}

#[test]
fn a_page_flipped_in_an_openssl_written_file_is_caught_by_this_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "standard");
    let key = DbKey::new([0x11; 32]);
    let mut bytes = std::fs::read(&path).unwrap();
    // The middle of the second page: encrypted data, covered by its HMAC.
    bytes[4096 + 2000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let found = match Account::open(&path, &key) {
        Err(e) => Some(e),
        Ok(account) => account.verify_integrity().err(),
    };
    assert!(matches!(found, Some(Error::Corrupt)), "{found:?}");
}

#[test]
fn a_raw_connection_reads_what_sqlcipher_wrote_only_with_the_key() {
    // Below the account layer: SQLCipher with the provider and a raw key,
    // the way the core opens it, and its own provider report.
    alcove_sqlcipher_crypto::install();
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path(), "standard");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "11".repeat(32)))
        .unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert!(tables > 5, "{tables}");
    let problems: Vec<String> = conn
        .prepare("PRAGMA cipher_integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    drop(conn);

    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "12".repeat(32)))
        .unwrap();
    assert!(conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
            .get::<_, i64>(0))
        .is_err());
}
