//! libsignal alone, in memory: the denominator of every benchmark ratio.

use std::time::{Duration, Instant, SystemTime};

use libsignal_protocol::*;

/// Runs a future of the in-memory store, which never suspends.
fn drive<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f).expect("in-memory store never suspends")
}

/// Two parties with libsignal's `InMemSignalProtocolStore`: `a` has a
/// session with `b` from `b`'s pre-key bundle (signed + Kyber pre-key).
pub struct InMemPair {
    pub a: InMemSignalProtocolStore,
    pub b: InMemSignalProtocolStore,
    pub a_addr: ProtocolAddress,
    pub b_addr: ProtocolAddress,
}

impl InMemPair {
    /// `a` has processed `b`'s bundle; nothing sent yet, so `a`'s messages
    /// are pre-key messages until `b` replies.
    pub fn new(a_name: &str, b_name: &str) -> InMemPair {
        let mut rng = rand::rng();
        let a_id = IdentityKeyPair::generate(&mut rng);
        let b_id = IdentityKeyPair::generate(&mut rng);
        let mut a = InMemSignalProtocolStore::new(a_id, 1).unwrap();
        let mut b = InMemSignalProtocolStore::new(b_id, 2).unwrap();
        let a_addr = ProtocolAddress::new(a_name.into(), DeviceId::new(1).unwrap());
        let b_addr = ProtocolAddress::new(b_name.into(), DeviceId::new(1).unwrap());
        let spk = KeyPair::generate(&mut rng);
        let sig = b_id
            .private_key()
            .calculate_signature(&spk.public_key.serialize(), &mut rng)
            .unwrap();
        let kyber =
            KyberPreKeyRecord::generate(kem::KeyType::Kyber1024, 1.into(), b_id.private_key())
                .unwrap();
        drive(b.save_signed_pre_key(
            1.into(),
            &SignedPreKeyRecord::new(1.into(), Timestamp::from_epoch_millis(0), &spk, &sig),
        ))
        .unwrap();
        drive(b.save_kyber_pre_key(1.into(), &kyber)).unwrap();
        let bundle = PreKeyBundle::new(
            2,
            DeviceId::new(1).unwrap(),
            None,
            1.into(),
            spk.public_key,
            sig.to_vec(),
            1.into(),
            kyber.public_key().unwrap(),
            kyber.signature().unwrap(),
            *b_id.identity_key(),
        )
        .unwrap();
        drive(process_prekey_bundle(
            &b_addr,
            &mut a.session_store,
            &mut a.identity_store,
            &bundle,
            SystemTime::now(),
            &mut rng,
        ))
        .unwrap();
        InMemPair {
            a,
            b,
            a_addr,
            b_addr,
        }
    }

    /// As [`InMemPair::new`], then one message each way, so both sides
    /// hold an acknowledged session and send plain Signal messages.
    pub fn established(a_name: &str, b_name: &str) -> InMemPair {
        let mut p = Self::new(a_name, b_name);
        p.a_to_b(b"hi");
        p.b_to_a(b"hi");
        p
    }

    /// `a` encrypts `plain` to `b`.
    pub fn encrypt_a(&mut self, plain: &[u8]) -> CiphertextMessage {
        drive(message_encrypt(
            plain,
            &self.b_addr,
            &mut self.a.session_store,
            &mut self.a.identity_store,
            SystemTime::now(),
            &mut rand::rng(),
        ))
        .unwrap()
    }

    /// `b` decrypts `ct` from `a`.
    pub fn decrypt_b(&mut self, ct: &CiphertextMessage) -> Vec<u8> {
        drive(message_decrypt(
            ct,
            &self.a_addr,
            &mut self.b.session_store,
            &mut self.b.identity_store,
            &mut self.b.pre_key_store,
            &self.b.signed_pre_key_store,
            &mut self.b.kyber_pre_key_store,
            &mut rand::rng(),
        ))
        .unwrap()
    }

    /// `a` sends `plain` to `b`, who decrypts it.
    pub fn a_to_b(&mut self, plain: &[u8]) -> Vec<u8> {
        let ct = self.encrypt_a(plain);
        self.decrypt_b(&ct)
    }

    /// `b` sends `plain` to `a`, who decrypts it.
    pub fn b_to_a(&mut self, plain: &[u8]) -> Vec<u8> {
        let ct = drive(message_encrypt(
            plain,
            &self.a_addr,
            &mut self.b.session_store,
            &mut self.b.identity_store,
            SystemTime::now(),
            &mut rand::rng(),
        ))
        .unwrap();
        drive(message_decrypt(
            &ct,
            &self.b_addr,
            &mut self.a.session_store,
            &mut self.a.identity_store,
            &mut self.a.pre_key_store,
            &self.a.signed_pre_key_store,
            &mut self.a.kyber_pre_key_store,
            &mut rand::rng(),
        ))
        .unwrap()
    }
}

/// libsignal alone: the time `b` takes to decrypt `n` messages of 160 bytes
/// (the padded size) queued by `a` on a fresh session, in memory. Only the
/// decrypts are timed.
pub fn inmem_decrypt(n: usize) -> Duration {
    let mut p = InMemPair::new("acct-a", "acct-b");
    let cts: Vec<CiphertextMessage> = (0..n).map(|_| p.encrypt_a(&[0u8; 160])).collect();
    let t = Instant::now();
    for ct in &cts {
        p.decrypt_b(ct);
    }
    t.elapsed()
}

/// libsignal alone: the time `b` takes to open `n` sealed-sender messages
/// of 160 bytes from `a` on an established session (the steady state of a
/// conversation), in memory, with libsignal's own `sealed_sender_decrypt`
/// (unseal, sender-certificate validation, inner decrypt) for each. Only
/// the decrypts are timed.
pub fn inmem_sealed_decrypt(n: usize) -> Duration {
    let mut rng = rand::rng();
    let mut p = InMemPair::established("acct-a", "acct-b");
    let root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    let server_cert =
        ServerCertificate::new(1, server.public_key, &root.private_key, &mut rng).unwrap();
    let a_key = drive(p.a.identity_store.get_identity_key_pair()).unwrap();
    let expires = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000;
    let cert = SenderCertificate::new(
        "acct-a".into(),
        None,
        *a_key.public_key(),
        DeviceId::new(1).unwrap(),
        Timestamp::from_epoch_millis(expires),
        server_cert,
        &server.private_key,
        &mut rng,
    )
    .unwrap();
    let sealed: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            drive(sealed_sender_encrypt(
                &p.b_addr,
                &cert,
                &[0u8; 160],
                &mut p.a.session_store,
                &mut p.a.identity_store,
                SystemTime::now(),
                &mut rng,
            ))
            .unwrap()
        })
        .collect();
    let now = Timestamp::from_epoch_millis(expires - 3_600_000);
    let t = Instant::now();
    for ct in &sealed {
        drive(sealed_sender_decrypt(
            ct,
            &root.public_key,
            now,
            None,
            "acct-b".into(),
            DeviceId::new(1).unwrap(),
            &mut p.b.identity_store,
            &mut p.b.session_store,
            &mut p.b.pre_key_store,
            &p.b.signed_pre_key_store,
            &mut p.b.kyber_pre_key_store,
        ))
        .unwrap();
    }
    t.elapsed()
}
