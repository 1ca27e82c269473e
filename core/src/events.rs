//! What a sync or a send observed, for the app's listeners (refresh a
//! conversation, show "safety number changed"). Events carry opaque ids
//! only, never content: the app reads content from the store.

/// Most events one sync reports: memory stays bounded however much mail
/// was queued. When full, the oldest non-identity event is dropped (the
/// app re-reads the store anyway); identity changes are kept, once per
/// account.
pub const MAX_EVENTS: usize = 100;

use crate::conversations::ConversationId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A text in `conversation` was stored at local row `message_row`.
    MessageReceived {
        conversation: ConversationId,
        message_row: i64,
    },
    /// A delivery (`read == false`) or read receipt changed the status of
    /// `updated` of our messages in `conversation` (`None`: the sender
    /// shares no conversation with us, and nothing changed).
    ReceiptUpdated {
        conversation: Option<ConversationId>,
        read: bool,
        updated: u32,
    },
    /// `remote_account`'s identity key changed (seen on a message, a prekey
    /// bundle or when sending). Sending to it waits until the user accepts.
    IdentityChanged { remote_account: String },
    /// A client who enrolled with our invite card introduced themselves:
    /// `conversation` is new (or newly named) and holds the name they chose.
    ClientJoined { conversation: ConversationId },
    /// The therapist of `conversation` published a new practice profile
    /// (office hours, policy, label): re-read it; a new policy version
    /// asks for consent again.
    PracticeProfileUpdated { conversation: ConversationId },
    /// The client in `conversation` accepted texting policy
    /// `policy_version`.
    ConsentGiven {
        conversation: ConversationId,
        policy_version: u32,
    },
    /// A reminder from a bot our therapist introduced was stored at
    /// `message_row`: `Account::reminder` gives its buttons.
    ReminderReceived {
        conversation: ConversationId,
        message_row: i64,
    },
    /// The outcome of a reminder reply was stored at `message_row`: the
    /// bot's acknowledgement (on a client) or a client's answer (on the
    /// therapist, in the conversation with that client).
    AppointmentUpdated {
        conversation: ConversationId,
        message_row: i64,
    },
    /// The other side set `conversation`'s disappearing-messages timer
    /// (seconds; 0: off); it applies here too.
    RetentionChanged {
        conversation: ConversationId,
        seconds: u64,
    },
    /// The relay revoked this device (lost phone, or the practice removed
    /// it): the account's files are being deleted and every later call
    /// fails `DeviceRevoked`. The shell deletes its key and says "This
    /// device was removed by your practice".
    DeviceRevoked,
}

/// Appends `event` to `events`, keeping the bound and one identity change
/// per account.
pub(crate) fn push_event(events: &mut Vec<SyncEvent>, event: SyncEvent) {
    if let SyncEvent::IdentityChanged { remote_account } = &event {
        let seen = events.iter().any(
            |e| matches!(e, SyncEvent::IdentityChanged { remote_account: r } if r == remote_account),
        );
        if seen {
            return;
        }
    }
    if events.len() >= MAX_EVENTS {
        match events
            .iter()
            .position(|e| !matches!(e, SyncEvent::IdentityChanged { .. }))
        {
            Some(i) => {
                events.remove(i);
            }
            // Only identity changes (one per account): keep them all.
            None if matches!(event, SyncEvent::IdentityChanged { .. }) => {}
            None => return,
        }
    }
    events.push(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(row: i64) -> SyncEvent {
        SyncEvent::MessageReceived {
            conversation: ConversationId::new(1),
            message_row: row,
        }
    }

    fn ident(a: &str) -> SyncEvent {
        SyncEvent::IdentityChanged {
            remote_account: a.into(),
        }
    }

    #[test]
    fn bounded_newest_kept_identity_changes_kept_once() {
        let mut ev = Vec::new();
        push_event(&mut ev, ident("x"));
        for row in 0..(MAX_EVENTS as i64 * 3) {
            push_event(&mut ev, msg(row));
        }
        push_event(&mut ev, ident("x"));
        push_event(&mut ev, ident("y"));
        assert_eq!(ev.len(), MAX_EVENTS);
        assert_eq!(ev[0], ident("x"));
        assert_eq!(ev.last(), Some(&ident("y")));
        assert_eq!(ev.iter().filter(|e| **e == ident("x")).count(), 1);
        // The newest messages survive, in order.
        let rows: Vec<i64> = ev
            .iter()
            .filter_map(|e| match e {
                SyncEvent::MessageReceived { message_row, .. } => Some(*message_row),
                _ => None,
            })
            .collect();
        let last = MAX_EVENTS as i64 * 3 - 1;
        assert_eq!(rows.last(), Some(&last));
        assert!(rows.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(rows.len(), MAX_EVENTS - 2);
    }
}
