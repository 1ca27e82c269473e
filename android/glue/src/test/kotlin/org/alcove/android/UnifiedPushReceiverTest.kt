package org.alcove.android

import android.content.Intent
import android.os.Looper
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * The receiver as declared in the library's manifest (registered by
 * [LibraryManifest]), driven by the spec's broadcasts through the framework,
 * with a recording hook at the Android boundary. RealCoreReceiverTest runs
 * it on the real core.
 */
@RunWith(RobolectricTestRunner::class)
@Config(application = TestApp::class)
class UnifiedPushReceiverTest {
    private val app = RuntimeEnvironment.getApplication() as TestApp
    private val hooks = RecordingHooks()
    private val distributor = "org.example.distributor"
    private lateinit var token: String

    @Before
    fun register() {
        LibraryManifest.registerReceivers(app)
        app.hooks = hooks
        UnifiedPush.register(app, distributor)
        token = UnifiedPush.token(app)!!
        val reg = shadowOf(app).broadcastIntents.single { it.action == UnifiedPush.ACTION_REGISTER }
        assertEquals(distributor, reg.`package`)
        assertEquals(app.packageName, reg.getStringExtra(UnifiedPush.EXTRA_APPLICATION))
        assertEquals(token, reg.getStringExtra(UnifiedPush.EXTRA_TOKEN))
        assertEquals(listOf(UnifiedPush.FEATURE_BYTES_MESSAGE), reg.getStringArrayListExtra(UnifiedPush.EXTRA_FEATURES))
    }

    private fun broadcast(intent: Intent): String? {
        app.sendBroadcast(intent.setPackage(app.packageName))
        shadowOf(Looper.getMainLooper()).idle()
        // The receiver finishes on a background thread after goAsync().
        return hooks.calls.poll(20, TimeUnit.SECONDS)
    }

    private fun intent(action: String, token: String = this.token) =
        Intent(action).putExtra(UnifiedPush.EXTRA_TOKEN, token)

    @Test
    fun manifestDeclaresTheReceiverForAllFourActionsAndThePermission() {
        val receiver = LibraryManifest.receivers().single()
        assertEquals(UnifiedPushReceiver::class.java.name, receiver.name)
        assertTrue("distributors are other apps", receiver.exported)
        assertEquals(
            setOf(
                UnifiedPush.ACTION_MESSAGE, UnifiedPush.ACTION_NEW_ENDPOINT,
                UnifiedPush.ACTION_UNREGISTERED, UnifiedPush.ACTION_REGISTRATION_FAILED,
            ),
            receiver.actions.toSet(),
        )
        assertTrue("android.permission.POST_NOTIFICATIONS" in LibraryManifest.permissions())
    }

    @Test
    fun newEndpointRegistersItWithTheCore() {
        val call = broadcast(intent(UnifiedPush.ACTION_NEW_ENDPOINT).putExtra(UnifiedPush.EXTRA_ENDPOINT, "https://push.example/up/abc"))
        assertEquals("token UNIFIED_PUSH https://push.example/up/abc", call)
    }

    @Test
    fun messageWakesWithTheDeadlineAndAcksTheDistributor() {
        val call = broadcast(
            intent(UnifiedPush.ACTION_MESSAGE).putExtra("bytesMessage", "wake".toByteArray()).putExtra(UnifiedPush.EXTRA_ID, "m1"),
        )
        assertEquals("wake ${UnifiedPushReceiver().deadlineMs}", call)
        val ack = shadowOf(app).broadcastIntents.single { it.action == UnifiedPush.ACTION_MESSAGE_ACK }
        assertEquals(distributor, ack.`package`)
        assertEquals("m1", ack.getStringExtra(UnifiedPush.EXTRA_ID))
        assertEquals(token, ack.getStringExtra(UnifiedPush.EXTRA_TOKEN))
    }

    @Test
    fun unregisteredForgetsTheTokenAndTellsTheApp() {
        assertEquals("unavailable UNIFIED_PUSH", broadcast(intent(UnifiedPush.ACTION_UNREGISTERED)))
        assertNull(UnifiedPush.token(app))
    }

    @Test
    fun broadcastsWithoutOurTokenAreIgnored() = runBlocking {
        val receiver = UnifiedPushReceiver()
        val forged = intent(UnifiedPush.ACTION_NEW_ENDPOINT, token = "not-ours").putExtra(UnifiedPush.EXTRA_ENDPOINT, "https://evil.example/")
        assertFalse(receiver.handle(app, forged, hooks))
        assertFalse(receiver.handle(app, Intent(UnifiedPush.ACTION_MESSAGE), hooks))
        assertFalse(receiver.handle(app, intent("org.example.OTHER"), hooks))
        assertTrue(hooks.calls.isEmpty())
        assertTrue(receiver.handle(app, intent(UnifiedPush.ACTION_MESSAGE), hooks))
        assertEquals("wake ${receiver.deadlineMs}", hooks.calls.single())
    }
}
