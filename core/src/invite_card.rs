//! The invite card: one string a therapist's device makes for a new
//! client, usable as a link and as QR text. It carries the relay URL, the
//! one-time token, the therapist's account id and identity key, the
//! relay's sealed-sender trust root and, for a self-hosted relay, a pin of
//! its TLS certificate. Text form: `alcove:1:<base64url(proto)>.<check>`,
//! where `check` is the first 4 bytes of SHA-256 over everything before
//! the dot, in hex: a mistyped or truncated card is a typed error before
//! any network call. A card altered and re-checksummed still fails at
//! enrolment: the therapist's served identity must match the card's.

use alcove_proto::card::InviteCard as Wire;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libsignal_protocol::{IdentityKey, PublicKey};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::account::validate_account_id;
use crate::error::{Error, Result};

const PREFIX: &str = "alcove:1:";
/// Longest card text accepted (a real card is ~250 characters).
pub const MAX_CARD_LEN: usize = 2048;

/// A parsed, checked invite card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCard {
    pub relay_url: String,
    pub token: String,
    pub therapist_account: String,
    pub therapist_identity_key: Vec<u8>,
    /// Empty when the relay offers no sealed sender.
    pub trust_root: Vec<u8>,
    pub tls_certificate_sha256: Option<[u8; 32]>,
    /// Ms since the Unix epoch; `None` when the card does not say.
    pub expires_at: Option<u64>,
}

fn bad(reason: &'static str) -> Error {
    Error::InvalidCard { reason }
}

fn check(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..4])
}

impl InviteCard {
    /// The card as text (a link and QR payload).
    pub fn encode(&self) -> String {
        let wire = Wire {
            relay_url: self.relay_url.clone(),
            token: self.token.clone(),
            therapist_account: self.therapist_account.clone(),
            therapist_identity_key: self.therapist_identity_key.clone(),
            trust_root: self.trust_root.clone(),
            tls_certificate_sha256: self
                .tls_certificate_sha256
                .map(|h| h.to_vec())
                .unwrap_or_default(),
            expires_at: self.expires_at.unwrap_or(0),
        };
        let body = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(wire.encode_to_vec()));
        let check = check(&body);
        format!("{body}.{check}")
    }

    /// Parses and checks a card's text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<InviteCard> {
        let text = text.trim();
        if text.len() > MAX_CARD_LEN {
            return Err(bad("too_long"));
        }
        let Some(rest) = text.strip_prefix("alcove:") else {
            return Err(bad("not_a_card"));
        };
        if !rest.starts_with("1:") {
            return Err(bad("unsupported_version"));
        }
        let (body, sum) = text.rsplit_once('.').ok_or(bad("checksum_missing"))?;
        if sum.len() != 8 || check(body) != sum.to_ascii_lowercase() {
            return Err(bad("checksum_mismatch"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(&body[PREFIX.len()..])
            .map_err(|_| bad("malformed"))?;
        let w = Wire::decode(raw.as_slice()).map_err(|_| bad("malformed"))?;
        let card = InviteCard {
            tls_certificate_sha256: match w.tls_certificate_sha256.len() {
                0 => None,
                32 => {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(&w.tls_certificate_sha256);
                    Some(h)
                }
                _ => return Err(bad("tls_pin")),
            },
            expires_at: (w.expires_at != 0).then_some(w.expires_at),
            relay_url: w.relay_url,
            token: w.token,
            therapist_account: w.therapist_account,
            therapist_identity_key: w.therapist_identity_key,
            trust_root: w.trust_root,
        };
        card.validate()?;
        Ok(card)
    }

    fn validate(&self) -> Result<()> {
        let url = url::Url::parse(&self.relay_url).map_err(|_| bad("relay_url"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(bad("relay_url"));
        }
        if self.token.is_empty() || self.token.len() > 256 {
            return Err(bad("token"));
        }
        validate_account_id(&self.therapist_account).map_err(|_| bad("therapist_account"))?;
        IdentityKey::decode(&self.therapist_identity_key).map_err(|_| bad("identity_key"))?;
        if !self.trust_root.is_empty() {
            PublicKey::deserialize(&self.trust_root).map_err(|_| bad("trust_root"))?;
        }
        Ok(())
    }

    /// Parses a card and refuses it when past its stated expiry now: what
    /// enrolment and the app's "what does this card say" both run.
    pub fn parse_current(text: &str) -> Result<InviteCard> {
        let card = Self::parse(text)?;
        card.check_not_expired(crate::time::now_ms())?;
        Ok(card)
    }

    /// Refuses a card past its stated expiry (the relay refuses it too;
    /// this says so before any network call).
    pub fn check_not_expired(&self, now_ms: u64) -> Result<()> {
        match self.expires_at {
            Some(at) if now_ms >= at => Err(bad("expired")),
            _ => Ok(()),
        }
    }

    /// The card as a QR code, an SVG document the shells can show.
    pub fn qr_svg(&self) -> Result<String> {
        let code = qrcode::QrCode::with_error_correction_level(
            self.encode().as_bytes(),
            qrcode::EcLevel::M,
        )
        .map_err(|_| Error::Internal("card does not fit a QR code".into()))?;
        Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build())
    }

    /// The card as a QR code drawn with Unicode half blocks, for a
    /// terminal (`alcove demo`).
    pub fn qr_text(&self) -> Result<String> {
        let code = qrcode::QrCode::with_error_correction_level(
            self.encode().as_bytes(),
            qrcode::EcLevel::L,
        )
        .map_err(|_| Error::Internal("card does not fit a QR code".into()))?;
        Ok(code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> InviteCard {
        let mut rng = rand::rng();
        let id = libsignal_protocol::IdentityKeyPair::generate(&mut rng);
        let root = libsignal_protocol::KeyPair::generate(&mut rng);
        InviteCard {
            relay_url: "https://relay.practice.example".into(),
            token: "3f9a0c1d2e4b5a6978877665544332211".into(),
            therapist_account: "7c1e0d2f-9a8b-4c3d-8e7f-6a5b4c3d2e1f".into(),
            therapist_identity_key: id.identity_key().serialize().to_vec(),
            trust_root: root.public_key.serialize().to_vec(),
            tls_certificate_sha256: Some([7; 32]),
            expires_at: Some(1_900_000_000_000),
        }
    }

    #[test]
    fn round_trips_and_fits_a_qr_code() {
        let c = card();
        let text = c.encode();
        assert!(text.starts_with("alcove:1:"));
        assert_eq!(InviteCard::parse(&format!("  {text}\n")).unwrap(), c);
        let svg = c.qr_svg().unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
        assert!(!c.qr_text().unwrap().is_empty());
    }

    #[test]
    fn every_truncation_and_every_single_typo_is_a_typed_error() {
        let text = card().encode();
        for end in 0..text.len() {
            let r = InviteCard::parse(&text[..end]);
            assert!(
                matches!(r, Err(Error::InvalidCard { .. })),
                "truncated at {end}: {r:?}"
            );
        }
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut typo = bytes.to_vec();
            typo[i] = if typo[i] == b'x' { b'y' } else { b'x' };
            let typo = String::from_utf8(typo).unwrap();
            if typo == text {
                continue;
            }
            assert!(
                matches!(InviteCard::parse(&typo), Err(Error::InvalidCard { .. })),
                "typo at {i} accepted"
            );
        }
    }

    #[test]
    fn foreign_versions_oversize_and_bad_fields_are_refused() {
        let reason = |t: &str| match InviteCard::parse(t) {
            Err(Error::InvalidCard { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("https://example.org"), "not_a_card");
        assert_eq!(reason("alcove:2:AAAA.00000000"), "unsupported_version");
        assert_eq!(reason(&"a".repeat(MAX_CARD_LEN + 1)), "too_long");
        let mut c = card();
        c.therapist_identity_key = vec![0x09; 33]; // no such key type
        assert_eq!(reason(&c.encode()), "identity_key");
        let mut c = card();
        c.relay_url = "ftp://relay".into();
        assert_eq!(reason(&c.encode()), "relay_url");
        let mut c = card();
        c.therapist_account = "Dana Rivera".into();
        assert_eq!(reason(&c.encode()), "therapist_account");
        let c = card();
        assert!(c.check_not_expired(1_899_999_999_999).is_ok());
        assert_eq!(
            c.check_not_expired(1_900_000_000_000),
            Err(Error::InvalidCard { reason: "expired" })
        );
    }
}
