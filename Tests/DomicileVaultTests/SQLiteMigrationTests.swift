import Crypto
@testable import DomicileCore
@testable import DomicileSQLite
import Foundation
import GRDB
import Synchronization
import Testing

@Suite("SQLite migrations")
struct SQLiteMigrationTests {
    /// A database written before the history moved into the message row keeps every message's
    /// history, in order, with its error codes.
    @Test func statusHistoryMovesIntoTheMessageRow() async throws {
        let path = temporaryFolder().appendingPathComponent("domicile.sqlite").path
        let old = try DatabaseQueue(path: path)
        try SQLiteVaultStore.migrator.migrate(old, upTo: "4-sending")
        try await old.write { db in
            for id in ["m-1", "m-2"] {
                try db.execute(sql: """
                    INSERT INTO messages (workspace_id, message_id, customer_id, channel, status, attempts, next_attempt_at, created_at, updated_at)
                    VALUES ('ws', ?, 'c-1', 'sms', 'sent', 1, 0, 1000, 2000)
                    """, arguments: [id])
            }
            // Inserted out of order: the history is ordered by time.
            try db.execute(sql: """
                INSERT INTO message_history (workspace_id, message_id, at, status, error_code) VALUES
                    ('ws', 'm-1', 3000, 'delivered', NULL), ('ws', 'm-1', 1000, 'queued', NULL), ('ws', 'm-1', 2000, 'sent', '30003')
                """)
        }
        try await old.close()

        let store = try SQLiteVaultStore(path: path)
        let workspace = WorkspaceID(trusted: "ws")
        #expect(try await store.messageHistory("m-1", workspace: workspace) == [
            MessageStatusChange(status: .queued, at: Date(millis: 1000)),
            MessageStatusChange(status: .sent, at: Date(millis: 2000), errorCode: "30003"),
            MessageStatusChange(status: .delivered, at: Date(millis: 3000)),
        ])
        #expect(try await store.messageHistory("m-2", workspace: workspace).isEmpty)
        #expect(try await store.messageHistory("unknown", workspace: workspace).isEmpty)
    }

    /// Entries written before the chain was keyed keep verifying (as unkeyed, at the start of
    /// the chain), and entries appended after the upgrade are keyed and link to them.
    @Test func unkeyedAuditEntriesKeepVerifyingAfterTheUpgrade() async throws {
        let path = temporaryFolder().appendingPathComponent("domicile.sqlite").path
        let workspace = WorkspaceID(trusted: "ws")
        let old = try DatabaseQueue(path: path)
        try SQLiteVaultStore.migrator.migrate(old, upTo: "6-blind-index-levels")
        try await old.write { db in
            var previous = AuditEntry.genesis
            for seq in Int64(1)...2 {
                let draft = AuditDraft(at: Date(millis: 1000 * seq), actor: .apiKey(id: "k"), action: .readMasked, customerID: "c-\(seq)")
                let hash = AuditEntry.digest(draft, workspace: workspace, seq: seq, previous: previous)
                try db.execute(sql: """
                    INSERT INTO audit_log (workspace_id, seq, at, actor_type, actor_id, action, customer_id, attributes, previous_hash, hash)
                    VALUES ('ws', ?, ?, 'api_key', 'k', 'read_masked', ?, '', ?, ?)
                    """, arguments: [seq, 1000 * seq, "c-\(seq)", Data(previous), Data(hash)])
                previous = hash
            }
            try db.execute(sql: "INSERT INTO audit_heads (workspace_id, seq, hash) VALUES ('ws', 2, ?)", arguments: [Data(previous)])
        }
        try await old.close()

        let store = try SQLiteVaultStore(path: path)
        let key = AuditChainKey(workspaceKey: SymmetricKey(size: .bits256), workspace: workspace)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [],
                                               audit: AuditAppend([AuditDraft(actor: .apiKey(id: "k"), action: .lookup)], key: key)))
        let entries = try await store.auditEntries(workspace: workspace, filter: AuditFilter())
        #expect(entries.map(\.format) == [.unkeyed, .unkeyed, .keyed])
        let head = try await store.auditHead(workspace: workspace)
        #expect(AuditVerification.check(entries, head: head, key: key) == .intact(entries: 3, unkeyed: 2))
    }

    /// The history line survives error codes that need escaping.
    @Test func historyLinesRoundTrip() {
        let changes = [MessageStatusChange(status: .queued, at: Date(millis: 5)),
                       MessageStatusChange(status: .failed, at: Date(millis: 7), errorCode: "a\"b\\nc\n")]
        #expect(StoredText.history(changes.map(StoredText.historyLine).joined()) == changes)
    }
}

@Suite("SQLite group commit")
struct GroupCommitTests {
    struct Refused: Error {}

    /// Runs jobs on a serial queue of its own, counting them.
    final class QueueExecutor: TaskExecutor {
        let queue = DispatchQueue(label: "waiters")
        let jobs = Atomic(0)

        func enqueue(_ job: consuming ExecutorJob) {
            jobs.add(1, ordering: .relaxed)
            let job = UnownedJob(job)
            queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }

    /// The writer's thread resumes every waiter of a group. A store told where its callers run
    /// (the server names the connection's event loop) resumes them there, after a failed write
    /// too; a store told nothing never asks.
    @Test func aWaiterContinuesOnTheExecutorItsCallerNamed() async throws {
        let executor = QueueExecutor()
        let asked = Atomic(0)
        let store = try SQLiteVaultStore(path: temporaryFolder().appendingPathComponent("domicile.sqlite").path,
                                         waiterExecutor: { asked.add(1, ordering: .relaxed); return executor })
        try await store.groupCommit { db in try db.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY)") }
        let afterWrite = executor.jobs.load(ordering: .relaxed)
        #expect(afterWrite >= 1)
        await #expect(throws: Refused.self) {
            try await store.groupCommit { db in
                try db.execute(sql: "INSERT INTO t (n) VALUES (1)")
                throw Refused()
            }
        }
        #expect(executor.jobs.load(ordering: .relaxed) > afterWrite)
        #expect(asked.load(ordering: .relaxed) == 2)
        #expect(try await store.groupCommit { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 0)

        let before = executor.jobs.load(ordering: .relaxed)
        let plain = try SQLiteVaultStore(path: temporaryFolder().appendingPathComponent("domicile.sqlite").path)
        try await plain.groupCommit { db in try db.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY)") }
        #expect(executor.jobs.load(ordering: .relaxed) == before)
    }

    /// Writes that arrive together share a transaction; one that throws fails alone, and the
    /// others of its group are committed.
    @Test func aFailingWriteLeavesTheOthersOfItsGroup() async throws {
        let store = try SQLiteVaultStore(path: temporaryFolder().appendingPathComponent("domicile.sqlite").path)
        try await store.groupCommit { db in try db.execute(sql: "CREATE TABLE t (n INTEGER PRIMARY KEY)") }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 1...200 {
                group.addTask {
                    do {
                        try await store.groupCommit { db in
                            try db.execute(sql: "INSERT INTO t (n) VALUES (?)", arguments: [n])
                            if n % 10 == 0 { throw Refused() }
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for await (n, committed) in group { outcomes[n] = committed }
            return outcomes
        }
        #expect(outcomes.filter { !$0.value }.keys.sorted() == Array(stride(from: 10, through: 200, by: 10)))
        let stored = try await store.groupCommit { db in try Int.fetchAll(db, sql: "SELECT n FROM t ORDER BY n") }
        #expect(stored == (1...200).filter { $0 % 10 != 0 })
    }
}
