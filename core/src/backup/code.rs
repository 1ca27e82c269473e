//! The recovery code: 32 random bytes shown once as 56 base32 characters
//! in groups of four (the last four a check over the rest), so a mistyped
//! or truncated code is refused before any work is done.

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const SECRET_LEN: usize = 32;
const CHECK_LEN: usize = 3;

/// What the user writes down. Its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(Zeroizing<String>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

impl RecoveryCode {
    pub(crate) fn new(secret: &[u8; SECRET_LEN]) -> Self {
        let mut raw = secret.to_vec();
        raw.extend_from_slice(&Sha256::digest(secret)[..CHECK_LEN]);
        let text = BASE32_NOPAD.encode(&raw);
        let grouped: Vec<String> = text
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        RecoveryCode(Zeroizing::new(grouped.join("-")))
    }

    /// The code as shown (groups of four, dashes).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The secret in a code as typed: case, spaces and dashes ignored;
    /// `InvalidRecoveryCode` if it is not a whole, well-checked code.
    pub(crate) fn parse(typed: &str) -> Result<Zeroizing<[u8; SECRET_LEN]>> {
        let clean: Zeroizing<String> = Zeroizing::new(
            typed
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let raw = Zeroizing::new(
            BASE32_NOPAD
                .decode(clean.as_bytes())
                .map_err(|_| Error::InvalidRecoveryCode)?,
        );
        if raw.len() != SECRET_LEN + CHECK_LEN {
            return Err(Error::InvalidRecoveryCode);
        }
        let (secret, check) = raw.split_at(SECRET_LEN);
        if Sha256::digest(secret)[..CHECK_LEN] != *check {
            return Err(Error::InvalidRecoveryCode);
        }
        let mut out = Zeroizing::new([0u8; SECRET_LEN]);
        out.copy_from_slice(secret);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_typos_and_truncations_are_refused() {
        let secret = [7u8; 32];
        let code = RecoveryCode::new(&secret);
        assert_eq!(code.as_str().len(), 56 + 13);
        assert_eq!(*RecoveryCode::parse(code.as_str()).unwrap(), secret);
        let relaxed = code.as_str().to_lowercase().replace('-', " ");
        assert_eq!(*RecoveryCode::parse(&relaxed).unwrap(), secret);
        let s = code.as_str();
        for cut in [1, 5, 20, s.len() - 1] {
            assert!(RecoveryCode::parse(&s[..cut]).is_err(), "{cut}");
        }
        let mut typo = s.as_bytes().to_vec();
        typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
        assert!(RecoveryCode::parse(std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(format!("{code:?}").find(&s[..8]).is_none());
    }
}
