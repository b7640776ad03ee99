import Foundation
import Testing

@Suite("domicile audit")
struct AuditCommandTests {
    /// The main data center gets the public key that checks checkpoints; a checkpoint it did
    /// not get from this vault (here: signed by nobody) fails verification with exit status 1.
    @Test func publicKeyAndCheckpointFiles() throws {
        let dataDir = temporaryDataDir()
        _ = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let publicKey = try ServerProcess.command(["audit", "public-key", "--workspace", "acme", "--data-dir", dataDir])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Data(base64Encoded: publicKey)?.count == 32)
        #expect(try ServerProcess.command(["audit", "public-key", "--workspace", "acme", "--data-dir", dataDir])
            .trimmingCharacters(in: .whitespacesAndNewlines) == publicKey)

        let file = URL(fileURLWithPath: dataDir).appendingPathComponent("checkpoints.jsonl")
        let forged = #"{"workspace_id":"acme","seq":1,"head":"\#(String(repeating: "ab", count: 32))","signed_at":"2026-12-03T10:00:00Z","signature":"\#(Data(count: 64).base64EncodedString())"}"#
        try Data((#"{"events":[]}"# + "\n" + forged + "\n").utf8).write(to: file)
        #expect(throws: ServerProcess.ProcessFailure.self) {
            try ServerProcess.command(["audit", "verify", "--data-dir", dataDir, "--checkpoints", file.path])
        }
        do {
            try ServerProcess.command(["audit", "verify", "--data-dir", dataDir, "--checkpoints", file.path])
        } catch let failure as ServerProcess.ProcessFailure {
            #expect(failure.message.contains("exited 1") && failure.message.contains("signature is not this workspace's"))
        }
        try Data("not json\n".utf8).write(to: file)
        do {
            try ServerProcess.command(["audit", "verify", "--data-dir", dataDir, "--checkpoints", file.path])
            Issue.record("a malformed checkpoint file was accepted")
        } catch let failure as ServerProcess.ProcessFailure {
            #expect(failure.message.contains("line 1: neither a checkpoint nor an events delivery"))
        }
        #expect(try ServerProcess.command(["audit", "verify", "--data-dir", dataDir]).contains("acme: intact"))
    }
}
