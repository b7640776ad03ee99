import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    // MARK: Operators and sessions

    public func saveOperator(_ record: OperatorRecord) async throws {
        do {
            _ = try await transaction { [logger] connection in
                try await connection.rows("""
                    INSERT INTO operators (id, workspace_id, email_digest, sealed_email, role, view_pii, password_hash,
                                           failed_attempts, locked_until, created_at)
                    VALUES (\(record.id), \(record.workspaceID.rawValue), \(record.emailDigest.bytea), \(record.sealedEmail.bytea),
                            \(record.role.rawValue), \(record.viewPII), \(record.passwordHash), \(Int64(record.failedAttempts)),
                            \(record.lockedUntil?.millis), \(record.createdAt.millis))
                    ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, email_digest = excluded.email_digest,
                        sealed_email = excluded.sealed_email, role = excluded.role, view_pii = excluded.view_pii,
                        password_hash = excluded.password_hash, failed_attempts = excluded.failed_attempts,
                        locked_until = excluded.locked_until, created_at = excluded.created_at
                    """, logger).count
            }
        } catch {
            // The unique (workspace, e-mail digest) constraint: another operator has this address.
            if Self.sqlState(error) == "23505" { throw StoreError.alreadyExists("an operator with this e-mail address") }
            throw error
        }
    }

    public func operatorRecord(id: String) async throws -> OperatorRecord? {
        try await rows("SELECT * FROM operators WHERE id = \(id)").first.flatMap(Self.operatorRecord)
    }

    public func operatorRecord(emailDigest: [UInt8], workspace: WorkspaceID) async throws -> OperatorRecord? {
        try await rows("SELECT * FROM operators WHERE workspace_id = \(workspace.rawValue) AND email_digest = \(emailDigest.bytea)")
            .first.flatMap(Self.operatorRecord)
    }

    public func operators(workspace: WorkspaceID) async throws -> [OperatorRecord] {
        try await rows("SELECT * FROM operators WHERE workspace_id = \(workspace.rawValue) ORDER BY created_at, id")
            .compactMap(Self.operatorRecord)
    }

    public func recordFailedLogin(operatorID: String, maximum: Int, now: Date, lockUntil: Date) async throws {
        // Every expression of an UPDATE's SET reads the row as it was before the statement, and
        // the row is locked while it runs: concurrent failures each count.
        _ = try await transaction { [logger] connection in
            try await connection.rows("""
                UPDATE operators SET
                    locked_until = CASE WHEN failed_attempts + 1 >= \(maximum) THEN \(lockUntil.millis) ELSE locked_until END,
                    failed_attempts = CASE WHEN failed_attempts + 1 >= \(maximum) THEN 0 ELSE failed_attempts + 1 END
                WHERE id = \(operatorID) AND (locked_until IS NULL OR locked_until <= \(now.millis))
                """, logger).count
        }
    }

    public func recordSuccessfulLogin(operatorID: String, now: Date) async throws -> Bool {
        try await transaction { [logger] connection in
            try await !connection.rows("""
                UPDATE operators SET failed_attempts = 0, locked_until = NULL
                WHERE id = \(operatorID) AND (locked_until IS NULL OR locked_until <= \(now.millis))
                RETURNING id
                """, logger).isEmpty
        }
    }

    static func operatorRecord(_ row: PostgresRandomAccessRow) throws -> OperatorRecord? {
        guard let role = Role(rawValue: try row.text("role")) else { return nil }
        return OperatorRecord(id: try row.text("id"), workspaceID: WorkspaceID(trusted: try row.text("workspace_id")),
                              emailDigest: try row.bytes("email_digest"), sealedEmail: try row.bytes("sealed_email"), role: role,
                              viewPII: try row.bool("view_pii"), passwordHash: try row.text("password_hash"),
                              failedAttempts: Int(try row.int("failed_attempts")), lockedUntil: try row.optionalDate("locked_until"),
                              createdAt: try row.date("created_at"))
    }

    public func saveSession(_ session: SessionRecord) async throws {
        _ = try await transaction { [logger] connection in
            try await connection.rows("""
                INSERT INTO sessions (token_hash, operator_id, workspace_id, created_at, expires_at)
                VALUES (\(session.tokenHash.bytea), \(session.operatorID), \(session.workspaceID.rawValue), \(session.createdAt.millis),
                        \(session.expiresAt.millis))
                """, logger).count
        }
    }

    public func session(tokenHash: [UInt8]) async throws -> SessionRecord? {
        try await rows("SELECT * FROM sessions WHERE token_hash = \(tokenHash.bytea)").first.map { row in
            SessionRecord(tokenHash: try row.bytes("token_hash"), operatorID: try row.text("operator_id"),
                          workspaceID: WorkspaceID(trusted: try row.text("workspace_id")), createdAt: try row.date("created_at"),
                          expiresAt: try row.date("expires_at"))
        }
    }

    public func deleteSession(tokenHash: [UInt8]) async throws {
        _ = try await transaction { [logger] connection in
            try await connection.rows("DELETE FROM sessions WHERE token_hash = \(tokenHash.bytea)", logger).count
        }
    }

    // MARK: Data-subject requests

    public func saveSubjectRequest(_ record: SubjectRequestRecord) async throws {
        _ = try await transaction { [logger] connection in
            try await connection.rows("""
                INSERT INTO subject_requests (id, workspace_id, type, status, submitted_at, received_at, completed_at,
                                              identity_types, customer_ids, actor_type, actor_id)
                VALUES (\(record.id), \(record.workspaceID.rawValue), \(record.type), \(record.status), \(record.submittedAt?.millis),
                        \(record.receivedAt.millis), \(record.completedAt?.millis), \(StoredText.list(record.identityTypes)),
                        \(StoredText.list(record.customerIDs)), \(record.actorType), \(record.actorID))
                ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id, type = excluded.type, status = excluded.status,
                    submitted_at = excluded.submitted_at, received_at = excluded.received_at, completed_at = excluded.completed_at,
                    identity_types = excluded.identity_types, customer_ids = excluded.customer_ids, actor_type = excluded.actor_type,
                    actor_id = excluded.actor_id
                """, logger).count
        }
    }

    public func subjectRequest(id: String, workspace: WorkspaceID) async throws -> SubjectRequestRecord? {
        try await rows("SELECT * FROM subject_requests WHERE id = \(id) AND workspace_id = \(workspace.rawValue)").first.map { row in
            SubjectRequestRecord(
                id: try row.text("id"), workspaceID: workspace, type: try row.text("type"), status: try row.text("status"),
                submittedAt: try row.optionalDate("submitted_at"), receivedAt: try row.date("received_at"),
                completedAt: try row.optionalDate("completed_at"), identityTypes: StoredText.list(try row.text("identity_types")),
                customerIDs: StoredText.list(try row.text("customer_ids")), actorType: try row.text("actor_type"),
                actorID: try row.text("actor_id"))
        }
    }

    // MARK: Audit log

    /// Appends entries after the workspace's head, which is locked for the rest of the transaction
    /// so that two nodes never link two entries to the same predecessor.
    static func appendAudit(_ drafts: [AuditDraft], key: AuditChainKey, workspace: WorkspaceID, _ connection: PostgresConnection,
                            _ logger: Logger) async throws {
        _ = try await connection.rows("""
            INSERT INTO audit_heads (workspace_id, seq, hash) VALUES (\(workspace.rawValue), 0, \(AuditEntry.genesis.bytea))
            ON CONFLICT (workspace_id) DO NOTHING
            """, logger)
        let head = try await connection.rows("SELECT seq, hash FROM audit_heads WHERE workspace_id = \(workspace.rawValue) FOR UPDATE",
                                             logger)
        guard let head = head.first else { throw StoreError.corrupt("the audit chain's head of \(workspace)") }
        var seq = try head.int("seq")
        var previous = try head.bytes("hash")
        // Linked here, written in one statement: a read's audit entries come in batches of
        // hundreds, and a statement per entry was a round trip each. Absent values travel as empty
        // (no customer id, request id or sealed reason is ever empty) and are stored as NULL.
        var seqs: [Int64] = [], times: [Int64] = [], actorTypes: [String] = [], actorIDs: [String] = [], actions: [String] = []
        var customers: [String] = [], attributes: [String] = [], reasons: [ByteBuffer] = [], requests: [String] = []
        var previousHashes: [ByteBuffer] = [], hashes: [ByteBuffer] = [], formats: [Int64] = []
        for draft in drafts {
            seq += 1
            let entry = AuditEntry.link(draft, workspace: workspace, seq: seq, previous: previous, key: key)
            seqs.append(seq)
            times.append(draft.at.millis)
            actorTypes.append(draft.actorType)
            actorIDs.append(draft.actorID)
            actions.append(draft.action.rawValue)
            customers.append(draft.customerID ?? "")
            attributes.append(draft.attributes.joined(separator: ","))
            reasons.append((draft.sealedReason ?? []).bytea)
            requests.append(draft.requestID ?? "")
            previousHashes.append(previous.bytea)
            hashes.append(entry.hash.bytea)
            formats.append(Int64(entry.format.rawValue))
            previous = entry.hash
        }
        _ = try await connection.rows("""
            INSERT INTO audit_log (workspace_id, seq, at, actor_type, actor_id, action, customer_id, attributes, sealed_reason,
                                   request_id, previous_hash, hash, format)
            SELECT \(workspace.rawValue), e.seq, e.at, e.actor_type, e.actor_id, e.action, NULLIF(e.customer_id, ''), e.attributes,
                   NULLIF(e.sealed_reason, ''::BYTEA), NULLIF(e.request_id, ''), e.previous_hash, e.hash, e.format
            FROM unnest(\(seqs)::BIGINT[], \(times)::BIGINT[], \(actorTypes)::TEXT[], \(actorIDs)::TEXT[], \(actions)::TEXT[],
                        \(customers)::TEXT[], \(attributes)::TEXT[], \(reasons)::BYTEA[], \(requests)::TEXT[],
                        \(previousHashes)::BYTEA[], \(hashes)::BYTEA[], \(formats)::BIGINT[])
                AS e (seq, at, actor_type, actor_id, action, customer_id, attributes, sealed_reason, request_id, previous_hash, hash,
                      format)
            """, logger)
        _ = try await connection.rows("""
            UPDATE audit_heads SET seq = \(seq), hash = \(previous.bytea) WHERE workspace_id = \(workspace.rawValue)
            """, logger)
    }

    public func auditEntries(workspace: WorkspaceID, filter: AuditFilter) async throws -> [AuditEntry] {
        var conditions = ["workspace_id = $1"]
        var binds = PostgresBindings()
        binds.append(workspace.rawValue)
        func add(_ condition: String, _ value: some PostgresDynamicTypeEncodable) {
            binds.append(value)
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(binds.count)"))
        }
        if let action = filter.action { add("action = ?", action.rawValue) }
        if let customer = filter.customerID { add("customer_id = ?", customer) }
        if let actor = filter.actorID { add("actor_id = ?", actor) }
        if let since = filter.since { add("at >= ?", since.millis) }
        if let until = filter.until { add("at < ?", until.millis) }
        if let after = filter.afterSeq { add("seq > ?", after) }
        binds.append(filter.limit)
        let query = PostgresQuery(
            unsafeSQL: "SELECT * FROM audit_log WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT $\(binds.count)",
            binds: binds)
        return try await rows(query).compactMap { row -> AuditEntry? in
            guard let action = AuditAction(rawValue: try row.text("action")) else { return nil }
            var draft = AuditDraft(at: try row.date("at"), actor: .system(job: ""), action: action, customerID: try row.optionalText("customer_id"),
                                   attributes: try row.text("attributes").split(separator: ",").map(String.init),
                                   sealedReason: try row.optionalBytes("sealed_reason"), requestID: try row.optionalText("request_id"))
            draft.actorType = try row.text("actor_type")
            draft.actorID = try row.text("actor_id")
            return AuditEntry(workspaceID: workspace, seq: try row.int("seq"), draft: draft, previousHash: try row.bytes("previous_hash"),
                              hash: try row.bytes("hash"),
                              format: AuditChainFormat(rawValue: Int(try row.int("format"))) ?? .unkeyed,
                              resealedReason: try row.optionalBytes("resealed_reason"))
        }
    }

    public func auditHead(workspace: WorkspaceID) async throws -> (seq: Int64, hash: [UInt8])? {
        // Seq 0 is the row a first append creates before it links anything: no entry yet.
        try await rows("SELECT seq, hash FROM audit_heads WHERE workspace_id = \(workspace.rawValue) AND seq > 0").first
            .map { (seq: try $0.int("seq"), hash: try $0.bytes("hash")) }
    }
}
