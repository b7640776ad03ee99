import Foundation
import Testing

extension FaultDrillTests {
    static func customers(_ ids: [String]) -> String {
        let elements = ids.map { id in
            #"{"type":"customer","customer_id":"\#(id)","attributes":{"email":"\#(id)@full.example.com","first_name":"Fay"}}"#
        }
        return #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#
    }

    /// Whether the customer reads back masked and is found by its e-mail.
    static func readsBack(_ id: String, server: ServerProcess, key: String) async throws -> Bool {
        let read = try await server.call("GET", "/v1/workspaces/acme/customers/\(id)", key: key)
        let lookup = try await server.call("GET", "/v1/workspaces/acme/customers?email=\(id)%40full.example.com", key: key)
        guard read.status == 200, lookup.status == 200 else { return false }
        return try lookup.decode(Drill.CustomerList.self).customers.map(\.customerID) == [id]
    }

    /// A refusal for want of space: 503 with the error shape and Retry-After, never a 500.
    static func expectStorageFull(_ answer: DrillAnswer, _ what: String) {
        #expect(answer.status == 503, "\(what): \(answer.status) \(answer.text)")
        #expect(answer.retryAfter != nil, "\(what): no Retry-After")
        let failure = try? answer.decode(Drill.Failure.self)
        #expect(failure?.status == "fail" && failure?.error.type == "ServiceUnavailableError", "\(what): \(answer.text)")
        #expect(failure?.error.message == "the vault's storage is full; retry later", "\(what): \(answer.text)")
        #expect(failure?.error.requestID?.isEmpty == false, "\(what): no request id")
    }

    @Test func aFullDiskAnswers503WithoutCorruptionAndWritesResumeWhenSpaceReturns() async throws {
        let disk = try SmallFilesystem(kilobytes: 4096)
        defer { disk.unmount() }
        let dataDir = (disk.path as NSString).appendingPathComponent("vault")
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir, launcher: disk.launcher)
        let server = try await ServerProcess(dataDir: dataDir, launcher: disk.launcher)
        var acknowledged: [String] = []
        var refused: [String] = []
        let first = (0..<20).map { "early-\($0)" }
        let answer = try await server.call("POST", "/v1/transition/acme", key: key, json: Self.customers(first))
        try #require(answer.status == 200, "\(answer.text)")
        acknowledged += first

        // Ballast: fill every byte that is left.
        let ballast = (disk.path as NSString).appendingPathComponent("ballast")
        let filled = try disk.run(["/bin/sh", "-c", "cat /dev/zero > \(ballast)"])
        #expect(filled.output.contains("No space left"), "the ballast did not fill the disk: \(filled.output)")

        // Ingest until the disk refuses: the WAL may still hold room for a few commits.
        var full: DrillAnswer?
        for number in 0..<50 where full == nil {
            let ids = (0..<20).map { "full-\(number)-\($0)" }
            let answer = try await server.call("POST", "/v1/transition/acme", key: key, json: Self.customers(ids))
            if answer.status == 200 { acknowledged += ids } else { refused += ids; full = answer }
        }
        let refusal = try #require(full, "writes kept succeeding on a full disk")
        Self.expectStorageFull(refusal, "bulk import")
        let single = try await server.call("POST", "/v1/customer/acme", key: key,
                                           json: #"{"customer_id":"single-1","attributes":{"email":"single-1@full.example.com"}}"#)
        Self.expectStorageFull(single, "single upsert")
        refused.append("single-1")
        for number in 0..<3 {
            let ids = (0..<20).map { "again-\(number)-\($0)" }
            Self.expectStorageFull(try await server.call("POST", "/v1/transition/acme", key: key, json: Self.customers(ids)), "repeat \(number)")
            refused += ids
        }
        // Reads need no space.
        #expect(try await Self.readsBack("early-0", server: server, key: key), "a read failed on a full disk")
        #expect(try await Self.readsBack(acknowledged.last!, server: server, key: key))

        // Space returns: the next write succeeds, no restart.
        #expect(try disk.run(["/bin/rm", ballast]).status == 0)
        let after = (0..<20).map { "after-\($0)" }
        let resumed = try await server.call("POST", "/v1/transition/acme", key: key, json: Self.customers(after))
        #expect(resumed.status == 200, "writes did not resume once space returned: \(resumed.status) \(resumed.text)")
        if resumed.status == 200 { acknowledged += after }
        server.stop()
        #expect(server.process.terminationStatus == 0, "\(server.log)")
        #expect(!server.log.contains("request failed"), "an error was answered as internal: \(server.log)")

        let verified = try ServerProcess.command(["audit", "verify", "--data-dir", dataDir], launcher: disk.launcher)
        #expect(verified.contains("acme: intact"), "\(verified)")
        let integrity = try disk.run(["/usr/bin/env", "sqlite3", (dataDir as NSString).appendingPathComponent("domicile.sqlite"),
                                      "PRAGMA integrity_check;"])
        #expect(integrity.status == 0 && integrity.output == "ok\n", "integrity_check: \(integrity.output)")

        let restarted = try await ServerProcess(dataDir: dataDir, launcher: disk.launcher)
        defer { restarted.stop() }
        let missing = try await Drill.concurrentMap(acknowledged) { id in try await Self.readsBack(id, server: restarted, key: key) ? nil : id }
        #expect(missing.compactMap { $0 }.isEmpty, "acknowledged customers lost: \(missing.compactMap { $0 }.prefix(10))")
        let written = try await Drill.concurrentMap(refused) { id in
            try await restarted.call("GET", "/v1/workspaces/acme/customers/\(id)", key: key).status
        }
        #expect(written.allSatisfy { $0 == 404 }, "a write answered 503 was stored")
        print("disk full drill: \(acknowledged.count) customers acknowledged, \(missing.compactMap { $0 }.count) of them lost; \(refused.count) refused, \(written.filter { $0 != 404 }.count) of them written")
    }
}
