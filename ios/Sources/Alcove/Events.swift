// The core's events (message received, receipt updated, identity changed)
// as an AsyncStream over setListener.
import Foundation

private final class StreamListener: AlcoveListener, @unchecked Sendable {
    private let continuation: AsyncStream<AlcoveEvent>.Continuation

    init(_ continuation: AsyncStream<AlcoveEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: AlcoveEvent) {
        continuation.yield(event)
    }
}

extension AlcoveClient {
    /// Events until the stream's consumer stops (its task is cancelled or
    /// the loop ends), which cancels the listener; the handle lives as long
    /// as the stream (the termination closure holds it). Keeps the newest
    /// 100 if the consumer falls behind: events are hints to reload, not data.
    public func events() -> AsyncStream<AlcoveEvent> {
        let (stream, continuation) = AsyncStream<AlcoveEvent>.makeStream(bufferingPolicy: .bufferingNewest(100))
        let handle = setListener(listener: StreamListener(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return stream
    }
}
