import Foundation
import Testing

/// Two `domicile serve` processes on one PostgreSQL database, as a load balancer would have them:
/// what one acknowledges, the other serves. Runs when `DOMICILE_TEST_DATABASE_URL` names a server
/// (`scripts/test` starts one).
@Suite("Several nodes on PostgreSQL", .enabled(if: PostgresServer.url != nil), .serialized)
struct PostgresNodesTests {
    @Test func twoNodesServeOneDatabase() async throws {
        let database = try PostgresServer.freshDatabase()
        let dataDir = temporaryDataDir()
        let created = try ServerProcess.command(["workspace", "create", "acme", "--data-dir", dataDir, "--database", database,
                                                 "--rate-limit", "100000"])
        let key = try #require(created.range(of: #"dk_[A-Za-z0-9_-]+"#, options: .regularExpression).map { String(created[$0]) })
        let first = try await ServerProcess(dataDir: dataDir, arguments: ["--database", database, "--node-id", "node-a"])
        let second = try await ServerProcess(dataDir: dataDir, arguments: ["--database", database, "--node-id", "node-b"])
        defer { first.stop(); second.stop() }
        #expect(first.log.contains("node node-a") && !first.log.contains("password"))

        let (written, _) = try await first.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                   json: #"{"customer_id":"c-1","attributes":{"email":"shared@example.com","first_name":"Nadia"}}"#)
        #expect(written == 200)
        let (read, body) = try await second.request("GET", "/v1/workspaces/acme/customers/c-1", auth: ("acme", key))
        #expect(read == 200)
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains("c-1") && !text.contains("shared@example.com"))
        let (found, _) = try await second.request("GET", "/v1/workspaces/acme/customers?email=shared@example.com", auth: ("acme", key))
        #expect(found == 200)
        let (ready, _) = try await second.request("GET", "/health/ready")
        #expect(ready == 200)

        first.stop()
        second.stop()
        let verified = try ServerProcess.command(["audit", "verify", "--data-dir", dataDir, "--database", database])
        #expect(verified.contains("acme: intact"))
    }

    @Test func aDatabaseNewerThanTheBinaryIsRefused() async throws {
        let database = try PostgresServer.freshDatabase()
        let dataDir = temporaryDataDir()
        _ = try ServerProcess.command(["workspace", "create", "acme", "--data-dir", dataDir, "--database", database])
        try PostgresServer.psql(database, "INSERT INTO domicile_schema (version, name, applied_at) VALUES (999, 'from the future', 0)")
        do {
            _ = try ServerProcess.command(["workspace", "list", "--data-dir", dataDir, "--database", database])
            Issue.record("a newer schema was accepted")
        } catch let failure as ServerProcess.ProcessFailure {
            #expect(failure.message.contains("schema is at version 999, newer than this Domicile knows"))
        }
    }
}

/// The test PostgreSQL server, driven with `psql`.
enum PostgresServer {
    static var url: String? {
        ProcessInfo.processInfo.environment["DOMICILE_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Creates an empty database and returns its URL.
    static func freshDatabase() throws -> String {
        guard let url, var components = URLComponents(string: url) else { throw ServerProcess.ProcessFailure(message: "no test database") }
        let name = "domicile_system_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql(url, "CREATE DATABASE \(name)")
        components.path = "/" + name
        return components.string!
    }

    static func psql(_ url: String, _ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ServerProcess.ProcessFailure(message: "psql failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
