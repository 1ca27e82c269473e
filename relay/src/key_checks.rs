//! Uploaded keys are checked as keys, not as byte strings: an identity key
//! must parse as one, every EC prekey is a 33-byte Curve25519 public key,
//! every Kyber prekey a Kyber1024 public key of its fixed size, and every
//! signature 64 bytes that verify under the account's identity key. Junk
//! never reaches the database (where it would grow it, and break
//! `GET /v1/certificate` or a peer's session set-up later).

use alcove_proto::relay::{PreKey, PreKeyUpload, SignedPreKey};
use libsignal_protocol::{kem, IdentityKey, PublicKey};

/// Most one-time keys of each kind per upload (Signal's client policy).
pub const MAX_KEYS_PER_UPLOAD: usize = 100;
/// A serialized Curve25519 public key: type byte + 32 bytes.
pub const EC_PUBLIC_KEY_LEN: usize = 33;
/// An XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// What is wrong with an upload; the API answers 400 with the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("at most {MAX_KEYS_PER_UPLOAD} one-time keys of each kind")]
    TooMany,
    #[error("identity key is not a valid public key")]
    IdentityKey,
    #[error("{0} is not a valid public key")]
    PublicKey(&'static str),
    #[error("{0} signature does not verify under the identity key")]
    Signature(&'static str),
    #[error("signed prekey and Kyber last-resort key required")]
    Missing,
}

impl KeyError {
    /// The `ErrorBody` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooMany => "too_many_keys",
            Self::IdentityKey => "invalid_identity_key",
            Self::PublicKey(_) | Self::Signature(_) | Self::Missing => "invalid_key",
        }
    }
}

/// Parses a serialized identity key (33 bytes, Curve25519).
pub fn identity_key(bytes: &[u8]) -> Result<IdentityKey, KeyError> {
    if bytes.len() != EC_PUBLIC_KEY_LEN {
        return Err(KeyError::IdentityKey);
    }
    IdentityKey::decode(bytes).map_err(|_| KeyError::IdentityKey)
}

fn ec_key(p: &[u8], what: &'static str) -> Result<(), KeyError> {
    if p.len() != EC_PUBLIC_KEY_LEN || PublicKey::deserialize(p).is_err() {
        return Err(KeyError::PublicKey(what));
    }
    Ok(())
}

fn kyber_key(p: &[u8], what: &'static str) -> Result<(), KeyError> {
    // `deserialize` checks the key type byte and the exact length.
    kem::PublicKey::deserialize(p)
        .map(|_| ())
        .map_err(|_| KeyError::PublicKey(what))
}

fn signed(
    identity: &IdentityKey,
    k: &SignedPreKey,
    what: &'static str,
    check_key: fn(&[u8], &'static str) -> Result<(), KeyError>,
) -> Result<(), KeyError> {
    check_key(&k.public_key, what)?;
    if k.signature.len() != SIGNATURE_LEN
        || !identity
            .public_key()
            .verify_signature(&k.public_key, &k.signature)
    {
        return Err(KeyError::Signature(what));
    }
    Ok(())
}

/// Checks a prekey upload against the account's identity key. With
/// `initial`, the signed prekey and the Kyber last-resort key are required
/// (registration).
pub fn check_upload(identity: &[u8], k: &PreKeyUpload, initial: bool) -> Result<(), KeyError> {
    if k.one_time_prekeys.len() > MAX_KEYS_PER_UPLOAD
        || k.one_time_kyber_prekeys.len() > MAX_KEYS_PER_UPLOAD
    {
        return Err(KeyError::TooMany);
    }
    if initial && (k.signed_prekey.is_none() || k.kyber_last_resort.is_none()) {
        return Err(KeyError::Missing);
    }
    let identity = identity_key(identity)?;
    if let Some(s) = &k.signed_prekey {
        signed(&identity, s, "signed prekey", ec_key)?;
    }
    if let Some(s) = &k.kyber_last_resort {
        signed(&identity, s, "Kyber last-resort key", kyber_key)?;
    }
    for s in &k.one_time_kyber_prekeys {
        signed(&identity, s, "one-time Kyber prekey", kyber_key)?;
    }
    for PreKey { public_key, .. } in &k.one_time_prekeys {
        ec_key(public_key, "one-time prekey")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libsignal_protocol::{IdentityKeyPair, KeyPair};

    fn upload(id: &IdentityKeyPair) -> PreKeyUpload {
        let mut rng = rand::rng();
        let sign = |bytes: &[u8]| {
            id.private_key()
                .calculate_signature(bytes, &mut rand::rng())
                .expect("sign")
                .to_vec()
        };
        let ec = KeyPair::generate(&mut rng).public_key.serialize().to_vec();
        let kyber = kem::KeyPair::generate(kem::KeyType::Kyber1024, &mut rng)
            .public_key
            .serialize()
            .to_vec();
        PreKeyUpload {
            signed_prekey: Some(SignedPreKey {
                id: 1,
                signature: sign(&ec),
                public_key: ec.clone(),
            }),
            kyber_last_resort: Some(SignedPreKey {
                id: 2,
                signature: sign(&kyber),
                public_key: kyber.clone(),
            }),
            one_time_prekeys: vec![PreKey {
                id: 3,
                public_key: KeyPair::generate(&mut rng).public_key.serialize().to_vec(),
            }],
            one_time_kyber_prekeys: vec![SignedPreKey {
                id: 4,
                signature: sign(&kyber),
                public_key: kyber,
            }],
        }
    }

    #[test]
    fn real_keys_pass_and_every_kind_of_junk_is_refused() {
        let id = IdentityKeyPair::generate(&mut rand::rng());
        let ik = id.identity_key().serialize().to_vec();
        let good = upload(&id);
        check_upload(&ik, &good, true).unwrap();

        // A junk identity key (right length, wrong type byte; or too long).
        let mut junk = ik.clone();
        junk[0] = 0x42;
        assert_eq!(check_upload(&junk, &good, true), Err(KeyError::IdentityKey));
        assert_eq!(
            identity_key(&[5u8; 4096]).unwrap_err(),
            KeyError::IdentityKey
        );

        // Signed by someone else.
        let other = IdentityKeyPair::generate(&mut rand::rng());
        let foreign = other.identity_key().serialize().to_vec();
        assert!(matches!(
            check_upload(&foreign, &good, true),
            Err(KeyError::Signature("signed prekey"))
        ));

        // Oversized "keys" (a database-growth attack) and truncated ones.
        let mut big = good.clone();
        big.one_time_prekeys[0].public_key = vec![5u8; 64 * 1024];
        assert_eq!(
            check_upload(&ik, &big, true),
            Err(KeyError::PublicKey("one-time prekey"))
        );
        let mut short = good.clone();
        if let Some(k) = short.kyber_last_resort.as_mut() {
            k.public_key.truncate(100);
        }
        assert_eq!(
            check_upload(&ik, &short, true),
            Err(KeyError::PublicKey("Kyber last-resort key"))
        );
        let mut longsig = good.clone();
        longsig.one_time_kyber_prekeys[0].signature.push(0);
        assert_eq!(
            check_upload(&ik, &longsig, true),
            Err(KeyError::Signature("one-time Kyber prekey"))
        );

        // Too many, and missing at registration (fine on a refill).
        let mut many = good.clone();
        many.one_time_prekeys = vec![good.one_time_prekeys[0].clone(); 101];
        assert_eq!(check_upload(&ik, &many, false), Err(KeyError::TooMany));
        let refill = PreKeyUpload {
            one_time_prekeys: good.one_time_prekeys.clone(),
            ..Default::default()
        };
        check_upload(&ik, &refill, false).unwrap();
        assert_eq!(check_upload(&ik, &refill, true), Err(KeyError::Missing));
    }
}

#[doc(hidden)]
/// For tests of the relay and its clients that speak the HTTP API without
/// the core: a device's real identity key and prekeys, signed as a client
/// signs them (the relay refuses anything else).
pub mod testing {
    use alcove_proto::relay::{PreKey, PreKeyUpload, SignedPreKey};
    use libsignal_protocol::{kem, IdentityKeyPair, KeyPair};

    pub struct DeviceKeys {
        identity: IdentityKeyPair,
    }

    impl DeviceKeys {
        pub fn generate() -> Self {
            Self {
                identity: IdentityKeyPair::generate(&mut rand::rng()),
            }
        }

        /// The serialized public identity key (33 bytes).
        pub fn identity_key(&self) -> Vec<u8> {
            self.identity.identity_key().serialize().to_vec()
        }

        fn signed(&self, id: u32, public_key: Vec<u8>) -> SignedPreKey {
            let signature = self
                .identity
                .private_key()
                .calculate_signature(&public_key, &mut rand::rng())
                .map(|s| s.to_vec())
                .unwrap_or_default();
            SignedPreKey {
                id,
                public_key,
                signature,
            }
        }

        fn kyber(&self, id: u32) -> SignedPreKey {
            let k = kem::KeyPair::generate(kem::KeyType::Kyber1024, &mut rand::rng());
            self.signed(id, k.public_key.serialize().to_vec())
        }

        /// A signed prekey (id 1), a Kyber last-resort key (id 1000) and
        /// `n` one-time keys of each kind with ids from `start`.
        pub fn upload(&self, n: u32, start: u32) -> PreKeyUpload {
            let ec = || {
                KeyPair::generate(&mut rand::rng())
                    .public_key
                    .serialize()
                    .to_vec()
            };
            PreKeyUpload {
                signed_prekey: Some(self.signed(1, ec())),
                kyber_last_resort: Some(self.kyber(1000)),
                one_time_prekeys: (start..start + n)
                    .map(|id| PreKey {
                        id,
                        public_key: ec(),
                    })
                    .collect(),
                one_time_kyber_prekeys: (start..start + n).map(|id| self.kyber(id)).collect(),
            }
        }
    }
}
