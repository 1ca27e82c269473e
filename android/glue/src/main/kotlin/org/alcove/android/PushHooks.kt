// What the push receivers call. The system creates receivers and services
// with no arguments, so they find the app's hooks through its Application.
package org.alcove.android

import android.content.Context
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.alcove.KeyProvider
import org.alcove.PushHandler
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.PushKind

interface PushHooks {
    /** A wake-up arrived: sync until [deadlineMs] from now and notify. */
    suspend fun wake(deadlineMs: Long)

    /** The push service gave this device a new token / endpoint. */
    suspend fun newToken(kind: PushKind, token: String)

    /** The UnifiedPush distributor dropped or refused us; pick another. */
    fun pushUnavailable(kind: PushKind) {}

    /** Implemented by the app's [android.app.Application]. */
    interface Provider {
        val alcovePushHooks: PushHooks
    }
}

internal fun Context.pushHooks(): PushHooks? =
    (applicationContext as? PushHooks.Provider)?.alcovePushHooks

/**
 * The hooks over the real core. A client the app auto-locked (key dropped
 * from memory) is unlocked with [keys] for the call and locked again after,
 * so the key lives in memory only while a push is being handled.
 */
class CorePushHooks(
    private val client: AlcoveClient,
    private val keys: KeyProvider,
    private val handler: PushHandler,
) : PushHooks {
    // Pushes can overlap (FCM and UnifiedPush, or a re-delivery); the core's
    // lease would serialise the syncs anyway, this keeps lock/unlock paired.
    private val mutex = Mutex()

    private suspend fun <T> unlocked(block: suspend () -> T): T = mutex.withLock {
        val relock = client.isLocked()
        if (relock) {
            val key = keys.databaseKey()
            try {
                client.unlock(key)
            } finally {
                key.fill(0)
            }
        }
        try {
            block()
        } finally {
            if (relock) client.lock()
        }
    }

    override suspend fun wake(deadlineMs: Long) {
        unlocked { handler.onWake(deadlineMs) }
    }

    /** Offline, [PushHandler] keeps the token and registers it on the next wake. */
    override suspend fun newToken(kind: PushKind, token: String) {
        unlocked { handler.onNewToken(kind, token) }
    }
}
