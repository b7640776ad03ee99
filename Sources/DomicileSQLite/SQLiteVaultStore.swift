import DomicileCore
import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded store: one SQLite file in WAL mode.
///
/// Durability: `synchronous=FULL`, so a commit returns only after the WAL is fsync'd. Concurrent
/// requests are group-committed: while one transaction is on its way to disk, the next batches
/// queue up and share the following commit, so one fsync acknowledges many requests.
/// `secure_delete` overwrites freed pages, which erasure relies on.
public final class SQLiteVaultStore: VaultStore {
    let pool: DatabasePool
    private let committer: GroupCommitter
    private let indexLevels: BlindIndexLevels
    private let readers: ReadConnections
    public let path: String

    /// Called on a writing task's thread: the executor the task should come back to after its commit.
    public typealias WaiterExecutor = @Sendable () -> (any TaskExecutor)?

    /// - Parameter waiterExecutor: where a write's task continues once its group is committed:
    ///   called on the writing task's thread, it names that thread's executor (the server passes
    ///   its connection's event loop); nil, or a nil answer, leaves it to the global executor.
    /// - Parameter tuning: cache sizes and checkpoints.
    public convenience init(path: String, logger: Logger = Logger(label: "domicile.sqlite"), tuning: SQLiteTuning = SQLiteTuning(),
                            waiterExecutor: WaiterExecutor? = nil) throws {
        try self.init(path: path, logger: logger, indexLevels: BlindIndexLevels(), tuning: tuning, waiterExecutor: waiterExecutor)
    }

    /// - Parameter indexLevels: the blind index's levels (tests choose small limits, to exercise the merge).
    init(path: String, logger: Logger, indexLevels: BlindIndexLevels, tuning: SQLiteTuning = SQLiteTuning(),
         waiterExecutor: WaiterExecutor? = nil) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // Temporary tables and statement journals (each write of a group commit is a savepoint)
        // stay in memory: on disk, SQLite created and unlinked a file in /var/tmp for them.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;")
        }
        configuration.label = "domicile"
        if !PageCache.isWrapped {
            logger.notice("SQLite's page cache is not wrapped: commits scan the writer's whole page cache")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // Again on the writer once the pool is open: GRDB switches its writer to
        // `synchronous = NORMAL` when it enables WAL, after `prepareDatabase` ran, and NORMAL
        // does not sync the WAL at commit. FULL is what makes an acknowledged write survive a
        // power loss, not only a killed process.
        //
        // The writer also gets a page cache sized by `tuning` (SQLite's default 2 MiB made bulk
        // imports read the blind index's randomly placed pages back from the OS at every commit)
        // and its checkpoint interval.
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: """
                PRAGMA synchronous = FULL; PRAGMA cache_size = -\(tuning.writerCacheBytes / 1024);
                PRAGMA wal_autocheckpoint = \(tuning.checkpointPages);
                """)
        }
        self.path = path
        try Self.migrator.migrate(pool)
        self.indexLevels = indexLevels
        committer = GroupCommitter(pool: pool, waiterExecutor: waiterExecutor)
        readers = ReadConnections(path: path, maximum: 8, cacheBytes: tuning.readerCacheBytes)
    }

    /// A short read on the calling thread (see `ReadConnections`), or through the pool when all
    /// those connections are busy. Only for reads that take microseconds: point lookups by key.
    func quickRead<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if let value = try readers.read(work) { return value }
        return try await pool.read(work)
    }

    /// The writer connection's `PRAGMA synchronous` (2 is FULL).
    public func writerSynchronousMode() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// Moves the WAL's content into the main file and truncates the WAL.
    public func checkpoint() async throws {
        try await pool.writeWithoutTransaction { db in
            do {
                _ = try db.checkpoint(.truncate)
            } catch {
                throw Self.storeError(error, db)
            }
        }
    }

    // MARK: Customers

    public func customer(_ id: CustomerID, workspace: WorkspaceID) async throws -> StoredCustomer? {
        try await quickRead { db in try Self.fetchCustomer(id, workspace: workspace, db) }
    }

    public func wrappedDataKey(of id: CustomerID, workspace: WorkspaceID) async throws -> [UInt8]? {
        try await quickRead { db in
            let statement = try db.cachedStatement(sql: "SELECT data_key FROM customers WHERE workspace_id = ? AND customer_id = ?")
            statement.setUncheckedArguments([workspace.rawValue, id.rawValue])
            return try Data.fetchOne(statement).map { [UInt8]($0) }
        }
    }

    public func customers(_ ids: [CustomerID], workspace: WorkspaceID) async throws -> [CustomerID: StoredCustomer] {
        guard !ids.isEmpty else { return [:] }
        // Point reads through one cached statement: a fresh `IN (…)` statement per call was
        // measured costing more to prepare than the reads themselves.
        return try await quickRead { db in
            var found: [CustomerID: StoredCustomer] = [:]
            found.reserveCapacity(ids.count)
            for id in ids {
                if let customer = try Self.fetchCustomer(id, workspace: workspace, db) { found[id] = customer }
            }
            return found
        }
    }

    public func customerIDs(attribute: AttributeName, digest: [UInt8], workspace: WorkspaceID) async throws -> [CustomerID] {
        try await quickRead { db in
            // One statement, so both levels are read from the same snapshot.
            try String.fetchAll(db, sql: """
                SELECT customer_id FROM blind_index WHERE workspace_id = ?1 AND attribute = ?2 AND digest = ?3
                UNION SELECT customer_id FROM blind_index_recent WHERE workspace_id = ?1 AND attribute = ?2 AND digest = ?3
                ORDER BY customer_id
                """, arguments: [workspace.rawValue, attribute.rawValue, Data(digest)]).map(CustomerID.init(trusted:))
        }
    }

    public func customerIDs(workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws -> [CustomerID] {
        try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT customer_id FROM customers WHERE workspace_id = ? AND customer_id > ? ORDER BY customer_id LIMIT ?
                """, arguments: [workspace.rawValue, after?.rawValue ?? "", limit]).map(CustomerID.init(trusted:))
        }
    }

    public func customerIDs(workspace: WorkspaceID, updatedBefore before: Date, limit: Int) async throws -> [CustomerID] {
        try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT customer_id FROM customers WHERE workspace_id = ? AND updated_at < ? ORDER BY updated_at LIMIT ?
                """, arguments: [workspace.rawValue, before.millis, limit]).map(CustomerID.init(trusted:))
        }
    }

    public func isTombstoned(_ digest: [UInt8], workspace: WorkspaceID) async throws -> Bool {
        try await quickRead { db in
            try Int.fetchOne(db, sql: "SELECT 1 FROM tombstones WHERE workspace_id = ? AND digest = ?",
                             arguments: [workspace.rawValue, Data(digest)]) != nil
        }
    }

    // MARK: Events

    public func pendingEvents(workspace: WorkspaceID, limit: Int) async throws -> [OutboundEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM outbound_events WHERE delivered_at IS NULL AND workspace_id = ? ORDER BY rowid LIMIT ?
                """, arguments: [workspace.rawValue, limit]).map { row in
                OutboundEvent(id: row["id"], workspaceID: WorkspaceID(trusted: row["workspace_id"]), type: row["type"],
                              customerID: row["customer_id"], at: Date(millis: row["at"]), messageID: row["message_id"],
                              campaignID: row["campaign_id"], channel: (row["channel"] as String?).flatMap(Channel.init(rawValue:)),
                              status: (row["status"] as String?).flatMap(MessageStatus.init(rawValue:)), errorCode: row["error_code"])
            }
        }
    }

    public func markEventsDelivered(_ ids: [String]) async throws {
        try await writeTransaction { db in
            for id in ids {
                try db.execute(sql: "UPDATE outbound_events SET delivered_at = ? WHERE id = ?", arguments: [Date().millis, id])
            }
        }
    }

    public func purgeDeleted() async throws {
        try await checkpoint()
    }

    public func commit(_ batch: CommitBatch) async throws -> [MutationOutcome] {
        let levels = indexLevels
        return try await committer.run { db in try Self.apply(batch, levels: levels, db) }
    }

    /// Runs a write through the group commit.
    func groupCommit<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await committer.run(work)
    }

    /// Applies one request's batch inside the group transaction (in the savepoint the group commit gives it).
    static func apply(_ batch: CommitBatch, levels: BlindIndexLevels, _ db: Database) throws -> [MutationOutcome] {
        var outcomes: [MutationOutcome] = []
        let index = try levels.writer(batchOf: batch.mutations.count, db)
        do {
            for definition in batch.schemaAdditions {
                try save(definition, workspace: batch.workspaceID, replace: false, db)
            }
            if let audit = batch.audit, !audit.drafts.isEmpty {
                try appendAudit(audit.drafts, key: audit.key, workspace: batch.workspaceID, db)
            }
            for event in batch.events { try insert(event, db) }
            for mutation in batch.mutations {
                if let prepared = mutation.prepared, try writeIfUnchanged(prepared, index: index, db) {
                    outcomes.append(prepared.assumed == nil ? .created(prepared.row) : .updated(prepared.row))
                    continue
                }
                let current = try fetchCustomer(mutation.customerID, workspace: batch.workspaceID, db)
                switch try mutation.resolve(current) {
                case .skip:
                    outcomes.append(.skipped)
                case .refuse(let failure):
                    outcomes.append(.refused(failure))
                case .write(let customer):
                    try write(customer, replacing: current, index: index, db)
                    outcomes.append(current == nil ? .created(customer) : .updated(customer))
                case .erase(let tombstone):
                    let ws = batch.workspaceID.rawValue, id = mutation.customerID.rawValue
                    // The row lists its index entries: each is deleted by its whole key. Deleting
                    // by customer id instead scanned the workspace's entire index (the key starts
                    // with the attribute and digest), holding the single writer for as long.
                    if let current { try BlindIndexLevels.delete(current, db) }
                    try db.execute(sql: "DELETE FROM customers WHERE workspace_id = ? AND customer_id = ?", arguments: [ws, id])
                    try db.execute(sql: "INSERT OR REPLACE INTO tombstones (workspace_id, digest, erased_at) VALUES (?, ?, ?)",
                                   arguments: [ws, Data(tombstone), Date().millis])
                    outcomes.append(current == nil ? .skipped : .erased)
                }
            }
            for cancellation in batch.cancelMessages {
                try cancelPendingMessages(cancellation, workspace: batch.workspaceID, db)
            }
        }
        try levels.mergeIfFull(db)
        return outcomes
    }

    /// Writes a row decided before the transaction, if the customer is still as it was then:
    /// absent (the insert does nothing when a row appeared) or at the assumed revision (the
    /// update matches nothing otherwise). Saves reading the row again inside the group commit.
    /// - Returns: false when the row changed meanwhile and nothing was written.
    static func writeIfUnchanged(_ prepared: CustomerMutation.Prepared, index: BlindIndexLevels.Writer, _ db: Database) throws -> Bool {
        let customer = prepared.row
        let ws = customer.workspaceID.rawValue, id = customer.customerID.rawValue
        let attributes = SealedMapCodec.encode(customer.attributes), digests = SealedMapCodec.encode(customer.blindIndex)
        if let assumed = prepared.assumed {
            var statement = try RawStatement(db, """
                UPDATE customers SET data_key = ?, attributes = ?, blind_index = ?, restricted = ?, updated_at = ?, revision = ?
                WHERE workspace_id = ? AND customer_id = ? AND revision = ?
                """)
            try statement.bind(customer.dataKey, attributes, digests, customer.restricted, customer.updatedAt.millis, customer.revision,
                               ws, id, assumed.revision)
            try statement.run()
        } else {
            var statement = try RawStatement(db, """
                INSERT INTO customers (workspace_id, customer_id, data_key, attributes, blind_index, restricted, created_at, updated_at, revision)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, customer_id) DO NOTHING
                """)
            try statement.bind(ws, id, customer.dataKey, attributes, digests, customer.restricted, customer.createdAt.millis,
                               customer.updatedAt.millis, customer.revision)
            try statement.run()
        }
        guard db.changesCount == 1 else { return false }
        try index.write(customer, replacing: prepared.assumed, db)
        return true
    }

    static func write(_ customer: StoredCustomer, replacing current: StoredCustomer?, index: BlindIndexLevels.Writer,
                      _ db: Database) throws {
        let ws = customer.workspaceID.rawValue, id = customer.customerID.rawValue
        try db.cachedStatement(sql: """
            INSERT INTO customers (workspace_id, customer_id, data_key, attributes, blind_index, restricted, created_at, updated_at, revision)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (workspace_id, customer_id) DO UPDATE SET data_key = excluded.data_key, attributes = excluded.attributes,
                blind_index = excluded.blind_index, restricted = excluded.restricted, updated_at = excluded.updated_at,
                revision = excluded.revision
            """).execute(arguments: [ws, id, Data(customer.dataKey), Data(SealedMapCodec.encode(customer.attributes)),
                                     Data(SealedMapCodec.encode(customer.blindIndex)), customer.restricted,
                                     customer.createdAt.millis, customer.updatedAt.millis, customer.revision])
        try index.write(customer, replacing: current, db)
    }

    // MARK: Row mapping

    static func fetchCustomer(_ id: CustomerID, workspace: WorkspaceID, _ db: Database) throws -> StoredCustomer? {
        var statement = try RawStatement(db, """
            SELECT data_key, attributes, blind_index, restricted, created_at, updated_at, revision
            FROM customers WHERE workspace_id = ? AND customer_id = ?
            """)
        try statement.bind(workspace.rawValue, id.rawValue)
        guard try statement.step() else { return nil }
        // By position: the columns are the ones selected above.
        return StoredCustomer(
            workspaceID: workspace, customerID: id,
            dataKey: statement.blob(0),
            attributes: try SealedMapCodec.decode(statement.blob(1)),
            blindIndex: try SealedMapCodec.decode(statement.blob(2)),
            restricted: statement.int64(3) != 0, createdAt: Date(millis: statement.int64(4)), updatedAt: Date(millis: statement.int64(5)),
            revision: statement.int64(6))
    }

    static func insert(_ event: OutboundEvent, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO outbound_events (id, workspace_id, type, customer_id, at, message_id, campaign_id, channel, status, error_code)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [event.id, event.workspaceID.rawValue, event.type, event.customerID, event.at.millis, event.messageID,
                                     event.campaignID, event.channel?.rawValue, event.status?.rawValue, event.errorCode])
    }
}
