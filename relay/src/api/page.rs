//! A sync page's response body, written from the stored envelopes'
//! bytes. `EnvelopePage.envelopes` is field 1, length-delimited: each
//! stored envelope's encoding goes in as it is, after its key and length,
//! then the page's other fields as prost writes them. prost writes fields
//! in number order, so the body is byte for byte what encoding the decoded
//! page would give (tested), without decoding a megabyte of envelopes to
//! encode it again.

use alcove_proto::relay::EnvelopePage;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

use crate::storage::SyncPage;

const ENVELOPES_FIELD: u32 = 1;

pub(super) fn encode(page: &SyncPage) -> Vec<u8> {
    let rest = EnvelopePage {
        envelopes: Vec::new(),
        more: page.more,
        cursor: page.cursor,
        prekeys: page.prekeys,
        follows: page.follows,
    };
    let envelopes: usize = page
        .envelopes
        .iter()
        .map(|e| {
            key_len(ENVELOPES_FIELD) + encoded_len_varint(e.encoded.len() as u64) + e.encoded.len()
        })
        .sum();
    let mut body = Vec::with_capacity(envelopes + rest.encoded_len());
    for e in &page.envelopes {
        encode_key(ENVELOPES_FIELD, WireType::LengthDelimited, &mut body);
        encode_varint(e.encoded.len() as u64, &mut body);
        body.extend_from_slice(&e.encoded);
    }
    rest.encode_raw(&mut body);
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alcove_proto::relay::PreKeyCount;
    use alcove_proto::wire::Envelope;
    use proptest::prelude::*;

    use super::*;
    use crate::storage::StoredEnvelope;

    fn stored(e: &Envelope) -> StoredEnvelope {
        StoredEnvelope {
            guid: e.guid.clone(),
            encoded: e.encode_to_vec(),
        }
    }

    prop_compose! {
        fn envelope()(
            guid in proptest::collection::vec(any::<u8>(), 16),
            r#type in 0i32..4,
            source_account in "[a-z0-9-]{0,40}",
            source_device in 0u32..200,
            destination_device in 0u32..200,
            // Across the one- and two-byte length prefixes, and large.
            ciphertext in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..130),
                proptest::collection::vec(any::<u8>(), 16_000..17_000),
            ],
            server_timestamp in any::<u64>(),
        ) -> Envelope {
            Envelope {
                guid,
                r#type,
                source_account,
                source_device,
                destination_device,
                ciphertext,
                server_timestamp,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Byte for byte prost's encoding of the same page decoded, and
        /// it decodes back to it.
        #[test]
        fn the_body_is_the_page_prost_would_write(
            envelopes in proptest::collection::vec(envelope(), 0..12),
            more in any::<bool>(),
            cursor in any::<u64>(),
            prekeys in proptest::option::of((any::<u32>(), any::<u32>())),
            follows in any::<u64>(),
        ) {
            let prekeys = prekeys.map(|(ec, kyber)| PreKeyCount {
                one_time_prekeys: ec,
                one_time_kyber_prekeys: kyber,
            });
            let page = SyncPage {
                envelopes: envelopes.iter().map(stored).collect(),
                more,
                cursor,
                prekeys,
                left: false,
                follows,
            };
            let decoded = EnvelopePage { envelopes, more, cursor, prekeys, follows };
            let body = encode(&page);
            prop_assert_eq!(&body, &decoded.encode_to_vec());
            prop_assert_eq!(EnvelopePage::decode(&body[..]).unwrap(), decoded);
        }
    }

    #[test]
    fn an_empty_page_is_an_empty_body() {
        assert!(encode(&SyncPage::default()).is_empty());
    }
}
