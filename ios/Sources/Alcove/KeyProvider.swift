// The database key at rest on iOS: 32 random bytes in the Keychain, readable
// after the first unlock since boot (so the NSE can sync while the phone is
// locked), never synced to iCloud or restored to another device.
import Foundation
import Security

/// Supplies the 32-byte database key (mirrors Kotlin's `KeyProvider`).
public protocol KeyProvider: Sendable {
    func databaseKey() throws -> Data
}

public enum KeychainError: Error, Equatable {
    case status(OSStatus)
    case malformedItem
}

/// Keeps the key as a generic-password item. Give the app and its
/// Notification Service Extension the same `accessGroup` (a Keychain Sharing
/// group, "TEAMID.org.example.shared") so both read one key.
public struct KeychainKeyProvider: KeyProvider {
    public let service: String
    public let account: String
    public let accessGroup: String?

    public init(service: String = "org.alcove.db-key", account: String = "default", accessGroup: String? = nil) {
        self.service = service
        self.account = account
        self.accessGroup = accessGroup
    }

    private var query: [String: Any] {
        var q: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrSynchronizable as String: false,
        ]
        if let accessGroup { q[kSecAttrAccessGroup as String] = accessGroup }
        return q
    }

    /// Deletes the key (remote wipe: the relay revoked this device and the
    /// core already deleted the database). A missing item is fine.
    public func deleteKey() throws {
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeychainError.status(status)
        }
    }

    public func databaseKey() throws -> Data {
        if let key = try read() { return key }
        // First use: the core makes the key (its CSPRNG, its length).
        let key = generateDatabaseKey()
        var add = query
        add[kSecValueData as String] = key
        add[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(add as CFDictionary, nil)
        switch status {
        case errSecSuccess:
            return key
        case errSecDuplicateItem:
            // The app and the NSE raced on first use: the stored key wins.
            guard let stored = try read() else { throw KeychainError.malformedItem }
            return stored
        default:
            throw KeychainError.status(status)
        }
    }

    private func read() throws -> Data? {
        var q = query
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data, data.count == 32 else { throw KeychainError.malformedItem }
            return data
        case errSecItemNotFound:
            return nil
        default:
            // errSecInteractionNotAllowed: before the first unlock since boot.
            throw KeychainError.status(status)
        }
    }
}
