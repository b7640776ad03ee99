import DomicileCore
import Foundation
import Synchronization

/// Fixed windows per key (a workspace, an operator, a client address), counted on this node and
/// shared with the other nodes through the store, so that several nodes together allow the limit
/// once, not once each.
///
/// A decision never waits for the store: it is taken against the total every node had reached
/// at the last `synchronize` plus what this node admitted since. `synchronize` (every 250 ms on a
/// server, see `CounterSynchronizer`) adds this node's new counts to the store and learns the
/// totals. Between two synchronizations several nodes may together admit a little more than the
/// limit: at most what the other nodes admit in that interval.
public final class SharedWindowCounter: Sendable {
    public struct Decision: Sendable {
        public var allowed: Bool
        /// Admitted in this window so far, this one included, as far as this node knows.
        public var count: Int
        /// Seconds until the window starts again.
        public var resetSeconds: Int
    }

    private struct Entry {
        var windowStart: Int64
        /// Every node's total in the store, as of the last synchronization.
        var shared = 0
        /// Admitted here and on their way to the store.
        var sending = 0
        /// Admitted here since.
        var pending = 0

        var used: Int { shared + sending + pending }
    }

    /// The name its counters have in the store.
    public let scope: String
    public let windowSeconds: Int64
    private let now: @Sendable () -> Date
    private let entries = Mutex<[String: Entry]>([:])

    public init(scope: String, window: Duration, now: @escaping @Sendable () -> Date = Date.init) {
        self.scope = scope
        self.windowSeconds = max(1, window.components.seconds)
        self.now = now
    }

    private func windowStart(_ date: Date) -> Int64 {
        Int64(date.timeIntervalSince1970.rounded(.down)) / windowSeconds * windowSeconds
    }

    public func admit(_ key: String, limit: Int) -> Decision {
        let time = now()
        let start = windowStart(time)
        let reset = max(1, Int((Double(start + windowSeconds) - time.timeIntervalSince1970).rounded(.up)))
        return entries.withLock { entries in
            var entry = entries[key] ?? Entry(windowStart: start)
            if entry.windowStart != start { entry = Entry(windowStart: start) }
            let allowed = entry.used < limit
            if allowed { entry.pending += 1 }
            entries[key] = entry
            return Decision(allowed: allowed, count: entry.used, resetSeconds: reset)
        }
    }

    /// Sends this node's new counts to the store and takes every node's totals for the keys
    /// counted here in the current window; forgets the keys of windows that ended.
    public func synchronize(with store: any CoordinationStore) async throws {
        let time = now()
        let start = windowStart(time)
        let increments: [String: Int] = entries.withLock { entries in
            entries = entries.filter { $0.value.windowStart == start }
            var increments: [String: Int] = [:]
            for (key, var entry) in entries {
                increments[key] = entry.pending
                entry.sending = entry.pending
                entry.pending = 0
                entries[key] = entry
            }
            return increments
        }
        guard !increments.isEmpty else { return }
        let totals: [String: Int]
        do {
            totals = try await store.addToCounters(scope: scope, windowStart: start, windowEnd: start + windowSeconds,
                                                   increments: increments, now: time)
        } catch {
            entries.withLock { entries in
                for key in increments.keys where entries[key]?.windowStart == start {
                    entries[key]!.pending += entries[key]!.sending
                    entries[key]!.sending = 0
                }
            }
            throw error
        }
        entries.withLock { entries in
            for (key, total) in totals where entries[key]?.windowStart == start {
                entries[key]!.shared = total
                entries[key]!.sending = 0
            }
        }
    }
}

/// Synchronizes a server's counters with the store, every `interval`, until the server stops.
public struct CounterSynchronizer: Sendable {
    public let store: any CoordinationStore
    public let counters: [SharedWindowCounter]
    public let interval: Duration

    public init(store: any CoordinationStore, counters: [SharedWindowCounter], interval: Duration = .milliseconds(250)) {
        self.store = store
        self.counters = counters
        self.interval = interval
    }

    /// One round over every counter; the first failure is thrown after the others ran.
    public func synchronizeOnce() async throws {
        var failure: (any Error)?
        for counter in counters {
            do { try await counter.synchronize(with: store) } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }
}
