//! Every algorithm SQLCipher can ask for (its settings pick HMAC-SHA1,
//! -SHA256 or -SHA512 and the matching PBKDF2), through real database
//! files: written, closed, read back, checked page by page, refused with
//! the wrong passphrase, and free of the plaintext.

use rusqlite::Connection;

const SECRET: &str = "the appointment moved to Thursday at four";

fn open(path: &std::path::Path, pass: &str, settings: &str) -> Connection {
    alcove_sqlcipher_crypto::install();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = '{pass}'; {settings}"))
        .unwrap();
    conn
}

fn round_trip(settings: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let conn = open(&path, "correct horse", settings);
    conn.execute_batch("CREATE TABLE t(x TEXT)").unwrap();
    for i in 0..200 {
        conn.execute("INSERT INTO t VALUES (?1)", [format!("{SECRET} #{i}")])
            .unwrap();
    }
    drop(conn);

    let on_disk = std::fs::read(&path).unwrap();
    assert!(!on_disk.windows(15).any(|w| w == &SECRET.as_bytes()[..15]));

    let conn = open(&path, "correct horse", settings);
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM t WHERE x LIKE 'the appointment%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 200, "{settings}");
    let problems = conn
        .prepare("PRAGMA cipher_integrity_check")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .count();
    assert_eq!(problems, 0, "{settings}");
    drop(conn);

    let conn = open(&path, "wrong horse", settings);
    assert!(conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .is_err());
}

#[test]
fn sqlcipher_4_defaults_hmac_sha512_and_pbkdf2_sha512() {
    round_trip("");
}

#[test]
fn hmac_sha256_with_pbkdf2_sha256() {
    round_trip("PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_kdf_algorithm = PBKDF2_HMAC_SHA256; PRAGMA kdf_iter = 1000;");
}

#[test]
fn sqlcipher_3_compatibility_hmac_sha1_and_pbkdf2_sha1() {
    round_trip("PRAGMA cipher_compatibility = 3;");
}

#[test]
fn larger_pages() {
    round_trip("PRAGMA cipher_page_size = 16384;");
}
