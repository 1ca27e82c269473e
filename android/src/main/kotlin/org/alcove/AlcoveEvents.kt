// Listener events as a coroutine Flow, for ViewModels and services.
package org.alcove

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.AlcoveEvent
import uniffi.alcove_ffi.AlcoveListener

/**
 * The events of later `sync`/`sendText` calls on this client. Each collector
 * registers its own listener; when the collection ends (cancelled, `take`,
 * scope closed) the listener's handle is cancelled and released. The buffer
 * is unbounded so the native callback never blocks (a sync reports at most
 * ~100 events).
 */
fun AlcoveClient.events(): Flow<AlcoveEvent> = callbackFlow {
    val handle = setListener(object : AlcoveListener {
        override fun onEvent(event: AlcoveEvent) {
            trySend(event)
        }
    })
    awaitClose { handle.use { it.cancel() } }
}.buffer(Channel.UNLIMITED)
