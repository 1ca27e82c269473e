package org.alcove

import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.Message
import uniffi.alcove_ffi.MessageKind
import uniffi.alcove_ffi.ReminderChoice

/**
 * The buttons to draw under [message]: empty unless it is a reminder from the practice's
 * introduced bot that can still be answered. The rules are the core's; this only reads them.
 * Kept in step with ios/Sources/Alcove/Reminders.swift.
 */
fun AlcoveClient.reminderButtons(message: Message): List<ReminderChoice> {
    if (message.kind != MessageKind.REMINDER) return emptyList()
    return try {
        reminder(message.row)?.choices ?: emptyList()
    } catch (e: uniffi.alcove_ffi.AlcoveException) {
        emptyList()
    }
}

/** The button's text (localize in the app). */
val ReminderChoice.label: String
    get() = when (this) {
        ReminderChoice.CONFIRM -> "Confirm"
        ReminderChoice.CANCEL -> "Cancel"
        ReminderChoice.RESCHEDULE -> "Ask to reschedule"
    }
