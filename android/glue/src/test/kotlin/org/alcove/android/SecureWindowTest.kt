package org.alcove.android

import android.app.Activity
import android.view.WindowManager
import org.robolectric.RuntimeEnvironment
import org.junit.Assert.assertEquals
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

@RunWith(RobolectricTestRunner::class)
@Config(application = TestApp::class)
class SecureWindowTest {
    private fun secure(activity: Activity) =
        activity.window.attributes.flags and WindowManager.LayoutParams.FLAG_SECURE

    @Test
    fun applyMarksTheWindowSecure() {
        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        assertEquals(0, secure(activity))
        SecureWindow.apply(activity)
        assertEquals(WindowManager.LayoutParams.FLAG_SECURE, secure(activity))
    }

    @Test
    fun registerSecuresEveryActivityCreatedAfterwards() {
        SecureWindow.register(RuntimeEnvironment.getApplication() as TestApp)
        val activity = Robolectric.buildActivity(Activity::class.java).setup().get()
        assertEquals(WindowManager.LayoutParams.FLAG_SECURE, secure(activity))
    }
}
