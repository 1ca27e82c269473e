// What the push receivers call. The system creates receivers and services
// with no arguments, so they find the app's hooks through its Application.
package org.alcove.android

import android.content.Context
import org.alcove.PushHandler
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
 * The hooks over the real core. A client the app auto-locked is unlocked by
 * the core for the length of one push (see [PushHandler]'s `keys`), so the
 * key lives in memory only while a push is being handled.
 */
class CorePushHooks(
    private val handler: PushHandler,
) : PushHooks {
    override suspend fun wake(deadlineMs: Long) {
        handler.onWake(deadlineMs)
    }

    /** Offline, the core keeps the token and registers it on the next wake. */
    override suspend fun newToken(kind: PushKind, token: String) {
        handler.onNewToken(kind, token)
    }
}
