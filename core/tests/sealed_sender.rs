//! Sealed sender on the receiving side, with real SQLCipher accounts and
//! certificates made with libsignal exactly as the relay makes them:
//! good mail arrives with the sender taken from the certificate; tampered,
//! foreign, expired and self-addressed certificates are refused with a
//! typed error, change nothing, and do not stop the good mail behind them.

mod support;

use alcove_core::{Error, MessageStatus, Received};
use libsignal_protocol::{
    DeviceId, IdentityKey, KeyPair, PrivateKey, SenderCertificate, ServerCertificate, Timestamp,
};
use support::{sealed_envelope, state_digest, Peer};

struct Root {
    key: KeyPair,
    server: KeyPair,
    cert: ServerCertificate,
}

impl Root {
    fn new() -> Root {
        let mut rng = rand::rng();
        let key = KeyPair::generate(&mut rng);
        let server = KeyPair::generate(&mut rng);
        let cert =
            ServerCertificate::new(42, server.public_key, &key.private_key, &mut rng).unwrap();
        Root { key, server, cert }
    }

    fn public(&self) -> Vec<u8> {
        self.key.public_key.serialize().to_vec()
    }

    /// What the relay's `GET /v1/certificate` returns for `peer`.
    fn certificate_for(&self, uuid: &str, identity: &[u8], expires_ms: u64) -> Vec<u8> {
        self.sign(
            uuid,
            identity,
            expires_ms,
            &self.cert,
            &self.server.private_key,
        )
    }

    fn sign(
        &self,
        uuid: &str,
        identity: &[u8],
        expires_ms: u64,
        cert: &ServerCertificate,
        key: &PrivateKey,
    ) -> Vec<u8> {
        SenderCertificate::new(
            uuid.to_owned(),
            None,
            *IdentityKey::decode(identity).unwrap().public_key(),
            DeviceId::new(1).unwrap(),
            Timestamp::from_epoch_millis(expires_ms),
            cert.clone(),
            key,
            &mut rand::rng(),
        )
        .unwrap()
        .serialized()
        .unwrap()
        .to_vec()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const DAY: u64 = 24 * 3600 * 1000;

fn pair(dir: &std::path::Path, root: &Root) -> (Peer, Peer) {
    let mut alice = Peer::create(dir, "alice");
    let mut bob = Peer::create(dir, "bob");
    bob.account.pin_trust_root(&root.public()).unwrap();
    alice.account.pin_trust_root(&root.public()).unwrap();
    let bundle = bob.bundle();
    alice.account.process_bundle(&bob.id(), &bundle).unwrap();
    (alice, bob)
}

fn text_of(r: &Result<Received, Error>) -> (String, u32, String) {
    match r {
        Ok(Received::Text(m)) => (
            m.sender.clone().unwrap_or_default(),
            m.sender_device,
            m.body.clone(),
        ),
        other => panic!("expected a text, got {other:?}"),
    }
}

#[test]
fn sealed_mail_arrives_with_the_sender_from_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new();
    let (mut alice, mut bob) = pair(dir.path(), &root);
    let cert = root.certificate_for(&alice.id(), &alice.account.identity_key(), now_ms() + DAY);

    // The first message (a PreKey message inside) and a later one, sealed.
    for text in ["first, sealed", "second, sealed"] {
        let out = alice
            .account
            .encrypt_text_sealed(&bob.id(), text, &cert)
            .unwrap();
        let env = sealed_envelope(&out);
        let r = bob.account.receive(&[env]).unwrap();
        assert!(r[0].ackable());
        assert_eq!(text_of(&r[0].result), (alice.id(), 1, text.to_owned()));
    }
    // Bob answers (unsealed is fine) and Alice reads it: a real session.
    let reply = bob.account.encrypt_text(&alice.id(), "got both").unwrap();
    let r = alice
        .account
        .receive(&[support::single_envelope(&bob.account, &reply)])
        .unwrap();
    assert_eq!(text_of(&r[0].result).2, "got both");
    // A sealed receipt names its sender too.
    let receipt = bob
        .account
        .encrypt_receipt(&alice.id(), true, vec![])
        .unwrap();
    let r = alice
        .account
        .receive(&[support::single_envelope(&bob.account, &receipt)])
        .unwrap();
    assert!(matches!(
        &r[0].result,
        Ok(Received::Receipt { kind: MessageStatus::Read, sender, .. }) if *sender == bob.id()
    ));
}

/// Sends `text` sealed under `cert` and checks Bob refuses it with
/// `expected`, acks it, and that nothing of his state changed.
fn refused(alice: &mut Peer, bob: &mut Peer, cert: &[u8], expected: Error) {
    let before = state_digest(&bob.account);
    let key_before = bob.account.remote_delivery_key(&alice.id()).unwrap();
    let out = alice
        .account
        .encrypt_text_sealed(&bob.id(), "must not arrive", cert)
        .unwrap();
    let r = bob.account.receive(&[sealed_envelope(&out)]).unwrap();
    assert_eq!(r[0].result.as_ref().err(), Some(&expected));
    assert!(r[0].ackable(), "it can never succeed: acked, not retried");
    assert_eq!(state_digest(&bob.account), before, "no state change");
    assert_eq!(
        bob.account.remote_delivery_key(&alice.id()).unwrap(),
        key_before
    );
}

#[test]
fn bad_certificates_are_refused_and_the_good_mail_after_them_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new();
    let (mut alice, mut bob) = pair(dir.path(), &root);
    let identity = alice.account.identity_key();
    let good = root.certificate_for(&alice.id(), &identity, now_ms() + DAY);
    // Establish the session with one good sealed message first.
    let out = alice
        .account
        .encrypt_text_sealed(&bob.id(), "hello", &good)
        .unwrap();
    let r = bob.account.receive(&[sealed_envelope(&out)]).unwrap();
    assert_eq!(text_of(&r[0].result).2, "hello");

    // A flipped byte in the certificate's signature.
    let mut tampered = good.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    refused(
        &mut alice,
        &mut bob,
        &tampered,
        Error::InvalidSenderCertificate,
    );
    // A flipped byte in the signed body: the sender's account id (claiming
    // to be someone else).
    let at = good
        .windows(alice.id().len())
        .position(|w| w == alice.id().as_bytes())
        .unwrap();
    let mut tampered = good.clone();
    tampered[at + 5] ^= 0x01;
    assert!(SenderCertificate::deserialize(&tampered).is_ok());
    refused(
        &mut alice,
        &mut bob,
        &tampered,
        Error::InvalidSenderCertificate,
    );
    // Signed by another relay's trust root.
    let other = Root::new();
    let foreign = other.certificate_for(&alice.id(), &identity, now_ms() + DAY);
    refused(
        &mut alice,
        &mut bob,
        &foreign,
        Error::InvalidSenderCertificate,
    );
    // A server certificate from another root, with our server's key.
    let rogue = ServerCertificate::new(
        42,
        root.server.public_key,
        &other.key.private_key,
        &mut rand::rng(),
    )
    .unwrap();
    let rogue = root.sign(
        &alice.id(),
        &identity,
        now_ms() + DAY,
        &rogue,
        &root.server.private_key,
    );
    refused(
        &mut alice,
        &mut bob,
        &rogue,
        Error::InvalidSenderCertificate,
    );
    // Expired (properly signed).
    let expired = root.certificate_for(&alice.id(), &identity, now_ms() - 1000);
    refused(
        &mut alice,
        &mut bob,
        &expired,
        Error::SenderCertificateExpired,
    );
    // A certificate naming Bob himself (only a rogue relay could make one).
    let own = root.certificate_for(&bob.id(), &identity, now_ms() + DAY);
    refused(&mut alice, &mut bob, &own, Error::SealedSenderSelfSend);

    // The good mail after all that still arrives, in the same page as a
    // bad one, and only the good one is stored.
    let bad = alice
        .account
        .encrypt_text_sealed(&bob.id(), "bad", &expired)
        .unwrap();
    let ok = alice
        .account
        .encrypt_text_sealed(&bob.id(), "still here", &good)
        .unwrap();
    let r = bob
        .account
        .receive(&[sealed_envelope(&bad), sealed_envelope(&ok)])
        .unwrap();
    assert_eq!(r[0].result, Err(Error::SenderCertificateExpired));
    assert_eq!(text_of(&r[1].result), (alice.id(), 1, "still here".into()));
    let with_alice = bob.account.conversation_with(&alice.id()).unwrap();
    let bodies: Vec<String> = bob
        .account
        .messages(with_alice, None, 50)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["still here", "hello"]);
}

#[test]
fn without_a_pinned_trust_root_sealed_mail_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new();
    let mut alice = Peer::create(dir.path(), "alice");
    let mut carol = Peer::create(dir.path(), "carol");
    let bundle = carol.bundle();
    alice.account.process_bundle(&carol.id(), &bundle).unwrap();
    let cert = root.certificate_for(&alice.id(), &alice.account.identity_key(), now_ms() + DAY);
    refused(
        &mut alice,
        &mut carol,
        &cert,
        Error::InvalidSenderCertificate,
    );
}

#[test]
fn trust_root_is_pinned_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Peer::create(dir.path(), "p");
    let root = Root::new();
    assert_eq!(p.account.trust_root().unwrap(), None);
    p.account.pin_trust_root(&root.public()).unwrap();
    p.account.pin_trust_root(&root.public()).unwrap();
    assert!(matches!(
        p.account.pin_trust_root(&Root::new().public()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        p.account.pin_trust_root(&[1, 2, 3]),
        Err(Error::InvalidArgument(_))
    ));
    let p = p.reopen();
    assert_eq!(p.account.trust_root().unwrap(), Some(root.public()));
}

#[test]
fn delivery_keys_travel_inside_encrypted_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new();
    let (mut alice, mut bob) = pair(dir.path(), &root);
    let key = alcove_core::random_bytes(32);
    alice.account.set_delivery_key(&key).unwrap();
    assert!(alice.account.set_delivery_key(&[0; 31]).is_err());
    assert_eq!(bob.account.remote_delivery_key(&alice.id()).unwrap(), None);
    let out = alice.account.encrypt_text(&bob.id(), "hi").unwrap();
    // Not visible in the ciphertext.
    assert!(!support::contains(&out.messages[0].ciphertext, &key));
    bob.account
        .receive(&[support::single_envelope(&alice.account, &out)])
        .unwrap();
    assert_eq!(
        bob.account.remote_delivery_key(&alice.id()).unwrap(),
        Some(key.clone())
    );
    // Stored encrypted: not in Bob's database files.
    assert!(!support::contains(&support::db_bytes(&bob.path), &key));
    bob.account.forget_remote_delivery_key(&alice.id()).unwrap();
    assert_eq!(bob.account.remote_delivery_key(&alice.id()).unwrap(), None);
}
