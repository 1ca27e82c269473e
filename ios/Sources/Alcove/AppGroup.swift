// Where the account database lives on iOS: the app group container, so the
// app and its Notification Service Extension open the same file.
//
// iOS kills a suspended process that holds a file lock in a shared
// container (0xdead10cc) unless it can see the file is a SQLite database in
// WAL mode. SQLCipher encrypts that header, so `enroll` below creates the
// database with `sharedContainer: true`: the core sets SQLCipher's
// `cipher_plaintext_header_size = 32` and keeps the salt in its key-check
// sidecar, and later opens (app or NSE) read the layout from there. Still
// lock() the client when the app goes to the background, so no transaction
// is held across suspension.
import Foundation

public enum AppGroupError: Error, Equatable {
    case noContainer(String)
}

public enum AppGroup {
    /// The database path inside `group`'s container ("group.org.example").
    /// The directory is excluded from backups: the key never leaves this
    /// device's Keychain, so a backup would hold only unreadable bytes.
    public static func databasePath(group: String, name: String = "alcove.db") throws -> String {
        guard let container = FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: group) else {
            throw AppGroupError.noContainer(group)
        }
        var dir = container.appendingPathComponent("Alcove", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        return dir.appendingPathComponent(name).path
    }

    /// Creates and registers an account in `group`'s container, with the
    /// plaintext SQLite header iOS needs for a file shared with the NSE.
    /// Open it later with `AlcoveClient.open(dbPath:key:relayUrl:)`.
    public static func enroll(group: String, name: String = "alcove.db", keys: KeyProvider,
                              relayUrl: String, invite: String) async throws -> AlcoveClient {
        let path = try databasePath(group: group, name: name)
        return try await AlcoveClient.enroll(dbPath: path, key: try keys.databaseKey(),
                                             relayUrl: relayUrl, invite: invite, sharedContainer: true)
    }

    /// A client's enrolment from a therapist's invite card (scanned QR or
    /// pasted link), in `group`'s container. The core pins the therapist's
    /// identity from the card and refuses (`AlcoveError.CardMismatch`,
    /// nothing kept) when the relay disagrees; `checkInviteCard(card:)`
    /// shows what a card says before this.
    public static func enrollByCard(group: String, name: String = "alcove.db", keys: KeyProvider,
                                    card: String, displayName: String) async throws -> AlcoveClient {
        let path = try databasePath(group: group, name: name)
        return try await AlcoveClient.enrollByCard(dbPath: path, key: try keys.databaseKey(), card: card,
                                                   displayName: displayName, sharedContainer: true)
    }
}
