import DomicileCore
import DomicileVault
import Foundation

/// Fixed one-minute windows per workspace, counted across the nodes that share a store (see
/// `SharedWindowCounter`; a server synchronizes `counter` with its store).
///
/// A fixed window is what the `X-RateLimit-*` headers describe: a limit, what is left of it,
/// and when it starts again.
public final class RateLimiter: Sendable {
    public struct Decision: Sendable {
        public var allowed: Bool
        public var limit: Int
        public var remaining: Int
        /// Seconds until the window resets.
        public var resetSeconds: Int
    }

    public let counter: SharedWindowCounter

    public init(now: @escaping @Sendable () -> Date = Date.init) {
        counter = SharedWindowCounter(scope: "requests", window: .seconds(60), now: now)
    }

    public func admit(_ workspace: WorkspaceID, limit: Int) -> Decision {
        let decision = counter.admit(workspace.rawValue, limit: limit)
        return Decision(allowed: decision.allowed, limit: limit, remaining: max(0, limit - decision.count),
                        resetSeconds: decision.resetSeconds)
    }
}
