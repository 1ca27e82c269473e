//! Sealed sender on the send path: whether a send can go without naming
//! us (the recipient's delivery key and a valid sender certificate), the
//! sealed send itself with its fallbacks, and replacing our own delivery
//! key.

use std::sync::atomic::Ordering;

use alcove_proto::relay::SendRequest;
use libsignal_protocol::SenderCertificate;

use super::Client;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::relay_client::SendOutcome;

impl Client {
    /// The certificate and delivery key for a sealed send to
    /// `remote_account`, or `None` to send with credentials (no pinned
    /// trust root, no key from them yet, or no valid certificate).
    pub(super) async fn sealed_route(
        &self,
        remote_account: &str,
        deadline: Deadline,
    ) -> Result<Option<(SenderCertificate, Vec<u8>)>> {
        let known = self.account(|account| {
            if account.trust_root()?.is_none() {
                return Ok(None);
            }
            let Some(key) = account.remote_delivery_key(remote_account)? else {
                return Ok(None);
            };
            Ok(Some((key, account.cached_sender_certificate()?)))
        })?;
        let Some((key, cached)) = known else {
            return Ok(None);
        };
        if let Some(cert) = cached {
            return Ok(Some((cert, key)));
        }
        let creds = self.creds()?;
        let fetched = match self
            .relay_within(deadline)?
            .sender_certificate(&creds)
            .await
        {
            Ok(bytes) => self.account(|a| a.store_sender_certificate(&bytes)),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(cert) => Ok(Some((cert, key))),
            Err(e @ (Error::Network(_) | Error::UntrustedCertificate { .. })) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "no usable sender certificate; sending with credentials");
                Ok(None)
            }
        }
    }

    /// A sealed send. `None` when the relay refused the route (the
    /// recipient changed their key, or the relay stopped offering sealed
    /// sender): what failed is forgotten and the caller sends signed.
    pub(super) async fn send_sealed(
        &self,
        recipient: &str,
        key: &[u8],
        req: &SendRequest,
        deadline: Deadline,
    ) -> Result<Option<SendOutcome>> {
        match self
            .relay_within(deadline)?
            .send_sealed(recipient, key, req)
            .await
        {
            Ok(o) => {
                if o == SendOutcome::Sent {
                    self.sealed_sends.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(o))
            }
            Err(Error::Unauthorized) => {
                tracing::debug!("delivery key refused; sending with credentials");
                self.account(|a| a.forget_remote_delivery_key(recipient))?;
                Ok(None)
            }
            Err(Error::Relay { status: 404, code }) if code == "sealed_sender_off" => {
                // The relay stopped offering sealed sender: drop the cached
                // certificate (a new one will not be issued) and send signed.
                self.account(|a| a.forget_sender_certificate())?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces this account's delivery key (say, to shut out a contact
    /// it no longer wants sealed mail from): the relay learns the new
    /// key's hash first, then the account keeps it and shares it with
    /// whoever it writes to next. Holders of the old key get 401 and fall
    /// back to signed sends until they hear from us.
    pub async fn rotate_delivery_key(&self) -> Result<()> {
        self.wiping_if_revoked(self.rotate_delivery_key_unguarded().await)
    }

    async fn rotate_delivery_key_unguarded(&self) -> Result<()> {
        if self.account(|a| a.trust_root())?.is_none() {
            return Err(Error::InvalidArgument(
                "this relay offers no sealed sender".into(),
            ));
        }
        let key = crate::random_bytes(crate::DELIVERY_KEY_LEN);
        let creds = self.creds()?;
        self.relay.set_delivery_key(&creds, &key).await?;
        self.account(|a| a.set_delivery_key(&key))
    }

    /// How many sends went sealed since this client was opened.
    pub fn sealed_sends(&self) -> u64 {
        self.sealed_sends.load(Ordering::Relaxed)
    }
}
