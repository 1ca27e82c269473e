package org.alcove.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.IntentFilter
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import org.w3c.dom.Element

/**
 * The library's AndroidManifest.xml, registered as the system would. With
 * no Android SDK there is no aapt2 to build the resource APK from which
 * Robolectric reads a manifest, so the tests parse the real file and
 * register its receivers with the same actions and exported flag.
 */
object LibraryManifest {
    private const val NS = "http://schemas.android.com/apk/res/android"

    data class Receiver(val name: String, val exported: Boolean, val actions: List<String>)

    private fun document() = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
        .newDocumentBuilder().parse(File(System.getProperty("alcove.manifest")))

    private fun Element.children(tag: String): List<Element> {
        val nodes = getElementsByTagName(tag)
        return (0 until nodes.length).map { nodes.item(it) as Element }
    }

    fun receivers(): List<Receiver> = document().documentElement.children("receiver").map { r ->
        Receiver(
            r.getAttributeNS(NS, "name"),
            r.getAttributeNS(NS, "exported") == "true",
            r.children("action").map { it.getAttributeNS(NS, "name") },
        )
    }

    fun permissions(): List<String> =
        document().documentElement.children("uses-permission").map { it.getAttributeNS(NS, "name") }

    fun registerReceivers(context: Context) {
        for (r in receivers()) {
            val receiver = Class.forName(r.name, true, javaClass.classLoader)
                .getDeclaredConstructor().newInstance() as BroadcastReceiver
            val filter = IntentFilter().apply { r.actions.forEach(::addAction) }
            val flags = if (r.exported) Context.RECEIVER_EXPORTED else Context.RECEIVER_NOT_EXPORTED
            context.registerReceiver(receiver, filter, null, null, flags)
        }
    }
}
