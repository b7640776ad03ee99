import DomicileCore
import Foundation
import PostgresNIO

/// The statements every ingest and read runs, prepared once per connection (PostgresNIO keeps
/// them by name) instead of parsed and planned at each call. The rest go through `rows(_:)`.
protocol PreparedStatement: PostgresPreparedStatement where Row == PostgresRandomAccessRow {
    var bindings: PostgresBindings { get }
}

extension PreparedStatement {
    func makeBindings() -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRandomAccessRow { row.makeRandomAccess() }
}

extension PostgresVaultStore {
    /// Runs a prepared statement outside any transaction and returns every row.
    func rows<Statement: PreparedStatement>(_ statement: Statement) async throws -> [PostgresRandomAccessRow] {
        do {
            var rows: [PostgresRandomAccessRow] = []
            for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
            return rows
        } catch {
            throw Self.storeError(error)
        }
    }
}

extension PostgresConnection {
    /// Runs a prepared statement in the caller's transaction and returns every row.
    func rows<Statement: PreparedStatement>(_ statement: Statement, _ logger: Logger) async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await execute(statement, logger: logger) { rows.append(row) }
        return rows
    }
}

private func bind(_ build: (inout PostgresBindings) -> Void) -> PostgresBindings {
    var bindings = PostgresBindings()
    build(&bindings)
    return bindings
}

enum Statements {
    static let customerColumns = "customer_id, data_key, attributes, blind_index, restricted, created_at, updated_at, revision"

    struct SelectCustomer: PreparedStatement {
        static let sql = "SELECT \(customerColumns) FROM customers WHERE workspace_id = $1 AND customer_id = $2"
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ customer: CustomerID) {
            bindings = bind { $0.append(workspace.rawValue); $0.append(customer.rawValue) }
        }
    }

    struct SelectCustomerForUpdate: PreparedStatement {
        static let sql = "SELECT \(customerColumns) FROM customers WHERE workspace_id = $1 AND customer_id = $2 FOR UPDATE"
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ customer: CustomerID) {
            bindings = bind { $0.append(workspace.rawValue); $0.append(customer.rawValue) }
        }
    }

    /// Writes the row if the stored one is at revision `$10`; answers a row when it wrote. (`$7`,
    /// the creation time, is bound but left as stored.)
    struct UpdateCustomerAtRevision: PreparedStatement {
        static let sql = """
            UPDATE customers SET data_key = $3, attributes = $4, blind_index = $5, restricted = $6, updated_at = $8, revision = $9
            WHERE workspace_id = $1 AND customer_id = $2 AND revision = $10
            RETURNING revision
            """
        let bindings: PostgresBindings
        init(_ customer: StoredCustomer, assumedRevision: Int64) {
            var bindings = Statements.rowBindings(customer)
            bindings.append(assumedRevision)
            self.bindings = bindings
        }
    }

    struct UpsertCustomer: PreparedStatement {
        static let sql = """
            INSERT INTO customers (workspace_id, customer_id, data_key, attributes, blind_index, restricted, created_at, updated_at, revision)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (workspace_id, customer_id) DO UPDATE SET data_key = excluded.data_key, attributes = excluded.attributes,
                blind_index = excluded.blind_index, restricted = excluded.restricted, updated_at = excluded.updated_at,
                revision = excluded.revision
            """
        let bindings: PostgresBindings
        init(_ customer: StoredCustomer) { bindings = Statements.rowBindings(customer) }
    }

    /// `$1` workspace, `$2` customer, `$3` the rows' values in this order.
    static func rowBindings(_ customer: StoredCustomer) -> PostgresBindings {
        bind {
            $0.append(customer.workspaceID.rawValue)
            $0.append(customer.customerID.rawValue)
            $0.append(customer.dataKey.bytea)
            $0.append(SealedMapCodec.encode(customer.attributes).bytea)
            $0.append(SealedMapCodec.encode(customer.blindIndex).bytea)
            $0.append(customer.restricted)
            $0.append(customer.createdAt.millis)
            $0.append(customer.updatedAt.millis)
            $0.append(customer.revision)
        }
    }

    /// New customers with their blind-index entries, in one statement; answers the ids it
    /// inserted (a customer that already exists is left as it is, its entries too).
    struct InsertNewCustomers: PreparedStatement {
        static let sql = """
            WITH inserted AS (
                INSERT INTO customers (workspace_id, customer_id, data_key, attributes, blind_index, restricted, created_at, updated_at,
                                       revision)
                SELECT $1, row.* FROM unnest($2::TEXT[], $3::BYTEA[], $4::BYTEA[], $5::BYTEA[], $6::BOOLEAN[], $7::BIGINT[],
                                             $8::BIGINT[], $9::BIGINT[]) AS row
                ON CONFLICT (workspace_id, customer_id) DO NOTHING
                RETURNING customer_id
            ), entries AS (
                INSERT INTO blind_index (workspace_id, attribute, digest, customer_id)
                SELECT $1, entry.attribute, entry.digest, entry.customer_id
                FROM unnest($10::TEXT[], $11::BYTEA[], $12::TEXT[]) AS entry (attribute, digest, customer_id)
                WHERE entry.customer_id IN (SELECT customer_id FROM inserted)
                ON CONFLICT DO NOTHING
            )
            SELECT customer_id FROM inserted
            """
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ customers: [StoredCustomer]) {
            var attributes: [String] = [], digests: [ByteBuffer] = [], owners: [String] = []
            for customer in customers {
                for (attribute, digest) in customer.blindIndex {
                    attributes.append(attribute)
                    digests.append(digest.bytea)
                    owners.append(customer.customerID.rawValue)
                }
            }
            bindings = bind {
                $0.append(workspace.rawValue)
                $0.append(customers.map(\.customerID.rawValue))
                $0.append(customers.map(\.dataKey.bytea))
                $0.append(customers.map { SealedMapCodec.encode($0.attributes).bytea })
                $0.append(customers.map { SealedMapCodec.encode($0.blindIndex).bytea })
                $0.append(customers.map(\.restricted))
                $0.append(customers.map(\.createdAt.millis))
                $0.append(customers.map(\.updatedAt.millis))
                $0.append(customers.map(\.revision))
                $0.append(attributes)
                $0.append(digests)
                $0.append(owners)
            }
        }
    }

    struct InsertIndexEntries: PreparedStatement {
        static let sql = """
            INSERT INTO blind_index (workspace_id, attribute, digest, customer_id)
            SELECT $1, entry.attribute, entry.digest, $2 FROM unnest($3::TEXT[], $4::BYTEA[]) AS entry (attribute, digest)
            ON CONFLICT DO NOTHING
            """
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ customer: CustomerID, _ entries: [String: [UInt8]]) {
            bindings = Statements.entryBindings(workspace, customer, entries)
        }
    }

    struct DeleteIndexEntries: PreparedStatement {
        static let sql = """
            DELETE FROM blind_index WHERE workspace_id = $1 AND customer_id = $2
                AND (attribute, digest) IN (SELECT * FROM unnest($3::TEXT[], $4::BYTEA[]))
            """
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ customer: CustomerID, _ entries: [String: [UInt8]]) {
            bindings = Statements.entryBindings(workspace, customer, entries)
        }
    }

    /// `$1` workspace, `$2` customer, `$3` attribute names and `$4` their digests, in one order.
    static func entryBindings(_ workspace: WorkspaceID, _ customer: CustomerID, _ entries: [String: [UInt8]]) -> PostgresBindings {
        bind {
            $0.append(workspace.rawValue)
            $0.append(customer.rawValue)
            $0.append(Array(entries.keys))
            $0.append(entries.values.map(\.bytea))
        }
    }

    struct LookupDigest: PreparedStatement {
        static let sql = """
            SELECT customer_id FROM blind_index WHERE workspace_id = $1 AND attribute = $2 AND digest = $3 ORDER BY customer_id
            """
        let bindings: PostgresBindings
        init(_ workspace: WorkspaceID, _ attribute: AttributeName, _ digest: [UInt8]) {
            bindings = bind { $0.append(workspace.rawValue); $0.append(attribute.rawValue); $0.append(digest.bytea) }
        }
    }
}
