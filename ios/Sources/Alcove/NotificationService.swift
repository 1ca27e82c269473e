// The Notification Service Extension's work. APNs carries no content (the
// payload is a generic alert with "mutable-content": 1); the NSE syncs,
// then replaces the alert with the core's rendered text. On any error or
// timeout the generic hidden text stays. The NSE has ~30 s of wall time and
// a small memory limit (~24 MB), so the sync is bounded by a deadline and
// the core keeps memory bounded by its page size.
import Foundation
import UserNotifications

/// Use from the app's `UNNotificationServiceExtension` subclass:
///
///     final class NotificationService: UNNotificationServiceExtension {
///         let handler = NotificationServiceHandler(client: Shared.client, keys: Shared.keys)
///         override func didReceive(_ r: UNNotificationRequest,
///                                  withContentHandler h: @escaping (UNNotificationContent) -> Void) {
///             handler.didReceive(r, contentHandler: h)
///         }
///         override func serviceExtensionTimeWillExpire() { handler.timeWillExpire() }
///     }
public final class NotificationServiceHandler: @unchecked Sendable {
    /// The core's hidden text, the same on every shell.
    public static let hidden = hiddenNotification()
    /// Under the NSE's ~30 s: 25 s minus headroom for lock() and delivery.
    public static let defaultDeadlineMs: UInt64 = 22_000

    private let client: AlcoveClient
    private let keys: KeyProvider
    private let deadlineMs: UInt64
    private let lock = NSLock()
    /// The content to deliver and its handler, until delivered once.
    private var pending: (UNMutableNotificationContent, (UNNotificationContent) -> Void)?
    private var task: Task<Void, Never>?

    public init(client: AlcoveClient, keys: KeyProvider, deadlineMs: UInt64 = NotificationServiceHandler.defaultDeadlineMs) {
        self.client = client
        self.keys = keys
        self.deadlineMs = deadlineMs
    }

    public func didReceive(_ request: UNNotificationRequest, contentHandler: @escaping (UNNotificationContent) -> Void) {
        let content = (request.content.mutableCopy() as? UNMutableNotificationContent) ?? UNMutableNotificationContent()
        // Whatever the payload said, start from the hidden text.
        content.title = Self.hidden.title
        content.body = Self.hidden.body
        lock.lock()
        pending = (content, contentHandler)
        lock.unlock()
        task = Task { [client, keys, deadlineMs] in
            // The core unlocks for this sync and locks again after it.
            let key = try? keys.databaseKey()
            let report = try? await key.map { try await client.syncUnlocking(key: $0, deadlineMs: deadlineMs) }
            // The NSE process may linger; the key must not linger with it.
            try? client.lock()
            self.finish(with: report?.notifications.last)
        }
    }

    /// From `serviceExtensionTimeWillExpire()`: deliver the hidden text now.
    public func timeWillExpire() {
        task?.cancel()
        try? client.lock()
        finish(with: nil)
    }

    /// Exactly once: whichever of the sync and the expiry comes first.
    private func finish(with shown: Notification?) {
        lock.lock()
        let deliver = pending
        pending = nil
        lock.unlock()
        guard let deliver else { return }
        let (content, handler) = deliver
        if let shown {
            content.title = shown.title
            content.body = shown.body
        }
        handler(content)
    }
}
