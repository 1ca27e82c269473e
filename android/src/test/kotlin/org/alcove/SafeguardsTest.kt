package org.alcove

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.generateDatabaseKey

/** Automatic logoff and the audit log through the real bindings. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SafeguardsTest {
    private val relay = TestRelay()

    @AfterAll
    fun stopRelay() = relay.close()

    @Test
    fun theCoreLocksItselfAndTheAuditLogSaysSo() = runBlocking<Unit> {
        val key = generateDatabaseKey()
        val client = relay.enroll("safe", key)
        client.setAutoLock(300u)
        val deadline = System.currentTimeMillis() + 10_000
        while (!client.isLocked() && System.currentTimeMillis() < deadline) Thread.sleep(50)
        assertTrue(client.isLocked(), "not auto-locked")
        assertThrows(AlcoveException.ClientLocked::class.java) { client.conversations() }

        client.setAutoLock(null)
        client.unlock(key)
        assertFalse(client.isLocked())
        val check = client.verifyAuditLog()
        assertTrue(check.intact)
        assertNull(check.problem)
        // Opened at enrolment? No: unlocked on open, locked by the timer, unlocked now.
        assertTrue(check.entries >= 2u, "$check")
        assertEquals(check.entries.toLong() - 1, check.signedThrough)
    }

    @Test
    fun retentionTimersAndPurge() = runBlocking<Unit> {
        val therapist = relay.enroll("rt")
        val client = relay.enroll("rc")
        val toT = client.conversationWith(therapist.accountId())
        client.sendText(toT, "before the timer")
        client.setRetention(toT, 3_600u)
        client.sync(5_000u) // the timer goes out with the next sync
        therapist.sync(5_000u)
        val toC = therapist.conversationWith(client.accountId())
        assertEquals(3_600uL, therapist.retention(toC).timerSeconds)
        assertEquals(3_600uL, client.retention(toT).effectiveSeconds)
        assertThrows(AlcoveException.InvalidInput::class.java) { client.setRetention(toT, ULong.MAX_VALUE) }
        assertEquals(1uL, client.purgeConversation(toT))
        assertTrue(client.conversations().isEmpty())
        assertTrue(client.verifyAuditLog().intact)
    }
}
