//! This device's relay credentials, kept in the encrypted database.

use crate::account::Account;
use crate::error::{Error, Result};
use crate::relay_client::Credentials;

impl Account {
    pub(crate) fn save_credentials(&self, c: &Credentials) -> Result<()> {
        self.set_setting("relay_secret", &c.secret)?;
        self.set_setting("relay_device_id", &c.device_id.to_be_bytes())
    }

    /// This device's relay credentials (tools and tests; apps never need them).
    #[doc(hidden)]
    pub fn relay_credentials(&self) -> Result<Credentials> {
        self.credentials()
    }

    /// Pins the relay's TLS certificate (its SHA-256, from the invite card):
    /// every later connection accepts that certificate only.
    pub(crate) fn set_relay_tls_pin(&self, sha256: &[u8; 32]) -> Result<()> {
        self.set_setting("relay_tls_pin", sha256)
    }

    /// The pinned relay certificate's SHA-256, if the relay is self-hosted
    /// under a private CA.
    pub fn relay_tls_pin(&self) -> Result<Option<[u8; 32]>> {
        self.setting("relay_tls_pin")?
            .map(|v| <[u8; 32]>::try_from(v.as_slice()).map_err(|_| Error::Corrupt))
            .transpose()
    }

    pub(crate) fn credentials(&self) -> Result<Credentials> {
        let secret = self.setting("relay_secret")?.ok_or(Error::NoAccount)?;
        let device = self.setting("relay_device_id")?.ok_or(Error::NoAccount)?;
        let device: [u8; 4] = device.try_into().map_err(|_| Error::Corrupt)?;
        Ok(Credentials {
            account_id: self.account_id.clone(),
            device_id: u32::from_be_bytes(device),
            secret: zeroize::Zeroizing::new(secret),
        })
    }
}
