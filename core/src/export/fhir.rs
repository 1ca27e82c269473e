//! The machine-readable export: a FHIR R4 `Bundle` (type `collection`) of
//! `Communication` resources, one per message, which EHRs import. Who
//! wrote each is a `Reference` by display name (the EHR links it to its
//! own Patient and Practitioner); the message's id is its identifier.

use serde_json::json;

use crate::conversations::{Message, MessageKind, MessageStatus};
use crate::error::{Error, Result};

use super::Parties;

fn instant(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub(super) fn bundle(
    parties: &Parties,
    _peer_account: &str,
    _own_account: &str,
    messages: &[Message],
    now: u64,
) -> Result<Vec<u8>> {
    let entries: Vec<_> = messages
        .iter()
        .filter(|m| m.kind != MessageKind::Notice)
        .map(|m| {
            let id = uuid::Uuid::new_v4();
            let (sender, recipient) = if m.outgoing {
                (&parties.own, &parties.peer)
            } else {
                (&parties.peer, &parties.own)
            };
            let status = if m.outgoing && m.status == MessageStatus::Failed {
                "not-done"
            } else {
                "completed"
            };
            let mut c = json!({
                "resourceType": "Communication",
                "id": id.to_string(),
                "identifier": [{
                    "system": "urn:alcove:message-id",
                    "value": hex::encode(&m.message_id),
                }],
                "status": status,
                "medium": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                    "code": "WRITTEN",
                    "display": "written",
                }]}],
                "sent": instant(m.sent_at),
                "sender": { "display": sender },
                "recipient": [{ "display": recipient }],
                "payload": [{ "contentString": m.body }],
            });
            if !m.outgoing {
                c["received"] = json!(instant(m.received_at));
            }
            json!({ "fullUrl": format!("urn:uuid:{id}"), "resource": c })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    });
    serde_json::to_vec_pretty(&bundle).map_err(|e| Error::Internal(e.to_string()))
}
