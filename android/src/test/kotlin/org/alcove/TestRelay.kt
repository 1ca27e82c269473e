package org.alcove

import com.sun.net.httpserver.HttpServer
import java.io.File
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.generateDatabaseKey

/** A real `alcove relay` process on loopback with its own SQLite file. */
class TestRelay : AutoCloseable {
    val dir: File = Files.createTempDirectory("alcove-kt").toFile()
    private val bin = System.getProperty("alcove.bin")
    private val relayDb = File(dir, "relay.db").path
    private val process: Process
    val url: String

    init {
        val port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        process = ProcessBuilder(bin, "relay", "--db", relayDb, "--bind", "127.0.0.1:$port")
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

    fun invite(): String {
        val p = ProcessBuilder(bin, "relay", "invite", "--db", relayDb).start()
        val token = p.inputStream.bufferedReader().readText().trim()
        assertEquals(0, p.waitFor())
        return token
    }

    /** The practice admin's `alcove relay revoke ACCOUNT --device N`. */
    fun revoke(account: String, device: Int) {
        val p = ProcessBuilder(bin, "relay", "revoke", "--db", relayDb, account, "--device", "$device")
            .redirectErrorStream(true).start()
        p.inputStream.readAllBytes()
        assertEquals(0, p.waitFor())
    }

    fun enroll(name: String, key: ByteArray = generateDatabaseKey()): AlcoveClient = runBlocking {
        AlcoveClient.enroll(File(dir, "$name.db").path, key, url, invite())
    }

    override fun close() {
        process.destroy()
        process.waitFor()
    }
}

/** A local UnifiedPush endpoint (JDK HTTP server): records every wake-up body. */
class PushEndpoint : AutoCloseable {
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
    private val bodies = LinkedBlockingQueue<ByteArray>()
    val url: String

    init {
        server.createContext("/up/") { ex ->
            bodies.add(ex.requestBody.readAllBytes())
            ex.sendResponseHeaders(201, -1)
            ex.close()
        }
        server.start()
        url = "http://127.0.0.1:${server.address.port}/up/device-token"
    }

    /** The next wake-up body, or null if none came within [seconds]. */
    fun next(seconds: Long = 10): ByteArray? = bodies.poll(seconds, TimeUnit.SECONDS)

    override fun close() = server.stop(0)
}
