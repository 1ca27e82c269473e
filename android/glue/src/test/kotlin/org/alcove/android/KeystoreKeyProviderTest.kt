package org.alcove.android

import org.robolectric.RuntimeEnvironment
import java.io.File
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

/**
 * Robolectric has no AndroidKeyStore provider, so the wrapping key is a
 * software AES-256 key; the AES-GCM code path is the one used on a device.
 */
@RunWith(RobolectricTestRunner::class)
@Config(application = TestApp::class)
class KeystoreKeyProviderTest {
    private val app = RuntimeEnvironment.getApplication() as TestApp
    private val wrapping: SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    private fun provider(key: SecretKey = wrapping) =
        KeystoreKeyProvider.forContext(app, alias = "test-key", wrappingKey = { key })

    private val file get() = File(app.noBackupFilesDir, "test-key.wrapped")

    @Test
    fun createsOnceKeepsItWrappedInNoBackupAndReturnsTheSameKey() {
        assertFalse(file.exists())
        // The real core's generateDatabaseKey through JNA.
        val first = provider().databaseKey()
        assertEquals(32, first.size)
        assertTrue(file.exists())
        val blob = file.readBytes()
        assertEquals(1 + 12 + 32 + 16, blob.size)
        assertFalse("the raw key is not in the file", blob.toList().windowed(32).any { it == first.toList() })
        // A new provider (a new process) reads the same key back.
        assertArrayEquals(first, provider().databaseKey())
        assertArrayEquals(blob, file.readBytes())
    }

    @Test
    fun refusesATamperedBlobAndNeverReplacesIt() {
        provider().databaseKey()
        val blob = file.readBytes()
        for (i in listOf(1, 13, blob.size - 1)) { // IV, ciphertext, tag
            val bad = blob.clone().also { it[i] = (it[i].toInt() xor 1).toByte() }
            file.writeBytes(bad)
            val e = assertThrows(KeyUnavailableException::class.java) { provider().databaseKey() }
            assertEquals("wrapped database key failed authentication", e.message)
            assertArrayEquals(bad, file.readBytes())
        }
        file.writeBytes(blob.copyOf(blob.size - 1))
        assertThrows(KeyUnavailableException::class.java) { provider().databaseKey() }
    }

    @Test
    fun twoProcessesRacingOnFirstUseAgreeOnOneKey() {
        val other = provider()
        var othersKey = ByteArray(0)
        val racing = KeystoreKeyProvider(file, { wrapping }, newKey = {
            // While this one makes its key, another process creates the file.
            othersKey = other.databaseKey()
            ByteArray(32) { 7 }
        })
        val got = racing.databaseKey()
        assertEquals(32, othersKey.size)
        assertArrayEquals(othersKey, got)
        assertArrayEquals(othersKey, provider().databaseKey())
        assertEquals(listOf("test-key.wrapped"), file.parentFile!!.list()!!.filter { it.startsWith("test-key") || it.startsWith("dbkey") })
    }

    @Test
    fun aDifferentWrappingKeyCannotUnwrap() {
        val key = provider().databaseKey()
        val other = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        assertThrows(KeyUnavailableException::class.java) { provider(other).databaseKey() }
        assertArrayEquals(key, provider().databaseKey())
    }
}
