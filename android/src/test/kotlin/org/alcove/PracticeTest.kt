package org.alcove

import java.io.File
import java.time.ZoneId
import java.time.ZonedDateTime
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.Availability
import uniffi.alcove_ffi.AwayPeriod
import uniffi.alcove_ffi.MessageKind
import uniffi.alcove_ffi.OfficeHours
import uniffi.alcove_ffi.PracticeProfile
import uniffi.alcove_ffi.TextingPolicy
import uniffi.alcove_ffi.generateDatabaseKey

/** Consent before texting and office hours, through the real bindings and a real relay process. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PracticeTest {
    private val relay = TestRelay()
    private val dir = relay.dir

    @AfterAll
    fun stopRelay() = relay.close()

    private fun profile(hours: List<OfficeHours>, away: List<AwayPeriod> = emptyList()) = PracticeProfile(
        displayName = "Dr. Rivera",
        practiceName = "Harbor Counseling",
        timeZone = "America/New_York",
        hours = hours,
        away = away,
        responseTimeHours = 24u,
        crisisResources = "Call or text 988",
        policy = TextingPolicy(1u, "Texting is for scheduling. Not for emergencies."),
        notificationLabel = "HC",
    )

    private suspend fun pair(name: String, p: PracticeProfile): Pair<AlcoveClient, AlcoveClient> {
        val therapist = relay.enroll("$name-t")
        therapist.publishPracticeProfile(p)
        val card = therapist.inviteCard(relay.invite(), null)
        val client = AlcoveClient.enrollByCard(File(dir, "$name-c.db").path, generateDatabaseKey(), card, "J.")
        therapist.sync(5_000u) // hears the client join, answers with the profile
        client.sync(5_000u)
        return therapist to client
    }

    @Test
    fun consentIsRequiredBeforeTheFirstTextAndTheTextIsKept() = runBlocking {
        val allDay = (1u..7u).map { OfficeHours(it, 0u, 1440u) }
        val (therapist, client) = pair("consent", profile(allDay))
        val toT = client.conversationWith(therapist.accountId())
        val policy = assertNotNull(client.consentRequired(toT))!!
        assertEquals(1u, policy.version)
        val e = assertThrows(AlcoveException.ConsentRequired::class.java) {
            runBlocking { client.sendText(toT, "can we move thursday?") }
        }
        assertEquals(1u, e.policyVersion)
        assertEquals(0u, therapist.sync(5_000u).received)
        client.acceptPolicy(toT, 1u)
        assertNull(client.consentRequired(toT))
        client.sync(5_000u)
        assertEquals(1u, therapist.sync(5_000u).received)
        val toC = therapist.conversationWith(client.accountId())
        assertEquals(listOf(1u), therapist.consents(toC).map { it.policyVersion })
        assertEquals(Availability.Open, client.availability(toT))
    }

    @Test
    fun writingOutsideOfficeHoursLeavesTheCrisisNotice() = runBlocking {
        // Open only on the weekday three days from today in New York: closed now.
        val today = ZonedDateTime.now(ZoneId.of("America/New_York")).dayOfWeek.value
        val other = ((today + 2) % 7 + 1).toUInt()
        val (therapist, client) = pair("hours", profile(listOf(OfficeHours(other, 9u * 60u, 17u * 60u))))
        val toT = client.conversationWith(therapist.accountId())
        client.acceptPolicy(toT, 1u)
        val closed = client.availability(toT)
        assertTrue(closed is Availability.Closed, "$closed")
        client.sendText(toT, "are you there?")
        val notice = client.messages(toT, null, 10u).first { it.kind == MessageKind.NOTICE }
        assertTrue(notice.body.contains("Call or text 988"), notice.body)

        // Away now, with a covering contact: Away, and the notice names it.
        val now = System.currentTimeMillis().toULong()
        therapist.publishPracticeProfile(
            profile(listOf(OfficeHours(other, 9u * 60u, 17u * 60u)), listOf(AwayPeriod(now - 1000u, now + 3_600_000u, "Dr. Chen, 555-0100"))),
        )
        therapist.sync(5_000u)
        client.sync(5_000u)
        val away = client.availability(toT)
        assertTrue(away is Availability.Away, "$away")
        assertEquals("Dr. Chen, 555-0100", (away as Availability.Away).coveringContact)
    }
}
