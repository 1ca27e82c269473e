//! Encoding what goes inside the ciphertext: the versioned `Content`
//! protobuf, padded so that ciphertext length says little about the text.

use alcove_proto::content::{Content, CONTENT_VERSION};
use prost::Message;

use crate::error::{Error, Result};

/// Plaintexts are padded to a multiple of this (as Signal does, 160 bytes):
/// short messages all look the same size on the wire.
const PAD_BLOCK: usize = 160;

/// Largest content we accept after decryption (64 KiB; attachments travel
/// separately).
pub const MAX_CONTENT_LEN: usize = 64 * 1024;

pub(crate) fn encode(content: &Content) -> Vec<u8> {
    let mut buf = content.encode_to_vec();
    buf.push(0x80);
    let padded = buf.len().div_ceil(PAD_BLOCK) * PAD_BLOCK;
    buf.resize(padded, 0);
    buf
}

fn unpad(buf: &[u8]) -> Result<&[u8]> {
    let end = buf
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(Error::Malformed("content padding"))?;
    if buf[end] != 0x80 {
        return Err(Error::Malformed("content padding"));
    }
    Ok(&buf[..end])
}

/// Decodes and checks a decrypted plaintext.
pub(crate) fn decode(plaintext: &[u8]) -> Result<Content> {
    if plaintext.len() > MAX_CONTENT_LEN + PAD_BLOCK {
        return Err(Error::Malformed("content too large"));
    }
    let content = Content::decode(unpad(plaintext)?)?;
    if content.version == 0 {
        return Err(Error::Malformed("content without version"));
    }
    if content.version > CONTENT_VERSION {
        return Err(Error::UnsupportedContentVersion {
            found: content.version,
            supported: CONTENT_VERSION,
        });
    }
    if content.message_id.len() != 16 {
        return Err(Error::Malformed("content message id"));
    }
    match &content.body {
        None => Err(Error::UnknownContent),
        Some(_) => Ok(content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alcove_proto::content::{content::Body, Text};

    fn text(body: &str, version: u32) -> Content {
        Content {
            version,
            sent_at: 1,
            message_id: vec![7; 16],
            body: Some(Body::Text(Text { body: body.into() })),
            delivery_key: vec![],
        }
    }

    #[test]
    fn padding_hides_length_and_round_trips() {
        let a = encode(&text("hi", CONTENT_VERSION));
        let b = encode(&text(
            "a somewhat longer message, still short",
            CONTENT_VERSION,
        ));
        assert_eq!(a.len(), b.len());
        assert_eq!(decode(&a).unwrap(), text("hi", CONTENT_VERSION));
    }

    #[test]
    fn newer_version_is_refused_clearly() {
        let buf = encode(&text("x", CONTENT_VERSION + 1));
        assert!(matches!(
            decode(&buf),
            Err(Error::UnsupportedContentVersion { found, .. }) if found == CONTENT_VERSION + 1
        ));
    }

    #[test]
    fn unknown_body_is_refused() {
        let mut c = text("x", CONTENT_VERSION);
        c.body = None;
        assert!(matches!(decode(&encode(&c)), Err(Error::UnknownContent)));
    }

    #[test]
    fn bad_padding_is_malformed() {
        assert!(matches!(decode(&[0u8; 160]), Err(Error::Malformed(_))));
        assert!(matches!(decode(&[1u8, 2, 3]), Err(Error::Malformed(_))));
    }
}
