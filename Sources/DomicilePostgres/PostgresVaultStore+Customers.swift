import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    // MARK: Customers

    public func customer(_ id: CustomerID, workspace: WorkspaceID) async throws -> StoredCustomer? {
        try await rows(Statements.SelectCustomer(workspace, id)).first.map { try Self.customer($0, workspace: workspace) }
    }

    public func customers(_ ids: [CustomerID], workspace: WorkspaceID) async throws -> [CustomerID: StoredCustomer] {
        guard !ids.isEmpty else { return [:] }
        // One customer (a single upsert's look before it seals): the prepared statement.
        if ids.count == 1 { return try await customer(ids[0], workspace: workspace).map { [ids[0]: $0] } ?? [:] }
        var found: [CustomerID: StoredCustomer] = [:]
        for row in try await rows("""
            SELECT \(unescaped: Statements.customerColumns) FROM customers
            WHERE workspace_id = \(workspace.rawValue) AND customer_id = ANY(\(ids.map(\.rawValue)))
            """) {
            let customer = try Self.customer(row, workspace: workspace)
            found[customer.customerID] = customer
        }
        return found
    }

    public func wrappedDataKey(of id: CustomerID, workspace: WorkspaceID) async throws -> [UInt8]? {
        try await rows("SELECT data_key FROM customers WHERE workspace_id = \(workspace.rawValue) AND customer_id = \(id.rawValue)")
            .first.map { try $0.bytes("data_key") }
    }

    public func customerIDs(attribute: AttributeName, digest: [UInt8], workspace: WorkspaceID) async throws -> [CustomerID] {
        try await rows(Statements.LookupDigest(workspace, attribute, digest)).map { CustomerID(trusted: try $0.text("customer_id")) }
    }

    public func customerIDs(workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws -> [CustomerID] {
        try await rows("""
            SELECT customer_id FROM customers WHERE workspace_id = \(workspace.rawValue) AND customer_id > \(after?.rawValue ?? "")
            ORDER BY customer_id LIMIT \(limit)
            """).map { CustomerID(trusted: try $0.text("customer_id")) }
    }

    public func customerIDs(workspace: WorkspaceID, updatedBefore before: Date, limit: Int) async throws -> [CustomerID] {
        try await rows("""
            SELECT customer_id FROM customers WHERE workspace_id = \(workspace.rawValue) AND updated_at < \(before.millis)
            ORDER BY updated_at LIMIT \(limit)
            """).map { CustomerID(trusted: try $0.text("customer_id")) }
    }

    public func isTombstoned(_ digest: [UInt8], workspace: WorkspaceID) async throws -> Bool {
        try await !rows("SELECT 1 FROM tombstones WHERE workspace_id = \(workspace.rawValue) AND digest = \(digest.bytea)").isEmpty
    }

    static func customer(_ row: PostgresRandomAccessRow, workspace: WorkspaceID) throws -> StoredCustomer {
        StoredCustomer(workspaceID: workspace, customerID: CustomerID(trusted: try row.text("customer_id")),
                       dataKey: try row.bytes("data_key"), attributes: try SealedMapCodec.decode(try row.bytes("attributes")),
                       blindIndex: try SealedMapCodec.decode(try row.bytes("blind_index")), restricted: try row.bool("restricted"),
                       createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"), revision: try row.int("revision"))
    }

    // MARK: The commit

    public func commit(_ batch: CommitBatch) async throws -> [MutationOutcome] {
        if let created = try await createAlone(batch) { return created }
        let logger = self.logger
        return try await transaction { connection in try await Self.apply(batch, connection, logger) }
    }

    /// A batch that only creates one customer (a single upsert of a new customer, the commonest
    /// write) is one statement, committed on its own: no BEGIN and COMMIT round trips. Nil when
    /// the batch is anything else, or the customer turned out to exist (the transaction then
    /// decides against the current row).
    func createAlone(_ batch: CommitBatch) async throws -> [MutationOutcome]? {
        guard batch.mutations.count == 1, let prepared = batch.mutations[0].prepared, prepared.assumed == nil,
              batch.schemaAdditions.isEmpty, batch.events.isEmpty, batch.cancelMessages.isEmpty, batch.audit?.drafts.isEmpty ?? true
        else { return nil }
        let inserted = try await rows(Statements.InsertNewCustomers(batch.workspaceID, [prepared.row]))
        return inserted.isEmpty ? nil : [.created(prepared.row)]
    }

    /// One batch in one transaction. A customer's row is locked (`FOR UPDATE`) before a decision
    /// is taken on it, so concurrent batches on one customer apply one after the other; the audit
    /// chain's head is locked last, to hold it for as short a time as possible.
    static func apply(_ batch: CommitBatch, _ connection: PostgresConnection, _ logger: Logger) async throws -> [MutationOutcome] {
        let workspace = batch.workspaceID
        for definition in batch.schemaAdditions {
            try await save(definition, workspace: workspace, replace: false, connection, logger)
        }
        var outcomes = [MutationOutcome?](repeating: nil, count: batch.mutations.count)
        try await insertNewCustomersAtOnce(batch, into: &outcomes, connection, logger)
        for (position, mutation) in batch.mutations.enumerated() where outcomes[position] == nil {
            if let prepared = mutation.prepared, try await writeIfUnchanged(prepared, connection, logger) {
                outcomes[position] = prepared.assumed == nil ? .created(prepared.row) : .updated(prepared.row)
                continue
            }
            let current = try await connection.rows(Statements.SelectCustomerForUpdate(workspace, mutation.customerID), logger)
                .first.map { try customer($0, workspace: workspace) }
            switch try mutation.resolve(current) {
            case .skip:
                outcomes[position] = .skipped
            case .refuse(let failure):
                outcomes[position] = .refused(failure)
            case .write(let customer):
                try await upsert(customer, connection, logger)
                try await writeIndex(of: customer, replacing: current, connection, logger)
                outcomes[position] = current == nil ? .created(customer) : .updated(customer)
            case .erase(let tombstone):
                if let current {
                    try await deleteIndex(of: current, connection, logger)
                    _ = try await connection.rows("""
                        DELETE FROM customers WHERE workspace_id = \(workspace.rawValue) AND customer_id = \(current.customerID.rawValue)
                        """, logger)
                }
                _ = try await connection.rows("""
                    INSERT INTO tombstones (workspace_id, digest, erased_at) VALUES (\(workspace.rawValue), \(tombstone.bytea), \(Date().millis))
                    ON CONFLICT (workspace_id, digest) DO UPDATE SET erased_at = excluded.erased_at
                    """, logger)
                outcomes[position] = current == nil ? .skipped : .erased
            }
        }
        for cancellation in batch.cancelMessages {
            try await cancelPendingMessages(cancellation, workspace: workspace, connection, logger)
        }
        for event in batch.events { try await insert(event, connection, logger) }
        if let audit = batch.audit, !audit.drafts.isEmpty {
            try await appendAudit(audit.drafts, key: audit.key, workspace: workspace, connection, logger)
        }
        return outcomes.map { $0! }
    }

    /// A bulk import's new customers in one statement (their rows and their index entries)
    /// instead of two per customer: the round trips were most of a bulk request's time. Only rows
    /// prepared as new, of customers named once in the batch, go this way, so that the order of
    /// the batch's mutations on any one customer is kept; a row that turns out to exist already
    /// goes through the per-mutation path after.
    static func insertNewCustomersAtOnce(_ batch: CommitBatch, into outcomes: inout [MutationOutcome?],
                                         _ connection: PostgresConnection, _ logger: Logger) async throws {
        var named: [CustomerID: Int] = [:]
        for mutation in batch.mutations { named[mutation.customerID, default: 0] += 1 }
        let candidates = batch.mutations.enumerated().compactMap { position, mutation -> (Int, StoredCustomer)? in
            guard let prepared = mutation.prepared, prepared.assumed == nil, named[mutation.customerID] == 1 else { return nil }
            return (position, prepared.row)
        }
        guard !candidates.isEmpty else { return }
        let inserted = Set(try await connection.rows(Statements.InsertNewCustomers(batch.workspaceID, candidates.map(\.1)), logger)
            .map { try $0.text("customer_id") })
        let written = candidates.filter { inserted.contains($0.1.customerID.rawValue) }
        for (position, row) in written { outcomes[position] = .created(row) }
    }

    /// Writes a row decided before the transaction if the customer is still as it was then:
    /// absent (the insert does nothing when a row appeared) or at the assumed revision.
    /// - Returns: false when the row changed meanwhile and nothing was written.
    static func writeIfUnchanged(_ prepared: CustomerMutation.Prepared, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        let customer = prepared.row
        let written = if let assumed = prepared.assumed {
            try await connection.rows(Statements.UpdateCustomerAtRevision(customer, assumedRevision: assumed.revision), logger)
        } else {
            try await connection.rows(Statements.InsertNewCustomers(customer.workspaceID, [customer]), logger)
        }
        guard written.count == 1 else { return false }
        try await writeIndex(of: customer, replacing: prepared.assumed, connection, logger)
        return true
    }

    static func upsert(_ customer: StoredCustomer, _ connection: PostgresConnection, _ logger: Logger) async throws {
        _ = try await connection.rows(Statements.UpsertCustomer(customer), logger)
    }

    /// Brings the customer's blind-index entries from `current`'s to `customer`'s, touching only
    /// the attributes whose digest changed. The row lists its entries, so each is addressed by its
    /// whole key.
    static func writeIndex(of customer: StoredCustomer, replacing current: StoredCustomer?, _ connection: PostgresConnection,
                           _ logger: Logger) async throws {
        let old = current?.blindIndex ?? [:]
        let removed = old.filter { customer.blindIndex[$0.key] != $0.value }
        let added = customer.blindIndex.filter { old[$0.key] != $0.value }
        if !removed.isEmpty {
            _ = try await connection.rows(Statements.DeleteIndexEntries(customer.workspaceID, customer.customerID, removed), logger)
        }
        if !added.isEmpty {
            _ = try await connection.rows(Statements.InsertIndexEntries(customer.workspaceID, customer.customerID, added), logger)
        }
    }

    static func deleteIndex(of customer: StoredCustomer, _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !customer.blindIndex.isEmpty else { return }
        _ = try await connection.rows(Statements.DeleteIndexEntries(customer.workspaceID, customer.customerID, customer.blindIndex), logger)
    }
}
