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
}
