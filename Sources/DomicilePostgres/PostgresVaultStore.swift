import DomicileCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The store for several stateless nodes sharing one PostgreSQL database, through a pool of
/// connections.
///
/// Every write is one transaction, committed before the call returns; concurrent commits share
/// PostgreSQL's own WAL flushes. Rows are locked where a read decides a write (`FOR UPDATE`),
/// and a transaction that loses a deadlock or a serialization check is run again. The SQL keeps
/// to what the PostgreSQL-wire distributed engines (CockroachDB, YugabyteDB) also take: no
/// advisory locks, no LISTEN/NOTIFY, no triggers, times as integers.
public final class PostgresVaultStore: VaultStore {
    let client: PostgresClient
    let logger: Logger
    private let runner: Task<Void, Never>
    /// Set by the runner task just before it calls `client.run()`.
    private let running = Flag()

    final class Flag: Sendable {
        private let value = Atomic(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }
    /// The address, without its password: for logs and messages.
    public let displayAddress: String

    /// Connects, and brings the schema up to date (or refuses a newer one).
    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database`, optionally `?sslmode=disable|require`
    ///     (default: `disable` to a loopback host, `require` with certificate verification elsewhere)
    ///     and `&sslrootcert=PATH` (a PEM file of the certificate authorities to trust).
    ///   - poolSize: the most connections this node opens.
    public static func open(url: String, poolSize: Int = 16, logger: Logger) async throws -> PostgresVaultStore {
        let store = try PostgresVaultStore(address: try PostgresAddress(url), poolSize: poolSize, logger: logger)
        // The pool serves nothing until `run()` has begun (PostgresNIO warns about a lease before it).
        while !store.running.isSet { await Task.yield() }
        do {
            try await store.migrate()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    private init(address: PostgresAddress, poolSize: Int, logger: Logger) throws {
        var configuration = PostgresClient.Configuration(host: address.host, port: address.port, username: address.user,
                                                         password: address.password, database: address.database,
                                                         tls: try address.tls())
        configuration.options.maximumConnections = max(1, poolSize)
        configuration.options.connectTimeout = .seconds(5)
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        displayAddress = address.display
        let client = self.client
        let running = self.running
        runner = Task {
            running.set()
            await client.run()
        }
    }

    /// Closes every connection. The store cannot be used afterwards.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    deinit { runner.cancel() }

    public func ping() async throws {
        _ = try await rows("SELECT 1")
    }

    /// PostgreSQL keeps no copy of a deleted row that a reader of its files can reach once
    /// vacuumed; erasure does not wait for that: the row held only sealed values, and the key
    /// that opened them went with it (crypto-shredding).
    public func purgeDeleted() async throws {}

    // MARK: Running statements

    /// Runs a read outside any transaction and returns every row.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        do {
            return try await client.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs `work` in one transaction, again (up to five times) when PostgreSQL aborts it to
    /// break a deadlock or a serialization conflict; a `StoreError` from `work` rolls back and is
    /// thrown as it is.
    func transaction<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await client.withConnection { connection in
                    try await connection.withTransaction(logger: self.logger) { connection in try await work(connection) }
                }
            } catch {
                let cause = Self.cause(error)
                if Self.isRetryable(cause), attempt < 5 {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(Int.random(in: 1...(4 << attempt))))
                    continue
                }
                throw Self.storeError(cause)
            }
        }
    }

    /// The error under PostgresNIO's transaction wrapper.
    static func cause(_ error: any Error) -> any Error {
        guard let wrapped = error as? PostgresTransactionError else { return error }
        return wrapped.closureError ?? wrapped.commitError ?? wrapped.beginError ?? wrapped.rollbackError ?? error
    }

    static func sqlState(_ error: any Error) -> String? {
        (cause(error) as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// Deadlock detected, serialization failure (and CockroachDB's retry errors, which use it).
    static func isRetryable(_ error: any Error) -> Bool {
        ["40P01", "40001"].contains(sqlState(error) ?? "")
    }

    /// Maps what the node cannot fix by itself to `StoreError`: a full disk, a database that
    /// cannot be reached. Everything else is rethrown as it is (a 500, logged).
    static func storeError(_ error: any Error) -> any Error {
        let error = cause(error)
        if error is StoreError { return error }
        switch sqlState(error) {
        case "53100": return StoreError.full
        // Admin shutdown, crash shutdown, cannot connect now, too many connections.
        case "57P01", "57P02", "57P03", "53300": return StoreError.unavailable
        default: break
        }
        if let psql = error as? PSQLError,
           [.connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed].contains(psql.code) {
            // The connection failed or was lost.
            return StoreError.unavailable
        }
        return error
    }
}

extension PostgresConnection {
    /// Runs a statement in the caller's transaction and returns every row.
    func rows(_ query: PostgresQuery, _ logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await self.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }
}
