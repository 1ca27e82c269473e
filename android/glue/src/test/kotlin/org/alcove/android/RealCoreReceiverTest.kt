package org.alcove.android

import android.app.Notification
import android.app.NotificationManager
import android.content.Intent
import android.os.Looper
import com.sun.net.httpserver.HttpServer
import java.io.File
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import javax.crypto.KeyGenerator
import kotlinx.coroutines.runBlocking
import org.alcove.PushHandler
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.PushKind
import uniffi.alcove_ffi.generateDatabaseKey

/**
 * The whole Android push path on the real core: a real relay process on
 * loopback, the native library through JNA, a local HTTP server standing in
 * for the UnifiedPush distributor's endpoint. NEW_ENDPOINT registers it with
 * the relay; a message makes the relay POST its wake there; that body,
 * delivered as MESSAGE, syncs an auto-locked client and posts a notification.
 */
@RunWith(RobolectricTestRunner::class)
@Config(application = TestApp::class)
class RealCoreReceiverTest {
    private val app = RuntimeEnvironment.getApplication() as TestApp
    private val dir: File = Files.createTempDirectory("alcove-glue").toFile()
    private val bin = System.getProperty("alcove.bin")
    private val relayDb = File(dir, "relay.db").path
    private lateinit var relay: Process
    private lateinit var url: String
    private val wakes = LinkedBlockingQueue<ByteArray>()
    private val endpoint: HttpServer = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
        createContext("/up/therapist") { ex ->
            wakes.add(ex.requestBody.readBytes())
            ex.sendResponseHeaders(201, -1)
            ex.close()
        }
        start()
    }

    /** Reports each hook's outcome so the test can wait for the async receiver. */
    private class Observed(private val inner: PushHooks) : PushHooks {
        val outcomes = LinkedBlockingQueue<String>()

        private suspend fun record(what: String, block: suspend () -> Unit) {
            outcomes.add(runCatching { block() }.fold({ "$what ok" }, { "$what failed: $it" }))
        }

        override suspend fun wake(deadlineMs: Long) = record("wake") { inner.wake(deadlineMs) }
        override suspend fun newToken(kind: PushKind, token: String) = record("token") { inner.newToken(kind, token) }
    }

    @Before
    fun startRelay() {
        LibraryManifest.registerReceivers(app)
        val port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        relay = ProcessBuilder(bin, "relay", "--db", relayDb, "--bind", "127.0.0.1:$port")
            .redirectErrorStream(true).redirectOutput(File(dir, "relay.log")).start()
        val deadline = System.currentTimeMillis() + 10_000
        while (true) {
            try {
                Socket("127.0.0.1", port).close(); break
            } catch (e: java.io.IOException) {
                check(System.currentTimeMillis() < deadline) { "relay did not start" }
                Thread.sleep(50)
            }
        }
    }

    @After
    fun stop() {
        relay.destroy()
        relay.waitFor()
        endpoint.stop(0)
    }

    private fun invite(): String {
        val p = ProcessBuilder(bin, "relay", "invite", "--db", relayDb).start()
        val token = p.inputStream.bufferedReader().readText().trim()
        assertEquals(0, p.waitFor())
        return token
    }

    private fun broadcast(intent: Intent) {
        app.sendBroadcast(intent.setPackage(app.packageName))
        shadowOf(Looper.getMainLooper()).idle()
    }

    @Test
    fun unifiedPushWakeSyncsALockedClientAndPostsAHiddenNotification() = runBlocking {
        val wrapping = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        val keys = KeystoreKeyProvider.forContext(app, alias = "therapist", wrappingKey = { wrapping })
        val therapist = AlcoveClient.enroll(File(dir, "therapist.db").path, keys.databaseKey(), url, invite())
        val client = AlcoveClient.enroll(File(dir, "client.db").path, generateDatabaseKey(), url, invite())
        val hooks = Observed(CorePushHooks(PushHandler(therapist, AndroidNotificationRenderer(app), keys)))
        app.hooks = hooks

        val therapistId = therapist.accountId()
        client.pinIdentity(therapistId, therapist.identityKey())
        therapist.lock() // the app's auto-lock: the key is out of memory

        UnifiedPush.register(app, "org.example.distributor")
        val token = UnifiedPush.token(app)!!
        val up = "http://127.0.0.1:${endpoint.address.port}/up/therapist"
        broadcast(Intent(UnifiedPush.ACTION_NEW_ENDPOINT).putExtra("token", token).putExtra("endpoint", up))
        assertEquals("token ok", hooks.outcomes.poll(20, TimeUnit.SECONDS))
        assertTrue("locked again after registering", therapist.isLocked())

        client.sendText(client.conversationWith(therapistId), "hello from the client")
        val wake = wakes.poll(20, TimeUnit.SECONDS)
        assertArrayEquals("wake".toByteArray(), wake)

        broadcast(Intent(UnifiedPush.ACTION_MESSAGE).putExtra("token", token).putExtra("bytesMessage", wake))
        assertEquals("wake ok", hooks.outcomes.poll(20, TimeUnit.SECONDS))

        val posted = shadowOf(app.getSystemService(NotificationManager::class.java)).allNotifications.single()
        // Hidden by default: neither the text nor who sent it.
        assertEquals("New secure message", posted.extras.getCharSequence(Notification.EXTRA_TEXT).toString())
        assertEquals(AlcoveNotifications.PUBLIC_TEXT, posted.publicVersion.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        assertTrue("locked again after the wake", therapist.isLocked())
        therapist.unlock(keys.databaseKey())
        val msgs = therapist.messages(therapist.conversationWith(client.accountId()), null, 10u)
        assertEquals(listOf("hello from the client"), msgs.map { it.body })
    }
}
