// UnifiedPush connector side (Android spec AND_2): the distributor app sends
// these broadcasts; only ones carrying our registration token are accepted,
// so another app cannot redirect our wake-ups by sending a fake endpoint.
package org.alcove.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import java.util.UUID
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull
import org.alcove.PushHandler
import uniffi.alcove_ffi.PushKind

object UnifiedPush {
    const val ACTION_NEW_ENDPOINT = "org.unifiedpush.android.connector.NEW_ENDPOINT"
    const val ACTION_MESSAGE = "org.unifiedpush.android.connector.MESSAGE"
    const val ACTION_UNREGISTERED = "org.unifiedpush.android.connector.UNREGISTERED"
    const val ACTION_REGISTRATION_FAILED = "org.unifiedpush.android.connector.REGISTRATION_FAILED"
    const val ACTION_REGISTER = "org.unifiedpush.android.distributor.REGISTER"
    const val ACTION_UNREGISTER = "org.unifiedpush.android.distributor.UNREGISTER"
    const val ACTION_MESSAGE_ACK = "org.unifiedpush.android.distributor.MESSAGE_ACK"
    const val FEATURE_BYTES_MESSAGE = "org.unifiedpush.android.distributor.feature.BYTES_MESSAGE"
    const val EXTRA_TOKEN = "token"
    const val EXTRA_ENDPOINT = "endpoint"
    const val EXTRA_APPLICATION = "application"
    const val EXTRA_FEATURES = "features"
    const val EXTRA_MESSAGE = "message"
    const val EXTRA_ID = "id"

    private const val PREFS = "alcove_unifiedpush"
    private const val KEY_TOKEN = "token"
    private const val KEY_DISTRIBUTOR = "distributor"

    /** Installed distributor apps (packages answering REGISTER). */
    fun distributors(context: Context): List<String> =
        context.packageManager.queryBroadcastReceivers(Intent(ACTION_REGISTER), 0)
            .mapNotNull { it.activityInfo?.packageName }
            .distinct()

    /** Registers with [distributor]; a fresh token each time (the spec asks so after a failure). */
    fun register(context: Context, distributor: String) {
        val token = UUID.randomUUID().toString()
        // commit, not apply: the distributor may answer in a new process.
        prefs(context).edit().putString(KEY_TOKEN, token).putString(KEY_DISTRIBUTOR, distributor).commit()
        context.sendBroadcast(
            Intent(ACTION_REGISTER).setPackage(distributor)
                .putExtra(EXTRA_APPLICATION, context.packageName)
                .putExtra(EXTRA_TOKEN, token)
                .putStringArrayListExtra(EXTRA_FEATURES, arrayListOf(FEATURE_BYTES_MESSAGE)),
        )
    }

    fun unregister(context: Context) {
        val p = prefs(context)
        val token = p.getString(KEY_TOKEN, null) ?: return
        p.getString(KEY_DISTRIBUTOR, null)?.let {
            context.sendBroadcast(Intent(ACTION_UNREGISTER).setPackage(it).putExtra(EXTRA_TOKEN, token))
        }
        p.edit().clear().apply()
    }

    internal fun token(context: Context): String? = prefs(context).getString(KEY_TOKEN, null)

    internal fun distributor(context: Context): String? = prefs(context).getString(KEY_DISTRIBUTOR, null)

    internal fun forget(context: Context) = prefs(context).edit().clear().apply()

    private fun prefs(context: Context) = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE)
}

/**
 * The messaging receiver the app's manifest exposes (this library's manifest
 * declares it). The wake body is content-free, so a MESSAGE only triggers a
 * sync bounded by [deadlineMs]; the work runs after [goAsync] so the main
 * thread is free and the process is kept alive until it finishes.
 */
open class UnifiedPushReceiver : BroadcastReceiver() {
    /** Under the ~10 s a receiver may take before the system calls it an ANR. */
    open val deadlineMs: Long = PushHandler.DEFAULT_DEADLINE_MS

    override fun onReceive(context: Context, intent: Intent) {
        val hooks = context.pushHooks() ?: return
        val pending: PendingResult? = goAsync()
        scope.launch {
            try {
                // Hard stop a little after the core's own deadline.
                withTimeoutOrNull(deadlineMs + 1_000) { handle(context, intent, hooks) }
            } catch (e: Exception) {
                // Nothing to show or retry here: the next wake syncs again.
            } finally {
                pending?.finish()
            }
        }
    }

    /** What one broadcast does; returns false when it was not for us. */
    suspend fun handle(context: Context, intent: Intent, hooks: PushHooks): Boolean {
        val token = UnifiedPush.token(context)
        if (token == null || intent.getStringExtra(UnifiedPush.EXTRA_TOKEN) != token) return false
        when (intent.action) {
            UnifiedPush.ACTION_NEW_ENDPOINT -> {
                val endpoint = intent.getStringExtra(UnifiedPush.EXTRA_ENDPOINT) ?: return false
                hooks.newToken(PushKind.UNIFIED_PUSH, endpoint)
            }
            UnifiedPush.ACTION_MESSAGE -> {
                intent.getStringExtra(UnifiedPush.EXTRA_ID)?.let { ack(context, token, it) }
                hooks.wake(deadlineMs)
            }
            UnifiedPush.ACTION_UNREGISTERED, UnifiedPush.ACTION_REGISTRATION_FAILED -> {
                UnifiedPush.forget(context)
                hooks.pushUnavailable(PushKind.UNIFIED_PUSH)
            }
            else -> return false
        }
        return true
    }

    private fun ack(context: Context, token: String, id: String) {
        val distributor = UnifiedPush.distributor(context) ?: return
        context.sendBroadcast(
            Intent(UnifiedPush.ACTION_MESSAGE_ACK).setPackage(distributor)
                .putExtra(UnifiedPush.EXTRA_TOKEN, token)
                .putExtra(UnifiedPush.EXTRA_ID, id),
        )
    }

    private companion object {
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.IO)
    }
}
