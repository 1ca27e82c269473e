package org.alcove.android

import android.app.Application
import java.util.concurrent.LinkedBlockingQueue
import uniffi.alcove_ffi.PushKind

/** The app under test: its push hooks are whatever the test installs. */
class TestApp : Application(), PushHooks.Provider {
    var hooks: PushHooks = RecordingHooks()
    override val alcovePushHooks: PushHooks get() = hooks
}

/** Records what the receivers asked for, in order. */
class RecordingHooks : PushHooks {
    val calls = LinkedBlockingQueue<String>()

    override suspend fun wake(deadlineMs: Long) {
        calls.add("wake $deadlineMs")
    }

    override suspend fun newToken(kind: PushKind, token: String) {
        calls.add("token $kind $token")
    }

    override fun pushUnavailable(kind: PushKind) {
        calls.add("unavailable $kind")
    }
}
