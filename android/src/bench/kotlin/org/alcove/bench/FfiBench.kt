// The Kotlin half of the FFI benchmark (android/run-bench.sh): the same
// calls and the same 1,000-message sync as ffi/benches/ffi.rs, made through
// the generated bindings (JNA) against the same relay process. Prints
// `RESULT key value` lines; the script prints the ratios.
package org.alcove.bench

import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import uniffi.alcove_ffi.AlcoveClient
import uniffi.alcove_ffi.generateDatabaseKey

// Fewer than the Rust side: each call allocates JNA structures (~µs).
private const val CALLS = 100_000
private const val ROUNDS = 7
private const val MESSAGES = 1_000
private const val WARMUP_ROUNDS = 3
private const val PAUSE_MS = 500L

/** Defeats dead-code elimination of the measured calls. */
@Volatile
private var sink: Any? = null

/** The best round: on a shared machine, load only ever adds time. */
private fun best(v: List<Double>) = v.min()

/** Best of ROUNDS rounds, ns per call, after JIT warm-up rounds. */
private inline fun perCall(f: () -> Any) : Double {
    val rounds = mutableListOf<Double>()
    repeat(WARMUP_ROUNDS + ROUNDS) { round ->
        val t = System.nanoTime()
        var last: Any? = null
        for (i in 0 until CALLS) last = f()
        val ns = (System.nanoTime() - t).toDouble() / CALLS
        sink = last
        if (round >= WARMUP_ROUNDS) rounds.add(ns)
    }
    return best(rounds)
}

private class Setup(val url: String, val bin: String, val relayDb: String) {
    val dir: File = Files.createTempDirectory("alcove-bench").toFile()
    var n = 0

    fun invite(): String {
        val p = ProcessBuilder(bin, "relay", "invite", "--db", relayDb).start()
        val token = p.inputStream.bufferedReader().readText().trim()
        check(p.waitFor() == 0) { "invite failed" }
        return token
    }

    fun enroll(): AlcoveClient = runBlocking {
        n += 1
        AlcoveClient.enroll(File(dir, "kt$n.db").path, generateDatabaseKey(), url, invite())
    }
}

fun main() {
    val s = Setup(
        System.getProperty("alcove.bench.relay.url"),
        System.getProperty("alcove.bin"),
        System.getProperty("alcove.bench.relay.db"),
    )
    val perMessage = mutableListOf<Double>()
    repeat(ROUNDS) {
        val sender = s.enroll()
        val receiver = s.enroll()
        val to = receiver.accountId()
        runBlocking {
            for (i in 0 until MESSAGES) sender.sendText(sender.conversationWith(to), "message $i")
            // Let the sends' garbage go first (the Rust half pauses too).
            System.gc()
            Thread.sleep(PAUSE_MS)
            val t = System.nanoTime()
            val report = receiver.sync(120_000u)
            val us = (System.nanoTime() - t) / 1_000.0
            check(report.received == MESSAGES.toUInt() && !report.more) { "sync incomplete" }
            perMessage.add(us / MESSAGES)
        }
        sender.close()
        receiver.close()
    }
    println("RESULT kotlin.sync_us_per_msg %.1f".format(best(perMessage)))

    // After the syncs: each call leaves JNA structures for the cleaner
    // thread, which would otherwise compete with the syncs for the CPU.
    val c = s.enroll()
    val isLocked = perCall { c.isLocked() }
    val accountId = perCall { c.accountId() }
    println("RESULT kotlin.is_locked_ns %.1f".format(isLocked))
    println("RESULT kotlin.account_id_ns %.1f".format(accountId))
}
