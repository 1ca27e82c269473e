package org.alcove

import java.io.File
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermissions
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.AppointmentState
import uniffi.alcove_ffi.MessageKind
import uniffi.alcove_ffi.ReminderChoice
import uniffi.alcove_ffi.generateDatabaseKey

/**
 * Reminder buttons through the real bindings: a real relay process, the real `alcove bot`
 * process sending the reminder, the therapist and client as real accounts on the JVM.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ReminderTest {
    private val relay = TestRelay()
    private val dir = relay.dir
    private val bin = System.getProperty("alcove.bin")

    @AfterAll
    fun stopRelay() = relay.close()

    private fun bot(botDir: File, vararg args: String): String {
        val p = ProcessBuilder(listOf(bin, "bot", "--config", File(botDir, "bot.toml").path) + args)
            .redirectError(File(botDir, "bot.err")).start()
        val out = p.inputStream.bufferedReader().readText()
        assertEquals(0, p.waitFor(), File(botDir, "bot.err").readText())
        return out
    }

    private fun hex(s: String): ByteArray = s.chunked(2).map { it.toInt(16).toByte() }.toByteArray()

    @Test
    fun theClientAnswersAReminderWithAButtonOnce() = runBlocking<Unit> {
        val botDir = File(dir, "bot").apply { mkdirs() }
        val key = File(botDir, "bot.key")
        key.writeText(generateDatabaseKey().joinToString("") { "%02x".format(it) })
        Files.setPosixFilePermissions(key.toPath(), PosixFilePermissions.fromString("rw-------"))
        File(botDir, "bot.toml").writeText(
            """
            relay = "${relay.url}"
            database = "bot.db"
            key_file = "bot.key"
            offsets = ["2d"]
            default_time_zone = "UTC"
            """.trimIndent(),
        )
        val identity = bot(botDir, "enroll", "--invite", relay.invite()).lines()
        val botAccount = identity[0].removePrefix("account ")
        val botKey = hex(identity[1].removePrefix("identity_key "))

        val therapist = relay.enroll("t")
        therapist.introduceBot(botAccount, botKey)
        val card = therapist.inviteCard(relay.invite(), null)
        val client = AlcoveClient.enrollByCard(File(dir, "c.db").path, generateDatabaseKey(), card, "J.")
        therapist.sync(5_000u)
        client.sync(5_000u)
        assertEquals(listOf(botAccount), client.trustedBots().map { it.account })

        // An appointment 47 hours away: its two-day reminder is due now.
        val at = ZonedDateTime.now(ZoneOffset.UTC).plusHours(47).format(DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm"))
        bot(botDir, "add", "--id", "s1", "--client", client.accountId(), "--therapist", therapist.accountId(), "--at", at)
        assertTrue(bot(botDir, "run", "--once").startsWith("sent 1 "))

        client.sync(5_000u)
        val toBot = client.conversationWith(botAccount)
        val msg = client.messages(toBot, null, 10u).single()
        assertEquals(MessageKind.REMINDER, msg.kind)
        val reminder = client.reminder(msg.row)!!
        assertEquals(AppointmentState.UPCOMING, reminder.state)
        assertEquals(listOf(ReminderChoice.CONFIRM, ReminderChoice.CANCEL, ReminderChoice.RESCHEDULE), reminder.choices)
        assertNull(reminder.reply)
        // What the app draws: three buttons under the reminder, none under anything else.
        assertEquals(listOf("Confirm", "Cancel", "Ask to reschedule"), client.reminderButtons(msg).map { it.label })

        // Tap Confirm twice: the second changes nothing.
        val replyRow = client.replyToReminder(msg.row, ReminderChoice.CONFIRM)!!
        assertNull(client.replyToReminder(msg.row, ReminderChoice.CONFIRM))
        assertEquals(MessageKind.REMINDER_REPLY, client.messages(toBot, null, 10u).first { it.row == replyRow }.kind)
        assertTrue(bot(botDir, "run", "--once").contains("replies 1 "))

        client.sync(5_000u)
        val acked = client.reminder(msg.row)!!
        assertEquals(ReminderChoice.CONFIRM, acked.acknowledged)
        assertTrue(acked.accepted)
        val ack = client.messages(toBot, null, 10u).first { it.kind == MessageKind.APPOINTMENT_UPDATE }
        assertEquals(emptyList<ReminderChoice>(), client.reminderButtons(ack))
        therapist.sync(5_000u)
        val toClient = therapist.conversationWith(client.accountId())
        assertTrue(therapist.messages(toClient, null, 10u).any { it.kind == MessageKind.APPOINTMENT_UPDATE })

        // A text is no reminder; a message row that does not exist neither.
        assertNull(client.reminder(-1))
        assertThrows(AlcoveException.InvalidInput::class.java) {
            runBlocking { client.replyToReminder(-1, ReminderChoice.CANCEL) }
        }
    }
}
