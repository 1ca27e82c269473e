//! The outgoing path: content made, encrypted for every device of a
//! recipient (sealed or not) inside the caller's transaction.

use std::time::SystemTime;

use alcove_proto::content::{content::Body, receipt, Content, Receipt, Text, CONTENT_VERSION};
use alcove_proto::relay::OutgoingMessage;
use alcove_proto::wire::envelope;
use libsignal_protocol::{
    message_encrypt, sealed_sender_encrypt, CiphertextMessage, SenderCertificate, SessionStore,
};
use rand::RngCore;
use rusqlite::Connection;

use crate::account::{address, Account};
use crate::content;
use crate::conversations::{MessageKind, MessageStatus};
use crate::drive::drive;
use crate::error::{Error, Result};
use crate::session::session_devices;
use crate::store::{self, messages::NewMessage, signal_keys::Stores};

/// A text's length must fit one content with room for its envelope.
pub(crate) fn check_text(text: &str) -> Result<()> {
    if text.is_empty() || text.len() > content::MAX_CONTENT_LEN - 256 {
        return Err(Error::InvalidArgument("text length".into()));
    }
    Ok(())
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
    /// Encrypts and stores a text for every device of `remote_account` we
    /// have a session with, now, without the outbox. Returns what to hand
    /// the relay. (`Client::send_text` is the app's way: outbox, retries,
    /// sealed routing.)
    pub fn encrypt_text(&mut self, remote_account: &str, text: &str) -> Result<Outgoing> {
        check_text(text)?;
        self.encrypt_body(
            remote_account,
            Body::Text(Text { body: text.into() }),
            Some(text),
            Sealing::Unsealed,
        )
    }

    /// `encrypt_text`, sealed: every device's ciphertext is wrapped with
    /// libsignal's sealed sender under `sender_certificate` (serialized, as
    /// the relay issues it), so the envelopes name no sender. The
    /// certificate is not checked here; receivers check it.
    pub fn encrypt_text_sealed(
        &mut self,
        remote_account: &str,
        text: &str,
        sender_certificate: &[u8],
    ) -> Result<Outgoing> {
        check_text(text)?;
        let cert = crate::sealed::parse_certificate(sender_certificate)?;
        self.encrypt_body(
            remote_account,
            Body::Text(Text { body: text.into() }),
            Some(text),
            Sealing::Sealed(&cert),
        )
    }

    /// Encrypts a delivery or read receipt for messages of `remote_account`.
    pub fn encrypt_receipt(
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
        self.encrypt_body(remote_account, body, None, Sealing::Unsealed)
    }

    /// Any body, unchecked (see `testing::encrypt_content`).
    pub(crate) fn encrypt_raw(&mut self, remote_account: &str, body: Body) -> Result<Outgoing> {
        self.encrypt_body(remote_account, body, None, Sealing::Unsealed)
    }

    fn encrypt_body(
        &mut self,
        remote_account: &str,
        body: Body,
        text: Option<&str>,
        sealing: Sealing<'_>,
    ) -> Result<Outgoing> {
        crate::account::validate_account_id(remote_account)?;
        let (message_id, sent_at, plaintext) = self.new_content(body)?;
        let tx = self.ratchet_tx()?;
        let messages = self.encrypt_for_devices(&tx, remote_account, &plaintext, sealing)?;
        let local_id = match text {
            Some(text) => {
                let conversation = store::conversations::direct(&tx, remote_account, sent_at)?.id;
                let stored = store::messages::insert(
                    &tx,
                    &NewMessage {
                        conversation,
                        sender: None,
                        message_id: &message_id,
                        sender_device: self.device_id,
                        body: text,
                        sent_at,
                        received_at: sent_at,
                        status: MessageStatus::Sending,
                        kind: MessageKind::Text,
                    },
                )?;
                Some(stored.id)
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
        new_content_in(&self.conn, body, self.now())
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
}

/// A message id: the send time in milliseconds (big-endian, 6 bytes), then
/// 10 random bytes. Both sides index messages by (conversation, id); ids
/// that grow with time land at the end of that index instead of on a
/// random page, so a page of received messages dirties a few index pages
/// rather than one each (every dirty page is encrypted and MACed at
/// commit). Only the peer sees the id, inside the encrypted content that
/// already carries `sent_at`.
pub(crate) fn time_ordered_id(now_ms: u64) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    rand::rng().fill_bytes(&mut id[6..]);
    id
}

/// A new content (fresh message id, our delivery key) made inside an open
/// transaction: what the inbound dispatcher queues in answer to a content
/// (the practice profile for a client who just joined).
pub(crate) fn new_content_in(
    conn: &Connection,
    body: Body,
    now: u64,
) -> Result<(Vec<u8>, u64, Vec<u8>)> {
    let message_id = time_ordered_id(now);
    let plaintext = content::encode(&Content {
        version: CONTENT_VERSION,
        sent_at: now,
        message_id: message_id.clone(),
        body: Some(body),
        delivery_key: store::settings::get(conn, crate::sealed::DELIVERY_KEY)?.unwrap_or_default(),
    });
    Ok((message_id, now, plaintext))
}

#[cfg(test)]
mod tests {
    use super::time_ordered_id;

    #[test]
    fn message_ids_sort_by_send_time_and_stay_unpredictable() {
        let t = 1_780_000_000_000u64; // 2026, in milliseconds
        let a = time_ordered_id(t);
        let b = time_ordered_id(t + 1);
        let c = time_ordered_id(t + 86_400_000);
        assert_eq!(a.len(), 16);
        assert!(a < b && b < c, "ids must sort as their send times");
        assert_eq!(&a[..6], &t.to_be_bytes()[2..]);
        // Same millisecond: still distinct, by the 80 random bits.
        let same: std::collections::HashSet<Vec<u8>> =
            (0..1000).map(|_| time_ordered_id(t)).collect();
        assert_eq!(same.len(), 1000);
    }
}
