//! Notifications, rendered at the account's privacy level from what the
//! inbound dispatcher returned: no database read per message.

use crate::inbound::Notice;
use crate::notification_settings::NotificationPrivacy;

/// The text shown when content is hidden (the default), and by the iOS
/// Notification Service Extension before (or instead of) a sync.
pub const HIDDEN_TITLE: &str = "Alcove";
pub const HIDDEN_BODY: &str = "New secure message";

/// Most notifications returned by one sync: memory stays bounded by the
/// page size, never by how much mail was queued.
pub const MAX_NOTIFICATIONS: usize = 20;

/// A notification, already rendered at the account's privacy level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// Local message row (opaque; lets the app open the conversation).
    pub message_row: i64,
}

impl Notification {
    /// The notification that shows nothing: what a locked phone or a
    /// failed sync displays.
    pub fn hidden(message_row: i64) -> Self {
        Self {
            title: HIDDEN_TITLE.to_owned(),
            body: HIDDEN_BODY.to_owned(),
            message_row,
        }
    }
}

pub(crate) fn render(privacy: NotificationPrivacy, notice: Notice) -> Notification {
    let hidden = Notification::hidden(notice.message_row);
    match privacy {
        NotificationPrivacy::Hidden => hidden,
        NotificationPrivacy::Pseudonym => Notification {
            title: notice.label.unwrap_or(hidden.title),
            ..hidden
        },
        NotificationPrivacy::FullPreview => Notification {
            title: notice.display_name.or(notice.label).unwrap_or(hidden.title),
            body: notice.body,
            message_row: notice.message_row,
        },
    }
}

/// Keeps the newest `MAX_NOTIFICATIONS`.
pub(crate) fn push_notification(list: &mut Vec<Notification>, n: Notification) {
    if list.len() == MAX_NOTIFICATIONS {
        list.remove(0);
    }
    list.push(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            message_row: 7,
            display_name: Some("Dana R.".into()),
            label: Some("D.".into()),
            body: "see you thursday".into(),
        }
    }

    #[test]
    fn each_privacy_level_shows_only_what_it_allows() {
        let hidden = render(NotificationPrivacy::Hidden, notice());
        assert_eq!(hidden, Notification::hidden(7));
        let pseudo = render(NotificationPrivacy::Pseudonym, notice());
        assert_eq!(
            (pseudo.title.as_str(), pseudo.body.as_str()),
            ("D.", HIDDEN_BODY)
        );
        let full = render(NotificationPrivacy::FullPreview, notice());
        assert_eq!(
            (full.title.as_str(), full.body.as_str()),
            ("Dana R.", "see you thursday")
        );
        // Without a label, a pseudonym notification falls back to hidden.
        let bare = Notice {
            label: None,
            display_name: None,
            ..notice()
        };
        assert_eq!(
            render(NotificationPrivacy::Pseudonym, bare),
            Notification::hidden(7)
        );
    }

    #[test]
    fn at_most_the_newest_are_kept() {
        let mut list = Vec::new();
        for row in 0..(MAX_NOTIFICATIONS as i64 * 2) {
            push_notification(&mut list, Notification::hidden(row));
        }
        assert_eq!(list.len(), MAX_NOTIFICATIONS);
        assert_eq!(list[0].message_row, MAX_NOTIFICATIONS as i64);
    }
}
