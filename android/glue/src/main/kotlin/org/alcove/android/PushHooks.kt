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
 * from memory) is unlocked with [keys] for the sync and locked again after,
 * so the key lives in memory only while a wake is being handled.
 */
class CorePushHooks(
    private val client: AlcoveClient,
    private val keys: KeyProvider,
    private val handler: PushHandler,
) : PushHooks {
    // Wakes can overlap (FCM and UnifiedPush, or a re-delivery); the core's
    // lease would serialise them anyway, this keeps lock/unlock paired.
    private val mutex = Mutex()

    override suspend fun wake(deadlineMs: Long) {
        mutex.withLock {
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
                handler.onWake(deadlineMs)
            } finally {
                if (relock) client.lock()
            }
        }
    }

    override suspend fun newToken(kind: PushKind, token: String) {
        client.registerPush(kind, token)
    }
}
