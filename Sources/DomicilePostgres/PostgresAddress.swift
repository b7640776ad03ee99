import Foundation
import PostgresNIO

/// A `postgres://` URL, read once: where the database is, who connects, and how TLS is used.
struct PostgresAddress: Sendable {
    enum TLSMode: String, Sendable {
        case disable
        /// TLS with the server's certificate verified against the trusted authorities and its host name.
        case require
    }

    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String
    var tlsMode: TLSMode
    var rootCertificatePath: String?

    /// Why a URL was refused; never repeats the password.
    struct Invalid: Error, CustomStringConvertible {
        let reason: String
        var description: String { "invalid database URL: \(reason)" }
    }

    init(_ url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql"
        else { throw Invalid(reason: "expected postgres://user:password@host:port/database") }
        guard let host = components.host, !host.isEmpty else { throw Invalid(reason: "no host") }
        guard let user = components.user, !user.isEmpty else { throw Invalid(reason: "no user name") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw Invalid(reason: "no database name after the host") }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        var mode: TLSMode = ["127.0.0.1", "::1", "localhost"].contains(host) ? .disable : .require
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value {
                case "disable": mode = .disable
                case "require", "verify-full": mode = .require
                default: throw Invalid(reason: "sslmode must be disable or require (certificates are always verified)")
                }
            case "sslrootcert":
                rootCertificatePath = item.value
            default:
                throw Invalid(reason: "unknown parameter \(item.name)")
            }
        }
        tlsMode = mode
    }

    /// `postgres://user@host:port/database`, for logs.
    var display: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    func tls() throws -> PostgresClient.Configuration.TLS {
        switch tlsMode {
        case .disable:
            return .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let rootCertificatePath {
                configuration.trustRoots = .file(rootCertificatePath)
            }
            return .require(configuration)
        }
    }
}
