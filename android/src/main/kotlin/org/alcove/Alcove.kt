// The thin hand-written layer over the generated bindings (uniffi.alcove_ffi).
// Logic lives in the Rust core (locking, unlocking for a push, retrying a
// push token, what a hidden notification says); this only adapts it to
// Android's shapes.
package org.alcove

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

/** Runs [block] with a fresh copy of the key, wiped afterwards. */
private inline fun <T> KeyProvider.withKey(block: (ByteArray) -> T): T {
    val key = databaseKey()
    try {
        return block(key)
    } finally {
        key.fill(0)
    }
}

/**
 * The push entry point: FCM / UnifiedPush receivers call [onWake] with the
 * time the platform allows (FCM high-priority: ~10 s before the process may
 * be frozen). It syncs until that deadline and hands notifications on.
 * Token callbacks (FCM `onNewToken`, UnifiedPush `onNewEndpoint`) call
 * [onNewToken]. With [keys], a client the app auto-locked is unlocked by
 * the core for the length of the call only. With [onDeviceRevoked], a
 * revoked device (its files already wiped by the core) is handed to the app
 * to delete its key before the call throws `AlcoveException.DeviceRevoked`.
 */
class PushHandler(
    private val client: AlcoveClient,
    private val renderer: NotificationRenderer,
    private val keys: KeyProvider? = null,
    private val onDeviceRevoked: DeviceRevokedHandler? = null,
) {
    suspend fun onWake(deadlineMs: Long = DEFAULT_DEADLINE_MS): Int = tellingRevocation(onDeviceRevoked) {
        wake(deadlineMs)
    }

    private suspend fun wake(deadlineMs: Long): Int {
        val ms = deadlineMs.coerceAtLeast(0).toULong()
        val report = if (keys == null) {
            client.sync(ms)
        } else {
            keys.withKey { client.syncUnlocking(it, ms) }
        }
        report.notifications.forEach(renderer::show)
        return report.received.toInt()
    }

    /**
     * Registers the platform's new push token with the relay. Offline, the
     * core keeps the token and registers it on the next [onWake]; returns
     * whether the relay has it now. Other failures are thrown typed.
     */
    suspend fun onNewToken(kind: PushKind, token: String): Boolean = tellingRevocation(onDeviceRevoked) {
        newToken(kind, token)
    }

    private suspend fun newToken(kind: PushKind, token: String): Boolean = try {
        if (keys == null) {
            client.registerPush(kind, token)
        } else {
            keys.withKey { client.registerPushUnlocking(it, kind, token) }
        }
        true
    } catch (e: AlcoveException.Network) {
        false
    }

    companion object {
        /** Leave headroom under FCM's ~10 s processing window. */
        const val DEFAULT_DEADLINE_MS = 8_000L
    }
}
