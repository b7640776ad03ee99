import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    // MARK: Outbox

    public func enqueue(_ messages: [OutboxMessage], workspace: WorkspaceID) async throws -> [Bool] {
        guard !messages.isEmpty else { return [] }
        return try await transaction { [logger] connection in
            var added: [Bool] = []
            added.reserveCapacity(messages.count)
            for message in messages {
                let queued = MessageStatusChange(status: message.status, at: message.createdAt)
                let inserted = try await connection.rows("""
                    INSERT INTO messages (workspace_id, message_id, customer_id, campaign_id, channel, status, attempts, next_attempt_at,
                        provider_message_id, error_code, segments, encoding, created_at, updated_at, payload, history, route)
                    VALUES (\(message.workspaceID.rawValue), \(message.messageID), \(message.customerID.rawValue), \(message.campaignID),
                            \(message.channel.rawValue), \(message.status.rawValue), \(Int64(message.attempts)), \(message.nextAttemptAt.millis),
                            \(message.providerMessageID), \(message.errorCode), \(message.segments.map(Int64.init)), \(message.encoding),
                            \(message.createdAt.millis), \(message.updatedAt.millis), \(message.sealedPayload?.bytea),
                            \(StoredText.historyLine(queued)), \(OutboxRoute(message).stored))
                    ON CONFLICT (workspace_id, message_id) DO NOTHING
                    RETURNING message_id
                    """, logger)
                added.append(!inserted.isEmpty)
                if !inserted.isEmpty { try await Self.insert(OutboundEvent.status(of: message, queued), connection, logger) }
            }
            return added
        }
    }

    public func message(_ id: String, workspace: WorkspaceID) async throws -> OutboxMessage? {
        try await rows("SELECT * FROM messages WHERE workspace_id = \(workspace.rawValue) AND message_id = \(id)").first.flatMap(Self.message)
    }

    public func messages(_ ids: [String], workspace: WorkspaceID) async throws -> [String: OutboxMessage] {
        guard !ids.isEmpty else { return [:] }
        var found: [String: OutboxMessage] = [:]
        for row in try await rows("SELECT * FROM messages WHERE workspace_id = \(workspace.rawValue) AND message_id = ANY(\(ids))") {
            if let message = try Self.message(row) { found[message.messageID] = message }
        }
        return found
    }

    public func message(providerMessageID: String, workspace: WorkspaceID) async throws -> OutboxMessage? {
        try await rows("""
            SELECT * FROM messages WHERE workspace_id = \(workspace.rawValue) AND provider_message_id = \(providerMessageID) LIMIT 1
            """).first.flatMap(Self.message)
    }

    public func messageHistory(_ id: String, workspace: WorkspaceID) async throws -> [MessageStatusChange] {
        try await rows("SELECT history FROM messages WHERE workspace_id = \(workspace.rawValue) AND message_id = \(id)")
            .first.map { StoredText.history(try $0.text("history")) } ?? []
    }

    /// Claims with `FOR UPDATE SKIP LOCKED`: nodes claiming at once take different messages, and
    /// none waits for another's claim. Leases that ran out (a sender that died) go first.
    public func claimDueMessages(node: String, route: OutboxRoute, now: Date, leaseUntil: Date, limit: Int) async throws -> [OutboxMessage] {
        try await transaction { [logger] connection in
            var claimed: [OutboxMessage] = []
            for status in ["sending", "queued"] where claimed.count < limit {
                let rows = try await connection.rows("""
                    UPDATE messages SET status = 'sending', next_attempt_at = \(leaseUntil.millis), claimed_by = \(node)
                    WHERE (workspace_id, message_id) IN (
                        SELECT workspace_id, message_id FROM messages
                        WHERE route = \(route.stored) AND status = \(status) AND next_attempt_at <= \(now.millis)
                        ORDER BY next_attempt_at LIMIT \(limit - claimed.count)
                        FOR UPDATE SKIP LOCKED)
                    RETURNING *
                    """, logger)
                claimed += try rows.compactMap(Self.message)
            }
            return claimed.sorted { $0.nextAttemptAt < $1.nextAttemptAt }
        }
    }

    @discardableResult
    public func record(_ message: OutboxMessage, change: MessageStatusChange?, event: OutboundEvent?,
                       onlyIf expected: MessageStatus?) async throws -> Bool {
        try await transaction { [logger] connection in
            let updated = try await connection.rows("""
                UPDATE messages SET status = \(message.status.rawValue), attempts = \(Int64(message.attempts)),
                    next_attempt_at = \(message.nextAttemptAt.millis), provider_message_id = \(message.providerMessageID),
                    error_code = \(message.errorCode), updated_at = \(message.updatedAt.millis), payload = \(message.sealedPayload?.bytea),
                    history = history || \(change.map(StoredText.historyLine) ?? "")
                WHERE workspace_id = \(message.workspaceID.rawValue) AND message_id = \(message.messageID)
                    AND (\(expected?.rawValue)::TEXT IS NULL OR status = \(expected?.rawValue))
                RETURNING message_id
                """, logger)
            guard !updated.isEmpty else { return false }
            if let event { try await Self.insert(event, connection, logger) }
            return true
        }
    }

    public func releaseClaims(node: String, now: Date) async throws -> Int {
        try await transaction { [logger] connection in
            try await connection.rows("""
                UPDATE messages SET status = 'queued', next_attempt_at = \(now.millis), claimed_by = NULL
                WHERE status = 'sending' AND (claimed_by = \(node) OR claimed_by IS NULL OR next_attempt_at <= \(now.millis))
                RETURNING message_id
                """, logger).count
        }
    }

    public func renewClaims(node: String, now: Date, until: Date) async throws -> Int {
        try await rows("""
            UPDATE messages SET next_attempt_at = \(until.millis)
            WHERE status = 'sending' AND next_attempt_at > \(now.millis) AND claimed_by = \(node)
            RETURNING message_id
            """).count
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        let messages = try await rows("""
            SELECT count(*) AS depth, min(next_attempt_at) FILTER (WHERE status = 'queued') AS oldest
            FROM messages WHERE status IN ('queued', 'sending')
            """)
        let events = try await rows("SELECT count(*) AS pending FROM outbound_events WHERE delivered_at IS NULL")
        return OutboxStatistics(depth: Int(try messages.first?.int("depth") ?? 0),
                                oldestDue: try messages.first?.optionalInt("oldest").map(Date.init(millis:)),
                                pendingEvents: Int(try events.first?.int("pending") ?? 0))
    }

    /// Cancels a customer's messages not yet handed to a provider and deletes their payloads,
    /// inside the caller's transaction (see `CommitBatch.cancelMessages`).
    static func cancelPendingMessages(_ cancellation: MessageCancellation, workspace: WorkspaceID, _ connection: PostgresConnection,
                                      _ logger: Logger) async throws {
        let now = Date()
        let change = MessageStatusChange(status: .cancelled, at: now, errorCode: cancellation.reason.rawValue)
        let cancelled = try await connection.rows("""
            UPDATE messages SET status = 'cancelled', payload = NULL, error_code = \(change.errorCode), updated_at = \(now.millis),
                history = history || \(StoredText.historyLine(change))
            WHERE workspace_id = \(workspace.rawValue) AND customer_id = \(cancellation.customerID.rawValue)
                AND status IN ('queued', 'sending')
            RETURNING *
            """, logger)
        for row in cancelled {
            if let message = try message(row) { try await insert(OutboundEvent.status(of: message, change), connection, logger) }
        }
    }

    static func message(_ row: PostgresRandomAccessRow) throws -> OutboxMessage? {
        guard let channel = DomicileCore.Channel(rawValue: try row.text("channel")), let status = MessageStatus(rawValue: try row.text("status"))
        else { return nil }
        return OutboxMessage(
            workspaceID: WorkspaceID(trusted: try row.text("workspace_id")), messageID: try row.text("message_id"),
            customerID: CustomerID(trusted: try row.text("customer_id")), campaignID: try row.optionalText("campaign_id"),
            channel: channel, status: status, attempts: Int(try row.int("attempts")), nextAttemptAt: try row.date("next_attempt_at"),
            providerMessageID: try row.optionalText("provider_message_id"), errorCode: try row.optionalText("error_code"),
            segments: try row.optionalInt("segments").map(Int.init), encoding: try row.optionalText("encoding"),
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"), sealedPayload: try row.optionalBytes("payload"),
            viaRelay: OutboxRoute.isRelay(stored: try row.text("route")))
    }

    // MARK: Events

    static func insert(_ event: OutboundEvent, _ connection: PostgresConnection, _ logger: Logger) async throws {
        _ = try await connection.rows("""
            INSERT INTO outbound_events (id, workspace_id, type, customer_id, at, message_id, campaign_id, channel, status, error_code)
            VALUES (\(event.id), \(event.workspaceID.rawValue), \(event.type), \(event.customerID), \(event.at.millis), \(event.messageID),
                    \(event.campaignID), \(event.channel?.rawValue), \(event.status?.rawValue), \(event.errorCode))
            """, logger)
    }

    public func pendingEvents(workspace: WorkspaceID, limit: Int) async throws -> [OutboundEvent] {
        try await rows("""
            SELECT * FROM outbound_events WHERE workspace_id = \(workspace.rawValue) AND delivered_at IS NULL ORDER BY id LIMIT \(limit)
            """).map { row in
            OutboundEvent(id: try row.text("id"), workspaceID: workspace, type: try row.text("type"), customerID: try row.text("customer_id"),
                          at: try row.date("at"), messageID: try row.optionalText("message_id"),
                          campaignID: try row.optionalText("campaign_id"), channel: try row.optionalText("channel").flatMap(DomicileCore.Channel.init(rawValue:)),
                          status: try row.optionalText("status").flatMap(MessageStatus.init(rawValue:)), errorCode: try row.optionalText("error_code"))
        }
    }

    public func markEventsDelivered(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await transaction { [logger] connection in
            try await connection.rows("UPDATE outbound_events SET delivered_at = \(Date().millis) WHERE id = ANY(\(ids))", logger).count
        }
    }
}
