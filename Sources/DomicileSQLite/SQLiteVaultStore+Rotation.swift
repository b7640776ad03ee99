import DomicileCore
import Foundation
import GRDB

extension SQLiteVaultStore {
    static func versionBlob(_ version: UInt32) -> Data {
        Data([UInt8(version >> 24), UInt8(version >> 16 & 0xFF), UInt8(version >> 8 & 0xFF), UInt8(version & 0xFF)])
    }

    public func dataKeyVersions(workspace: WorkspaceID) async throws -> [UInt32: Int] {
        try await pool.read { db in
            var counts: [UInt32: Int] = [:]
            let rows = try Row.fetchAll(db, sql: """
                SELECT substr(data_key, 2, 4) AS version, count(*) AS customers FROM customers WHERE workspace_id = ? GROUP BY 1
                """, arguments: [workspace.rawValue])
            for row in rows {
                let bytes = [UInt8]((row["version"] as Data?) ?? Data())
                guard bytes.count == 4 else { continue }
                counts[bytes.reduce(0) { $0 << 8 | UInt32($1) }] = row["customers"]
            }
            return counts
        }
    }

    public func dataKeysNotWrapped(with version: UInt32, workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws
        -> [(customerID: CustomerID, wrapped: [UInt8])]
    {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT customer_id, data_key FROM customers
                WHERE workspace_id = ? AND customer_id > ? AND substr(data_key, 2, 4) <> ?
                ORDER BY customer_id LIMIT ?
                """, arguments: [workspace.rawValue, after?.rawValue ?? "", Self.versionBlob(version), limit]).map { row in
                (CustomerID(trusted: row["customer_id"]), [UInt8](row["data_key"] as Data))
            }
        }
    }

    public func rewrapDataKeys(_ changes: [(customerID: CustomerID, old: [UInt8], new: [UInt8])], workspace: WorkspaceID) async throws -> Int {
        guard !changes.isEmpty else { return 0 }
        return try await groupCommit { db in
            var replaced = 0
            for change in changes {
                try db.execute(sql: "UPDATE customers SET data_key = ? WHERE workspace_id = ? AND customer_id = ? AND data_key = ?",
                               arguments: [Data(change.new), workspace.rawValue, change.customerID.rawValue, Data(change.old)])
                replaced += db.changesCount
            }
            return replaced
        }
    }

    public func retireWorkspaceKey(_ version: UInt32, workspace: WorkspaceID) async throws -> Bool {
        try await groupCommit { db in
            try db.execute(sql: """
                DELETE FROM workspace_keys WHERE workspace_id = ?1 AND version = ?2
                AND NOT EXISTS (SELECT 1 FROM customers WHERE workspace_id = ?1 AND substr(data_key, 2, 4) = ?3)
                AND NOT EXISTS (SELECT 1 FROM workspace_secrets WHERE workspace_id = ?1 AND substr(wrapped_key, 2, 4) = ?3)
                """, arguments: [workspace.rawValue, version, Self.versionBlob(version)])
            return db.changesCount > 0
        }
    }

    public func replaceWrappedWorkspaceKeys(_ records: [WorkspaceKeyRecord]) async throws {
        try await writeTransaction { db in
            for record in records {
                try db.execute(sql: "UPDATE workspace_keys SET wrapped_key = ? WHERE workspace_id = ? AND version = ?",
                               arguments: [Data(record.wrappedKey), record.workspaceID.rawValue, record.version])
            }
        }
    }

    public func setBlindIndexStates(_ states: [UInt32: BlindIndexState?], workspace: WorkspaceID) async throws {
        try await writeTransaction { db in
            for (version, state) in states {
                try db.execute(sql: """
                    UPDATE workspace_keys SET index_role = ?, index_since = ?, index_cursor = ? WHERE workspace_id = ? AND version = ?
                    """, arguments: [state?.role.rawValue, state?.since.millis, state?.cursor?.rawValue, workspace.rawValue, Int64(version)])
            }
        }
    }

    public func workspaceSecrets(_ id: WorkspaceID) async throws -> WorkspaceSecretsRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT wrapped_key, sealed_derived_keys FROM workspace_secrets WHERE workspace_id = ?",
                             arguments: [id.rawValue]).map { row in
                WorkspaceSecretsRecord(workspaceID: id, wrappedKey: [UInt8](row["wrapped_key"] as Data),
                                       sealedDerivedKeys: [UInt8](row["sealed_derived_keys"] as Data))
            }
        }
    }

    public func createWorkspaceSecrets(_ record: WorkspaceSecretsRecord) async throws -> Bool {
        try await writeTransaction { db in
            try db.execute(sql: "INSERT OR IGNORE INTO workspace_secrets (workspace_id, wrapped_key, sealed_derived_keys) VALUES (?, ?, ?)",
                           arguments: [record.workspaceID.rawValue, Data(record.wrappedKey), Data(record.sealedDerivedKeys)])
            return db.changesCount > 0
        }
    }

    public func auditReasonsToReseal(workspace: WorkspaceID, limit: Int) async throws -> [(seq: Int64, sealed: [UInt8])] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT seq, sealed_reason FROM audit_log
                WHERE workspace_id = ? AND substr(sealed_reason, 1, 1) = x'01' AND resealed_reason IS NULL
                ORDER BY seq LIMIT ?
                """, arguments: [workspace.rawValue, limit]).map { row in (row["seq"], [UInt8](row["sealed_reason"] as Data)) }
        }
    }

    public func reseal(_ changes: [SecretReseal]) async throws -> Int {
        guard !changes.isEmpty else { return 0 }
        return try await writeTransaction { db in
            var applied = 0
            for change in changes {
                switch change {
                case .secretsKey(let workspace, let old, let new):
                    try db.execute(sql: "UPDATE workspace_secrets SET wrapped_key = ? WHERE workspace_id = ? AND wrapped_key = ?",
                                   arguments: [Data(new), workspace.rawValue, Data(old)])
                case .eventsSecret(let workspace, let old, let new):
                    try db.execute(sql: "UPDATE workspaces SET events_secret = ? WHERE id = ? AND events_secret = ?",
                                   arguments: [Data(new), workspace.rawValue, Data(old)])
                case .sendKey(let workspace, let keyID, let old, let new):
                    try db.execute(sql: "UPDATE send_keys SET sealed_secret = ? WHERE workspace_id = ? AND key_id = ? AND sealed_secret = ?",
                                   arguments: [Data(new), workspace.rawValue, keyID, Data(old)])
                case .provider(let workspace, let channel, let old, let new):
                    try db.execute(sql: "UPDATE providers SET sealed_settings = ? WHERE workspace_id = ? AND channel = ? AND sealed_settings = ?",
                                   arguments: [Data(new), workspace.rawValue, channel.rawValue, Data(old)])
                case .operatorEmail(let operatorID, let old, let new):
                    try db.execute(sql: "UPDATE operators SET sealed_email = ? WHERE id = ? AND sealed_email = ?",
                                   arguments: [Data(new), operatorID, Data(old)])
                case .auditReason(let workspace, let seq, let copy):
                    try db.execute(sql: "UPDATE audit_log SET resealed_reason = ? WHERE workspace_id = ? AND seq = ? AND resealed_reason IS NULL",
                                   arguments: [Data(copy), workspace.rawValue, seq])
                }
                applied += db.changesCount
            }
            return applied
        }
    }
}
