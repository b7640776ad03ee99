import DomicileCore
import Foundation
import GRDB
import Logging

/// The embedded store: one SQLite file in WAL mode.
///
/// Durability: `synchronous=FULL`, so a commit returns only after the WAL is fsync'd. Concurrent
/// requests are group-committed: while one transaction is on its way to disk, the next batches
/// queue up and share the following commit, so one fsync acknowledges many requests.
/// `secure_delete` overwrites freed pages, which erasure relies on.
public final class SQLiteVaultStore: VaultStore {
    let pool: DatabasePool
    private let committer: GroupCommitter
    public let path: String

    public init(path: String, logger: Logger = Logger(label: "domicile.sqlite")) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")
        }
        configuration.label = "domicile"
        pool = try DatabasePool(path: path, configuration: configuration)
        self.path = path
        try Self.migrator.migrate(pool)
        committer = GroupCommitter(pool: pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-foundation") { db in
            try db.execute(sql: """
                CREATE TABLE workspaces (
                    id TEXT PRIMARY KEY,
                    region TEXT NOT NULL,
                    rate_limit_per_minute INTEGER NOT NULL,
                    suspended INTEGER NOT NULL DEFAULT 0,
                    allow_identifying_customer_ids INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE workspace_keys (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    version INTEGER NOT NULL,
                    wrapped_key BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, version)
                ) WITHOUT ROWID;
                CREATE TABLE api_keys (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    key_id TEXT NOT NULL,
                    secret_hash BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    PRIMARY KEY (workspace_id, key_id)
                ) WITHOUT ROWID;
                CREATE TABLE schema_attributes (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    pii INTEGER NOT NULL,
                    indexed INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, name)
                ) WITHOUT ROWID;
                CREATE TABLE customers (
                    workspace_id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    data_key BLOB NOT NULL,
                    attributes BLOB NOT NULL,
                    blind_index BLOB NOT NULL,
                    restricted INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    revision INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, customer_id)
                ) WITHOUT ROWID;
                CREATE TABLE blind_index (
                    workspace_id TEXT NOT NULL,
                    attribute TEXT NOT NULL,
                    digest BLOB NOT NULL,
                    customer_id TEXT NOT NULL,
                    PRIMARY KEY (workspace_id, attribute, digest, customer_id)
                ) WITHOUT ROWID;
                """)
        }
        return migrator
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// Moves the WAL's content into the main file and truncates the WAL.
    public func checkpoint() async throws {
        try await pool.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    // MARK: Workspaces

    public func createWorkspace(_ workspace: WorkspaceRecord, key: WorkspaceKeyRecord, apiKey: APIKeyRecord) async throws {
        try await pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM workspaces WHERE id = ?", arguments: [workspace.id.rawValue]) != nil {
                throw StoreError.alreadyExists("workspace \(workspace.id)")
            }
            try db.execute(sql: """
                INSERT INTO workspaces (id, region, rate_limit_per_minute, suspended, allow_identifying_customer_ids, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [workspace.id.rawValue, workspace.region, workspace.rateLimitPerMinute,
                                 workspace.suspended, workspace.allowIdentifyingCustomerIDs, workspace.createdAt.millis])
            try Self.insert(key, db)
            try Self.save(apiKey, db)
        }
    }

    public func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM workspaces WHERE id = ?", arguments: [id.rawValue]).map(Self.workspace)
        }
    }

    public func workspaces() async throws -> [WorkspaceRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workspaces ORDER BY id").map(Self.workspace)
        }
    }

    public func updateWorkspace(_ workspace: WorkspaceRecord) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE workspaces SET region = ?, rate_limit_per_minute = ?, suspended = ?, allow_identifying_customer_ids = ?
                WHERE id = ?
                """, arguments: [workspace.region, workspace.rateLimitPerMinute, workspace.suspended,
                                 workspace.allowIdentifyingCustomerIDs, workspace.id.rawValue])
            if db.changesCount == 0 { throw StoreError.notFound("workspace \(workspace.id)") }
        }
    }

    public func workspaceKeys(_ id: WorkspaceID) async throws -> [WorkspaceKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workspace_keys WHERE workspace_id = ? ORDER BY version",
                             arguments: [id.rawValue]).map { row in
                WorkspaceKeyRecord(workspaceID: id, version: UInt32(row["version"] as Int64),
                                   wrappedKey: [UInt8](row["wrapped_key"] as Data), createdAt: Date(millis: row["created_at"]))
            }
        }
    }

    public func addWorkspaceKey(_ key: WorkspaceKeyRecord) async throws {
        try await pool.write { db in try Self.insert(key, db) }
    }

    // MARK: API keys

    public func apiKey(workspace: WorkspaceID, keyID: String) async throws -> APIKeyRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE workspace_id = ? AND key_id = ?",
                             arguments: [workspace.rawValue, keyID]).map(Self.apiKey)
        }
    }

    public func apiKeys(workspace: WorkspaceID) async throws -> [APIKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created_at, key_id",
                             arguments: [workspace.rawValue]).map(Self.apiKey)
        }
    }

    public func saveAPIKeys(_ keys: [APIKeyRecord]) async throws {
        try await pool.write { db in
            for key in keys { try Self.save(key, db) }
        }
    }

    // MARK: Schema

    public func schema(_ workspace: WorkspaceID) async throws -> [AttributeDefinition] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM schema_attributes WHERE workspace_id = ? ORDER BY name",
                             arguments: [workspace.rawValue]).compactMap(Self.definition)
        }
    }

    public func saveSchemaAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID) async throws {
        try await pool.write { db in try Self.save(definition, workspace: workspace, replace: true, db) }
    }

    // MARK: Customers

    public func customer(_ id: CustomerID, workspace: WorkspaceID) async throws -> StoredCustomer? {
        try await pool.read { db in try Self.fetchCustomer(id, workspace: workspace, db) }
    }

    public func customers(_ ids: [CustomerID], workspace: WorkspaceID) async throws -> [CustomerID: StoredCustomer] {
        guard !ids.isEmpty else { return [:] }
        return try await pool.read { db in
            var found: [CustomerID: StoredCustomer] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ ids[$0..<min($0 + 500, ids.count)] }) {
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let arguments = StatementArguments([workspace.rawValue] + chunk.map(\.rawValue))
                for row in try Row.fetchAll(db, sql: "SELECT * FROM customers WHERE workspace_id = ? AND customer_id IN (\(placeholders))",
                                            arguments: arguments) {
                    let customer = try Self.customer(row)
                    found[customer.customerID] = customer
                }
            }
            return found
        }
    }

    public func customerIDs(attribute: AttributeName, digest: [UInt8], workspace: WorkspaceID) async throws -> [CustomerID] {
        try await pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT customer_id FROM blind_index WHERE workspace_id = ? AND attribute = ? AND digest = ? ORDER BY customer_id
                """, arguments: [workspace.rawValue, attribute.rawValue, Data(digest)]).map(CustomerID.init(trusted:))
        }
    }

    public func commit(_ batch: CommitBatch) async throws -> [MutationOutcome] {
        try await committer.commit(batch)
    }

    /// Applies one request's batch inside the group transaction, in a savepoint of its own, so a
    /// batch that fails leaves the others of the group untouched.
    static func apply(_ batch: CommitBatch, _ db: Database) throws -> [MutationOutcome] {
        var outcomes: [MutationOutcome] = []
        try db.inSavepoint {
            outcomes = []
            for definition in batch.schemaAdditions {
                try save(definition, workspace: batch.workspaceID, replace: false, db)
            }
            for mutation in batch.mutations {
                let current = try fetchCustomer(mutation.customerID, workspace: batch.workspaceID, db)
                switch try mutation.resolve(current) {
                case .skip:
                    outcomes.append(.skipped)
                case .refuse(let failure):
                    outcomes.append(.refused(failure))
                case .write(let customer):
                    try write(customer, replacing: current, db)
                    outcomes.append(current == nil ? .created(customer) : .updated(customer))
                }
            }
            return .commit
        }
        return outcomes
    }

    static func write(_ customer: StoredCustomer, replacing current: StoredCustomer?, _ db: Database) throws {
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
        let old = current?.blindIndex ?? [:]
        for (attribute, digest) in old where customer.blindIndex[attribute] != digest {
            try db.cachedStatement(sql: "DELETE FROM blind_index WHERE workspace_id = ? AND attribute = ? AND digest = ? AND customer_id = ?")
                .execute(arguments: [ws, attribute, Data(digest), id])
        }
        for (attribute, digest) in customer.blindIndex where old[attribute] != digest {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO blind_index (workspace_id, attribute, digest, customer_id) VALUES (?, ?, ?, ?)")
                .execute(arguments: [ws, attribute, Data(digest), id])
        }
    }

    // MARK: Row mapping

    static func fetchCustomer(_ id: CustomerID, workspace: WorkspaceID, _ db: Database) throws -> StoredCustomer? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM customers WHERE workspace_id = ? AND customer_id = ?"),
                         arguments: [workspace.rawValue, id.rawValue]).map(customer)
    }

    static func customer(_ row: Row) throws -> StoredCustomer {
        StoredCustomer(
            workspaceID: WorkspaceID(trusted: row["workspace_id"]), customerID: CustomerID(trusted: row["customer_id"]),
            dataKey: [UInt8](row["data_key"] as Data),
            attributes: try SealedMapCodec.decode([UInt8](row["attributes"] as Data)),
            blindIndex: try SealedMapCodec.decode([UInt8](row["blind_index"] as Data)),
            restricted: row["restricted"], createdAt: Date(millis: row["created_at"]), updatedAt: Date(millis: row["updated_at"]),
            revision: row["revision"])
    }

    static func workspace(_ row: Row) -> WorkspaceRecord {
        WorkspaceRecord(id: WorkspaceID(trusted: row["id"]), region: row["region"], rateLimitPerMinute: row["rate_limit_per_minute"],
                        suspended: row["suspended"], allowIdentifyingCustomerIDs: row["allow_identifying_customer_ids"],
                        createdAt: Date(millis: row["created_at"]))
    }

    static func apiKey(_ row: Row) -> APIKeyRecord {
        APIKeyRecord(workspaceID: WorkspaceID(trusted: row["workspace_id"]), keyID: row["key_id"],
                     secretHash: [UInt8](row["secret_hash"] as Data), createdAt: Date(millis: row["created_at"]),
                     expiresAt: (row["expires_at"] as Int64?).map(Date.init(millis:)),
                     revokedAt: (row["revoked_at"] as Int64?).map(Date.init(millis:)))
    }

    static func definition(_ row: Row) -> AttributeDefinition? {
        guard let type = AttributeType(rawValue: row["type"]) else { return nil }
        return AttributeDefinition(name: AttributeName(trusted: row["name"]), type: type, pii: row["pii"], indexed: row["indexed"])
    }

    static func insert(_ key: WorkspaceKeyRecord, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES (?, ?, ?, ?)",
                       arguments: [key.workspaceID.rawValue, Int64(key.version), Data(key.wrappedKey), key.createdAt.millis])
    }

    static func save(_ key: APIKeyRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO api_keys (workspace_id, key_id, secret_hash, created_at, expires_at, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [key.workspaceID.rawValue, key.keyID, Data(key.secretHash), key.createdAt.millis,
                             key.expiresAt?.millis, key.revokedAt?.millis])
    }

    static func save(_ definition: AttributeDefinition, workspace: WorkspaceID, replace: Bool, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT OR \(replace ? "REPLACE" : "IGNORE") INTO schema_attributes (workspace_id, name, type, pii, indexed) VALUES (?, ?, ?, ?, ?)
            """).execute(arguments: [workspace.rawValue, definition.name.rawValue, definition.type.rawValue,
                                     definition.pii, definition.indexed])
    }
}

/// Collects the batches that arrive while a transaction is being written, and commits them together.
actor GroupCommitter {
    private struct Pending {
        let batch: CommitBatch
        let continuation: CheckedContinuation<[MutationOutcome], any Error>
    }

    private let pool: DatabasePool
    private var pending: [Pending] = []
    private var draining = false

    init(pool: DatabasePool) { self.pool = pool }

    func commit(_ batch: CommitBatch) async throws -> [MutationOutcome] {
        try await withCheckedThrowingContinuation { continuation in
            pending.append(Pending(batch: batch, continuation: continuation))
            if !draining {
                draining = true
                Task { await drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let group = pending
            pending.removeAll(keepingCapacity: true)
            let batches = group.map(\.batch)
            do {
                // One transaction, one fsync, for the whole group; each batch has its own savepoint.
                let results = try await pool.write { db in
                    batches.map { batch in Result { try SQLiteVaultStore.apply(batch, db) } }
                }
                for (waiter, result) in zip(group, results) { waiter.continuation.resume(with: result) }
            } catch {
                for waiter in group { waiter.continuation.resume(throwing: error) }
            }
        }
        draining = false
    }
}

extension Date {
    var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}
