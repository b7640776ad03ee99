import DomicileVault
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@Suite("The real server: the outbox", .serialized)
struct QueuedMessageTests {
    /// A private-SSP endpoint that answers 503 until it is told to accept.
    final class FlakySSP: Sendable {
        let accepting = Mutex(false)
        let attempts = Mutex(0)
        let accepted = Mutex<[String]>([])

        var router: Router<BasicRequestContext> {
            let router = Router()
            router.post("sms") { request, _ -> Response in
                let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
                self.attempts.withLock { $0 += 1 }
                guard self.accepting.withLock({ $0 }) else {
                    return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "{}")))
                }
                self.accepted.withLock { $0.append(body) }
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"sms_accepted"}"#)))
            }
            return router
        }
    }

    @Test func aQueuedMessageIsDeliveredAfterSIGKILLAndRestart() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let sendKey = try ServerProcess.command(["workspace", "send-key", "create", "acme", "--data-dir", dataDir])
        let keyID = try #require(sendKey.firstMatch(of: /Send key (sk_[A-Za-z0-9_-]+)/)?.1).description
        let secret = try #require(sendKey.firstMatch(of: /\(shown once\): ([A-Za-z0-9_-]+)/)?.1).description
        let ssp = FlakySSP()
        try await Application(router: ssp.router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            let port = try #require(client.port)
            try ServerProcess.command(["workspace", "egress", "acme", "--add", "127.0.0.1", "--data-dir", dataDir])
            try ServerProcess.command(["workspace", "provider", "acme", "--channel", "sms", "--kind", "private_ssp",
                                       "--setting", "url=http://127.0.0.1:\(port)/sms", "--data-dir", dataDir])
            let server = try await ServerProcess(dataDir: dataDir)
            let (ingested, _) = try await server.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                         json: #"{"customer_id":"c-1","attributes":{"mobile":"+971501112233"}}"#)
            #expect(ingested == 200)
            let body = #"{"message_id":"after-kill","customer_id":"c-1","channel":"sms","content":{"text":"hello"}}"#
            let (accepted, _) = try await server.signedRequest("POST", "/v1/workspaces/acme/messages", body: body, keyID: keyID, secret: secret)
            #expect(accepted == 202)
            // The provider is down: wait for the first failed attempt, then kill the server outright.
            for _ in 0..<300 where ssp.attempts.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(50)) }
            server.kill()
            #expect(ssp.accepted.withLock { $0.isEmpty })

            ssp.accepting.withLock { $0 = true }
            let restarted = try await ServerProcess(dataDir: dataDir)
            defer { restarted.stop() }
            for _ in 0..<400 where ssp.accepted.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(ssp.accepted.withLock { $0.count } == 1)
            #expect(ssp.accepted.withLock { $0.first?.contains("+971501112233") } == true)
            try await Task.sleep(for: .milliseconds(300))
            let (status, history) = try await restarted.signedRequest("GET", "/v1/workspaces/acme/messages/after-kill", body: "",
                                                                      keyID: keyID, secret: secret)
            #expect(status == 200)
            #expect(String(decoding: history, as: UTF8.self).contains(#""status":"sent""#))
            #expect(ssp.accepted.withLock { $0.count } == 1, "delivered twice")
        }
    }
}

extension ServerProcess {
    func signedRequest(_ method: String, _ path: String, body: String, keyID: String, secret: String) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        let timestamp = String(Int(Date().timeIntervalSince1970))
        request.setValue(keyID, forHTTPHeaderField: "X-Domicile-Key")
        request.setValue(timestamp, forHTTPHeaderField: "X-Domicile-Timestamp")
        request.setValue("v1=" + Vault.sendSignature(secret: secret, timestamp: timestamp, method: method, path: path, body: Array(body.utf8)),
                         forHTTPHeaderField: "X-Domicile-Signature")
        if !body.isEmpty {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}
