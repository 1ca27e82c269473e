//! Fuzzes the receive path: arbitrary envelopes (type, source, ciphertext)
//! against an account holding a real session. Run with
//! `cargo +nightly fuzz run receive` from this folder.
#![no_main]

use std::sync::{Mutex, OnceLock};

use alcove_core::proto::relay::DeviceBundle;
use alcove_core::proto::wire::Envelope;
use alcove_core::{Account, DbKey};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    bob: Account,
    /// A real SignalMessage and PreKeySignalMessage to mutate from.
    seeds: Vec<Envelope>,
}

fn fixture() -> &'static Mutex<Fixture> {
    static F: OnceLock<Mutex<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = DbKey::random();
        let mut alice = Account::create(&dir.path().join("a.db"), &key, "acct-alice", 1).unwrap();
        let mut bob = Account::create(&dir.path().join("b.db"), &key, "acct-bob", 1).unwrap();
        alice.initial_prekeys().unwrap();
        let up = bob.initial_prekeys().unwrap();
        let bundle = DeviceBundle {
            device_id: 1,
            registration_id: bob.registration_id(),
            identity_key: bob.identity_key(),
            signed_prekey: up.signed_prekey,
            kyber_prekey: up.kyber_last_resort,
            one_time_prekey: up.one_time_prekeys.first().cloned(),
        };
        alice.process_bundle("acct-bob", &bundle).unwrap();
        let mk = |a: &Account, m: &alcove_core::proto::relay::OutgoingMessage, g: u8| Envelope {
            guid: vec![g; 16],
            r#type: m.r#type,
            source_account: a.account_id().into(),
            source_device: 1,
            destination_device: 1,
            ciphertext: m.ciphertext.clone(),
            server_timestamp: 0,
        };
        let first = alice.send_text("acct-bob", "first").unwrap();
        let prekey = mk(&alice, &first.messages[0], 1);
        bob.receive(std::slice::from_ref(&prekey)).unwrap();
        let reply = bob.send_text("acct-alice", "reply").unwrap();
        alice.receive(&[mk(&bob, &reply.messages[0], 2)]).unwrap();
        let next = alice.send_text("acct-bob", "second").unwrap();
        let signal = mk(&alice, &next.messages[0], 3);
        Mutex::new(Fixture { _dir: dir, bob, seeds: vec![prekey, signal] })
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let Ok(mut f) = fixture().lock() else { return };
    // First byte: raw bytes or a mutation of a real message; second: type.
    let mut env = f.seeds[(data[0] & 1) as usize].clone();
    env.guid = vec![data[1]; 16];
    env.r#type = i32::from(data[2] % 4);
    if data[0] & 2 == 0 {
        env.ciphertext = data[3..].to_vec();
    } else {
        for (i, b) in data[3..].iter().enumerate() {
            let n = env.ciphertext.len();
            if n > 0 {
                env.ciphertext[(i * 31 + usize::from(*b)) % n] ^= b;
            }
        }
    }
    let out = f.bob.receive(&[env]).expect("page-level error on hostile input");
    // Nothing hostile may be accepted except the real message itself.
    if let Ok(alcove_core::Received::Text(m)) = &out[0].result {
        assert!(m.body == "second" || m.body == "first");
    }
});
