package org.alcove

import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.Notification
import uniffi.alcove_ffi.NotificationPrivacy
import uniffi.alcove_ffi.generateDatabaseKey

/** The real native library through JNA, against a real relay process on loopback. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AlcoveClientTest {
    private val dir: File = Files.createTempDirectory("alcove-kt").toFile()
    private val bin = System.getProperty("alcove.bin")
    private val relayDb = File(dir, "relay.db").path
    private lateinit var relay: Process
    private lateinit var url: String

    private fun invite(): String {
        val p = ProcessBuilder(bin, "relay", "invite", "--db", relayDb).start()
        val token = p.inputStream.bufferedReader().readText().trim()
        assertEquals(0, p.waitFor())
        return token
    }

    @BeforeAll
    fun startRelay() {
        val port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        relay = ProcessBuilder(bin, "relay", "--db", relayDb, "--bind", "127.0.0.1:$port")
            .redirectErrorStream(true).redirectOutput(File(dir, "relay.log")).start()
        val deadline = System.currentTimeMillis() + 10_000
        while (true) {
            try {
                java.net.Socket("127.0.0.1", port).close(); break
            } catch (e: java.io.IOException) {
                check(System.currentTimeMillis() < deadline) { "relay did not start" }
                Thread.sleep(50)
            }
        }
    }

    @AfterAll
    fun stopRelay() {
        relay.destroy()
        relay.waitFor()
    }

    private fun enroll(name: String, key: ByteArray) = runBlocking {
        AlcoveClient.enroll(File(dir, "$name.db").path, key, url, invite())
    }

    @Test
    fun enrolTextBothWaysAndPushWakeSync() = runBlocking {
        val therapist = enroll("therapist", generateDatabaseKey())
        val client = enroll("client", generateDatabaseKey())
        client.pinIdentity(therapist.accountId(), therapist.identityKey())
        client.sendText(therapist.accountId(), "hello from kotlin")
        val shown = mutableListOf<Notification>()
        val handler = PushHandler(therapist, NotificationRenderer { shown.add(it) })
        assertEquals(1, handler.onWake(5_000))
        assertEquals("New secure message", shown.single().body)
        therapist.setNotificationPrivacy(NotificationPrivacy.FULL_PREVIEW)
        therapist.sendText(client.accountId(), "reply")
        assertEquals(1u, client.sync(5_000u).received)
        val msgs = client.messages(therapist.accountId(), null, 10u)
        assertEquals(listOf("reply", "hello from kotlin"), msgs.map { it.body })
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
        assertThrows(AlcoveException.WrongKey::class.java) {
            AlcoveClient.open(File(dir, "locker.db").path, wrong, url)
        }
        c.unlock(key)
        assertEquals(0, c.conversations().size)
    }

    @Test
    fun invalidInviteIsATypedException() {
        assertThrows(AlcoveException.InvalidInvite::class.java) {
            runBlocking { AlcoveClient.enroll(File(dir, "nobody.db").path, generateDatabaseKey(), url, "bogus") }
        }
    }
}
