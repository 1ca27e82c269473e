package org.alcove

import java.io.File
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.generateDatabaseKey

/** Encrypted backup and restore on a "new phone" through the real bindings and a real relay. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BackupTest {
    private val relay = TestRelay()
    private val dir = relay.dir

    @AfterAll
    fun stopRelay() = relay.close()

    @Test
    fun aBackupComesBackOnANewPhoneAndTalksBothWays() = runBlocking<Unit> {
        val therapist = relay.enroll("bt")
        val client = relay.enroll("bc")
        val toT = client.conversationWith(therapist.accountId())
        client.sendText(toT, "before the phone was lost")
        therapist.sync(5_000u)
        val backup = File(dir, "bc.backup")
        val code = client.backup(backup.path)
        val account = client.accountId()
        client.lock()

        val target = File(dir, "restored.db")
        val newKey = generateDatabaseKey()
        val typo = (if (code[0] == 'A') "B" else "A") + code.substring(1)
        val e = assertThrows(AlcoveException.Backup::class.java) {
            AlcoveClient.restoreFromBackup(backup.path, typo, target.path, newKey, relay.url, null)
        }
        assertEquals("invalid_recovery_code", e.reason)
        assertFalse(target.exists())

        val restored = AlcoveClient.restoreFromBackup(backup.path, code, target.path, newKey, relay.url, account)
        assertEquals(account, restored.accountId())
        val conv = restored.conversationWith(therapist.accountId())
        assertEquals(listOf("before the phone was lost"), restored.messages(conv, null, 10u).map { it.body })
        restored.sendText(conv, "new phone")
        assertEquals(1u, therapist.sync(5_000u).received)
        therapist.sendText(therapist.conversationWith(account), "got it")
        assertEquals(1u, restored.sync(5_000u).received)
    }
}
