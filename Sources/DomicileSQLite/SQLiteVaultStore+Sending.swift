import DomicileCore
import Foundation
import GRDB

extension SQLiteVaultStore {
    // MARK: Send keys and providers

    public func saveSendKey(_ key: SendKeyRecord) async throws {
        try await writeTransaction { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO send_keys (workspace_id, key_id, sealed_secret, created_at, expires_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [key.workspaceID.rawValue, key.keyID, Data(key.sealedSecret), key.createdAt.millis,
                                 key.expiresAt?.millis, key.revokedAt?.millis])
        }
    }

    public func sendKey(workspace: WorkspaceID, keyID: String) async throws -> SendKeyRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM send_keys WHERE workspace_id = ? AND key_id = ?",
                             arguments: [workspace.rawValue, keyID]).map(Self.sendKey)
        }
    }

    public func sendKeys(workspace: WorkspaceID) async throws -> [SendKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM send_keys WHERE workspace_id = ? ORDER BY created_at, key_id",
                             arguments: [workspace.rawValue]).map(Self.sendKey)
        }
    }

    static func sendKey(_ row: Row) -> SendKeyRecord {
        SendKeyRecord(workspaceID: WorkspaceID(trusted: row["workspace_id"]), keyID: row["key_id"],
                      sealedSecret: [UInt8](row["sealed_secret"] as Data), createdAt: Date(millis: row["created_at"]),
                      expiresAt: (row["expires_at"] as Int64?).map(Date.init(millis:)),
                      revokedAt: (row["revoked_at"] as Int64?).map(Date.init(millis:)))
    }

    public func saveProvider(_ provider: ProviderRecord) async throws {
        try await writeTransaction { db in
            try db.execute(sql: "INSERT OR REPLACE INTO providers (workspace_id, channel, kind, sealed_settings) VALUES (?, ?, ?, ?)",
                           arguments: [provider.workspaceID.rawValue, provider.channel.rawValue, provider.kind, Data(provider.sealedSettings)])
        }
    }

    public func provider(workspace: WorkspaceID, channel: Channel) async throws -> ProviderRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM providers WHERE workspace_id = ? AND channel = ?",
                             arguments: [workspace.rawValue, channel.rawValue]).map { row in
                ProviderRecord(workspaceID: workspace, channel: channel, kind: row["kind"],
                               sealedSettings: [UInt8](row["sealed_settings"] as Data))
            }
        }
    }

    // MARK: Outbox

    public func enqueue(_ messages: [OutboxMessage], workspace: WorkspaceID) async throws -> [Bool] {
        guard !messages.isEmpty else { return [] }
        return try await groupCommit { db in
            try messages.map { message in
                try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO messages (workspace_id, message_id, customer_id, campaign_id, channel, status, attempts,
                        next_attempt_at, provider_message_id, error_code, segments, encoding, created_at, updated_at, payload, history, route)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: Self.arguments(message)
                        + [StoredText.historyLine(MessageStatusChange(status: message.status, at: message.createdAt)),
                           OutboxRoute(message).stored])
                guard db.changesCount == 1 else { return false }
                try Self.insert(OutboundEvent.status(of: message, MessageStatusChange(status: message.status, at: message.createdAt)), db)
                return true
            }
        }
    }

    static func arguments(_ message: OutboxMessage) -> StatementArguments {
        [message.workspaceID.rawValue, message.messageID, message.customerID.rawValue, message.campaignID, message.channel.rawValue,
         message.status.rawValue, message.attempts, message.nextAttemptAt.millis, message.providerMessageID, message.errorCode,
         message.segments, message.encoding, message.createdAt.millis, message.updatedAt.millis, message.sealedPayload.map { Data($0) }]
    }

    static func message(_ row: Row) -> OutboxMessage? {
        guard let channel = Channel(rawValue: row["channel"]), let status = MessageStatus(rawValue: row["status"]) else { return nil }
        return OutboxMessage(
            workspaceID: WorkspaceID(trusted: row["workspace_id"]), messageID: row["message_id"], customerID: CustomerID(trusted: row["customer_id"]),
            campaignID: row["campaign_id"], channel: channel, status: status, attempts: row["attempts"],
            nextAttemptAt: Date(millis: row["next_attempt_at"]), providerMessageID: row["provider_message_id"], errorCode: row["error_code"],
            segments: row["segments"], encoding: row["encoding"], createdAt: Date(millis: row["created_at"]),
            updatedAt: Date(millis: row["updated_at"]), sealedPayload: (row["payload"] as Data?).map { [UInt8]($0) },
            viaRelay: OutboxRoute.isRelay(stored: row["route"]))
    }

    public func message(_ id: String, workspace: WorkspaceID) async throws -> OutboxMessage? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM messages WHERE workspace_id = ? AND message_id = ?",
                             arguments: [workspace.rawValue, id]).flatMap(Self.message)
        }
    }

    public func messages(_ ids: [String], workspace: WorkspaceID) async throws -> [String: OutboxMessage] {
        guard !ids.isEmpty else { return [:] }
        return try await quickRead { db in
            var found: [String: OutboxMessage] = [:]
            for chunk in stride(from: 0, to: ids.count, by: 500).map({ ids[$0..<min($0 + 500, ids.count)] }) {
                let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: "SELECT * FROM messages WHERE workspace_id = ? AND message_id IN (\(placeholders))",
                                            arguments: StatementArguments([workspace.rawValue] + Array(chunk))) {
                    if let message = Self.message(row) { found[message.messageID] = message }
                }
            }
            return found
        }
    }

    public func message(providerMessageID: String, workspace: WorkspaceID) async throws -> OutboxMessage? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM messages WHERE workspace_id = ? AND provider_message_id = ?",
                             arguments: [workspace.rawValue, providerMessageID]).flatMap(Self.message)
        }
    }

    public func messageHistory(_ id: String, workspace: WorkspaceID) async throws -> [MessageStatusChange] {
        try await pool.read { db in
            let text = try String.fetchOne(db, sql: "SELECT history FROM messages WHERE workspace_id = ? AND message_id = ?",
                                           arguments: [workspace.rawValue, id])
            return text.map(StoredText.history) ?? []
        }
    }

    public func claimDueMessages(node: String, route: OutboxRoute, now: Date, leaseUntil: Date, limit: Int) async throws -> [OutboxMessage] {
        // One status at a time: each is then a range of `messages_due` already in
        // `next_attempt_at` order. `status IN ('queued', 'sending')` made SQLite collect and sort
        // every due message for each claim, which grew with the backlog. Leases that ran out
        // (a delivery that never settled) go first.
        try await groupCommit { db in
            var claimed: [OutboxMessage] = []
            for status in ["sending", "queued"] where claimed.count < limit {
                let rows = try Row.fetchAll(db.cachedStatement(sql: """
                    UPDATE messages SET status = 'sending', next_attempt_at = ?, claimed_by = ?
                    WHERE rowid IN (SELECT rowid FROM messages WHERE route = ? AND status = ? AND next_attempt_at <= ?
                                    ORDER BY next_attempt_at LIMIT ?)
                    RETURNING *
                    """), arguments: [leaseUntil.millis, node, route.stored, status, now.millis, limit - claimed.count])
                claimed += rows.compactMap(Self.message)
            }
            return claimed
        }
    }

    @discardableResult
    public func record(_ message: OutboxMessage, change: MessageStatusChange?, event: OutboundEvent?,
                       onlyIf expected: MessageStatus?) async throws -> Bool {
        try await groupCommit { db in
            try db.cachedStatement(sql: """
                UPDATE messages SET status = ?, attempts = ?, next_attempt_at = ?, provider_message_id = ?, error_code = ?,
                    updated_at = ?, payload = ?, history = history || ?
                WHERE workspace_id = ? AND message_id = ? AND (? IS NULL OR status = ?)
                """).execute(arguments: [message.status.rawValue, message.attempts, message.nextAttemptAt.millis, message.providerMessageID,
                                         message.errorCode, message.updatedAt.millis, message.sealedPayload.map { Data($0) },
                                         change.map(StoredText.historyLine) ?? "",
                                         message.workspaceID.rawValue, message.messageID, expected?.rawValue, expected?.rawValue])
            guard db.changesCount == 1 else { return false }
            if let event { try Self.insert(event, db) }
            return true
        }
    }

    public func releaseClaims(node: String, now: Date) async throws -> Int {
        try await groupCommit { db in
            try db.execute(sql: """
                UPDATE messages SET status = 'queued', next_attempt_at = ?1, claimed_by = NULL
                WHERE status = 'sending' AND (claimed_by = ?2 OR claimed_by IS NULL OR next_attempt_at <= ?1)
                """, arguments: [now.millis, node])
            return db.changesCount
        }
    }

    public func renewClaims(node: String, now: Date, until: Date) async throws -> Int {
        try await groupCommit { db in
            try db.execute(sql: "UPDATE messages SET next_attempt_at = ? WHERE status = 'sending' AND next_attempt_at > ? AND claimed_by = ?",
                           arguments: [until.millis, now.millis, node])
            return db.changesCount
        }
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        try await pool.read { db in
            let depth = try Int.fetchOne(db, sql: "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')") ?? 0
            let oldest = try Int64.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM messages WHERE status = 'queued'")
            var pending = 0
            for workspace in try String.fetchAll(db, sql: "SELECT id FROM workspaces") {
                pending += try Int.fetchOne(db, sql: "SELECT count(*) FROM outbound_events WHERE workspace_id = ? AND delivered_at IS NULL",
                                            arguments: [workspace]) ?? 0
            }
            return OutboxStatistics(depth: depth, oldestDue: oldest.map(Date.init(millis:)), pendingEvents: pending)
        }
    }

    /// Cancels a customer's messages not yet handed to a provider and deletes their payloads,
    /// inside the caller's transaction (see `CommitBatch.cancelMessages`).
    static func cancelPendingMessages(_ cancellation: MessageCancellation, workspace: WorkspaceID, _ db: Database) throws {
        let now = Date()
        let pending = try Row.fetchAll(db, sql: """
            SELECT * FROM messages WHERE workspace_id = ? AND customer_id = ? AND status IN ('queued', 'sending')
            """, arguments: [workspace.rawValue, cancellation.customerID.rawValue]).compactMap(Self.message)
        for var message in pending {
            message.status = .cancelled
            message.sealedPayload = nil
            message.updatedAt = now
            message.errorCode = cancellation.reason.rawValue
            let change = MessageStatusChange(status: .cancelled, at: now, errorCode: cancellation.reason.rawValue)
            try db.execute(sql: """
                UPDATE messages SET status = 'cancelled', payload = NULL, error_code = ?, updated_at = ?, history = history || ?
                WHERE workspace_id = ? AND message_id = ?
                """, arguments: [change.errorCode, now.millis, StoredText.historyLine(change), workspace.rawValue, message.messageID])
            // Payloads of final messages are already gone; these were the last plaintext-bearing copies.
            try Self.insert(OutboundEvent.status(of: message, change), db)
        }
    }
}
