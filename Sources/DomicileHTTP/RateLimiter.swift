import DomicileCore
import Foundation
import Synchronization

/// Fixed one-minute windows per workspace, counted on this node.
///
/// A fixed window is what the `X-RateLimit-*` headers describe: a limit, what is left of it,
/// and when it starts again. Several nodes each count their own share.
public final class RateLimiter: Sendable {
    public struct Decision: Sendable {
        public var allowed: Bool
        public var limit: Int
        public var remaining: Int
        /// Seconds until the window resets.
        public var resetSeconds: Int
    }

    private struct Window {
        var minute: Int64
        var count: Int
    }

    private let windows = Mutex<[WorkspaceID: Window]>([:])
    private let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = Date.init) {
        self.now = now
    }

    public func admit(_ workspace: WorkspaceID, limit: Int) -> Decision {
        let seconds = now().timeIntervalSince1970
        let minute = Int64(seconds / 60)
        let reset = max(1, Int((Double(minute + 1) * 60 - seconds).rounded(.up)))
        return windows.withLock { windows in
            var window = windows[workspace] ?? Window(minute: minute, count: 0)
            if window.minute != minute { window = Window(minute: minute, count: 0) }
            let allowed = window.count < limit
            if allowed { window.count += 1 }
            windows[workspace] = window
            return Decision(allowed: allowed, limit: limit, remaining: max(0, limit - window.count), resetSeconds: reset)
        }
    }
}
