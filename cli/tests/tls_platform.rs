//! A relay whose certificate comes from a CA the device trusts, with no
//! pin: the platform's trust store decides (rustls-platform-verifier; on
//! Linux the system bundle, which `SSL_CERT_FILE` / `SSL_CERT_DIR`
//! replace). The store is process-wide, so every client that needs it runs
//! as an `alcove enroll` / `alcove sync` child with its own environment;
//! this file holds one test, so nothing races it. In this process no store
//! knows the test CA: the therapist reaches the relay by the CA's pin.

mod common;
mod tls_ca;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use alcove_core::{Client, DbKey, Error, StorageLayout};
use common::ALCOVE_BIN;
use tls_ca::{db_files, start_relay, TestCa};

/// Which trust store the child sees.
enum Store<'a> {
    File(&'a Path),
    Dir(&'a Path),
}

fn alcove(store: &Store, args: &[&str]) -> Output {
    let mut cmd = Command::new(ALCOVE_BIN);
    cmd.args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("ALCOVE_LOG", "warn");
    match store {
        Store::File(f) => cmd.env("SSL_CERT_FILE", f),
        Store::Dir(d) => cmd.env("SSL_CERT_DIR", d),
    };
    cmd.output().unwrap()
}

fn enroll(store: &Store, dir: &Path, name: &str, url: &str, invite: &str) -> Output {
    let db = dir.join(format!("{name}.db"));
    let key = dir.join(format!("{name}.key"));
    alcove(
        store,
        &[
            "enroll",
            "--db",
            db.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "--relay",
            url,
            "--invite",
            invite,
        ],
    )
}

fn sync(store: &Store, dir: &Path, name: &str, url: &str) -> String {
    let out = alcove(
        store,
        &[
            "sync",
            "--db",
            dir.join(format!("{name}.db")).to_str().unwrap(),
            "--key-file",
            dir.join(format!("{name}.key")).to_str().unwrap(),
            "--relay",
            url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A refused enrolment: the typed error's code on stderr, nothing on disk.
fn assert_refused(out: &Output, dir: &Path, name: &str, reason: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("TLS certificate is not trusted: {reason}")),
        "{stderr}"
    );
    assert_eq!(
        db_files(&dir.join(format!("{name}.db"))),
        Vec::<std::path::PathBuf>::new()
    );
}

fn soon() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_store_decides_for_an_unpinned_relay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = TestCa::new("Test Practice CA");
    let other = TestCa::new("Some Other CA");
    let ca_file = d.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let ca_dir = d.join("ca.d");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("practice.pem"), ca.pem()).unwrap();
    let other_file = d.join("other.pem");
    std::fs::write(&other_file, other.pem()).unwrap();
    let trusted = Store::File(&ca_file);

    // The relay serves its certificate and the CA (the CA pin needs it).
    let (cert, key) = ca.issue(&["localhost"], 2099);
    let (relay, url) = start_relay(ALCOVE_BIN, &d.join("relay"), &(cert + &ca.pem()), &key);

    // This process trusts no test CA: the therapist comes in by the CA's pin.
    let t = Client::enroll_pinned(
        &d.join("t.db"),
        &DbKey::random(),
        &url,
        &relay.invite(),
        StorageLayout::Standard,
        Some(ca.sha256()),
    )
    .await
    .unwrap();

    // (b) A store without the practice's CA: refused, typed, nothing kept.
    let out = enroll(&Store::File(&other_file), d, "c", &url, &relay.invite());
    assert_refused(&out, d, "c", "unknown_issuer");

    // (a) The CA in the store, no pin: enrolled, and messages flow both ways.
    let out = enroll(&trusted, d, "c", &url, &relay.invite());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c_account = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let to_c = t.conversation_with(&c_account).unwrap();
    assert!(t.send_text(to_c, "from the therapist").await.unwrap().sent);
    assert!(sync(&trusted, d, "c", &url).starts_with("received=1 "));
    // Opened here, where the CA is unknown: the stored message reads
    // offline, a reply is refused typed and kept in the outbox...
    let c_key = tls_key(&d.join("c.key"));
    let c = Client::open(&d.join("c.db"), &c_key, &url).unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    let texts: Vec<String> = c
        .with_account(|a| a.messages(to_t, None, 10))
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(texts, vec!["from the therapist".to_owned()]);
    assert_eq!(
        c.send_text(to_t, "from the client").await.err(),
        Some(Error::UntrustedCertificate {
            reason: "unknown_issuer"
        })
    );
    drop(c);
    // ...and goes with the next sync of a process that trusts the CA.
    assert!(sync(&trusted, d, "c", &url).contains(" sent=1 "));
    assert_eq!(t.sync(soon()).await.unwrap().received, 1);

    // The same CA named by SSL_CERT_DIR.
    let out = enroll(&Store::Dir(&ca_dir), d, "c2", &url, &relay.invite());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(relay);

    // (e) Certificates from the trusted CA that are wrong for this relay.
    let (cert, key) = ca.issue(&["relay.example.org"], 2099);
    let (relay, url) = start_relay(ALCOVE_BIN, &d.join("wrong-host"), &cert, &key);
    let out = enroll(&trusted, d, "w", &url, &relay.invite());
    assert_refused(&out, d, "w", "wrong_host");
    drop(relay);
    let (cert, key) = ca.issue(&["localhost"], 2020);
    let (relay, url) = start_relay(ALCOVE_BIN, &d.join("expired"), &cert, &key);
    let out = enroll(&trusted, d, "e", &url, &relay.invite());
    assert_refused(&out, d, "e", "expired");
    drop(relay);
}

fn tls_key(path: &Path) -> DbKey {
    let hex_key = std::fs::read_to_string(path).unwrap();
    DbKey::from_slice(&hex::decode(hex_key.trim()).unwrap()).unwrap()
}
