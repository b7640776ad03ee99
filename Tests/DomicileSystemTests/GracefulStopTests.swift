import Foundation
import Testing

@Suite("A graceful stop", .serialized)
struct GracefulStopTests {
    /// `intact: N entries` for the workspace, from `domicile audit verify`.
    static func auditEntries(_ dataDir: String) throws -> Int {
        let text = try ServerProcess.command(["audit", "verify", "--workspace", "acme", "--data-dir", dataDir])
        guard let range = text.range(of: #"intact: [0-9]+ entries"#, options: .regularExpression),
              let count = Int(text[range].split(separator: " ")[1])
        else { throw ServerProcess.ProcessFailure(message: "unexpected verify output: \(text)") }
        return count
    }

    @Test func sigtermWritesTheAuditOfTheLastReads() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        // Entries gather for 5 s, far longer than a graceful stop takes: only a drain at the stop writes them.
        let server = try await ServerProcess(dataDir: dataDir, arguments: ["--read-audit-window-ms", "5000"])
        let (status, _) = try await server.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                   json: #"{"customer_id":"c-1","attributes":{"email":"reader@example.com"}}"#)
        #expect(status == 200)
        let before = try Self.auditEntries(dataDir)
        for _ in 0..<25 {
            let (read, _) = try await server.request("GET", "/v1/workspaces/acme/customers/c-1", auth: ("acme", key))
            #expect(read == 200)
        }
        // SIGTERM the instant the last answer arrived, while the entries are still buffered.
        server.stop()
        #expect(server.process.terminationStatus == 0, "\(server.log)")
        #expect(try Self.auditEntries(dataDir) == before + 25)
    }
}
