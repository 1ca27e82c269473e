// Where the account database lives on iOS: the app group container, so the
// app and its Notification Service Extension open the same file.
//
// iOS kills a suspended process that holds a file lock in a shared
// container (0xdead10cc) unless it can see the file is a SQLite database in
// WAL mode. SQLCipher encrypts that header, so DESIGN.md calls for
// `cipher_plaintext_header_size = 32` with the salt kept by Alcove. The core
// does not do that yet: until it does, lock() the client whenever the app
// or the NSE may be suspended, so no lock is held across suspension.
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
}
