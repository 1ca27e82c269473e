package org.alcove.android

import android.app.Notification
import android.app.NotificationManager
import org.robolectric.RuntimeEnvironment
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import uniffi.alcove_ffi.Notification as CoreNotification

@RunWith(RobolectricTestRunner::class)
@Config(application = TestApp::class)
class NotificationsTest {
    private val app = RuntimeEnvironment.getApplication() as TestApp
    private val manager = app.getSystemService(NotificationManager::class.java)

    @Test
    fun channelKeepsContentOffTheLockScreen() {
        AndroidNotificationRenderer(app)
        val channel = manager.getNotificationChannel(AlcoveNotifications.CHANNEL_ID)
        assertEquals(Notification.VISIBILITY_PRIVATE, channel.lockscreenVisibility)
        assertEquals(NotificationManager.IMPORTANCE_HIGH, channel.importance)
        assertThrows(IllegalArgumentException::class.java) {
            AlcoveNotifications.ensureChannel(app, lockscreenVisibility = Notification.VISIBILITY_PUBLIC)
        }
    }

    @Test
    fun aSecretChannelHidesEvenThePublicVersion() {
        // Lock-screen visibility is fixed when a channel is first created
        // (then it is the user's), so the app chooses SECRET up front.
        AlcoveNotifications.ensureChannel(app, lockscreenVisibility = Notification.VISIBILITY_SECRET)
        assertEquals(
            Notification.VISIBILITY_SECRET,
            manager.getNotificationChannel(AlcoveNotifications.CHANNEL_ID).lockscreenVisibility,
        )
    }

    @Test
    fun postedNotificationIsPrivateAndItsPublicVersionSaysNothing() {
        val renderer = AndroidNotificationRenderer(app)
        // FULL_PREVIEW-style text, to prove it never reaches the public version.
        renderer.show(CoreNotification("Dr. Example", "see you at 3pm", 42))
        val posted = shadowOf(manager).allNotifications.single()
        assertEquals(Notification.VISIBILITY_PRIVATE, posted.visibility)
        assertEquals(AlcoveNotifications.CHANNEL_ID, posted.channelId)
        assertEquals("Dr. Example", posted.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        assertEquals("see you at 3pm", posted.extras.getCharSequence(Notification.EXTRA_TEXT).toString())

        val public = posted.publicVersion
        assertEquals(AlcoveNotifications.PUBLIC_TEXT, public.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        assertFalse(public.extras.containsKey(Notification.EXTRA_TEXT) && public.extras.getCharSequence(Notification.EXTRA_TEXT) != null)
        // Every extra of any type, so nothing of the message hides anywhere.
        @Suppress("DEPRECATION")
        val shown = public.extras.keySet().mapNotNull { public.extras.get(it)?.toString() }
        assertFalse(shown.any { "Example" in it || "3pm" in it })

        // The same message row rendered again replaces, not stacks.
        renderer.show(CoreNotification("Dr. Example", "see you at 3pm", 42))
        assertEquals(1, shadowOf(manager).allNotifications.size)
        renderer.show(CoreNotification("Alcove", "New secure message", 43))
        assertEquals(2, shadowOf(manager).allNotifications.size)
    }
}
