// The push entry points (mirrors Kotlin's PushHandler / CorePushHooks).
// `Notification` here is the core's rendered notification (generated record),
// which shadows Foundation.Notification inside this module. The core decides
// everything: it unlocks an auto-locked client for the length of one push
// (`syncUnlocking`, `registerPushUnlocking`) and keeps a push token the relay
// has not confirmed, retrying it on every sync.
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
    private let onDeviceRevoked: (@Sendable () -> Void)?

    /// `onDeviceRevoked`: the relay revoked this device and the core already
    /// deleted the account's files; delete the Keychain key
    /// (`KeychainKeyProvider.deleteKey`) and say "This device was removed by
    /// your practice". Called before the call throws `.DeviceRevoked`.
    public init(
        client: AlcoveClient,
        keys: KeyProvider,
        renderer: NotificationRenderer? = nil,
        onDeviceRevoked: (@Sendable () -> Void)? = nil
    ) {
        self.client = client
        self.keys = keys
        self.renderer = renderer
        self.onDeviceRevoked = onDeviceRevoked
    }

    /// Runs `body`; on `.DeviceRevoked` tells the app first, then rethrows.
    private func tellingRevocation<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch AlcoveError.DeviceRevoked {
            onDeviceRevoked?()
            throw AlcoveError.DeviceRevoked
        }
    }

    /// Syncs until the deadline; an auto-locked client is unlocked by the
    /// core for this sync only.
    @discardableResult
    public func onWake(deadlineMs: UInt64 = PushHandler.defaultDeadlineMs) async throws -> SyncReport {
        let report = try await tellingRevocation {
            try await client.syncUnlocking(key: try keys.databaseKey(), deadlineMs: deadlineMs)
        }
        report.notifications.forEach { renderer?.show($0) }
        return report
    }

    /// From `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)`.
    /// Offline, the core keeps the token and registers it on the next
    /// `onWake`; returns whether the relay has it now. Other failures throw.
    @discardableResult
    public func onNewToken(_ deviceToken: Data) async throws -> Bool {
        let hex = deviceToken.map { String(format: "%02x", $0) }.joined()
        do {
            try await tellingRevocation {
                try await client.registerPushUnlocking(key: try keys.databaseKey(), kind: .apns, token: hex)
            }
            return true
        } catch AlcoveError.Network {
            return false
        }
    }
}
