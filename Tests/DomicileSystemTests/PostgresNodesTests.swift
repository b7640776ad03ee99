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
        let key = try PostgresServer.createWorkspace(dataDir: dataDir, database: database, rateLimit: 100_000)
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

    /// 2,000 messages sent through both nodes to one provider: while both run, each message is
    /// delivered once, by one of them; when one is killed mid-delivery, the other sends what it had
    /// claimed once the claims' lease runs out, repeating only those it had in flight.
    @Test func twoNodesSendEachMessageOnceAndOneTakesOverAKilledNodesClaims() async throws {
        let database = try PostgresServer.freshDatabase()
        let options = ["--database", database]
        let dataDir = temporaryDataDir()
        let key = try PostgresServer.createWorkspace(dataDir: dataDir, database: database, rateLimit: 1_000_000)
        let sendKey = try Drill.sendKey("acme", dataDir: dataDir, options: options)
        // Each send takes a second at the provider, so that deliveries are in flight when a node dies.
        // The claims' lease (10 s) must outlast how long a loaded node keeps a claimed message
        // before sending it, or the other node would take it over while it is still queued.
        let ssp = RecordingSSP(delay: .seconds(1))
        try await ssp.serve(workspaceIn: dataDir, options: options) {
            func node(_ id: String) async throws -> ServerProcess {
                try await ServerProcess(dataDir: dataDir, arguments: options + ["--node-id", id, "--outbox-lease-seconds", "10"])
            }
            let first = try await node("node-a"), second = try await node("node-b")
            defer { first.stop(); second.stop() }
            try await FaultDrillTests.ingestRecipients(100, server: first, key: key)
            func send(_ ids: [String]) async throws {
                let batches = stride(from: 0, to: ids.count, by: 50).map { Array(ids[$0..<min($0 + 50, ids.count)]) }
                let answers = try await Drill.concurrentMap(Array(batches.enumerated()), width: 8) { index, batch in
                    try await (index % 2 == 0 ? first : second).signed(
                        "POST", "/v1/workspaces/acme/messages", key: sendKey,
                        body: #"{"messages":[\#(FaultDrillTests.messages(batch, recipients: 100).joined(separator: ","))]}"#)
                }
                for answer in answers { #expect(answer.status == 202, "\(answer.text)") }
            }
            func waitForDeliveries(_ ids: [String]) async throws {
                let deadline = ContinuousClock.now + .seconds(60)
                while !Set(ids).isSubset(of: ssp.deliveries.withLock({ Set($0.keys) })) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                }
            }

            let together = (0..<1000).map { "together-\($0)" }
            try await send(together)
            try await waitForDeliveries(together)
            var deliveries = ssp.deliveries.withLock { $0 }
            #expect(together.allSatisfy { deliveries[$0] == 1 }, "a message was delivered twice, or never, with both nodes up")
            let senders = try PostgresServer.rows(database, "SELECT DISTINCT claimed_by FROM messages WHERE message_id LIKE 'together-%'")
            #expect(Set(senders) == ["node-a", "node-b"], "both nodes should have delivered: \(senders)")

            let afterKill = (0..<1000).map { "after-kill-\($0)" }
            try await send(afterKill)
            // Killed while it holds claims (on a slow machine it may have sent much already).
            let claimedQuery = "SELECT count(*) FROM messages WHERE status = 'sending' AND claimed_by = 'node-a'"
            let deadline = ContinuousClock.now + .seconds(10)
            while try PostgresServer.rows(database, claimedQuery).first == "0" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            first.kill()
            let orphaned = Set(try PostgresServer.rows(database, """
                SELECT message_id FROM messages WHERE status = 'sending' AND claimed_by = 'node-a' AND message_id LIKE 'after-kill-%'
                """))
            #expect(!orphaned.isEmpty, "node-a had nothing claimed when it was killed: the drill proved nothing")
            try await waitForDeliveries(afterKill)
            deliveries = ssp.deliveries.withLock { $0 }
            #expect(afterKill.allSatisfy { deliveries[$0] != nil }, "a message accepted before the kill was never delivered")
            let repeated = afterKill.filter { (deliveries[$0] ?? 0) > 1 }
            #expect(repeated.allSatisfy { orphaned.contains($0) && deliveries[$0] == 2 },
                    "repeated messages that node-a had not claimed: \(repeated.filter { !orphaned.contains($0) }.prefix(5))")
        }
    }

    /// The per-workspace request limit, counted by two nodes together: requests alternate between
    /// them, more slowly than the nodes share their counts (four times a second).
    @Test func theRateLimitHoldsAcrossTwoNodes() async throws {
        let database = try PostgresServer.freshDatabase()
        let dataDir = temporaryDataDir()
        let key = try PostgresServer.createWorkspace(dataDir: dataDir, database: database, rateLimit: 10)
        let first = try await ServerProcess(dataDir: dataDir, arguments: ["--database", database, "--node-id", "node-a"])
        let second = try await ServerProcess(dataDir: dataDir, arguments: ["--database", database, "--node-id", "node-b"])
        defer { first.stop(); second.stop() }
        // The limit is per minute of the clock: start with room for the whole run in one minute.
        let second0 = Int(Date().timeIntervalSince1970) % 60
        if second0 > 45 { try await Task.sleep(for: .seconds(61 - second0)) }
        var allowed = 0
        for request in 0..<24 {
            let (status, _) = try await (request % 2 == 0 ? first : second).request("GET", "/v1/workspaces/acme/customers/c-1",
                                                                                   auth: ("acme", key))
            #expect(status == 404 || status == 429)
            if status == 404 { allowed += 1 }
            try await Task.sleep(for: .milliseconds(350))
        }
        // A node's first request of the minute is decided before it has heard of the other's.
        #expect((10...11).contains(allowed), "two nodes allowed \(allowed) requests of a limit of 10")
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
    /// Creates the workspace `acme` on `database` and returns its data API key.
    static func createWorkspace(dataDir: String, database: String, rateLimit: Int = 100_000) throws -> String {
        let created = try ServerProcess.command(["workspace", "create", "acme", "--data-dir", dataDir, "--database", database,
                                                 "--rate-limit", "\(rateLimit)"])
        guard let range = created.range(of: #"dk_[A-Za-z0-9_-]+"#, options: .regularExpression) else {
            throw ServerProcess.ProcessFailure(message: "no key in: \(created)")
        }
        return String(created[range])
    }

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

    /// The first column of every row a query returns.
    static func rows(_ url: String, _ sql: String) throws -> [String] {
        try psql(url, sql, tuplesOnly: true).split(separator: "\n").map(String.init)
    }

    @discardableResult
    static func psql(_ url: String, _ sql: String, tuplesOnly: Bool = false) throws -> String {
        let (status, output) = try Drill.run(["/usr/bin/psql", url, "-v", "ON_ERROR_STOP=1", "-q"] + (tuplesOnly ? ["-A", "-t"] : [])
                                             + ["-c", sql])
        guard status == 0 else { throw ServerProcess.ProcessFailure(message: "psql failed: \(output)") }
        return output
    }
}
