import Foundation
import GRDB
import Metrics
import Synchronization

/// Collects the writes that arrive while a transaction is being written, and commits them
/// together: one transaction and one fsync for the whole group; a write that fails leaves the
/// others of its group untouched (see `commit`).
///
/// No actor and no task: a write is appended under a lock, and the first one to find the
/// committer idle schedules a group on GRDB's writer queue. That block takes everything pending,
/// commits it, resumes the waiters, and schedules the next group if more arrived meanwhile (one
/// group per block, so other writers queued on the writer are not starved).
final class GroupCommitter: Sendable {
    typealias Work = @Sendable (Database) throws -> any Sendable

    private struct Pending: Sendable {
        let work: Work
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private let pool: DatabasePool
    private let state = Mutex<(pending: [Pending], scheduled: Bool)>(([], false))
    /// Names the executor of the calling thread (see `SQLiteVaultStore.init`). The writer's thread
    /// resumes every waiter of a group; without a preference the global executor puts each one on
    /// the next event loop in turn, so half the requests continued on another loop than their
    /// connection's (counted: 9,995 of 20,000 upserts), and their answers crossed threads.
    private let waiterExecutor: SQLiteVaultStore.WaiterExecutor?

    init(pool: DatabasePool, waiterExecutor: SQLiteVaultStore.WaiterExecutor? = nil) {
        self.pool = pool
        self.waiterExecutor = waiterExecutor
    }

    /// Runs `work` in the next group and returns its result once the group is on disk, back on
    /// the caller's executor when `waiterExecutor` names one.
    func run<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard let executor = waiterExecutor?() else { return try await wait(for: work) }
        return try await withTaskExecutorPreference(executor) { try await wait(for: work) }
    }

    private func wait<T: Sendable>(for work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let schedule = state.withLock { state -> Bool in
                state.pending.append(Pending(work: { db in try work(db) }, continuation: continuation))
                guard !state.scheduled else { return false }
                state.scheduled = true
                return true
            }
            if schedule { scheduleGroup() }
        }
        return result as! T
    }

    /// Writes per commit, and how long each commit (fsync included) took.
    static var groupSize: Recorder { Recorder(label: "domicile_group_commit_size", aggregate: true) }
    static var commitLatency: Metrics.Timer { Metrics.Timer(label: "domicile_commit_duration_seconds") }

    private func scheduleGroup() {
        pool.asyncWriteWithoutTransaction { db in
            let group = self.state.withLock { state -> [Pending] in
                let taken = state.pending
                state.pending.removeAll(keepingCapacity: true)
                return taken
            }
            if !group.isEmpty {
                let start = ContinuousClock.now
                Self.commit(group, db)
                Self.groupSize.record(group.count)
                Self.commitLatency.record(duration: ContinuousClock.now - start)
            }
            let more = self.state.withLock { state -> Bool in
                if state.pending.isEmpty { state.scheduled = false }
                return state.scheduled
            }
            if more { self.scheduleGroup() }
        }
    }

    /// Commits a group in one transaction. First without savepoints: a savepoint costs each write
    /// two more statements on the single writer (SAVEPOINT, RELEASE), and a write rarely throws.
    /// If one does, the whole transaction is rolled back and the group runs again with a savepoint
    /// per write, so that only the failing write fails. A write's work only touches the database,
    /// so running it twice after a rollback is safe.
    private static func commit(_ group: [Pending], _ db: Database) {
        do {
            let values = try commitTogether(group, db)
            for (waiter, value) in zip(group, values) { waiter.continuation.resume(returning: value) }
            return
        } catch where group.count == 1 {
            // A write alone: its error is its own, there is nothing to keep apart.
            group[0].continuation.resume(throwing: SQLiteVaultStore.storeError(error, db))
            return
        } catch {}
        var results: [Result<any Sendable, any Error>] = []
        results.reserveCapacity(group.count)
        do {
            try db.inTransaction(.immediate) {
                for waiter in group {
                    results.append(Result {
                        var value: (any Sendable)?
                        try db.inSavepoint {
                            value = try waiter.work(db)
                            return .commit
                        }
                        return value!
                    })
                }
                return .commit
            }
        } catch {
            // Some errors (a full disk among them) make SQLite roll back the whole transaction:
            // the writes after it then fail, and the commit, with GRDB's SQLITE_ABORT. Every
            // write of the group failed for that write's error, the last one that is not an abort.
            func isAbort(_ error: any Error) -> Bool { (error as? DatabaseError)?.resultCode == .SQLITE_ABORT }
            let cause = results.reversed().lazy.compactMap { result -> (any Error)? in
                if case .failure(let failure) = result, !isAbort(failure) { failure } else { nil }
            }.first
            let aborted = isAbort(error)
            let error = SQLiteVaultStore.storeError(aborted ? cause ?? error : error, db)
            for waiter in group { waiter.continuation.resume(throwing: error) }
            return
        }
        for (waiter, result) in zip(group, results) {
            waiter.continuation.resume(with: result.mapError { SQLiteVaultStore.storeError($0, db) })
        }
    }

    /// Every write of the group in one transaction, no savepoints; throws (having rolled back)
    /// if any write throws.
    private static func commitTogether(_ group: [Pending], _ db: Database) throws -> [any Sendable] {
        var values: [any Sendable] = []
        values.reserveCapacity(group.count)
        try db.inTransaction(.immediate) {
            for waiter in group { values.append(try waiter.work(db)) }
            return .commit
        }
        return values
    }
}

