// The thin hand-written layer over the generated bindings (uniffi.alcove_ffi).
// Logic lives in the Rust core; this only adapts it to Android's shapes.
package org.alcove

import java.util.concurrent.atomic.AtomicReference
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.Notification
import uniffi.alcove_ffi.PushKind

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
 * Token callbacks (FCM `onNewToken`, UnifiedPush `onNewEndpoint`) call
 * [onNewToken].
 */
class PushHandler(
    private val client: AlcoveClient,
    private val renderer: NotificationRenderer,
) {
    /** A token the relay has not accepted yet because it was unreachable. */
    private val pendingToken = AtomicReference<Pair<PushKind, String>?>(null)

    suspend fun onWake(deadlineMs: Long = DEFAULT_DEADLINE_MS): Int {
        pendingToken.get()?.let { (kind, token) -> onNewToken(kind, token) }
        val report = client.sync(deadlineMs.coerceAtLeast(0).toULong())
        report.notifications.forEach(renderer::show)
        return report.received.toInt()
    }

    /**
     * Registers the platform's new push token with the relay. Offline, the
     * token is kept and registered on the next [onWake] (or call again);
     * returns whether the relay has it now. Other failures are thrown typed.
     */
    suspend fun onNewToken(kind: PushKind, token: String): Boolean {
        val mine = kind to token
        pendingToken.set(mine)
        return try {
            client.registerPush(kind, token)
            // A newer token may have arrived meanwhile: keep that one.
            pendingToken.compareAndSet(mine, null)
            true
        } catch (e: AlcoveException.Network) {
            false
        }
    }

    companion object {
        /** Leave headroom under FCM's ~10 s processing window. */
        const val DEFAULT_DEADLINE_MS = 8_000L
    }
}
