// The push entry points (mirrors Kotlin's PushHandler / CorePushHooks).
// `Notification` here is the core's rendered notification (generated record),
// which shadows Foundation.Notification inside this module.
import Foundation

/// Shows what the core rendered (hidden text unless the user opted in).
public protocol NotificationRenderer {
    func show(_ notification: Notification)
}

public final class PushHandler: @unchecked Sendable {
    /// A silent (content-available) push gives the app ~30 s; keep headroom.
    public static let defaultDeadlineMs: UInt64 = 25_000

    private let client: AlcoveClient
    private let keys: KeyProvider
    private let renderer: NotificationRenderer?

    public init(client: AlcoveClient, keys: KeyProvider, renderer: NotificationRenderer? = nil) {
        self.client = client
        self.keys = keys
        self.renderer = renderer
    }

    /// Syncs until the deadline. An auto-locked client is unlocked for the
    /// sync and locked again after, so the key is in memory only meanwhile.
    @discardableResult
    public func onWake(deadlineMs: UInt64 = PushHandler.defaultDeadlineMs) async throws -> SyncReport {
        try await withUnlockedClient(client, keys: keys) { client in
            let report = try await client.sync(deadlineMs: deadlineMs)
            report.notifications.forEach { renderer?.show($0) }
            return report
        }
    }

    /// From `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`.
    public func onNewToken(_ deviceToken: Data) async throws {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        try await client.registerPush(kind: .apns, token: hex)
    }
}

/// Runs `body` with the client unlocked, restoring the locked state after.
func withUnlockedClient<T>(
    _ client: AlcoveClient,
    keys: KeyProvider,
    alwaysLockAfter: Bool = false,
    _ body: (AlcoveClient) async throws -> T
) async throws -> T {
    let wasLocked = client.isLocked()
    if wasLocked { try client.unlock(key: try keys.databaseKey()) }
    defer { if wasLocked || alwaysLockAfter { try? client.lock() } }
    return try await body(client)
}
