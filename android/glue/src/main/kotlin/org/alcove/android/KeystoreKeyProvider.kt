// The database key at rest: 32 random bytes wrapped (AES-256-GCM) by a
// non-exportable AndroidKeyStore key, the blob kept in noBackupFilesDir.
package org.alcove.android

import android.content.Context
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import java.io.FileOutputStream
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.alcove.KeyProvider
import uniffi.alcove_ffi.generateDatabaseKey

/**
 * The key could not be produced. Never answered by making a new key: that
 * would orphan the database (the core would report WrongKey forever after).
 */
class KeyUnavailableException(message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * A [KeyProvider] that keeps the database key wrapped in [file].
 *
 * [wrappingKey] supplies the AES-256 key for AES/GCM: on a device the
 * AndroidKeyStore key from [forContext]; in tests any javax.crypto key
 * (Robolectric has no AndroidKeyStore provider). The first call creates the
 * database key with the core's [generateDatabaseKey] and stores it wrapped.
 */
class KeystoreKeyProvider(
    private val file: File,
    private val wrappingKey: () -> SecretKey,
    private val newKey: () -> ByteArray = ::generateDatabaseKey,
) : KeyProvider {
    override fun databaseKey(): ByteArray = synchronized(this) {
        if (file.exists()) unwrap(file.readBytes()) else create()
    }

    private fun create(): ByteArray {
        val key = newKey()
        if (key.size != KEY_LEN) throw KeyUnavailableException("generated key has the wrong length")
        val dir = file.absoluteFile.parentFile ?: throw KeyUnavailableException("key file has no directory")
        dir.mkdirs()
        val tmp = File.createTempFile("dbkey", ".tmp", dir)
        try {
            FileOutputStream(tmp).use { out ->
                out.write(wrap(key))
                out.fd.sync()
            }
            // A hard link fails if the file exists, so when two processes
            // race on first use exactly one key wins and both use it.
            try {
                Files.createLink(file.toPath(), tmp.toPath())
            } catch (e: FileAlreadyExistsException) {
                return unwrap(file.readBytes())
            }
        } finally {
            tmp.delete()
        }
        return key
    }

    private fun wrap(key: ByteArray): ByteArray = try {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        // The Keystore insists on choosing the IV itself (randomized encryption).
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey())
        cipher.updateAAD(AAD)
        val iv = cipher.iv
        if (iv.size != IV_LEN) throw KeyUnavailableException("unexpected IV length")
        byteArrayOf(VERSION) + iv + cipher.doFinal(key)
    } catch (e: GeneralSecurityException) {
        throw KeyUnavailableException("could not wrap the database key", e)
    }

    private fun unwrap(blob: ByteArray): ByteArray {
        if (blob.size != BLOB_LEN || blob[0] != VERSION) {
            throw KeyUnavailableException("wrapped database key is malformed")
        }
        return try {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(TAG_BITS, blob, 1, IV_LEN))
            cipher.updateAAD(AAD)
            cipher.doFinal(blob, 1 + IV_LEN, blob.size - 1 - IV_LEN)
        } catch (e: AEADBadTagException) {
            throw KeyUnavailableException("wrapped database key failed authentication", e)
        } catch (e: GeneralSecurityException) {
            throw KeyUnavailableException("could not unwrap the database key", e)
        }
    }

    companion object {
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val VERSION: Byte = 1
        private const val KEY_LEN = 32
        private const val IV_LEN = 12
        private const val TAG_BITS = 128
        private const val BLOB_LEN = 1 + IV_LEN + KEY_LEN + TAG_BITS / 8
        private val AAD = "alcove-db-key-v1".toByteArray()
        const val DEFAULT_ALIAS = "alcove-db-key"

        /**
         * The device setup: the blob in noBackupFilesDir (never in a backup or
         * a device-to-device transfer), the wrapping key in the AndroidKeyStore.
         *
         * No user authentication is required, so a push wake can sync while
         * the screen is locked (after the first unlock since boot, when the
         * credential-encrypted storage holding the database is readable).
         * [unlockedDeviceRequired] (API 28+) makes the key unusable while the
         * device is locked: stronger against a thief with a locked phone, but
         * then messages arriving while locked wait until the next unlock.
         */
        fun forContext(
            context: Context,
            alias: String = DEFAULT_ALIAS,
            unlockedDeviceRequired: Boolean = false,
            wrappingKey: () -> SecretKey = { androidKeystoreKey(alias, unlockedDeviceRequired) },
        ): KeystoreKeyProvider = KeystoreKeyProvider(File(context.noBackupFilesDir, "$alias.wrapped"), wrappingKey)

        private fun androidKeystoreKey(alias: String, unlockedDeviceRequired: Boolean): SecretKey {
            val store = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
            (store.getKey(alias, null) as? SecretKey)?.let { return it }
            val spec = KeyGenParameterSpec.Builder(
                alias,
                KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
            )
                .setKeySize(256)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setRandomizedEncryptionRequired(true)
                .setUserAuthenticationRequired(false)
                .apply { if (Build.VERSION.SDK_INT >= 28) setUnlockedDeviceRequired(unlockedDeviceRequired) }
                .build()
            return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
                .apply { init(spec) }
                .generateKey()
        }
    }
}
