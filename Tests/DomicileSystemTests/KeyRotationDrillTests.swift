import Foundation
import Testing

/// The rewrap of a rotation on the real executable: killed mid-way, it resumes where it was
/// after a restart and finishes, every customer still readable.
@Suite("Key rotation drill")
struct KeyRotationDrillTests {
    /// `done` and `total` from `domicile keys status --workspace acme`.
    static func progress(_ dataDir: String) throws -> (done: Int, total: Int)? {
        let line = try ServerProcess.command(["keys", "status", "--workspace", "acme", "--data-dir", dataDir])
        guard let range = line.range(of: #"done [0-9]+/[0-9]+"#, options: .regularExpression) else { return nil }
        let numbers = line[range].dropFirst(5).split(separator: "/").compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    @Test func aRewrapKilledMidWayResumesAfterARestartAndFinishes() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let count = 2_000
        do {
            let server = try await ServerProcess(dataDir: dataDir)
            defer { server.stop() }
            for start in stride(from: 0, to: count, by: 100) {
                let elements = (start..<start + 100).map { i in
                    #"{"type":"customer","customer_id":"k-\#(i)","attributes":{"email":"k\#(i)@example.com"}}"#
                }
                let answer = try await server.call("POST", "/v1/transition/acme", key: key,
                                                   json: #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#)
                try #require(answer.status == 200, "\(answer.text)")
            }
        }
        let rotated = try ServerProcess.command(["keys", "rotate", "--workspace", "acme", "--data-dir", dataDir])
        #expect(rotated.contains("v2"))
        #expect(try Self.progress(dataDir)?.done == 0)

        let slow = ["--key-rotation-interval-seconds", "1", "--rewrap-batch", "50", "--rewrap-pause-ms", "40"]
        let first = try await ServerProcess(dataDir: dataDir, arguments: slow)
        var seen: (done: Int, total: Int)?
        for _ in 0..<200 {
            if let progress = try Self.progress(dataDir), progress.done > 0 { seen = progress; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        first.kill()
        let killedAt = try #require(try Self.progress(dataDir))
        #expect(seen != nil && killedAt.done < count, "the rewrap was not caught mid-way: \(String(describing: seen)), \(killedAt)")
        #expect(killedAt.total == count)

        let second = try await ServerProcess(dataDir: dataDir, arguments: ["--key-rotation-interval-seconds", "1"])
        defer { second.stop() }
        var finished = false
        for _ in 0..<200 {
            if try Self.progress(dataDir)?.done == count { finished = true; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(finished)
        for i in [0, 999, 1_999] {
            let (status, body) = try await second.request("GET", "/v1/workspaces/acme/customers/k-\(i)", auth: ("acme", key))
            #expect(status == 200 && String(decoding: body, as: UTF8.self).contains("@e******.com"), "k-\(i)")
        }
        #expect(second.log.contains("key rotation: rewrapping data keys"))
    }

    /// The blind index's state from `domicile keys status --workspace acme`, e.g. `v1 active`.
    static func blindIndex(_ dataDir: String) throws -> String {
        let line = try ServerProcess.command(["keys", "status", "--workspace", "acme", "--data-dir", dataDir])
        return line.components(separatedBy: "blind index ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? line
    }

    /// A rotation of the blind index on the real executable: lookups by e-mail answer throughout,
    /// from the old index and then the new one; a server killed mid-way resumes the rebuild.
    @Test func aBlindIndexRebuildKeepsLookupsAnsweringAndResumesAfterAKill() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let count = 3_000
        // About 60 pages of 150 ms each way: slow enough to be caught between two status commands on a loaded machine.
        let slow = ["--key-rotation-interval-seconds", "1", "--key-retire-grace-seconds", "1", "--rewrap-batch", "50",
                    "--rewrap-pause-ms", "150"]
        func lookupsAnswer(_ server: ServerProcess, _ probes: [Int]) async throws {
            for i in probes {
                let (status, body) = try await server.request("GET", "/v1/workspaces/acme/customers?email=b\(i)%40example.com",
                                                              auth: ("acme", key))
                #expect(status == 200 && String(decoding: body, as: UTF8.self).contains("\"b-\(i)\""), "b-\(i): \(status)")
            }
        }
        let first = try await ServerProcess(dataDir: dataDir, arguments: slow)
        for start in stride(from: 0, to: count, by: 100) {
            let elements = (start..<start + 100).map { i in
                #"{"type":"customer","customer_id":"b-\#(i)","attributes":{"email":"b\#(i)@example.com"}}"#
            }
            let answer = try await first.call("POST", "/v1/transition/acme", key: key,
                                              json: #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#)
            try #require(answer.status == 200, "\(answer.text)")
        }
        #expect(try Self.blindIndex(dataDir) == "v1 active")
        let rotated = try ServerProcess.command(["keys", "rotate", "--workspace", "acme", "--blind-index", "--data-dir", dataDir])
        #expect(rotated.contains("blind index is being rebuilt under v2"))
        var caught = false
        for _ in 0..<300 {
            try await lookupsAnswer(first, [7, 2_999])
            if try Self.blindIndex(dataDir).contains("v2 building (after b-") { caught = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        first.kill()
        let killedAt = try Self.blindIndex(dataDir)
        #expect(caught, "the rebuild was not caught mid-way: \(killedAt)")

        let second = try await ServerProcess(dataDir: dataDir, arguments: slow)
        defer { second.stop() }
        var finished = false
        for _ in 0..<600 {
            try await lookupsAnswer(second, [7, 2_999])
            if try Self.blindIndex(dataDir) == "v2 active" { finished = true; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let end = try Self.blindIndex(dataDir)
        #expect(finished, "\(end)")
        try await lookupsAnswer(second, [0, 1_000, 1_999, 2_999])
        #expect((first.log + second.log).contains("blind index: lookups use the new version"))
    }
}
