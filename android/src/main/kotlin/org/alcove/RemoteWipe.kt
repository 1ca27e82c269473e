// Remote wipe in the shell: the core deletes the account's files when the
// relay says this device was revoked; the shell deletes the key it keeps.
package org.alcove

/**
 * Called when the relay revoked this device (a lost phone the practice
 * removed): the core has already deleted the database, its WAL and its
 * sidecars. Delete the database key from the Keystore and tell the user
 * "This device was removed by your practice". Called before the call that
 * learnt it throws `AlcoveException.DeviceRevoked`.
 */
fun interface DeviceRevokedHandler {
    fun onDeviceRevoked()
}

/** Runs [block]; on `DeviceRevoked`, calls [handler] first, then rethrows. */
internal inline fun <T> tellingRevocation(handler: DeviceRevokedHandler?, block: () -> T): T = try {
    block()
} catch (e: uniffi.alcove_ffi.AlcoveException.DeviceRevoked) {
    handler?.onDeviceRevoked()
    throw e
}
