import DomicileCore
import Foundation
import GRDB

extension SQLiteVaultStore {
    // MARK: Operators and sessions

    public func recordFailedLogin(operatorID: String, maximum: Int, now: Date, lockUntil: Date) async throws {
        // Every expression of an UPDATE's SET reads the row as it was before the statement.
        try await writeTransaction { db in
            try db.execute(sql: """
                UPDATE operators SET
                    locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE locked_until END,
                    failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END
                WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?)
                """, arguments: [maximum, lockUntil.millis, maximum, operatorID, now.millis])
        }
    }

    public func recordSuccessfulLogin(operatorID: String, now: Date) async throws -> Bool {
        try await writeTransaction { db in
            try db.execute(sql: """
                UPDATE operators SET failed_attempts = 0, locked_until = NULL
                WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?)
                """, arguments: [operatorID, now.millis])
            return db.changesCount == 1
        }
    }

    public func saveOperator(_ record: OperatorRecord) async throws {
        try await writeTransaction { db in
            if try String.fetchOne(db, sql: "SELECT id FROM operators WHERE workspace_id = ? AND email_digest = ? AND id <> ?",
                                   arguments: [record.workspaceID.rawValue, Data(record.emailDigest), record.id]) != nil {
                throw StoreError.alreadyExists("an operator with this e-mail address")
            }
            try db.execute(sql: """
                INSERT OR REPLACE INTO operators (id, workspace_id, email_digest, sealed_email, role, view_pii, password_hash,
                                                  failed_attempts, locked_until, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.id, record.workspaceID.rawValue, Data(record.emailDigest), Data(record.sealedEmail),
                                 record.role.rawValue, record.viewPII, record.passwordHash, record.failedAttempts,
                                 record.lockedUntil?.millis, record.createdAt.millis])
        }
    }

    public func operatorRecord(id: String) async throws -> OperatorRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM operators WHERE id = ?", arguments: [id]).flatMap(Self.operatorRecord)
        }
    }

    public func operatorRecord(emailDigest: [UInt8], workspace: WorkspaceID) async throws -> OperatorRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM operators WHERE workspace_id = ? AND email_digest = ?",
                             arguments: [workspace.rawValue, Data(emailDigest)]).flatMap(Self.operatorRecord)
        }
    }

    public func operators(workspace: WorkspaceID) async throws -> [OperatorRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM operators WHERE workspace_id = ? ORDER BY created_at, id",
                             arguments: [workspace.rawValue]).compactMap(Self.operatorRecord)
        }
    }

    public func saveSession(_ session: SessionRecord) async throws {
        try await writeTransaction { db in
            try db.execute(sql: """
                INSERT INTO sessions (token_hash, operator_id, workspace_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [Data(session.tokenHash), session.operatorID, session.workspaceID.rawValue,
                                 session.createdAt.millis, session.expiresAt.millis])
        }
    }

    public func session(tokenHash: [UInt8]) async throws -> SessionRecord? {
        try await quickRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE token_hash = ?", arguments: [Data(tokenHash)]).map { row in
                SessionRecord(tokenHash: [UInt8](row["token_hash"] as Data), operatorID: row["operator_id"],
                              workspaceID: WorkspaceID(trusted: row["workspace_id"]), createdAt: Date(millis: row["created_at"]),
                              expiresAt: Date(millis: row["expires_at"]))
            }
        }
    }

    public func deleteSession(tokenHash: [UInt8]) async throws {
        try await writeTransaction { db in
            try db.execute(sql: "DELETE FROM sessions WHERE token_hash = ?", arguments: [Data(tokenHash)])
        }
    }

    // MARK: Data-subject requests

    public func saveSubjectRequest(_ record: SubjectRequestRecord) async throws {
        try await writeTransaction { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO subject_requests (id, workspace_id, type, status, submitted_at, received_at, completed_at,
                                                         identity_types, customer_ids, actor_type, actor_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.id, record.workspaceID.rawValue, record.type, record.status, record.submittedAt?.millis,
                                 record.receivedAt.millis, record.completedAt?.millis, StoredText.list(record.identityTypes),
                                 StoredText.list(record.customerIDs), record.actorType, record.actorID])
        }
    }

    public func subjectRequest(id: String, workspace: WorkspaceID) async throws -> SubjectRequestRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM subject_requests WHERE id = ? AND workspace_id = ?",
                             arguments: [id, workspace.rawValue]).map { row in
                SubjectRequestRecord(
                    id: row["id"], workspaceID: workspace, type: row["type"], status: row["status"],
                    submittedAt: (row["submitted_at"] as Int64?).map(Date.init(millis:)), receivedAt: Date(millis: row["received_at"]),
                    completedAt: (row["completed_at"] as Int64?).map(Date.init(millis:)),
                    identityTypes: StoredText.list(row["identity_types"]), customerIDs: StoredText.list(row["customer_ids"]),
                    actorType: row["actor_type"], actorID: row["actor_id"])
            }
        }
    }

    // MARK: Audit log

    static func appendAudit(_ drafts: [AuditDraft], key: AuditChainKey, workspace: WorkspaceID, _ db: Database) throws {
        var seq: Int64 = 0
        var previous = AuditEntry.genesis
        do {
            var head = try RawStatement(db, "SELECT seq, hash FROM audit_heads WHERE workspace_id = ?")
            try head.bind(workspace.rawValue)
            if try head.step() {
                seq = head.int64(0)
                previous = head.blob(1)
            }
        }
        for draft in drafts {
            seq += 1
            let entry = AuditEntry.link(draft, workspace: workspace, seq: seq, previous: previous, key: key)
            var insert = try RawStatement(db, """
                INSERT INTO audit_log (workspace_id, seq, at, actor_type, actor_id, action, customer_id, attributes, sealed_reason,
                                       request_id, previous_hash, hash, format)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            try insert.bind(workspace.rawValue, seq, draft.at.millis, draft.actorType, draft.actorID, draft.action.rawValue,
                            draft.customerID, draft.attributes.joined(separator: ","), draft.sealedReason, draft.requestID,
                            previous, entry.hash, Int64(entry.format.rawValue))
            try insert.run()
            previous = entry.hash
        }
        var heads = try RawStatement(db, "INSERT OR REPLACE INTO audit_heads (workspace_id, seq, hash) VALUES (?, ?, ?)")
        try heads.bind(workspace.rawValue, seq, previous)
        try heads.run()
    }

    public func auditEntries(workspace: WorkspaceID, filter: AuditFilter) async throws -> [AuditEntry] {
        var conditions = ["workspace_id = ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [workspace.rawValue]
        if let action = filter.action { conditions.append("action = ?"); arguments.append(action.rawValue) }
        if let customer = filter.customerID { conditions.append("customer_id = ?"); arguments.append(customer) }
        if let actor = filter.actorID { conditions.append("actor_id = ?"); arguments.append(actor) }
        if let since = filter.since { conditions.append("at >= ?"); arguments.append(since.millis) }
        if let until = filter.until { conditions.append("at < ?"); arguments.append(until.millis) }
        if let after = filter.afterSeq { conditions.append("seq > ?"); arguments.append(after) }
        arguments.append(filter.limit)
        let sql = "SELECT * FROM audit_log WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?"
        let statementArguments = StatementArguments(arguments)
        return try await pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: statementArguments).compactMap { row -> AuditEntry? in
                guard let action = AuditAction(rawValue: row["action"]) else { return nil }
                var draft = AuditDraft(at: Date(millis: row["at"]), actor: .system(job: ""), action: action,
                                       customerID: row["customer_id"],
                                       attributes: (row["attributes"] as String).split(separator: ",").map(String.init),
                                       sealedReason: (row["sealed_reason"] as Data?).map { [UInt8]($0) }, requestID: row["request_id"])
                draft.actorType = row["actor_type"]
                draft.actorID = row["actor_id"]
                // An unknown format is checked as unkeyed, which verification accepts only at the start.
                return AuditEntry(workspaceID: workspace, seq: row["seq"], draft: draft,
                                  previousHash: [UInt8](row["previous_hash"] as Data), hash: [UInt8](row["hash"] as Data),
                                  format: AuditChainFormat(rawValue: row["format"]) ?? .unkeyed,
                                  resealedReason: (row["resealed_reason"] as Data?).map { [UInt8]($0) })
            }
        }
    }

    public func auditHead(workspace: WorkspaceID) async throws -> (seq: Int64, hash: [UInt8])? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_heads WHERE workspace_id = ?", arguments: [workspace.rawValue])
                .map { (seq: $0["seq"] as Int64, hash: [UInt8]($0["hash"] as Data)) }
        }
    }

    static func operatorRecord(_ row: Row) -> OperatorRecord? {
        guard let role = Role(rawValue: row["role"]) else { return nil }
        return OperatorRecord(id: row["id"], workspaceID: WorkspaceID(trusted: row["workspace_id"]),
                              emailDigest: [UInt8](row["email_digest"] as Data), sealedEmail: [UInt8](row["sealed_email"] as Data),
                              role: role, viewPII: row["view_pii"], passwordHash: row["password_hash"],
                              failedAttempts: row["failed_attempts"], lockedUntil: (row["locked_until"] as Int64?).map(Date.init(millis:)),
                              createdAt: Date(millis: row["created_at"]))
    }
}
