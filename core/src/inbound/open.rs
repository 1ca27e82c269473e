//! Opening one envelope: replay check, size check, then libsignal
//! decrypts it (sealed sender: certificate checked against the pinned
//! trust root first). Yields who sent it and the plaintext; what the
//! content means is the dispatcher's business.

use alcove_proto::wire::{envelope, Envelope};
use futures_util::FutureExt;
use libsignal_protocol::{
    message_decrypt, sealed_sender_decrypt, sealed_sender_decrypt_to_usmc, CiphertextMessage,
    DeviceId, PreKeySignalMessage, PublicKey, SignalMessage, SignalProtocolError, Timestamp,
};

use rusqlite::Connection;

use crate::account::address;
use crate::drive::drive;
use crate::error::{Error, Result};
use crate::store::{self, signal_keys::Stores};

use super::MAX_CIPHERTEXT_LEN;

/// The author of an envelope: from the envelope, or for sealed sender
/// from the verified certificate.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) account: String,
    pub(crate) device: u32,
}

/// Who we are, for sealed-sender envelopes.
pub(crate) struct Local<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) device_id: DeviceId,
    pub(crate) trust_root: Option<PublicKey>,
}

/// Opens a sealed-sender envelope with libsignal's `sealed_sender_decrypt`
/// (certificate checked against the pinned trust root, then the inner
/// message decrypted with the same stores). Returns the sender named by
/// the verified certificate and the plaintext.
fn open_sealed(
    stores: &mut Stores<'_>,
    local: &Local<'_>,
    ciphertext: &[u8],
    now: u64,
) -> Result<(String, u32, Vec<u8>)> {
    let root = local
        .trust_root
        .as_ref()
        .ok_or(Error::InvalidSenderCertificate)?;
    let result = drive(
        sealed_sender_decrypt(
            ciphertext,
            root,
            Timestamp::from_epoch_millis(now),
            None,
            local.account_id.to_owned(),
            local.device_id,
            &mut stores.identities,
            &mut stores.sessions,
            &mut stores.prekeys,
            &stores.signed,
            &mut stores.kyber,
        )
        .map(Ok::<_, Error>),
    )?;
    match result {
        Ok(r) => {
            let sender = r.sender_uuid;
            crate::account::validate_account_id(&sender)
                .map_err(|_| Error::Malformed("sealed sender account id"))?;
            Ok((sender, u32::from(r.device_id), r.message))
        }
        // libsignal reports every certificate failure the same way; tell
        // a forged or foreign certificate from an expired one (the message
        // layer is read-only here: no state is touched).
        Err(SignalProtocolError::InvalidSealedSenderMessage(m)) => {
            let usmc = drive(sealed_sender_decrypt_to_usmc(
                ciphertext,
                &stores.identities,
            ));
            let Ok(usmc) = usmc else {
                return Err(Error::Decrypt(m));
            };
            let cert = usmc.sender().map_err(Error::from)?;
            let signed = cert
                .validate(root, Timestamp::from_epoch_millis(0))
                .map_err(|_| Error::InvalidSenderCertificate)?;
            if !signed {
                return Err(Error::InvalidSenderCertificate);
            }
            match cert.expiration() {
                Ok(exp) if exp.epoch_millis() < now => Err(Error::SenderCertificateExpired),
                _ => Err(Error::Decrypt(m)),
            }
        }
        Err(e) => Err(Error::from(e)),
    }
}

pub(crate) fn open(
    tx: &Connection,
    stores: &mut Stores<'_>,
    local: &Local<'_>,
    env: &Envelope,
    received_at: u64,
) -> Result<(Sender, Vec<u8>)> {
    if env.guid.len() != 16 {
        return Err(Error::Malformed("envelope guid"));
    }
    // Recorded first, inside the envelope's savepoint: rolled back with
    // everything else if the envelope fails.
    if !store::envelopes::record(tx, &env.guid, received_at)? {
        return Err(Error::DuplicateEnvelope);
    }
    if env.ciphertext.is_empty() || env.ciphertext.len() > MAX_CIPHERTEXT_LEN {
        return Err(Error::Malformed("envelope ciphertext size"));
    }
    let kind = envelope::Type::try_from(env.r#type);
    let (source_account, source_device, plaintext) = if kind == Ok(envelope::Type::SealedSender) {
        // The sender comes from the verified certificate; the relay's
        // envelope names nobody.
        open_sealed(stores, local, &env.ciphertext, received_at)?
    } else {
        let addr = address(&env.source_account, env.source_device)
            .map_err(|_| Error::Malformed("envelope source"))?;
        let ct = match kind {
            Ok(envelope::Type::PrekeyMessage) => CiphertextMessage::PreKeySignalMessage(
                PreKeySignalMessage::try_from(&env.ciphertext[..]).map_err(Error::from)?,
            ),
            Ok(envelope::Type::SignalMessage) => CiphertextMessage::SignalMessage(
                SignalMessage::try_from(&env.ciphertext[..]).map_err(Error::from)?,
            ),
            _ => return Err(Error::Malformed("envelope type")),
        };
        let plaintext = drive(message_decrypt(
            &ct,
            &addr,
            &mut stores.sessions,
            &mut stores.identities,
            &mut stores.prekeys,
            &stores.signed,
            &mut stores.kyber,
            &mut rand::rng(),
        ))?;
        (env.source_account.clone(), env.source_device, plaintext)
    };
    Ok((
        Sender {
            account: source_account,
            device: source_device,
        },
        plaintext,
    ))
}
