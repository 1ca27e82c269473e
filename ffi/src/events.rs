//! Listeners: the shells learn what a sync or send did (refresh a
//! conversation, show "safety number changed") without polling. Which
//! events happened is decided in the core (`alcove_core::SyncEvent`); this
//! only converts them and calls the foreign listeners, outside any lock,
//! after the call that produced them has returned.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use alcove_core as core;

use crate::types::ConversationId;

/// What happened, with opaque ids only (read content from `messages`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AlcoveEvent {
    /// A text in `conversation_id` was stored at local row `message_row`.
    MessageReceived {
        conversation_id: ConversationId,
        message_row: i64,
    },
    /// A delivery or read receipt changed `updated` of our messages in
    /// `conversation_id` (`None`: from someone we share no conversation
    /// with; nothing changed).
    ReceiptUpdated {
        conversation_id: Option<ConversationId>,
        read: bool,
        updated: u32,
    },
    /// The identity key of `remote_account` changed: show the new safety
    /// number; sending waits for `accept_identity_change`.
    IdentityChanged { remote_account: String },
    /// A client who enrolled with our invite card introduced themselves:
    /// read the name they chose from `conversations()`.
    ClientJoined { conversation_id: ConversationId },
    /// The therapist published a new practice profile (hours, policy).
    PracticeProfileUpdated { conversation_id: ConversationId },
    /// The client in `conversation_id` accepted policy `policy_version`.
    ConsentGiven {
        conversation_id: ConversationId,
        policy_version: u32,
    },
    /// A reminder from the practice's bot was stored at `message_row`:
    /// show `reminder(message_row)`'s buttons.
    ReminderReceived {
        conversation_id: ConversationId,
        message_row: i64,
    },
    /// The outcome of a reminder reply was stored at `message_row`.
    AppointmentUpdated {
        conversation_id: ConversationId,
        message_row: i64,
    },
    /// The other side set the conversation's disappearing-messages timer.
    RetentionChanged {
        conversation_id: ConversationId,
        seconds: u64,
    },
    /// The relay revoked this device: the account's files are being
    /// deleted; delete the key from the Keystore / Keychain. The call that
    /// saw it fails `AlcoveError.DeviceRevoked`.
    DeviceRevoked,
}

impl From<core::SyncEvent> for AlcoveEvent {
    fn from(e: core::SyncEvent) -> Self {
        use core::SyncEvent as E;
        match e {
            E::MessageReceived {
                conversation,
                message_row,
            } => Self::MessageReceived {
                conversation_id: conversation.get(),
                message_row,
            },
            E::ReceiptUpdated {
                conversation,
                read,
                updated,
            } => Self::ReceiptUpdated {
                conversation_id: conversation.map(|c| c.get()),
                read,
                updated,
            },
            E::IdentityChanged { remote_account } => Self::IdentityChanged { remote_account },
            E::ClientJoined { conversation } => Self::ClientJoined {
                conversation_id: conversation.get(),
            },
            E::PracticeProfileUpdated { conversation } => Self::PracticeProfileUpdated {
                conversation_id: conversation.get(),
            },
            E::ConsentGiven {
                conversation,
                policy_version,
            } => Self::ConsentGiven {
                conversation_id: conversation.get(),
                policy_version,
            },
            E::ReminderReceived {
                conversation,
                message_row,
            } => Self::ReminderReceived {
                conversation_id: conversation.get(),
                message_row,
            },
            E::AppointmentUpdated {
                conversation,
                message_row,
            } => Self::AppointmentUpdated {
                conversation_id: conversation.get(),
                message_row,
            },
            E::RetentionChanged {
                conversation,
                seconds,
            } => Self::RetentionChanged {
                conversation_id: conversation.get(),
                seconds,
            },
            E::DeviceRevoked => Self::DeviceRevoked,
        }
    }
}

/// Implemented by the shell. Called on a background thread, after the
/// `sync`/`send_text` that saw the event returns; do not block in it.
#[uniffi::export(foreign)]
pub trait AlcoveListener: Send + Sync {
    fn on_event(&self, event: AlcoveEvent);
}

/// The listeners of one client. Several may be registered (a UI and a
/// notification service, say); each until its handle goes.
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: AtomicU64,
    list: Mutex<Vec<(u64, Arc<dyn AlcoveListener>)>>,
}

impl Listeners {
    pub(crate) fn add(self: &Arc<Self>, listener: Arc<dyn AlcoveListener>) -> Arc<ListenerHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut list) = self.list.lock() {
            list.push((id, listener));
        }
        Arc::new(ListenerHandle {
            listeners: Arc::downgrade(self),
            id,
        })
    }

    fn remove(&self, id: u64) {
        if let Ok(mut list) = self.list.lock() {
            list.retain(|(i, _)| *i != id);
        }
    }

    /// Calls every listener with every event, in order. The list is copied
    /// first so a listener may cancel or register without deadlock; a panic
    /// (or an exception thrown by the foreign side) is caught and logged.
    pub(crate) fn deliver(&self, events: Vec<core::SyncEvent>) {
        if events.is_empty() {
            return;
        }
        let snapshot: Vec<Arc<dyn AlcoveListener>> = match self.list.lock() {
            Ok(list) => list.iter().map(|(_, l)| l.clone()).collect(),
            Err(_) => return,
        };
        for event in events {
            let event = AlcoveEvent::from(event);
            for listener in &snapshot {
                let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    listener.on_event(event.clone());
                }));
                if call.is_err() {
                    tracing::warn!("listener failed on an event");
                }
            }
        }
    }
}

/// Keeps a listener registered. `cancel()` or dropping the handle (in
/// Kotlin/Swift: when it is garbage collected or released) unregisters it,
/// so keep it as long as you want events.
#[derive(uniffi::Object)]
pub struct ListenerHandle {
    listeners: Weak<Listeners>,
    id: u64,
}

#[uniffi::export]
impl ListenerHandle {
    /// Unregisters the listener; later events do not reach it. Idempotent.
    pub fn cancel(&self) {
        if let Some(l) = self.listeners.upgrade() {
            l.remove(self.id);
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}
