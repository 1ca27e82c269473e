//! Opening one envelope: replay check, size check, then libsignal
//! decrypts it (sealed sender: unsealed, its certificate checked against
//! the pinned trust root — once per page per certificate — then the inner
//! message decrypted). Yields who sent it and the plaintext; what the
//! content means is the dispatcher's business.

use alcove_proto::wire::{envelope, Envelope};
use libsignal_protocol::{
    message_decrypt, sealed_sender_decrypt_to_usmc, CiphertextMessage, CiphertextMessageType,
    DeviceId, PreKeySignalMessage, ProtocolAddress, PublicKey, SignalMessage,
};

use rusqlite::Connection;

use crate::account::address;
use crate::drive::drive;
use crate::error::{Error, Result};
use crate::stages::Lap;
use crate::store::{self, signal_keys::Stores};

use super::page::PageState;
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

/// The sealed layer opened and its certificate checked: who sent it and
/// the inner message. libsignal's `sealed_sender_decrypt` does the same in
/// one call, but validates the certificate's two signatures on every
/// message; here a page pays for each distinct certificate once.
fn unseal(
    stores: &Stores<'_>,
    local: &Local<'_>,
    page: &mut PageState,
    ciphertext: &[u8],
    now: u64,
) -> Result<(Sender, CiphertextMessage)> {
    let root = local
        .trust_root
        .as_ref()
        .ok_or(Error::InvalidSenderCertificate)?;
    let mut lap = Lap::start();
    let usmc = drive(sealed_sender_decrypt_to_usmc(
        ciphertext,
        &stores.identities,
    ))?;
    page.stages.unseal += lap.lap();
    let cert = usmc.sender().map_err(Error::from)?;
    page.certificates.check(cert, root, now)?;
    page.stages.certificate += lap.lap();
    let account = cert.sender_uuid().map_err(Error::from)?.to_owned();
    crate::account::validate_account_id(&account)
        .map_err(|_| Error::Malformed("sealed sender account id"))?;
    let device = cert.sender_device_id().map_err(Error::from)?;
    if account == local.account_id && device == local.device_id {
        return Err(Error::SealedSenderSelfSend);
    }
    let contents = usmc.contents().map_err(Error::from)?;
    let message = match usmc.msg_type().map_err(Error::from)? {
        CiphertextMessageType::Whisper => {
            CiphertextMessage::SignalMessage(SignalMessage::try_from(contents)?)
        }
        CiphertextMessageType::PreKey => {
            CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(contents)?)
        }
        _ => return Err(Error::Malformed("sealed message type")),
    };
    page.stages.parse += lap.lap();
    Ok((
        Sender {
            account,
            device: u32::from(device),
        },
        message,
    ))
}

pub(crate) fn open(
    tx: &Connection,
    stores: &mut Stores<'_>,
    local: &Local<'_>,
    page: &mut PageState,
    env: &Envelope,
    received_at: u64,
) -> Result<(Sender, Vec<u8>)> {
    // The checks that need no database come first: an envelope they
    // refuse has written nothing (see `receive_timed`).
    if env.guid.len() != 16 {
        return Err(Error::Malformed("envelope guid"));
    }
    if env.ciphertext.is_empty() || env.ciphertext.len() > MAX_CIPHERTEXT_LEN {
        return Err(Error::Malformed("envelope ciphertext size"));
    }
    let kind = envelope::Type::try_from(env.r#type);
    if kind.is_err() || kind == Ok(envelope::Type::Unknown) {
        return Err(Error::Malformed("envelope type"));
    }
    let mut lap = Lap::start();
    // Recorded before the decrypt, and rolled back with everything else
    // if the envelope fails. A redelivery writes nothing here.
    let fresh = store::envelopes::record(tx, env.server_timestamp, &env.guid, received_at)?;
    page.stages.dedup += lap.lap();
    if !fresh {
        return Err(Error::DuplicateEnvelope);
    }
    let (sender, ct) = if kind == Ok(envelope::Type::SealedSender) {
        // The sender comes from the verified certificate; the relay's
        // envelope names nobody.
        unseal(stores, local, page, &env.ciphertext, received_at)?
    } else {
        let ct = match kind {
            Ok(envelope::Type::PrekeyMessage) => CiphertextMessage::PreKeySignalMessage(
                PreKeySignalMessage::try_from(&env.ciphertext[..]).map_err(Error::from)?,
            ),
            Ok(envelope::Type::SignalMessage) => CiphertextMessage::SignalMessage(
                SignalMessage::try_from(&env.ciphertext[..]).map_err(Error::from)?,
            ),
            _ => return Err(Error::Malformed("envelope type")),
        };
        let sender = Sender {
            account: env.source_account.clone(),
            device: env.source_device,
        };
        page.stages.parse += lap.lap();
        (sender, ct)
    };
    let addr: ProtocolAddress =
        address(&sender.account, sender.device).map_err(|_| Error::Malformed("envelope source"))?;
    let mut lap = Lap::start();
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
    let callbacks = stores.take_callback_time();
    page.stages.decrypt += lap.lap().saturating_sub(callbacks);
    page.stages.callbacks += callbacks;
    Ok((sender, plaintext))
}
