// Message notifications: the core renders the text by the account's privacy
// level (hidden by default); the lock screen only ever sees a generic line.
package org.alcove.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import org.alcove.NotificationRenderer
import uniffi.alcove_ffi.Notification as CoreNotification

object AlcoveNotifications {
    const val CHANNEL_ID = "alcove_messages"
    const val TAG = "alcove"

    /** All the lock screen (public version) ever shows. */
    const val PUBLIC_TEXT = "New secure message"

    /**
     * Creates (or updates) the messages channel. [lockscreenVisibility] is
     * [Notification.VISIBILITY_PRIVATE] (lock screen shows the public version)
     * or [Notification.VISIBILITY_SECRET] (nothing at all); never PUBLIC.
     */
    fun ensureChannel(
        context: Context,
        name: CharSequence = "Messages",
        lockscreenVisibility: Int = Notification.VISIBILITY_PRIVATE,
    ): NotificationChannel {
        require(lockscreenVisibility != Notification.VISIBILITY_PUBLIC) { "message content never goes on the lock screen" }
        val channel = NotificationChannel(CHANNEL_ID, name, NotificationManager.IMPORTANCE_HIGH).apply {
            this.lockscreenVisibility = lockscreenVisibility
            setShowBadge(true)
        }
        context.getSystemService(NotificationManager::class.java).createNotificationChannel(channel)
        return channel
    }
}

/**
 * Posts the core's rendered notifications. The private version carries the
 * core's title/body (hidden text unless the user opted into more); the public
 * version, shown on a secure lock screen, says only [AlcoveNotifications.PUBLIC_TEXT].
 */
class AndroidNotificationRenderer(
    context: Context,
    private val smallIcon: Int = android.R.drawable.stat_notify_chat,
    private val contentIntent: PendingIntent? = null,
) : NotificationRenderer {
    private val context = context.applicationContext ?: context
    private val manager = context.getSystemService(NotificationManager::class.java)

    init {
        AlcoveNotifications.ensureChannel(this.context)
    }

    override fun show(notification: CoreNotification) {
        val publicVersion = Notification.Builder(context, AlcoveNotifications.CHANNEL_ID)
            .setSmallIcon(smallIcon)
            .setContentTitle(AlcoveNotifications.PUBLIC_TEXT)
            .build()
        val full = Notification.Builder(context, AlcoveNotifications.CHANNEL_ID)
            .setSmallIcon(smallIcon)
            .setContentTitle(notification.title)
            .setContentText(notification.body)
            .setCategory(Notification.CATEGORY_MESSAGE)
            .setVisibility(Notification.VISIBILITY_PRIVATE)
            .setPublicVersion(publicVersion)
            .setAutoCancel(true)
            .apply { contentIntent?.let(::setContentIntent) }
            .build()
        // One notification per stored message row: a re-delivered wake that
        // renders the same row again replaces it instead of stacking.
        manager.notify(AlcoveNotifications.TAG, (notification.messageRow and 0x7fffffff).toInt(), full)
    }
}
