// The relay's TLS certificate on iOS (mirrors Kotlin's AlcoveAndroid).
// The native library checks it with Apple's Security.framework through
// rustls-platform-verifier: the system roots plus any CA profile the user
// or their employer installed and trusted (Settings > General > About >
// Certificate Trust Settings), so unlike Android there is nothing to
// initialise before the first client, in the app or in the Notification
// Service Extension. A relay under a private CA that the phone does not
// trust needs the invite card's pin. A refused certificate throws
// `AlcoveError.UntrustedCertificate(reason:)` (`unknown_issuer`,
// `expired`, `wrong_host`, `pin_mismatch`, `untrusted`, ...); retrying
// will not help, and nothing was lost.
import Foundation

public enum AlcoveTrust {
    /// Nothing to do on iOS; kept so app start-up code reads the same on
    /// both platforms (`AlcoveAndroid.init(context)` on Android).
    public static func initialise() {}
}
