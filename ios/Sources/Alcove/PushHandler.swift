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
    /// A token the relay has not accepted yet because it was unreachable.
    private let lock = NSLock()
    private var pendingToken: (PushKind, String)?

    public init(client: AlcoveClient, keys: KeyProvider, renderer: NotificationRenderer? = nil) {
        self.client = client
        self.keys = keys
        self.renderer = renderer
    }

    /// Syncs until the deadline. An auto-locked client is unlocked for the
    /// sync and locked again after, so the key is in memory only meanwhile.
    @discardableResult
    public func onWake(deadlineMs: UInt64 = PushHandler.defaultDeadlineMs) async throws -> SyncReport {
        if let retry = pending() { _ = try? await register(kind: retry.0, token: retry.1) }
        return try await withUnlockedClient(client, keys: keys) { client in
            let report = try await client.sync(deadlineMs: deadlineMs)
            report.notifications.forEach { renderer?.show($0) }
            return report
        }
    }

    /// From `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`.
    /// Offline, the token is kept and registered on the next `onWake`;
    /// returns whether the relay has it now. Other failures are thrown.
    @discardableResult
    public func onNewToken(_ deviceToken: Data) async throws -> Bool {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        return try await register(kind: .apns, token: hex)
    }

    private func register(kind: PushKind, token: String) async throws -> Bool {
        setPending((kind, token))
        do {
            try await withUnlockedClient(client, keys: keys) { try await $0.registerPush(kind: kind, token: token) }
            clearPending(ifToken: token)
            return true
        } catch AlcoveError.Network {
            return false
        }
    }

    private func pending() -> (PushKind, String)? {
        lock.lock(); defer { lock.unlock() }
        return pendingToken
    }

    private func setPending(_ value: (PushKind, String)) {
        lock.lock(); defer { lock.unlock() }
        pendingToken = value
    }

    /// A newer token may have arrived meanwhile: keep that one.
    private func clearPending(ifToken token: String) {
        lock.lock(); defer { lock.unlock() }
        if pendingToken?.1 == token { pendingToken = nil }
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
