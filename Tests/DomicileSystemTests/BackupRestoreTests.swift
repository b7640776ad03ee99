import Foundation
import Testing

/// `domicile backup` and `domicile restore` on the real executable: a customer erased after a
/// backup stays erased once that backup is restored.
@Suite("Backups that keep erasures")
struct BackupRestoreTests {
    @Test func aCustomerErasedAfterTheBackupStaysErasedAfterRestoringIt() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let sendKey = try Drill.sendKey("acme", dataDir: dataDir)
        let backup = (dataDir as NSString).appendingPathComponent("../\(UUID().uuidString)-backup.sqlite")
        do {
            let server = try await ServerProcess(dataDir: dataDir)
            defer { server.stop() }
            for (id, email) in [("c-1", "erase.me@example.com"), ("c-2", "keep.me@example.com")] {
                let (status, _) = try await server.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                           json: #"{"customer_id":"\#(id)","attributes":{"email":"\#(email)","mobile":"+971501112233"}}"#)
                #expect(status == 200)
            }
            // Taken while the server runs.
            let printed = try ServerProcess.command(["backup", "--data-dir", dataDir, "--to", backup])
            #expect(printed.contains("ciphertext and wrapped keys only"))
            let (erased, body) = try await server.request("POST", "/v1/opengdpr_requests/acme", auth: ("acme", key),
                                                          json: #"{"request_type":"erasure","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#)
            #expect(erased == 201 || erased == 200 || erased == 202, "\(String(decoding: body, as: UTF8.self))")
            let (gone, _) = try await server.request("GET", "/v1/workspaces/acme/customers/c-1", auth: ("acme", key))
            #expect(gone == 404)
        }
        // The backup names nobody in clear, and holds the customers as they were.
        let raw = try Data(contentsOf: URL(fileURLWithPath: backup))
        #expect(raw.range(of: Data("erase.me@example.com".utf8)) == nil && raw.range(of: Data("+971501112233".utf8)) == nil)
        let journal = try String(contentsOfFile: (dataDir as NSString).appendingPathComponent("erasures.jsonl"), encoding: .utf8)
        #expect(journal.split(separator: "\n").count == 1 && !journal.contains("c-1") && journal.contains(#""workspace_id":"acme""#))

        let restored = try ServerProcess.command(["restore", "--data-dir", dataDir, "--from", backup])
        #expect(restored.contains("1 customers erased again"), "\(restored)")
        let server = try await ServerProcess(dataDir: dataDir)
        defer { server.stop() }
        let (read, _) = try await server.request("GET", "/v1/workspaces/acme/customers/c-1", auth: ("acme", key))
        #expect(read == 404)
        let (lookup, found) = try await server.request("GET", "/v1/workspaces/acme/customers?email=erase.me%40example.com", auth: ("acme", key))
        #expect(lookup == 200 && !String(decoding: found, as: UTF8.self).contains("c-1"))
        let (_, export) = try await server.request("POST", "/v1/opengdpr_requests/acme", auth: ("acme", key),
                                                   json: #"{"request_type":"access","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#)
        #expect(!String(decoding: export, as: UTF8.self).contains("erase.me"))
        let send = #"{"messages":[{"message_id":"m-1","customer_id":"c-1","channel":"sms","content":{"text":"Hi"}}]}"#
        let answer = try await server.signed("POST", "/v1/workspaces/acme/messages", key: sendKey, body: send)
        #expect(answer.text.contains("unknown_customer"), "\(answer.text)")
        let (kept, _) = try await server.request("GET", "/v1/workspaces/acme/customers/c-2", auth: ("acme", key))
        #expect(kept == 200)
        // The database the restore replaced was moved aside, not deleted.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dataDir).contains { $0.hasPrefix("before-restore-") })
    }
}
