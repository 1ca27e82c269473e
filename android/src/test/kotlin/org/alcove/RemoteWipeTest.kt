package org.alcove

import java.io.File
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveEvent
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.AlcoveListener
import uniffi.alcove_ffi.PushKind

/** A revoked device wipes itself; the shell hears it typed, through the real native library and relay. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RemoteWipeTest {
    private val relay = TestRelay()

    @AfterAll
    fun stopRelay() = relay.close()

    @Test
    fun aRevokedPhoneTellsTheAppThenWipesAndStaysUnusable() = runBlocking {
        val other = relay.enroll("rw-other")
        val phone = relay.enroll("rw-phone")
        val events = CopyOnWriteArrayList<AlcoveEvent>()
        phone.setListener(object : AlcoveListener {
            override fun onEvent(event: AlcoveEvent) {
                events.add(event)
            }
        })
        val keyDeleted = AtomicInteger()
        val handler = PushHandler(phone, NotificationRenderer { }, onDeviceRevoked = DeviceRevokedHandler {
            // By now the listener has heard the event.
            assertEquals(listOf<AlcoveEvent>(AlcoveEvent.DeviceRevoked), events.toList())
            keyDeleted.incrementAndGet()
        })
        assertEquals(0, handler.onWake(5_000))

        relay.revoke(phone.accountId(), 1)
        assertThrows(AlcoveException.DeviceRevoked::class.java) { runBlocking { handler.onWake(5_000) } }
        assertEquals(1, keyDeleted.get())
        assertTrue(phone.isRevoked())
        assertFalse(File(relay.dir, "rw-phone.db").exists())
        assertFalse(File(relay.dir, "rw-phone.db.keycheck").exists())
        // Later calls fail typed too; the handler hears each.
        assertThrows(AlcoveException.DeviceRevoked::class.java) {
            runBlocking { handler.onNewToken(PushKind.FCM, "f".repeat(64)) }
        }
        assertEquals(2, keyDeleted.get())
        assertThrows(AlcoveException.DeviceRevoked::class.java) { phone.conversations() }

        // Another account is untouched.
        other.sync(5_000uL)
        assertFalse(other.isRevoked())
    }
}
