//! Sessions and the message path: PQXDH from a prekey bundle, encrypt for
//! every device of a recipient, and receive a page of envelopes in one
//! transaction (ratchet advanced + message stored + envelope id recorded).

use std::time::SystemTime;

use alcove_proto::content::{content::Body, receipt, Content, Receipt, Text, CONTENT_VERSION};
use alcove_proto::relay::{DeviceBundle, OutgoingMessage};
use alcove_proto::wire::{envelope, Envelope};
use futures_util::FutureExt;
use libsignal_protocol::{
    kem, message_decrypt, message_encrypt, process_prekey_bundle, sealed_sender_decrypt,
    sealed_sender_decrypt_to_usmc, sealed_sender_encrypt, CiphertextMessage, DeviceId, IdentityKey,
    PreKeyBundle, PreKeySignalMessage, PublicKey, SenderCertificate, SessionStore, SignalMessage,
    SignalProtocolError, Timestamp,
};
use rand::RngCore;
use rusqlite::{params, Connection};

use crate::account::{address, Account};
use crate::content;
use crate::conversations::{self, Message, MessageStatus};
use crate::drive::{drive, guard};
use crate::error::{Error, Result};
use crate::protocol_store::Stores;

/// Largest envelope ciphertext the core will try to parse.
pub const MAX_CIPHERTEXT_LEN: usize = 96 * 1024;

/// What one envelope turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A text message, now stored.
    Text(Message),
    /// A receipt; `updated` outgoing messages changed status.
    /// `remote_account` is the sender: from the envelope, or for sealed
    /// sender from the verified certificate.
    Receipt {
        kind: MessageStatus,
        updated: usize,
        remote_account: String,
    },
}

/// The result for one envelope of a page.
#[derive(Debug)]
pub struct EnvelopeOutcome {
    pub guid: Vec<u8>,
    pub result: Result<Received>,
}

impl EnvelopeOutcome {
    /// Whether the relay may drop this envelope: it was stored, was a
    /// duplicate, or can never be processed. Only storage failures (disk
    /// full, I/O) keep it queued for a retry.
    pub fn ackable(&self) -> bool {
        !matches!(
            self.result,
            Err(Error::StorageFull) | Err(Error::Storage(_)) | Err(Error::Corrupt)
        )
    }
}

/// Whether an outgoing ciphertext names its sender on the envelope.
#[derive(Clone, Copy)]
pub(crate) enum Sealing<'a> {
    /// A plain Signal message; the relay sees who sent it (our credentials).
    Unsealed,
    /// Sealed sender under this certificate: the envelope names no sender.
    Sealed(&'a SenderCertificate),
}

impl<'a> From<Option<&'a SenderCertificate>> for Sealing<'a> {
    fn from(cert: Option<&'a SenderCertificate>) -> Self {
        cert.map_or(Sealing::Unsealed, Sealing::Sealed)
    }
}

/// A message encrypted for every device of its recipient.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Local row id of the stored outgoing message (None for receipts).
    pub local_id: Option<i64>,
    /// The content's message id (16 bytes).
    pub message_id: Vec<u8>,
    pub recipient: String,
    pub messages: Vec<OutgoingMessage>,
}

impl Account {
    /// Starts a PQXDH session with one device of `remote_account` from its
    /// prekey bundle (as the relay hands it out). Checks the bundle's
    /// signatures; a changed identity key is recorded as pending and
    /// reported as `IdentityChanged`.
    pub fn process_bundle(&mut self, remote_account: &str, bundle: &DeviceBundle) -> Result<()> {
        let addr = address(remote_account, bundle.device_id)?;
        let b = to_libsignal_bundle(bundle)?;
        let tx = self.ratchet_tx()?;
        let mut stores = Stores::new(&tx, self.identity, self.registration_id);
        let now = SystemTime::now();
        let result = drive(process_prekey_bundle(
            &addr,
            &mut stores.sessions,
            &mut stores.identities,
            &b,
            now,
            &mut rand::rng(),
        ));
        if let Err(Error::IdentityChanged { .. }) = &result {
            // Keep the new key as pending so the user can compare and accept.
            drive(libsignal_protocol::IdentityKeyStore::save_identity(
                &mut stores.identities,
                &addr,
                &IdentityKey::decode(&bundle.identity_key)
                    .map_err(|_| bad_bundle("identity key"))?,
            ))?;
            tx.commit()?;
            return result;
        }
        result.map_err(|e| match e {
            Error::Decrypt(m) => Error::InvalidBundle(m),
            other => other,
        })?;
        stores.sessions.flush()?;
        tx.commit()?;
        tracing::debug!(device = bundle.device_id, "session established");
        Ok(())
    }

    /// Device ids of `remote_account` we hold sessions with.
    pub fn session_devices(&self, remote_account: &str) -> Result<Vec<u32>> {
        session_devices(&self.conn, remote_account)
    }

    /// Encrypts and stores a text for every device of `remote_account` we
    /// have a session with. Returns what to hand the relay.
    pub fn send_text(&mut self, remote_account: &str, text: &str) -> Result<Outgoing> {
        if text.is_empty() || text.len() > content::MAX_CONTENT_LEN - 256 {
            return Err(Error::InvalidArgument("text length".into()));
        }
        let body = Body::Text(Text { body: text.into() });
        self.send_body(remote_account, body, Some(text), None)
    }

    /// `send_text`, sealed: every device's ciphertext is wrapped with
    /// libsignal's sealed sender under `sender_certificate` (serialized, as
    /// the relay issues it), so the envelopes name no sender. The
    /// certificate is not checked here; receivers check it.
    pub fn send_text_sealed(
        &mut self,
        remote_account: &str,
        text: &str,
        sender_certificate: &[u8],
    ) -> Result<Outgoing> {
        if text.is_empty() || text.len() > content::MAX_CONTENT_LEN - 256 {
            return Err(Error::InvalidArgument("text length".into()));
        }
        let cert = crate::sealed::parse_certificate(sender_certificate)?;
        let body = Body::Text(Text { body: text.into() });
        self.send_body(remote_account, body, Some(text), Some(&cert))
    }

    /// Encrypts a delivery or read receipt for messages of `remote_account`.
    pub fn send_receipt(
        &mut self,
        remote_account: &str,
        read: bool,
        message_ids: Vec<Vec<u8>>,
    ) -> Result<Outgoing> {
        let kind = if read {
            receipt::Kind::Read
        } else {
            receipt::Kind::Delivery
        };
        let body = Body::Receipt(Receipt {
            kind: kind as i32,
            message_ids,
        });
        self.send_body(remote_account, body, None, None)
    }

    fn send_body(
        &mut self,
        remote_account: &str,
        body: Body,
        text: Option<&str>,
        cert: Option<&SenderCertificate>,
    ) -> Result<Outgoing> {
        crate::account::validate_account_id(remote_account)?;
        let (message_id, sent_at, plaintext) = self.new_content(body)?;
        let tx = self.ratchet_tx()?;
        let messages =
            self.encrypt_for_devices(&tx, remote_account, &plaintext, Sealing::from(cert))?;
        let local_id = match text {
            Some(text) => {
                Some(self.store_outgoing(&tx, remote_account, &message_id, text, sent_at)?)
            }
            None => None,
        };
        tx.commit()?;
        Ok(Outgoing {
            local_id,
            message_id,
            recipient: remote_account.to_owned(),
            messages,
        })
    }

    /// Every content carries our delivery key (when we have one), so
    /// whoever we write to can answer sealed; it travels end-to-end
    /// encrypted only.
    pub(crate) fn new_content(&self, body: Body) -> Result<(Vec<u8>, u64, Vec<u8>)> {
        let mut message_id = vec![0u8; 16];
        rand::rng().fill_bytes(&mut message_id);
        let sent_at = self.now();
        let plaintext = content::encode(&Content {
            version: CONTENT_VERSION,
            sent_at,
            message_id: message_id.clone(),
            body: Some(body),
            delivery_key: self.delivery_key()?.unwrap_or_default(),
        });
        Ok((message_id, sent_at, plaintext))
    }

    pub(crate) fn store_outgoing(
        &self,
        tx: &Connection,
        remote_account: &str,
        message_id: &[u8],
        text: &str,
        sent_at: u64,
    ) -> Result<i64> {
        let conversation = conversations::get_or_create(tx, remote_account, sent_at)?;
        conversations::insert_message(
            tx,
            conversation,
            message_id,
            true,
            self.device_id,
            text,
            sent_at,
            sent_at,
            MessageStatus::Sending,
        )
    }

    /// Encrypts `plaintext` for every device of `remote_account` we hold a
    /// session with, inside `tx` (the ratchet advance commits with it).
    /// `Sealing::Sealed` wraps each ciphertext with libsignal's
    /// `sealed_sender_encrypt`, so the envelope names no sender;
    /// `Sealing::Unsealed` sends a plain Signal message under our
    /// credentials.
    pub(crate) fn encrypt_for_devices(
        &self,
        tx: &Connection,
        remote_account: &str,
        plaintext: &[u8],
        sealing: Sealing<'_>,
    ) -> Result<Vec<OutgoingMessage>> {
        if self.identity_change_pending(remote_account)? {
            return Err(Error::IdentityChanged {
                account_id: remote_account.to_owned(),
            });
        }
        if self.prekey_rotation_overdue()? {
            return Err(Error::PrekeyRotationOverdue);
        }
        let devices = session_devices(tx, remote_account)?;
        if devices.is_empty() {
            return Err(Error::NoSession {
                account_id: remote_account.to_owned(),
                device_id: 0,
            });
        }
        let mut stores = Stores::new(tx, self.identity, self.registration_id);
        let mut messages = Vec::with_capacity(devices.len());
        for device in devices {
            let addr = address(remote_account, device)?;
            let (kind, bytes) = match sealing {
                Sealing::Sealed(cert) => (
                    envelope::Type::SealedSender,
                    drive(sealed_sender_encrypt(
                        &addr,
                        cert,
                        plaintext,
                        &mut stores.sessions,
                        &mut stores.identities,
                        SystemTime::now(),
                        &mut rand::rng(),
                    ))?,
                ),
                Sealing::Unsealed => match drive(message_encrypt(
                    plaintext,
                    &addr,
                    &mut stores.sessions,
                    &mut stores.identities,
                    SystemTime::now(),
                    &mut rand::rng(),
                ))? {
                    CiphertextMessage::PreKeySignalMessage(m) => {
                        (envelope::Type::PrekeyMessage, m.serialized().to_vec())
                    }
                    CiphertextMessage::SignalMessage(m) => {
                        (envelope::Type::SignalMessage, m.serialized().to_vec())
                    }
                    _ => return Err(Error::Internal("unexpected ciphertext type".into())),
                },
            };
            let record =
                drive(stores.sessions.load_session(&addr))?.ok_or_else(|| Error::NoSession {
                    account_id: remote_account.to_owned(),
                    device_id: device,
                })?;
            let registration_id = record.remote_registration_id().map_err(Error::from)?;
            messages.push(OutgoingMessage {
                destination_device: device,
                destination_registration_id: registration_id,
                r#type: kind as i32,
                ciphertext: bytes,
            });
        }
        stores.sessions.flush()?;
        Ok(messages)
    }

    /// Forgets sessions with devices the relay says are gone or stale.
    pub fn drop_sessions(&mut self, remote_account: &str, devices: &[u32]) -> Result<()> {
        let tx = self.ratchet_tx()?;
        for d in devices {
            tx.execute(
                "DELETE FROM sessions WHERE address = ?1",
                [format!("{remote_account}.{d}")],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Receives a page of envelopes in one transaction. Each envelope runs
    /// in its own savepoint: one that fails leaves no trace, the others
    /// still commit. Ack to the relay only after this returns `Ok`, and only
    /// envelopes whose outcome is `ackable`.
    pub fn receive(&mut self, envelopes: &[Envelope]) -> Result<Vec<EnvelopeOutcome>> {
        let received_at = self.now();
        let local = Local {
            account_id: &self.account_id,
            device_id: crate::account::device_id(self.device_id)?,
            trust_root: self.trust_root_key()?,
        };
        let tx = self.ratchet_tx()?;
        let mut stores = Stores::new(&tx, self.identity, self.registration_id);
        let mut outcomes = Vec::with_capacity(envelopes.len());
        for env in envelopes {
            tx.execute_batch("SAVEPOINT envelope")?;
            let result = guard(|| receive_one(&tx, &mut stores, &local, env, received_at));
            match &result {
                Ok(_) => {
                    tx.execute_batch("RELEASE envelope")?;
                    stores.sessions.commit_staged();
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO envelope; RELEASE envelope")?;
                    stores.sessions.drop_staged();
                    if matches!(e, Error::StorageFull | Error::Storage(_) | Error::Corrupt) {
                        // The page cannot be stored: give up on it whole.
                        return Err(result.err().unwrap_or(Error::Storage("receive".into())));
                    }
                    tracing::debug!(error = %e, "envelope not processed");
                }
            }
            outcomes.push(EnvelopeOutcome {
                guid: env.guid.clone(),
                result,
            });
        }
        stores.sessions.flush()?;
        tx.commit()?;
        Ok(outcomes)
    }
}

/// Who we are, for sealed-sender envelopes.
struct Local<'a> {
    account_id: &'a str,
    device_id: DeviceId,
    trust_root: Option<PublicKey>,
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

fn receive_one(
    tx: &Connection,
    stores: &mut Stores<'_>,
    local: &Local<'_>,
    env: &Envelope,
    received_at: u64,
) -> Result<Received> {
    if env.guid.len() != 16 {
        return Err(Error::Malformed("envelope guid"));
    }
    // Recorded first, inside the envelope's savepoint: rolled back with
    // everything else if the envelope fails.
    let fresh = tx
        .prepare_cached(
            "INSERT INTO processed_envelopes (guid, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![&env.guid, received_at as i64])?;
    if fresh == 0 {
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
    let content = content::decode(&plaintext)?;
    if !content.delivery_key.is_empty() {
        crate::sealed::save_remote_delivery_key(
            tx,
            &source_account,
            &content.delivery_key,
            received_at,
        )?;
    }
    let received = match content.body {
        Some(Body::Text(text)) => {
            let conversation = conversations::get_or_create(tx, &source_account, received_at)?;
            let id = conversations::insert_message(
                tx,
                conversation,
                &content.message_id,
                false,
                source_device,
                &text.body,
                content.sent_at,
                received_at,
                MessageStatus::Received,
            )?;
            Received::Text(Message {
                id,
                remote_account: source_account,
                message_id: content.message_id,
                outgoing: false,
                sender_device: source_device,
                body: text.body,
                sent_at: content.sent_at,
                received_at,
                status: MessageStatus::Received,
            })
        }
        Some(Body::Receipt(r)) => {
            let kind = match receipt::Kind::try_from(r.kind) {
                Ok(receipt::Kind::Read) => MessageStatus::Read,
                _ => MessageStatus::Delivered,
            };
            let updated = conversations::apply_receipt(tx, &source_account, &r.message_ids, kind)?;
            Received::Receipt {
                kind,
                updated,
                remote_account: source_account,
            }
        }
        None => return Err(Error::UnknownContent),
    };
    Ok(received)
}

pub(crate) fn session_devices(conn: &Connection, remote_account: &str) -> Result<Vec<u32>> {
    let prefix = format!("{remote_account}.");
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM sessions WHERE substr(address, 1, length(?1)) = ?1 ORDER BY address",
    )?;
    let rows = stmt.query_map([&prefix], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let a = row?;
        if let Some(d) = a.strip_prefix(&prefix).and_then(|d| d.parse().ok()) {
            out.push(d);
        }
    }
    Ok(out)
}

fn bad_bundle(what: &str) -> Error {
    Error::InvalidBundle(what.into())
}

fn to_libsignal_bundle(b: &DeviceBundle) -> Result<PreKeyBundle> {
    let signed = b
        .signed_prekey
        .as_ref()
        .ok_or_else(|| bad_bundle("signed prekey missing"))?;
    let kyber = b
        .kyber_prekey
        .as_ref()
        .ok_or_else(|| bad_bundle("kyber prekey missing"))?;
    let one_time = b
        .one_time_prekey
        .as_ref()
        .map(|p| {
            PublicKey::deserialize(&p.public_key)
                .map(|k| (p.id.into(), k))
                .map_err(|_| bad_bundle("one-time prekey"))
        })
        .transpose()?;
    PreKeyBundle::new(
        b.registration_id,
        crate::account::device_id(b.device_id)?,
        one_time,
        signed.id.into(),
        PublicKey::deserialize(&signed.public_key).map_err(|_| bad_bundle("signed prekey"))?,
        signed.signature.clone(),
        kyber.id.into(),
        kem::PublicKey::deserialize(&kyber.public_key).map_err(|_| bad_bundle("kyber prekey"))?,
        kyber.signature.clone(),
        IdentityKey::decode(&b.identity_key).map_err(|_| bad_bundle("identity key"))?,
    )
    .map_err(|e| Error::InvalidBundle(e.to_string()))
}
