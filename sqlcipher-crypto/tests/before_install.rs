//! Before `install` SQLCipher has no primitives: an encrypted database can
//! be neither created nor read, and nothing is written in the clear. (Its
//! own process: `install` is once per process.)

use rusqlite::Connection;

#[test]
fn without_the_primitives_nothing_is_encrypted_or_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA key = \"x'1111111111111111111111111111111111111111111111111111111111111111'\";",
    )
    .unwrap();
    let wrote = conn.execute_batch(
        "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('a secret that must not land in clear');",
    );
    assert!(
        wrote.is_err(),
        "an encrypted write went through without a cipher"
    );
    drop(conn);
    let on_disk = std::fs::read(&path).unwrap_or_default();
    assert!(!on_disk.windows(8).any(|w| w == b"a secret"));

    // Once installed, the same steps work (the failure above was the
    // missing provider, not the statements).
    alcove_sqlcipher_crypto::install();
    let path = dir.path().join("b.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA key = \"x'1111111111111111111111111111111111111111111111111111111111111111'\";",
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('a secret that must not land in clear');",
    )
    .unwrap();
}
