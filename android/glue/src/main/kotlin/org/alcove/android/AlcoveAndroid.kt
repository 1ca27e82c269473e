// Process start-up for Alcove on Android: the relay's TLS certificate is
// checked by Android's own trust store (rustls-platform-verifier in the
// native library calls the platform's X509TrustManager through JNI), so
// the native side needs the JVM and a Context before the first client.
package org.alcove.android

import android.content.Context

/**
 * Call [init] once, before the first `AlcoveClient` is made (e.g. in
 * `Application.onCreate`, and in a push service that may start the process).
 * Until then an unpinned client is refused with `AlcoveException.Internal`.
 * The app's Gradle build must also ship the verifier's Kotlin part
 * (`rustls:rustls-platform-verifier`, see README "TLS for self-hosted
 * relays") and keep it from R8 (consumer-rules.pro does).
 */
object AlcoveAndroid {
    @Volatile
    private var initialised = false

    fun init(context: Context) {
        if (initialised) return
        synchronized(this) {
            if (initialised) return
            // The same library JNA loads for the bindings; JNI needs it
            // loaded through the class loader to bind nativeInit.
            System.loadLibrary("alcove_ffi")
            nativeInit(context.applicationContext)
            initialised = true
        }
    }

    @JvmStatic
    private external fun nativeInit(context: Context)
}
