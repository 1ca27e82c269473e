package org.alcove

import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.alcove_ffi.AlcoveEvent
import uniffi.alcove_ffi.AlcoveException
import uniffi.alcove_ffi.AlcoveListener
import uniffi.alcove_ffi.PushKind

/** Listener events, push registration and identity changes through the real native library. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EventsAndPushTest {
    private val relay = TestRelay()

    @AfterAll
    fun stopRelay() = relay.close()

    private class Recorder : AlcoveListener {
        val events = CopyOnWriteArrayList<AlcoveEvent>()
        override fun onEvent(event: AlcoveEvent) {
            events.add(event)
        }
    }

    @Test
    fun pushWakeSyncDeliversMessageReceivedAndCancelStopsEvents() = runBlocking {
        val therapist = relay.enroll("t1")
        val client = relay.enroll("c1")
        PushEndpoint().use { endpoint ->
            val handler = PushHandler(therapist, NotificationRenderer { })
            assertTrue(handler.onNewToken(PushKind.UNIFIED_PUSH, endpoint.url))

            val recorder = Recorder()
            val handle = therapist.setListener(recorder)
            // A listener that throws does not break the sync or the others.
            val thrower = therapist.setListener(object : AlcoveListener {
                override fun onEvent(event: AlcoveEvent) = throw IllegalStateException("app bug")
            })
            // The Flow adapter sees the same event.
            val fromFlow = async(start = CoroutineStart.UNDISPATCHED) { therapist.events().first() }
            yield() // let the flow's producer register its listener

            client.sendText(client.conversationWith(therapist.accountId()), "are we still on for Tuesday?")
            assertArrayEquals("wake".toByteArray(), endpoint.next())
            assertTrue(recorder.events.isEmpty())
            assertEquals(1, handler.onWake(5_000))

            val row = therapist.messages(therapist.conversationWith(client.accountId()), null, 1u).single().row
            val expected = AlcoveEvent.MessageReceived(therapist.conversationWith(client.accountId()), row)
            assertEquals(listOf<AlcoveEvent>(expected), recorder.events.toList())
            assertEquals(expected, withTimeout(10_000) { fromFlow.await() })

            // Cancelled: the next wake's message reaches nobody.
            handle.cancel()
            thrower.close()
            recorder.events.clear()
            client.sendText(client.conversationWith(therapist.accountId()), "second")
            assertArrayEquals("wake".toByteArray(), endpoint.next())
            assertEquals(1, handler.onWake(5_000))
            assertTrue(recorder.events.isEmpty())
            handle.close()
        }
    }

    @Test
    fun flowCollectorsGetEveryEventAndUnregisterWhenDone() = runBlocking {
        val a = relay.enroll("fa")
        val b = relay.enroll("fb")
        val three = async(start = CoroutineStart.UNDISPATCHED) { a.events().take(3).toList() }
        yield() // let the flow's producer register its listener
        repeat(3) { b.sendText(b.conversationWith(a.accountId()), "m$it") }
        assertEquals(3u, a.sync(5_000u).received)
        val rows = a.messages(a.conversationWith(b.accountId()), null, 10u).map { it.row }.sorted()
        assertEquals(
            rows.map { AlcoveEvent.MessageReceived(a.conversationWith(b.accountId()), it) },
            withTimeout(10_000) { three.await() },
        )
    }

    @Test
    fun identityChangeIsATypedExceptionAndAnEvent() = runBlocking {
        val therapist = relay.enroll("t2")
        val client = relay.enroll("c2")
        val other = relay.enroll("o2")
        // The invite card the client scanned carried the wrong key.
        client.pinIdentity(therapist.accountId(), other.identityKey())
        val recorder = Recorder()
        val handle = client.setListener(recorder)
        val e = assertThrows(AlcoveException.IdentityChanged::class.java) {
            runBlocking { client.sendText(client.conversationWith(therapist.accountId()), "hello") }
        }
        assertEquals(therapist.accountId(), e.accountId)
        val changed = AlcoveEvent.IdentityChanged(therapist.accountId())
        assertEquals(listOf<AlcoveEvent>(changed), recorder.events.toList())
        // Nothing lost: the text waits; every sync reminds; after accepting
        // the new safety number it goes.
        assertEquals(0u, client.sync(5_000u).sent)
        assertEquals(listOf<AlcoveEvent>(changed, changed), recorder.events.toList())
        // The number shown while the change is pending is the new key's:
        // the one the therapist's phone shows once they talk.
        val shown = client.safetyNumber(therapist.accountId()).display
        client.acceptIdentityChange(therapist.accountId())
        assertEquals(1u, client.sync(5_000u).sent)
        assertEquals(1u, therapist.sync(5_000u).received)
        assertEquals("hello", therapist.messages(therapist.conversationWith(client.accountId()), null, 1u).single().body)
        assertEquals(shown, therapist.safetyNumber(client.accountId()).display)
        handle.close()
    }

    @Test
    fun pushRegistrationErrorsAreTyped() = runBlocking {
        val c = relay.enroll("p3")
        val handler = PushHandler(c, NotificationRenderer { })
        val bad = assertThrows(AlcoveException.Relay::class.java) {
            runBlocking { handler.onNewToken(PushKind.UNIFIED_PUSH, "not a url") }
        }
        assertEquals(400.toUShort(), bad.status)
        c.lock()
        assertThrows(AlcoveException.ClientLocked::class.java) {
            runBlocking { c.registerPush(PushKind.FCM, "token") }
        }
        assertTrue(c.isLocked())
        // The core keeps the token and retries it on the next sync.
        assertTrue(c.pushRegistrationPending())
    }
}
