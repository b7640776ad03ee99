import DomicileCore
import DomicilePostgres
import DomicileSQLite
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the tests may use, and a database of its own for each test.
public enum TestPostgres {
    /// `postgres://user@host:port/postgres` of a server the tests may create databases on.
    public static var serverURL: String? {
        ProcessInfo.processInfo.environment["DOMICILE_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Creates an empty database and returns its URL.
    public static func freshDatabase() async throws -> String {
        guard let serverURL, var components = URLComponents(string: serverURL), let host = components.host,
              let user = components.user
        else { throw TestSetupError(message: "DOMICILE_TEST_DATABASE_URL is not a postgres:// URL") }
        let name = "domicile_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let configuration = PostgresConnection.Configuration(host: host, port: components.port ?? 5432, username: user,
                                                             password: components.password, database: String(components.path.dropFirst()),
                                                             tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test.postgres"))
        do {
            try await connection.query("CREATE DATABASE \(unescaped: name)", logger: Logger(label: "test.postgres"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        components.path = "/" + name
        return components.string!
    }

    public struct TestSetupError: Error, CustomStringConvertible {
        let message: String
        public var description: String { message }
    }

    /// A store on a new, empty PostgreSQL database of its own.
    public static func freshStore() async throws -> PostgresVaultStore {
        try await PostgresVaultStore.open(url: try await freshDatabase(), poolSize: 4, logger: Logger(label: "test.postgres"))
    }
}

/// Which backend the in-process API tests run on: SQLite, or PostgreSQL when
/// `DOMICILE_TEST_STORE=postgres` (scripts/test runs them once more that way).
public enum TestStore: String, Sendable {
    case sqlite, postgres

    public static var selected: TestStore {
        ProcessInfo.processInfo.environment["DOMICILE_TEST_STORE"] == "postgres" ? .postgres : .sqlite
    }
}
