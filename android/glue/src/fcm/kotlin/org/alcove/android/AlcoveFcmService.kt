// FCM entry point (Gradle "fcm" flavour only). FCM calls these on its own
// background thread and allows ~10 s for a high-priority message before the
// process may be frozen, so blocking here until the bounded sync ends is right.
package org.alcove.android

import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.alcove.PushHandler
import uniffi.alcove_ffi.PushKind

class AlcoveFcmService : FirebaseMessagingService() {
    override fun onMessageReceived(message: RemoteMessage) {
        // The payload is content-free by design: any message means "sync".
        val hooks = applicationContext.pushHooks() ?: return
        runBlocking {
            withTimeoutOrNull(PushHandler.DEFAULT_DEADLINE_MS + 1_000) {
                runCatching { hooks.wake(PushHandler.DEFAULT_DEADLINE_MS) }
            }
        }
    }

    override fun onNewToken(token: String) {
        val hooks = applicationContext.pushHooks() ?: return
        // A failed registration is retried by the app's next start / token refresh.
        runBlocking { runCatching { hooks.newToken(PushKind.FCM, token) } }
    }
}
