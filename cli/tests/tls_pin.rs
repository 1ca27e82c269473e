//! A self-hosted relay under a private CA (a self-signed certificate, or
//! a CA no trust store knows), reached over real TLS on loopback: the
//! invite card's pin of the relay certificate or of its CA is what lets a
//! client in, a wrong or missing pin keeps it out (`UntrustedCertificate`)
//! with nothing left on disk, and the pin stays with the account for every
//! later open. A CA pin still checks the chain, the host name and the dates.

mod common;
mod tls_ca;

use std::path::Path;
use std::time::Duration;

use alcove_core::{Client, DbKey, Error, StorageLayout};
use common::{RelayProcess, ALCOVE_BIN};
use sha2::{Digest, Sha256};

/// A TLS relay for `localhost` with a fresh self-signed certificate;
/// returns it, its https URL and the certificate's SHA-256.
fn start_tls(dir: &Path) -> (RelayProcess, String, [u8; 32]) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        "[relay]\nbind = \"127.0.0.1:0\"\ndb = \"relay.db\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let relay = RelayProcess::spawn(
        ALCOVE_BIN,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.join("relay.db"),
        "warn",
    );
    let port = relay
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let pin: [u8; 32] = Sha256::digest(cert.cert.der().as_ref()).into();
    (relay, format!("https://localhost:{port}"), pin)
}

fn soon() -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_card_reaches_a_private_ca_relay_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, url, pin) = start_tls(dir.path());
    let therapist_key = DbKey::random();
    let t = Client::enroll_pinned(
        &dir.path().join("t.db"),
        &therapist_key,
        &url,
        &relay.invite(),
        StorageLayout::Standard,
        Some(pin),
    )
    .await
    .unwrap();
    // Without the pin the same relay is refused: no root vouches for it.
    assert!(matches!(
        Client::enroll(
            &dir.path().join("x.db"),
            &DbKey::random(),
            &url,
            &relay.invite()
        )
        .await,
        Err(Error::UntrustedCertificate {
            reason: "unknown_issuer"
        })
    ));

    // The therapist's card carries the pin on its own.
    let card = t.invite_card(&relay.invite(), None).unwrap();
    assert_eq!(card.tls_certificate_sha256, Some(pin));

    // A card whose pin is wrong: refused at the TLS handshake, nothing kept.
    let mut wrong = t.invite_card(&relay.invite(), None).unwrap();
    wrong.tls_certificate_sha256 = Some([0x42; 32]);
    let refused = Client::enroll_by_card(
        &dir.path().join("c.db"),
        &DbKey::random(),
        &wrong.encode(),
        "J.",
        StorageLayout::Standard,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(Error::UntrustedCertificate {
                reason: "pin_mismatch"
            })
        ),
        "{refused:?}"
    );
    assert!(!dir.path().join("c.db").exists());

    // The right card: enrolled, and the pin stays with the account.
    let key = DbKey::random();
    let c = Client::enroll_by_card(
        &dir.path().join("c.db"),
        &key,
        &card.encode(),
        "J.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    assert!(
        c.send_text(to_t, "over a pinned channel")
            .await
            .unwrap()
            .sent
    );
    assert_eq!(t.sync(soon()).await.unwrap().received, 1);
    drop(c);
    let reopened = Client::open(&dir.path().join("c.db"), &key, &url).unwrap();
    assert_eq!(
        reopened.with_account(|a| a.relay_tls_pin()).unwrap(),
        Some(pin)
    );
    let to_t = reopened.conversation_with(t.account_id()).unwrap();
    assert!(
        reopened
            .send_text(to_t, "after reopening")
            .await
            .unwrap()
            .sent
    );
    assert_eq!(t.sync(soon()).await.unwrap().received, 1);
    drop(relay);
}

/// Enrols at `url` with `pin` into a fresh `name.db` under `dir`.
async fn enroll_pinned(
    dir: &Path,
    name: &str,
    url: &str,
    invite: &str,
    pin: [u8; 32],
) -> alcove_core::Result<Client> {
    Client::enroll_pinned(
        &dir.join(format!("{name}.db")),
        &DbKey::random(),
        url,
        invite,
        StorageLayout::Standard,
        Some(pin),
    )
    .await
}

fn untrusted(r: alcove_core::Result<Client>) -> &'static str {
    match r {
        Err(Error::UntrustedCertificate { reason }) => reason,
        other => panic!("expected UntrustedCertificate, got {:?}", other.err()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_private_ca_admits_its_relay_and_checks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = tls_ca::TestCa::new("Private Practice CA");
    let (cert, key) = ca.issue(&["localhost"], 2099);
    let (relay, url) = tls_ca::start_relay(ALCOVE_BIN, &d.join("good"), &(cert + &ca.pem()), &key);
    // (c) The CA pinned, no trust store knowing it: in, and texting works.
    let t = enroll_pinned(d, "t", &url, &relay.invite(), ca.sha256())
        .await
        .unwrap();
    let card = t.invite_card(&relay.invite(), None).unwrap();
    assert_eq!(card.tls_certificate_sha256, Some(ca.sha256()));
    let c = Client::enroll_by_card(
        &d.join("c.db"),
        &DbKey::random(),
        &card.encode(),
        "J.",
        StorageLayout::Standard,
    )
    .await
    .unwrap();
    let to_t = c.conversation_with(t.account_id()).unwrap();
    assert!(c.send_text(to_t, "under a private CA").await.unwrap().sent);
    assert_eq!(t.sync(soon()).await.unwrap().received, 1);
    // No pin: no store here knows the CA.
    assert_eq!(
        untrusted(Client::enroll(&d.join("n.db"), &DbKey::random(), &url, &relay.invite()).await),
        "unknown_issuer"
    );
    // (d) A wrong pin, and the pin of another CA.
    let other = tls_ca::TestCa::new("Another CA");
    for (name, pin) in [("w1", [0x42; 32]), ("w2", other.sha256())] {
        assert_eq!(
            untrusted(enroll_pinned(d, name, &url, &relay.invite(), pin).await),
            "pin_mismatch"
        );
        assert!(tls_ca::db_files(&d.join(format!("{name}.db"))).is_empty());
    }
    drop(relay);

    // The CA pin still checks the host name and the dates.
    let cases = [
        (
            "wrong-host",
            ca.issue(&["relay.example.org"], 2099),
            "wrong_host",
        ),
        ("expired", ca.issue(&["localhost"], 2020), "expired"),
    ];
    for (name, (cert, key), reason) in cases {
        let (relay, url) =
            tls_ca::start_relay(ALCOVE_BIN, &d.join(name), &(cert + &ca.pem()), &key);
        assert_eq!(
            untrusted(enroll_pinned(d, name, &url, &relay.invite(), ca.sha256()).await),
            reason,
            "{name}"
        );
        assert!(tls_ca::db_files(&d.join(format!("{name}.db"))).is_empty());
    }

    // Hostile: a relay that serves the pinned CA's (public) certificate in
    // its chain, with a certificate its own CA issued for the right host.
    let rogue = tls_ca::TestCa::new("Private Practice CA");
    let (cert, key) = rogue.issue(&["localhost"], 2099);
    let (relay, url) = tls_ca::start_relay(ALCOVE_BIN, &d.join("rogue"), &(cert + &ca.pem()), &key);
    assert_eq!(
        untrusted(enroll_pinned(d, "r", &url, &relay.invite(), ca.sha256()).await),
        "bad_signature"
    );
    assert!(tls_ca::db_files(&d.join("r.db")).is_empty());
    // A relay under the right CA that does not serve the CA: the pin has
    // nothing to match.
    let (cert, key) = ca.issue(&["localhost"], 2099);
    let (relay2, url) = tls_ca::start_relay(ALCOVE_BIN, &d.join("leaf-only"), &cert, &key);
    assert_eq!(
        untrusted(enroll_pinned(d, "l", &url, &relay2.invite(), ca.sha256()).await),
        "pin_mismatch"
    );
    drop((relay, relay2));
}
