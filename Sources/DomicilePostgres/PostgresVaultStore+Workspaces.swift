import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    // MARK: Workspaces

    public func createWorkspace(_ workspace: WorkspaceRecord, key: WorkspaceKeyRecord, apiKey: APIKeyRecord) async throws {
        let logger = self.logger
        try await transaction { connection in
            let inserted = try await connection.rows("""
                INSERT INTO workspaces (id, region, rate_limit_per_minute, suspended, allow_identifying_customer_ids,
                                        retention_days, refuse_erased_customer_ids, events_url, events_secret, egress_hosts, protection,
                                        created_at)
                VALUES (\(workspace.id.rawValue), \(workspace.region), \(workspace.rateLimitPerMinute), \(workspace.suspended),
                        \(workspace.allowIdentifyingCustomerIDs), \(workspace.retentionDays), \(workspace.refuseErasedCustomerIDs),
                        \(workspace.eventsURL), \(workspace.sealedEventsSecret?.bytea), \(EgressHostsColumn.encode(workspace.egressHosts)),
                        \(workspace.protection.rawValue), \(workspace.createdAt.millis))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """, logger)
            guard !inserted.isEmpty else { throw StoreError.alreadyExists("workspace \(workspace.id)") }
            try await Self.insert(key, connection, logger)
            try await Self.save(apiKey, connection, logger)
        }
    }

    public func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord? {
        try await rows("SELECT * FROM workspaces WHERE id = \(id.rawValue)").first.map(Self.workspace)
    }

    public func workspaces() async throws -> [WorkspaceRecord] {
        try await rows("SELECT * FROM workspaces ORDER BY id").map(Self.workspace)
    }

    public func updateWorkspace(_ workspace: WorkspaceRecord) async throws {
        let logger = self.logger
        try await transaction { connection in
            let updated = try await connection.rows("""
                UPDATE workspaces SET region = \(workspace.region), rate_limit_per_minute = \(workspace.rateLimitPerMinute),
                    suspended = \(workspace.suspended), allow_identifying_customer_ids = \(workspace.allowIdentifyingCustomerIDs),
                    retention_days = \(workspace.retentionDays), refuse_erased_customer_ids = \(workspace.refuseErasedCustomerIDs),
                    events_url = \(workspace.eventsURL), events_secret = \(workspace.sealedEventsSecret?.bytea),
                    egress_hosts = \(EgressHostsColumn.encode(workspace.egressHosts))
                WHERE id = \(workspace.id.rawValue) RETURNING id
                """, logger)
            if updated.isEmpty { throw StoreError.notFound("workspace \(workspace.id)") }
        }
    }

    public func workspaceKeys(_ id: WorkspaceID) async throws -> [WorkspaceKeyRecord] {
        try await rows("SELECT * FROM workspace_keys WHERE workspace_id = \(id.rawValue) ORDER BY version").map { row in
            WorkspaceKeyRecord(workspaceID: id, version: UInt32(try row.int("version")), wrappedKey: try row.bytes("wrapped_key"),
                               createdAt: try row.date("created_at"),
                               blindIndex: try row.optionalText("index_role").flatMap(BlindIndexState.Role.init(rawValue:)).map {
                                   BlindIndexState(role: $0, since: try row.optionalDate("index_since") ?? Date(millis: 0),
                                                   cursor: try row.optionalText("index_cursor").map(CustomerID.init(trusted:)))
                               })
        }
    }

    public func addWorkspaceKey(_ key: WorkspaceKeyRecord) async throws {
        let logger = self.logger
        try await transaction { connection in try await Self.insert(key, connection, logger) }
    }

    static func insert(_ key: WorkspaceKeyRecord, _ connection: PostgresConnection, _ logger: Logger) async throws {
        _ = try await connection.rows("""
            INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at, index_role, index_since, index_cursor)
            VALUES (\(key.workspaceID.rawValue), \(Int64(key.version)), \(key.wrappedKey.bytea), \(key.createdAt.millis),
                    \(key.blindIndex?.role.rawValue), \(key.blindIndex?.since.millis), \(key.blindIndex?.cursor?.rawValue))
            """, logger)
    }

    static func workspace(_ row: PostgresRandomAccessRow) throws -> WorkspaceRecord {
        WorkspaceRecord(id: WorkspaceID(trusted: try row.text("id")), region: try row.text("region"),
                        rateLimitPerMinute: Int(try row.int("rate_limit_per_minute")), suspended: try row.bool("suspended"),
                        allowIdentifyingCustomerIDs: try row.bool("allow_identifying_customer_ids"),
                        retentionDays: try row.optionalInt("retention_days").map(Int.init),
                        refuseErasedCustomerIDs: try row.bool("refuse_erased_customer_ids"),
                        eventsURL: try row.optionalText("events_url"), sealedEventsSecret: try row.optionalBytes("events_secret"),
                        egressHosts: EgressHostsColumn.decode(try row.optionalText("egress_hosts")),
                        protection: ProtectionMode(rawValue: try row.text("protection")) ?? .vault, createdAt: try row.date("created_at"))
    }

    // MARK: Data API keys

    public func apiKey(workspace: WorkspaceID, keyID: String) async throws -> APIKeyRecord? {
        try await rows("SELECT * FROM api_keys WHERE workspace_id = \(workspace.rawValue) AND key_id = \(keyID)").first.map(Self.apiKey)
    }

    public func apiKeys(workspace: WorkspaceID) async throws -> [APIKeyRecord] {
        try await rows("SELECT * FROM api_keys WHERE workspace_id = \(workspace.rawValue) ORDER BY created_at, key_id").map(Self.apiKey)
    }

    public func saveAPIKeys(_ keys: [APIKeyRecord]) async throws {
        let logger = self.logger
        try await transaction { connection in
            for key in keys { try await Self.save(key, connection, logger) }
        }
    }

    static func save(_ key: APIKeyRecord, _ connection: PostgresConnection, _ logger: Logger) async throws {
        _ = try await connection.rows("""
            INSERT INTO api_keys (workspace_id, key_id, secret_hash, created_at, expires_at, revoked_at)
            VALUES (\(key.workspaceID.rawValue), \(key.keyID), \(key.secretHash.bytea), \(key.createdAt.millis),
                    \(key.expiresAt?.millis), \(key.revokedAt?.millis))
            ON CONFLICT (workspace_id, key_id) DO UPDATE SET secret_hash = excluded.secret_hash, created_at = excluded.created_at,
                expires_at = excluded.expires_at, revoked_at = excluded.revoked_at
            """, logger)
    }

    static func apiKey(_ row: PostgresRandomAccessRow) throws -> APIKeyRecord {
        APIKeyRecord(workspaceID: WorkspaceID(trusted: try row.text("workspace_id")), keyID: try row.text("key_id"),
                     secretHash: try row.bytes("secret_hash"), createdAt: try row.date("created_at"),
                     expiresAt: try row.optionalDate("expires_at"), revokedAt: try row.optionalDate("revoked_at"))
    }

    // MARK: Schema

    public func schema(_ workspace: WorkspaceID) async throws -> [AttributeDefinition] {
        try await rows("SELECT * FROM schema_attributes WHERE workspace_id = \(workspace.rawValue) ORDER BY name").compactMap { row in
            guard let type = AttributeType(rawValue: try row.text("type")) else { return nil }
            return AttributeDefinition(name: AttributeName(trusted: try row.text("name")), type: type, pii: try row.bool("pii"),
                                       indexed: try row.bool("indexed"))
        }
    }

    public func saveSchemaAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID) async throws {
        let logger = self.logger
        try await transaction { connection in try await Self.save(definition, workspace: workspace, replace: true, connection, logger) }
    }

    /// `replace: false` keeps a definition already there (what ingestion adds never overrides an administrator's).
    static func save(_ definition: AttributeDefinition, workspace: WorkspaceID, replace: Bool, _ connection: PostgresConnection,
                     _ logger: Logger) async throws {
        let values: PostgresQuery = """
            INSERT INTO schema_attributes (workspace_id, name, type, pii, indexed)
            VALUES (\(workspace.rawValue), \(definition.name.rawValue), \(definition.type.rawValue), \(definition.pii), \(definition.indexed))
            """
        let conflict = replace
            ? " ON CONFLICT (workspace_id, name) DO UPDATE SET type = excluded.type, pii = excluded.pii, indexed = excluded.indexed"
            : " ON CONFLICT (workspace_id, name) DO NOTHING"
        _ = try await connection.rows(PostgresQuery(unsafeSQL: values.sql + conflict, binds: values.binds), logger)
    }

    // MARK: Send keys and providers

    public func saveSendKey(_ key: SendKeyRecord) async throws {
        _ = try await transaction { [logger] connection in
            try await connection.rows("""
                INSERT INTO send_keys (workspace_id, key_id, sealed_secret, created_at, expires_at, revoked_at)
                VALUES (\(key.workspaceID.rawValue), \(key.keyID), \(key.sealedSecret.bytea), \(key.createdAt.millis),
                        \(key.expiresAt?.millis), \(key.revokedAt?.millis))
                ON CONFLICT (workspace_id, key_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
                    created_at = excluded.created_at, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at
                """, logger).count
        }
    }

    public func sendKey(workspace: WorkspaceID, keyID: String) async throws -> SendKeyRecord? {
        try await rows("SELECT * FROM send_keys WHERE workspace_id = \(workspace.rawValue) AND key_id = \(keyID)").first.map(Self.sendKey)
    }

    public func sendKeys(workspace: WorkspaceID) async throws -> [SendKeyRecord] {
        try await rows("SELECT * FROM send_keys WHERE workspace_id = \(workspace.rawValue) ORDER BY created_at, key_id").map(Self.sendKey)
    }

    static func sendKey(_ row: PostgresRandomAccessRow) throws -> SendKeyRecord {
        SendKeyRecord(workspaceID: WorkspaceID(trusted: try row.text("workspace_id")), keyID: try row.text("key_id"),
                      sealedSecret: try row.bytes("sealed_secret"), createdAt: try row.date("created_at"),
                      expiresAt: try row.optionalDate("expires_at"), revokedAt: try row.optionalDate("revoked_at"))
    }

    public func saveProvider(_ provider: ProviderRecord) async throws {
        _ = try await transaction { [logger] connection in
            try await connection.rows("""
                INSERT INTO providers (workspace_id, channel, kind, sealed_settings)
                VALUES (\(provider.workspaceID.rawValue), \(provider.channel.rawValue), \(provider.kind), \(provider.sealedSettings.bytea))
                ON CONFLICT (workspace_id, channel) DO UPDATE SET kind = excluded.kind, sealed_settings = excluded.sealed_settings
                """, logger).count
        }
    }

    public func provider(workspace: WorkspaceID, channel: DomicileCore.Channel) async throws -> ProviderRecord? {
        try await rows("""
            SELECT kind, sealed_settings FROM providers WHERE workspace_id = \(workspace.rawValue) AND channel = \(channel.rawValue)
            """).first.map { row in
            ProviderRecord(workspaceID: workspace, channel: channel, kind: try row.text("kind"), sealedSettings: try row.bytes("sealed_settings"))
        }
    }
}
