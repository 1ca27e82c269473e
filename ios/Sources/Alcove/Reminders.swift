// Reminder buttons: what a reminder message offers, and their labels.
// The rules (who may send reminders, what may still be answered, a second
// tap sending nothing) are the core's; this only reads them. Kept in step
// with android/src/main/kotlin/org/alcove/Reminders.kt.
import Foundation

extension AlcoveClient {
    /// The buttons to draw under `message`: empty unless it is a reminder
    /// from the practice's introduced bot that can still be answered.
    public func reminderButtons(for message: Message) -> [ReminderChoice] {
        guard message.kind == .reminder,
              let r = try? reminder(messageRow: message.row) else { return [] }
        return r.choices
    }
}

extension ReminderChoice {
    /// The button's text (localize in the app).
    public var label: String {
        switch self {
        case .confirm: return "Confirm"
        case .cancel: return "Cancel"
        case .reschedule: return "Ask to reschedule"
        }
    }
}
