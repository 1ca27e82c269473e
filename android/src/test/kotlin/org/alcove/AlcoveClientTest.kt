package org.alcove

import java.io.File
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.MessageStatus
import uniffi.alcove_ffi.Notification
import uniffi.alcove_ffi.NotificationPrivacy
import uniffi.alcove_ffi.generateDatabaseKey

/** The real native library through JNA, against a real relay process on loopback. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AlcoveClientTest {
    private val relay = TestRelay()
    private val dir = relay.dir

    @AfterAll
    fun stopRelay() = relay.close()

    private fun enroll(name: String, key: ByteArray) = relay.enroll(name, key)

    @Test
    fun enrolTextBothWaysAndPushWakeSync() = runBlocking {
        val therapist = enroll("therapist", generateDatabaseKey())
        val client = enroll("client", generateDatabaseKey())
        client.pinIdentity(therapist.accountId(), therapist.identityKey())
        client.sendText(client.conversationWith(therapist.accountId()), "hello from kotlin")
        val shown = mutableListOf<Notification>()
        val handler = PushHandler(therapist, NotificationRenderer { shown.add(it) })
        assertEquals(1, handler.onWake(5_000))
        assertEquals("New secure message", shown.single().body)
        therapist.setNotificationPrivacy(NotificationPrivacy.FULL_PREVIEW)
        therapist.sendText(therapist.conversationWith(client.accountId()), "reply")
        assertEquals(1u, client.sync(5_000u).received)
        val msgs = client.messages(client.conversationWith(therapist.accountId()), null, 10u)
        assertEquals(listOf("reply", "hello from kotlin"), msgs.map { it.body })
        assertEquals(listOf(MessageStatus.RECEIVED, MessageStatus.SENT), msgs.map { it.status })
        assertEquals(
            therapist.safetyNumber(client.accountId()).display,
            client.safetyNumber(therapist.accountId()).display,
        )
    }

    @Test
    fun lockUnlockAndWrongKeyAreTyped() {
        val key = generateDatabaseKey()
        val c = enroll("locker", key)
        c.lock()
        assertTrue(c.isLocked())
        assertThrows(AlcoveException.ClientLocked::class.java) { c.conversations() }
        val wrong = generateDatabaseKey()
        assertNotEquals(key.toList(), wrong.toList())
        assertThrows(AlcoveException.WrongKey::class.java) { c.unlock(wrong) }
        assertTrue(c.isLocked())
        assertThrows(AlcoveException.InvalidInput::class.java) { c.unlock(byteArrayOf(1, 2, 3)) }
        assertThrows(AlcoveException.WrongKey::class.java) {
            AlcoveClient.open(File(dir, "locker.db").path, wrong, relay.url)
        }
        c.unlock(key)
        assertTrue(!c.isLocked())
        assertEquals(0, c.conversations().size)
        // Lock again and reopen from the file: the same account.
        val id = c.accountId()
        c.lock()
        assertEquals(id, AlcoveClient.open(File(dir, "locker.db").path, key, relay.url).accountId())
    }

    @Test
    fun invalidInviteIsATypedException() {
        assertThrows(AlcoveException.InvalidInvite::class.java) {
            runBlocking { AlcoveClient.enroll(File(dir, "nobody.db").path, generateDatabaseKey(), relay.url, "bogus") }
        }
    }
}
