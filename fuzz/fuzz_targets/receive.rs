//! Fuzzes the receive path: arbitrary envelopes (type, source, ciphertext)
//! against accounts holding real sessions and a pinned sealed-sender trust
//! root. Run with `cargo +nightly fuzz run receive` from this folder.
#![no_main]

use std::sync::{Mutex, OnceLock};

use alcove_core::proto::relay::{DeviceBundle, OutgoingMessage};
use alcove_core::proto::wire::{envelope, Envelope};
use alcove_core::{Account, DbKey, Error, Received};
use libfuzzer_sys::fuzz_target;
use libsignal_protocol::{
    DeviceId, IdentityKey, KeyPair, SenderCertificate, ServerCertificate, Timestamp,
};

/// Bodies of the real messages: the only texts anything may turn into.
const BODIES: [&str; 4] = ["first", "second", "sealed second", "sealed first"];

struct Fixture {
    _dir: tempfile::TempDir,
    alice_id: String,
    /// Holds a confirmed session with Alice.
    bob: Account,
    /// Has only Alice's sealed PreKey message waiting.
    carol: Account,
    /// To Bob: a real PreKey message (already delivered), a real Signal
    /// message, a sealed Signal message. To Carol: a sealed PreKey message.
    seeds: [Envelope; 4],
}

fn account(dir: &std::path::Path, id: &str) -> Account {
    Account::create(&dir.join(format!("{id}.db")), &DbKey::random(), id, 1).unwrap()
}

fn bundle_of(a: &mut Account) -> DeviceBundle {
    let up = a.initial_prekeys().unwrap();
    DeviceBundle {
        device_id: 1,
        registration_id: a.registration_id(),
        identity_key: a.identity_key(),
        signed_prekey: up.signed_prekey,
        kyber_prekey: up.kyber_last_resort,
        one_time_prekey: up.one_time_prekeys.first().cloned(),
    }
}

fn mk(from: &Account, m: &OutgoingMessage, g: u8) -> Envelope {
    let sealed = m.r#type == envelope::Type::SealedSender as i32;
    Envelope {
        guid: vec![g; 16],
        r#type: m.r#type,
        source_account: if sealed {
            String::new()
        } else {
            from.account_id().into()
        },
        source_device: if sealed { 0 } else { 1 },
        destination_device: 1,
        ciphertext: m.ciphertext.clone(),
        server_timestamp: 0,
    }
}

fn fixture() -> &'static Mutex<Fixture> {
    static F: OnceLock<Mutex<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut alice = account(dir.path(), "acct-alice");
        let mut bob = account(dir.path(), "acct-bob");
        let mut carol = account(dir.path(), "acct-carol");
        alice.initial_prekeys().unwrap();
        // A trust root, server and sender certificate as the relay makes them.
        let mut rng = rand::rng();
        let root = KeyPair::generate(&mut rng);
        let server = KeyPair::generate(&mut rng);
        let server_cert =
            ServerCertificate::new(1, server.public_key, &root.private_key, &mut rng).unwrap();
        for a in [&mut alice, &mut bob, &mut carol] {
            a.pin_trust_root(&root.public_key.serialize()).unwrap();
        }
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 365 * 24 * 3600 * 1000;
        let cert = SenderCertificate::new(
            "acct-alice".into(),
            None,
            *IdentityKey::decode(&alice.identity_key())
                .unwrap()
                .public_key(),
            DeviceId::new(1).unwrap(),
            Timestamp::from_epoch_millis(expires),
            server_cert,
            &server.private_key,
            &mut rng,
        )
        .unwrap()
        .serialized()
        .unwrap()
        .to_vec();

        let b = bundle_of(&mut bob);
        alice.process_bundle("acct-bob", &b).unwrap();
        let first = alice.send_text("acct-bob", "first").unwrap();
        let prekey = mk(&alice, &first.messages[0], 1);
        bob.receive(std::slice::from_ref(&prekey)).unwrap();
        let reply = bob.send_text("acct-alice", "reply").unwrap();
        alice.receive(&[mk(&bob, &reply.messages[0], 2)]).unwrap();
        let next = alice.send_text("acct-bob", "second").unwrap();
        let signal = mk(&alice, &next.messages[0], 3);
        let sealed = alice
            .send_text_sealed("acct-bob", "sealed second", &cert)
            .unwrap();
        let sealed_signal = mk(&alice, &sealed.messages[0], 4);

        let c = bundle_of(&mut carol);
        alice.process_bundle("acct-carol", &c).unwrap();
        let sealed = alice
            .send_text_sealed("acct-carol", "sealed first", &cert)
            .unwrap();
        let sealed_prekey = mk(&alice, &sealed.messages[0], 5);
        Mutex::new(Fixture {
            _dir: dir,
            alice_id: alice.account_id().into(),
            bob,
            carol,
            seeds: [prekey, signal, sealed_signal, sealed_prekey],
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let Ok(mut f) = fixture().lock() else { return };
    // First byte: which seed (and so which envelope type and receiver), and
    // raw bytes or a mutation of the real message; second: guid; third: the
    // envelope type for unsealed seeds (any, including unknown ones).
    let which = usize::from(data[0] & 3);
    let sealed = which >= 2;
    let mut env = f.seeds[which].clone();
    env.guid = vec![data[1]; 16];
    if !sealed {
        env.r#type = i32::from(data[2] % 5);
    }
    if data[0] & 4 == 0 {
        env.ciphertext = data[3..].to_vec();
    } else {
        for (i, b) in data[3..].iter().enumerate() {
            let n = env.ciphertext.len();
            if n > 0 {
                env.ciphertext[(i * 31 + usize::from(*b)) % n] ^= b;
            }
        }
        // Bit 3: also append the input, to reach trailing-data handling.
        if data[0] & 8 != 0 {
            env.ciphertext.extend_from_slice(&data[3..]);
        }
    }
    let alice_id = f.alice_id.clone();
    let receiver = if which == 3 { &mut f.carol } else { &mut f.bob };
    let out = receiver
        .receive(&[env])
        .expect("page-level error on hostile input");
    match &out[0].result {
        // Nothing hostile may be accepted except a real message itself,
        // and sealed mail only from the certificate's sender.
        Ok(Received::Text(m)) => {
            assert!(BODIES.contains(&m.body.as_str()));
            assert!(!sealed || m.remote_account == alice_id);
        }
        Ok(Received::Receipt { .. }) => panic!("hostile input became a receipt"),
        // A panic caught inside the sealed path is still a bug (both
        // layers are authenticated before any parser of inner data runs).
        Err(Error::Internal(e)) if sealed => panic!("internal error on sealed input: {e}"),
        Err(_) => {}
    }
});
