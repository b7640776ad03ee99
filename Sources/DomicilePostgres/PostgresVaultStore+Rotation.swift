import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    static func versionBytes(_ version: UInt32) -> [UInt8] {
        [UInt8(version >> 24), UInt8(version >> 16 & 0xFF), UInt8(version >> 8 & 0xFF), UInt8(version & 0xFF)]
    }

    public func dataKeyVersions(workspace: WorkspaceID) async throws -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for row in try await rows("""
            SELECT substring(data_key from 2 for 4) AS version, count(*) AS customers FROM customers
            WHERE workspace_id = \(workspace.rawValue) GROUP BY 1
            """) {
            let bytes = try row.bytes("version")
            guard bytes.count == 4 else { continue }
            counts[bytes.reduce(0) { $0 << 8 | UInt32($1) }] = Int(try row.int("customers"))
        }
        return counts
    }

    public func dataKeysNotWrapped(with version: UInt32, workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws
        -> [(customerID: CustomerID, wrapped: [UInt8])]
    {
        try await rows("""
            SELECT customer_id, data_key FROM customers
            WHERE workspace_id = \(workspace.rawValue) AND customer_id > \(after?.rawValue ?? "")
              AND substring(data_key from 2 for 4) <> \(Self.versionBytes(version).bytea)
            ORDER BY customer_id LIMIT \(limit)
            """).map { (CustomerID(trusted: try $0.text("customer_id")), try $0.bytes("data_key")) }
    }

    public func rewrapDataKeys(_ changes: [(customerID: CustomerID, old: [UInt8], new: [UInt8])], workspace: WorkspaceID) async throws -> Int {
        guard !changes.isEmpty else { return 0 }
        let logger = self.logger
        return try await transaction { connection in
            var replaced = 0
            for change in changes {
                replaced += try await connection.rows("""
                    UPDATE customers SET data_key = \(change.new.bytea)
                    WHERE workspace_id = \(workspace.rawValue) AND customer_id = \(change.customerID.rawValue) AND data_key = \(change.old.bytea)
                    RETURNING customer_id
                    """, logger).count
            }
            return replaced
        }
    }

    public func retireWorkspaceKey(_ version: UInt32, workspace: WorkspaceID) async throws -> Bool {
        !(try await rows("""
            DELETE FROM workspace_keys WHERE workspace_id = \(workspace.rawValue) AND version = \(Int64(version))
            AND NOT EXISTS (SELECT 1 FROM customers WHERE workspace_id = \(workspace.rawValue)
                            AND substring(data_key from 2 for 4) = \(Self.versionBytes(version).bytea))
            AND NOT EXISTS (SELECT 1 FROM workspace_secrets WHERE workspace_id = \(workspace.rawValue)
                            AND substring(wrapped_key from 2 for 4) = \(Self.versionBytes(version).bytea))
            RETURNING version
            """).isEmpty)
    }

    public func replaceWrappedWorkspaceKeys(_ records: [WorkspaceKeyRecord]) async throws {
        let logger = self.logger
        try await transaction { connection in
            for record in records {
                _ = try await connection.rows("""
                    UPDATE workspace_keys SET wrapped_key = \(record.wrappedKey.bytea)
                    WHERE workspace_id = \(record.workspaceID.rawValue) AND version = \(Int64(record.version))
                    """, logger)
            }
        }
    }

    public func setBlindIndexStates(_ states: [UInt32: BlindIndexState?], workspace: WorkspaceID) async throws {
        let logger = self.logger
        try await transaction { connection in
            for (version, state) in states {
                _ = try await connection.rows("""
                    UPDATE workspace_keys SET index_role = \(state?.role.rawValue), index_since = \(state?.since.millis),
                        index_cursor = \(state?.cursor?.rawValue)
                    WHERE workspace_id = \(workspace.rawValue) AND version = \(Int64(version))
                    """, logger)
            }
        }
    }

    public func workspaceSecrets(_ id: WorkspaceID) async throws -> WorkspaceSecretsRecord? {
        try await rows("SELECT wrapped_key, sealed_derived_keys FROM workspace_secrets WHERE workspace_id = \(id.rawValue)").first.map { row in
            WorkspaceSecretsRecord(workspaceID: id, wrappedKey: try row.bytes("wrapped_key"), sealedDerivedKeys: try row.bytes("sealed_derived_keys"))
        }
    }

    public func createWorkspaceSecrets(_ record: WorkspaceSecretsRecord) async throws -> Bool {
        !(try await rows("""
            INSERT INTO workspace_secrets (workspace_id, wrapped_key, sealed_derived_keys)
            VALUES (\(record.workspaceID.rawValue), \(record.wrappedKey.bytea), \(record.sealedDerivedKeys.bytea))
            ON CONFLICT (workspace_id) DO NOTHING RETURNING workspace_id
            """).isEmpty)
    }

    public func auditReasonsToReseal(workspace: WorkspaceID, limit: Int) async throws -> [(seq: Int64, sealed: [UInt8])] {
        try await rows("""
            SELECT seq, sealed_reason FROM audit_log
            WHERE workspace_id = \(workspace.rawValue) AND get_byte(sealed_reason, 0) = 1 AND resealed_reason IS NULL
            ORDER BY seq LIMIT \(limit)
            """).map { row in (try row.int("seq"), try row.bytes("sealed_reason")) }
    }

    public func reseal(_ changes: [SecretReseal]) async throws -> Int {
        guard !changes.isEmpty else { return 0 }
        let logger = self.logger
        return try await transaction { connection in
            var applied = 0
            for change in changes {
                let query: PostgresQuery = switch change {
                case .secretsKey(let workspace, let old, let new):
                    "UPDATE workspace_secrets SET wrapped_key = \(new.bytea) WHERE workspace_id = \(workspace.rawValue) AND wrapped_key = \(old.bytea) RETURNING 1"
                case .eventsSecret(let workspace, let old, let new):
                    "UPDATE workspaces SET events_secret = \(new.bytea) WHERE id = \(workspace.rawValue) AND events_secret = \(old.bytea) RETURNING 1"
                case .sendKey(let workspace, let keyID, let old, let new):
                    """
                    UPDATE send_keys SET sealed_secret = \(new.bytea)
                    WHERE workspace_id = \(workspace.rawValue) AND key_id = \(keyID) AND sealed_secret = \(old.bytea) RETURNING 1
                    """
                case .provider(let workspace, let channel, let old, let new):
                    """
                    UPDATE providers SET sealed_settings = \(new.bytea)
                    WHERE workspace_id = \(workspace.rawValue) AND channel = \(channel.rawValue) AND sealed_settings = \(old.bytea) RETURNING 1
                    """
                case .operatorEmail(let operatorID, let old, let new):
                    "UPDATE operators SET sealed_email = \(new.bytea) WHERE id = \(operatorID) AND sealed_email = \(old.bytea) RETURNING 1"
                case .auditReason(let workspace, let seq, let copy):
                    """
                    UPDATE audit_log SET resealed_reason = \(copy.bytea)
                    WHERE workspace_id = \(workspace.rawValue) AND seq = \(seq) AND resealed_reason IS NULL RETURNING 1
                    """
                }
                applied += try await connection.rows(query, logger).count
            }
            return applied
        }
    }
}
