//! The out-of-hours notice: when a client writes outside the therapist's
//! office hours or during an away period, the client's own device writes
//! a notice into the conversation with the practice's crisis resources.
//! Decided offline from the published profile; no server involved.

use alcove_proto::content::PracticeProfile;
use rusqlite::Connection;

use super::hours::{availability, Availability};
use crate::conversations::{ConversationId, MessageKind, MessageStatus};
use crate::error::Result;
use crate::store::{self, messages::NewMessage};

/// The notice's text for `availability`, or `None` when the office is open.
/// Times are left to the app to show in the user's own format; the text
/// names no person and no clinical detail.
pub fn notice_text(profile: &PracticeProfile, availability: &Availability) -> Option<String> {
    let mut text = match availability {
        Availability::Open => return None,
        Availability::Closed { .. } => {
            let mut t = String::from("Your message was sent outside office hours.");
            if profile.response_time_hours > 0 {
                t.push_str(&format!(
                    " Replies usually come within {} hours during office hours.",
                    profile.response_time_hours
                ));
            }
            t
        }
        Availability::Away {
            covering_contact, ..
        } => {
            let mut t = String::from("Your therapist is away.");
            if let Some(c) = covering_contact.as_deref().filter(|c| !c.is_empty()) {
                t.push_str(&format!(" Covering: {c}."));
            }
            t
        }
    };
    text.push_str(" This is not an emergency service.");
    if !profile.crisis_resources.is_empty() {
        text.push_str(&format!(" In a crisis: {}", profile.crisis_resources));
    }
    Some(text)
}

/// Writes the notice into `conversation` when `profile` says the office
/// is not open at `now`. Returns the notice's row.
pub(crate) fn after_send(
    tx: &Connection,
    conversation: ConversationId,
    profile: &PracticeProfile,
    own_device: u32,
    now: u64,
) -> Result<Option<i64>> {
    let Some(text) = notice_text(profile, &availability(profile, now)?) else {
        return Ok(None);
    };
    let mut id = vec![0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
    let row = store::messages::insert(
        tx,
        &NewMessage {
            conversation,
            sender: None,
            message_id: &id,
            sender_device: own_device,
            body: &text,
            sent_at: now,
            received_at: now,
            status: MessageStatus::Received,
            kind: MessageKind::Notice,
        },
    )?;
    Ok(Some(row.id))
}
