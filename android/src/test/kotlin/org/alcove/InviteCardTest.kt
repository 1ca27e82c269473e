package org.alcove

import java.io.File
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveEvent
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.AlcoveListener
import uniffi.alcove_ffi.checkInviteCard
import uniffi.alcove_ffi.generateDatabaseKey
import uniffi.alcove_ffi.inviteCardQrSvg

/** Enrolment by invite card through the real bindings, against a real relay process. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class InviteCardTest {
    private val relay = TestRelay()
    private val dir = relay.dir

    @AfterAll
    fun stopRelay() = relay.close()

    @Test
    fun clientEnrolsByCardAndTherapistSeesThemJoin() = runBlocking {
        val therapist = relay.enroll("card-therapist")
        val events = mutableListOf<AlcoveEvent>()
        val handle = therapist.setListener(object : AlcoveListener {
            override fun onEvent(event: AlcoveEvent) { synchronized(events) { events.add(event) } }
        })
        val card = therapist.inviteCard(relay.invite(), null)
        // What the app shows before enrolling, and the QR code it draws.
        val info = checkInviteCard(card)
        assertEquals(therapist.accountId(), info.therapistAccount)
        assertEquals(relay.url, info.relayUrl)
        assertTrue(inviteCardQrSvg(card).contains("<svg"))

        val client = AlcoveClient.enrollByCard(File(dir, "card-client.db").path, generateDatabaseKey(), card, "J.")
        val withTherapist = client.conversationWith(therapist.accountId())
        assertEquals(listOf(therapist.accountId()), client.conversations().single().members)

        therapist.sync(5_000u)
        val joined = synchronized(events) { events.filterIsInstance<AlcoveEvent.ClientJoined>() }
        val conv = therapist.conversations().single { it.id == joined.single().conversationId }
        assertEquals("J.", conv.displayName)
        client.sendText(withTherapist, "hello")
        assertEquals(1u, therapist.sync(5_000u).received)
        handle.cancel()
    }

    @Test
    fun wrongCardsAreTypedAndLeaveNothingBehind() = runBlocking {
        val therapist = relay.enroll("card-therapist-2")
        val card = therapist.inviteCard(relay.invite(), null)
        val path = File(dir, "card-wrong.db")
        val truncated = assertThrows(AlcoveException.InvalidCard::class.java) {
            runBlocking { AlcoveClient.enrollByCard(path.path, generateDatabaseKey(), card.dropLast(4), "J.") }
        }
        assertEquals("checksum_mismatch", truncated.reason)
        assertThrows(AlcoveException.InvalidCard::class.java) { checkInviteCard("https://example.org/join") }
        val expired = therapist.inviteCard(relay.invite(), 1uL)
        val e = assertThrows(AlcoveException.InvalidCard::class.java) { checkInviteCard(expired) }
        assertEquals("expired", e.reason)
        assertFalse(path.exists())
    }
}
