// The thin hand-written layer over the generated bindings (uniffi.alcove_ffi).
// Logic lives in the Rust core; this only adapts it to Android's shapes.
package org.alcove

import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.Notification

/** Supplies the 32-byte database key (Android: wrapped by the Keystore). */
fun interface KeyProvider {
    fun databaseKey(): ByteArray
}

/** Turns sync results into what the app shows; hidden text by default. */
fun interface NotificationRenderer {
    fun show(notification: Notification)
}

/**
 * The push entry point: FCM / UnifiedPush receivers call [onWake] with the
 * time the platform allows (FCM high-priority: ~10 s before the process may
 * be frozen). It syncs until that deadline and hands notifications on.
 */
class PushHandler(
    private val client: AlcoveClient,
    private val renderer: NotificationRenderer,
) {
    suspend fun onWake(deadlineMs: Long = DEFAULT_DEADLINE_MS): Int {
        val report = client.sync(deadlineMs.coerceAtLeast(0).toULong())
        report.notifications.forEach(renderer::show)
        return report.received.toInt()
    }

    companion object {
        /** Leave headroom under FCM's ~10 s processing window. */
        const val DEFAULT_DEADLINE_MS = 8_000L
    }
}
