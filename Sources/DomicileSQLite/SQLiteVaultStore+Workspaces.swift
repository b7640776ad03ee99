import DomicileCore
import Foundation
import GRDB

/// Workspaces, their key versions, data API keys and schemas: small rows read often (through the
/// calling thread's read connections) and written rarely.
extension SQLiteVaultStore {
    // MARK: Workspaces

    public func createWorkspace(_ workspace: WorkspaceRecord, key: WorkspaceKeyRecord, apiKey: APIKeyRecord) async throws {
        try await writeTransaction { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM workspaces WHERE id = ?", arguments: [workspace.id.rawValue]) != nil {
                throw StoreError.alreadyExists("workspace \(workspace.id)")
            }
            try db.execute(sql: """
                INSERT INTO workspaces (id, region, rate_limit_per_minute, suspended, allow_identifying_customer_ids,
                                        retention_days, refuse_erased_customer_ids, events_url, events_secret, egress_hosts, protection,
                                        created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [workspace.id.rawValue, workspace.region, workspace.rateLimitPerMinute,
                                 workspace.suspended, workspace.allowIdentifyingCustomerIDs, workspace.retentionDays,
                                 workspace.refuseErasedCustomerIDs, workspace.eventsURL, workspace.sealedEventsSecret.map { Data($0) },
                                 EgressHostsColumn.encode(workspace.egressHosts), workspace.protection.rawValue,
                                 workspace.createdAt.millis])
            try Self.insert(key, db)
            try Self.save(apiKey, db)
        }
    }

    public func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM workspaces WHERE id = ?", arguments: [id.rawValue]).map(Self.workspace)
        }
    }

    public func workspaces() async throws -> [WorkspaceRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workspaces ORDER BY id").map(Self.workspace)
        }
    }

    public func updateWorkspace(_ workspace: WorkspaceRecord) async throws {
        try await writeTransaction { db in
            try db.execute(sql: """
                UPDATE workspaces SET region = ?, rate_limit_per_minute = ?, suspended = ?, allow_identifying_customer_ids = ?,
                    retention_days = ?, refuse_erased_customer_ids = ?, events_url = ?, events_secret = ?, egress_hosts = ?
                WHERE id = ?
                """, arguments: [workspace.region, workspace.rateLimitPerMinute, workspace.suspended,
                                 workspace.allowIdentifyingCustomerIDs, workspace.retentionDays, workspace.refuseErasedCustomerIDs,
                                 workspace.eventsURL, workspace.sealedEventsSecret.map { Data($0) },
                                 EgressHostsColumn.encode(workspace.egressHosts), workspace.id.rawValue])
            if db.changesCount == 0 { throw StoreError.notFound("workspace \(workspace.id)") }
        }
    }

    public func workspaceKeys(_ id: WorkspaceID) async throws -> [WorkspaceKeyRecord] {
        try await quickRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workspace_keys WHERE workspace_id = ? ORDER BY version",
                             arguments: [id.rawValue]).map { row in
                WorkspaceKeyRecord(workspaceID: id, version: UInt32(row["version"] as Int64),
                                   wrappedKey: [UInt8](row["wrapped_key"] as Data), createdAt: Date(millis: row["created_at"]),
                                   blindIndex: (row["index_role"] as String?).flatMap(BlindIndexState.Role.init(rawValue:)).map {
                                       BlindIndexState(role: $0, since: Date(millis: row["index_since"] as Int64? ?? 0),
                                                       cursor: (row["index_cursor"] as String?).map(CustomerID.init(trusted:)))
                                   })
            }
        }
    }

    public func addWorkspaceKey(_ key: WorkspaceKeyRecord) async throws {
        try await writeTransaction { db in try Self.insert(key, db) }
    }

    // MARK: API keys

    public func apiKey(workspace: WorkspaceID, keyID: String) async throws -> APIKeyRecord? {
        try await quickRead { db in
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
        try await writeTransaction { db in
            for key in keys { try Self.save(key, db) }
        }
    }

    // MARK: Schema

    public func schema(_ workspace: WorkspaceID) async throws -> [AttributeDefinition] {
        try await quickRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM schema_attributes WHERE workspace_id = ? ORDER BY name",
                             arguments: [workspace.rawValue]).compactMap(Self.definition)
        }
    }

    public func saveSchemaAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID) async throws {
        try await writeTransaction { db in try Self.save(definition, workspace: workspace, replace: true, db) }
    }

    // MARK: Row mapping

    static func workspace(_ row: Row) -> WorkspaceRecord {
        WorkspaceRecord(id: WorkspaceID(trusted: row["id"]), region: row["region"], rateLimitPerMinute: row["rate_limit_per_minute"],
                        suspended: row["suspended"], allowIdentifyingCustomerIDs: row["allow_identifying_customer_ids"],
                        retentionDays: row["retention_days"], refuseErasedCustomerIDs: row["refuse_erased_customer_ids"],
                        eventsURL: row["events_url"], sealedEventsSecret: (row["events_secret"] as Data?).map { [UInt8]($0) },
                        egressHosts: EgressHostsColumn.decode(row["egress_hosts"]),
                        protection: ProtectionMode(rawValue: row["protection"]) ?? .vault, createdAt: Date(millis: row["created_at"]))
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
        try db.execute(sql: """
            INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at, index_role, index_since, index_cursor)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [key.workspaceID.rawValue, Int64(key.version), Data(key.wrappedKey), key.createdAt.millis,
                             key.blindIndex?.role.rawValue, key.blindIndex?.since.millis, key.blindIndex?.cursor?.rawValue])
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
